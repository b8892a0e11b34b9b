package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/memtorrent/memtorrent/internal/testutil"
)

// streamURLLine matches the stream URL serve prints for a torrent.
var streamURLLine = regexp.MustCompile(`^  stream: +(http://\S+)`)

// Limits of TestServePeakRSS (issue 12): the process a user runs holds its
// capacity of pieces plus a bounded overhead.
const (
	rssCapacity = 32 << 20
	rssFileSize = 256 << 20
	rssSeeks    = 10
	rssOverhead = 40 << 20
)

// TestServePeakRSS runs the memtorrent binary (built without -race) as a
// user runs it, `serve -offline -capacity 32MiB <magnet>` with the magnet
// naming a loopback seeder in x.pe, and streams the 256 MiB file through
// it in rssSeeks Range requests over the whole file in shuffled order,
// checking every byte. Its peak RSS (VmHWM) must stay within the capacity
// plus rssOverhead: the blocks live outside the Go heap and serve sets a
// soft Go memory limit.
func TestServePeakRSS(t *testing.T) {
	spec := testutil.Spec{Name: "movie.mkv", Length: rssFileSize, PieceLength: 1 << 20, Seed: 12}
	_, magnet := seedSpec(t, spec)
	s, _ := startServer(t, "serve", "-offline", "-listen", "127.0.0.1:0", "-peer-port", "0",
		"-capacity", strconv.Itoa(rssCapacity), "-log-level", "error", magnet)
	url := s.waitLine(t, streamURLLine)
	pid := s.cmd.Process.Pid
	startRSS := procStatus(t, pid, "VmRSS")

	src := testutil.NewSource(spec.Seed, spec.Length)
	seg := spec.Length / rssSeeks
	for i := range rssSeeks {
		k := (i*7 + 3) % rssSeeks // a permutation of the segments
		lo, hi := int64(k)*seg, int64(k+1)*seg
		if k == rssSeeks-1 {
			hi = spec.Length
		}
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		err := fetchAndCheck(ctx, url, lo, hi, src)
		cancel()
		if err != nil {
			t.Fatalf("segment %d [%d, %d): %v", k, lo, hi, err)
		}
	}
	hwm := procStatus(t, pid, "VmHWM")
	t.Logf("memtorrent serve: VmRSS %.1f MiB before streaming, VmHWM %.1f MiB after %d MiB through %d MiB: capacity + %.1f MiB",
		float64(startRSS)/(1<<20), float64(hwm)/(1<<20), rssFileSize>>20, rssCapacity>>20, float64(hwm-rssCapacity)/(1<<20))
	if hwm > rssCapacity+rssOverhead {
		t.Errorf("VmHWM %.1f MiB; want <= capacity %d MiB + %d MiB", float64(hwm)/(1<<20), rssCapacity>>20, rssOverhead>>20)
	}
	s.stop(t, syscall.SIGTERM, 30*time.Second)
}

// fetchAndCheck gets bytes [lo, hi) of url with a Range request and
// compares them with src one MiB at a time, holding no more than that.
func fetchAndCheck(ctx context.Context, url string, lo, hi int64, src *testutil.Source) error {
	resp, err := rangeGet(ctx, url, fmt.Sprintf("bytes=%d-%d", lo, hi-1))
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
			return fmt.Errorf("bytes [%d, %d) differ from the source", off, off+n)
		}
		off += n
	}
	if n, _ := resp.Body.Read(got[:1]); n != 0 {
		return fmt.Errorf("body longer than %d bytes", hi-lo)
	}
	return nil
}

// rangeGet sends GET url with a Range header; the caller closes the body.
func rangeGet(ctx context.Context, url, rng string) (*http.Response, error) {
	req, err := testutil.NewRequest(ctx, http.MethodGet, url, nil, "Range", rng)
	if err != nil {
		return nil, err
	}
	return http.DefaultClient.Do(req)
}

// procStatus returns a field of /proc/pid/status in bytes (VmRSS, VmHWM).
func procStatus(t *testing.T, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc/%d/status (Linux only): %v", pid, err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		v, ok := strings.CutPrefix(line, field+":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		n, err := strconv.ParseInt(f[0], 10, 64)
		if len(f) != 2 || f[1] != "kB" || err != nil {
			t.Fatalf("/proc/%d/status: %s: %q", pid, field, v)
		}
		return n << 10
	}
	t.Fatalf("/proc/%d/status has no %s", pid, field)
	return 0
}
