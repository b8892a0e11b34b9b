package main

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
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
	pid := s.Cmd.Process.Pid
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
		err := testutil.FetchAndCheck(ctx, url, lo, hi, src)
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

// procStatus returns a field of /proc/pid/status in bytes (VmRSS, VmHWM);
// it skips the test where there is no /proc (not Linux).
func procStatus(t *testing.T, pid int, field string) int64 {
	t.Helper()
	if _, err := os.Stat(fmt.Sprintf("/proc/%d/status", pid)); err != nil {
		t.Skipf("no /proc/%d/status (Linux only): %v", pid, err)
	}
	n, err := testutil.ProcStatus(pid, field)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
