package testutil

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// CPUTime returns the user plus system CPU time the process has used,
// failing tb if it cannot be read.
func CPUTime(tb testing.TB) time.Duration {
	tb.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ProcStatus returns a size field of /proc/<pid>/status (VmRSS, VmHWM,
// RssAnon, ...) in bytes. It returns an error when the file cannot be read
// (not Linux, no such process) or has no such field in kB.
func ProcStatus(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		v, ok := strings.CutPrefix(line, field+":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("/proc/%d/status: %s: %q", pid, field, v)
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/status: %s: %w", pid, field, err)
		}
		return n << 10, nil
	}
	return 0, fmt.Errorf("/proc/%d/status has no %s", pid, field)
}

// FetchAndCheck gets bytes [lo, hi) of url with a Range request through
// http.DefaultClient and compares them with src one MiB at a time, holding
// no more than that: for files too large to hold. It returns an error
// naming the first byte that differs, a status other than 206, a short or
// long body, or the transport's error. Safe for concurrent use.
func FetchAndCheck(ctx context.Context, url string, lo, hi int64, src *Source) error {
	req, err := NewRequest(ctx, http.MethodGet, url, nil, "Range", fmt.Sprintf("bytes=%d-%d", lo, hi-1))
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent {
		return fmt.Errorf("status %d; want 206", resp.StatusCode)
	}
	got, want := make([]byte, 1<<20), make([]byte, 1<<20)
	for off := lo; off < hi; {
		n := min(int64(len(got)), hi-off)
		if _, err := io.ReadFull(resp.Body, got[:n]); err != nil {
			return fmt.Errorf("reading at %d: %w", off, err)
		}
		src.ReadAt(want[:n], off)
		if !bytes.Equal(got[:n], want[:n]) {
			i := 0
			for got[i] == want[i] {
				i++
			}
			return fmt.Errorf("byte %d: got %#x; want %#x", off+int64(i), got[i], want[i])
		}
		off += n
	}
	if n, _ := resp.Body.Read(got[:1]); n != 0 {
		return fmt.Errorf("body longer than %d bytes", hi-lo)
	}
	return nil
}
