package host_test

// The stall reproducer of docs/stalls.md (issue 8): many short loopback
// streams, each on a fresh seeder and leecher, read through a torrent.Reader
// with a moving readahead window and random seeks, with a watchdog on every
// Read that writes goroutine stacks and client state to a file when a read
// waits longer than a threshold.
//
//	go test ./host -run TestStallRepro -stall.streams=200                      # recommended settings
//	go test ./host -run TestStallRepro -stall.streams=200 -stall.keepalive=1m  # library default: ~1.5 stalls of 60 s per 100 streams
//
// TestStreamsDoNotStall is the short version that runs in CI.

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
	"go.uber.org/atomic"

	"github.com/memtorrent/memtorrent/host"
	"github.com/memtorrent/memtorrent/internal/baseline"
	"github.com/memtorrent/memtorrent/internal/testutil"
)

var (
	stallStreams   = flag.Int("stall.streams", 0, "TestStallRepro: number of streams (0 skips the test)")
	stallSize      = flag.Int64("stall.size", 64, "TestStallRepro: torrent size in MiB (1 MiB pieces)")
	stallKeepAlive = flag.Duration("stall.keepalive", 0, "KeepAliveTimeout of both clients in the stream tests (0 keeps host.KeepAliveTimeout; 1m is the library default)")
	stallThreshold = flag.Duration("stall.threshold", 2*time.Second, "TestStallRepro: a Read waiting longer is counted and dumped")
	stallDumps     = flag.String("stall.dumps", "", "directory for stall dumps (default: memtorrent-stalls under os.TempDir)")
	stallTimeLimit = flag.Duration("stall.timelimit", 20*time.Minute, "TestStallRepro: start no stream after this")
)

// streamRun describes a series of streams.
type streamRun struct {
	streams   int
	size      int64         // torrent length; pieces are 1 MiB
	keepAlive time.Duration // 0: host.KeepAliveTimeout
	threshold time.Duration // reads waiting longer are counted and dumped
	readLimit time.Duration // a read waiting longer fails the test; 0: no limit
	timeLimit time.Duration // no stream starts after this
	dumps     string        // directory for dumps
	maxDumps  int32
}

// streamTotals sums a series of streams. Streams run one after another, so
// only the dump counter is touched by two goroutines.
type streamTotals struct {
	streams   int
	reads     int
	blocked   []time.Duration // waits longer than the threshold
	maxWait   time.Duration
	bytesRead int64 // what the readers returned
	bytesDown int64 // leecher Stats().BytesReadData: piece data received
	useful    int64 // leecher Stats().BytesReadUsefulData
	dumps     atomic.Int32
}

func (s *streamTotals) String() string {
	return fmt.Sprintf("streams=%d reads=%d blocked=%d (%.2f per 100 streams) %v longest wait=%v downloaded=%d read=%d (%.3f) useful=%d",
		s.streams, s.reads, len(s.blocked), 100*float64(len(s.blocked))/float64(max(1, s.streams)), s.blocked,
		s.maxWait.Round(time.Millisecond), s.bytesDown, s.bytesRead, float64(s.bytesDown)/float64(max(1, s.bytesRead)), s.useful)
}

func TestStallRepro(t *testing.T) {
	if *stallStreams == 0 {
		t.Skip("set -stall.streams to run the stall reproducer")
	}
	tot := runStreams(t, streamRun{
		streams:   *stallStreams,
		size:      *stallSize << 20,
		keepAlive: *stallKeepAlive,
		threshold: *stallThreshold,
		timeLimit: *stallTimeLimit,
		dumps:     dumpDir(),
		maxDumps:  10,
	})
	t.Logf("keepalive=%v threshold=%v %v", orDefault(*stallKeepAlive, host.KeepAliveTimeout), *stallThreshold, tot)
}

// TestStreamsDoNotStall fails if a read of a loopback stream under the
// recommended settings waits 10 s, which the lost writer wake-up of issue 8
// would make it do under the library's default KeepAliveTimeout (60 s).
func TestStreamsDoNotStall(t *testing.T) {
	n := 20
	if testing.Short() {
		n = 5
	}
	tot := runStreams(t, streamRun{
		streams:   n,
		size:      16 << 20,
		keepAlive: *stallKeepAlive, // -stall.keepalive=1m shows what this test guards against
		threshold: 2 * time.Second,
		readLimit: 10 * time.Second,
		timeLimit: 5 * time.Minute,
		dumps:     dumpDir(), // kept after the test, for a failure in CI
		maxDumps:  3,
	})
	t.Log(tot)
	if tot.bytesDown > int64(tot.streams)*(16<<20) {
		t.Errorf("downloaded %d bytes in %d streams of 16 MiB; want at most one copy of the torrent per stream", tot.bytesDown, tot.streams)
	}
}

// dumpDir returns -stall.dumps, or memtorrent-stalls under os.TempDir.
func dumpDir() string {
	if *stallDumps != "" {
		return *stallDumps
	}
	return filepath.Join(os.TempDir(), "memtorrent-stalls")
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// runStreams runs r.streams streams, each as a subtest on fresh clients,
// and returns the totals.
func runStreams(t *testing.T, r streamRun) *streamTotals {
	t.Helper()
	if err := os.MkdirAll(r.dumps, 0o755); err != nil {
		t.Fatal(err)
	}
	spec := testutil.Spec{Name: "stream.bin", Length: r.size, PieceLength: 1 << 20, Seed: 8}
	dir := t.TempDir()
	mi := testutil.MakeTorrent(t, dir, spec)
	want := testutil.Content(spec)
	tot := &streamTotals{}
	start := time.Now()
	for i := 0; i < r.streams && time.Since(start) < r.timeLimit; i++ {
		t.Run(fmt.Sprintf("stream%03d", i), func(t *testing.T) {
			stream(t, r, i, dir, mi, want, tot)
		})
		tot.streams++
	}
	return tot
}

// stream reads one torrent once over (in bytes returned) through a Reader
// with a 4 MiB readahead, 256 KiB reads and a random seek after about one
// read in 32, checking every byte, on a fresh seeder and leecher.
func stream(t *testing.T, r streamRun, idx int, dir string, mi *metainfo.MetaInfo, want []byte, tot *streamTotals) {
	opts := func(cfg *torrent.ClientConfig) {
		host.Apply(cfg)
		if r.keepAlive != 0 {
			cfg.KeepAliveTimeout = r.keepAlive
		}
	}
	seeder := testutil.SeedDir(t, dir, mi, nil, opts)
	st := baseline.New()
	t.Cleanup(func() { st.Close() })
	leecher := testutil.NewLeecher(t, st, opts)
	lt := testutil.AddTorrent(t, leecher, mi, seeder)

	rd := lt.NewReader()
	defer rd.Close()
	const readahead = 4 << 20
	rd.SetReadahead(readahead)
	streamCtx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	size := lt.Length()
	buf := make([]byte, 256<<10)
	rng := rand.New(rand.NewPCG(uint64(idx), 8))
	var pos, consumed int64
	for read := 1; consumed < size; read++ {
		ctx, cancelRead := streamCtx, context.CancelFunc(func() {})
		if r.readLimit > 0 {
			ctx, cancelRead = context.WithTimeout(streamCtx, r.readLimit)
		}
		rd.SetContext(ctx)
		var dumpFile string // written by the watchdog before it closes dumped
		dumped := make(chan struct{})
		began, at := time.Now(), pos
		wd := time.AfterFunc(r.threshold, func() {
			defer close(dumped)
			dumpFile = dumpStall(r, tot, idx, read, at, leecher, seeder.Client, lt)
		})
		n, err := rd.Read(buf)
		wait := time.Since(began)
		if !wd.Stop() {
			<-dumped
		}
		cancelRead()
		if dumpFile != "" {
			appendFile(dumpFile, fmt.Sprintf("\n=== read returned after %v: n=%d err=%v\n", wait, n, err))
			t.Logf("read %d at %d waited %v; dump: %s", read, pos, wait.Round(time.Millisecond), dumpFile)
		}
		tot.reads++
		tot.maxWait = max(tot.maxWait, wait)
		if wait > r.threshold {
			tot.blocked = append(tot.blocked, wait.Round(time.Millisecond))
		}
		if n > 0 && !bytes.Equal(buf[:n], want[pos:pos+int64(n)]) {
			t.Fatalf("read %d: %d bytes at %d differ from the torrent's content", read, n, pos)
		}
		consumed += int64(n)
		pos += int64(n)
		switch {
		case err == io.EOF:
			pos = rng.Int64N(size)
		case err != nil:
			t.Fatalf("read %d at %d after %v: %v (dump: %q)", read, pos, wait.Round(time.Millisecond), err, dumpFile)
		case rng.IntN(32) == 0:
			pos = rng.Int64N(size)
		default:
			continue
		}
		if _, err := rd.Seek(pos, io.SeekStart); err != nil {
			t.Fatalf("seeking to %d: %v", pos, err)
		}
	}
	s := lt.Stats()
	tot.bytesRead += consumed
	tot.bytesDown += s.BytesReadData.Int64()
	tot.useful += s.BytesReadUsefulData.Int64()
}

// dumpStall writes the state of a stalled stream to a new file in r.dumps
// and returns its name, or "" once r.maxDumps files have been written. It
// uses only the client's public API, which takes the client lock.
func dumpStall(r streamRun, tot *streamTotals, idx, read int, pos int64, leecher, seeder *torrent.Client, lt *torrent.Torrent) string {
	if tot.dumps.Add(1) > r.maxDumps {
		return ""
	}
	name := filepath.Join(r.dumps, fmt.Sprintf("stall-%s-s%03d-r%04d.txt", time.Now().Format("20060102-150405"), idx, read))
	var b bytes.Buffer
	fmt.Fprintf(&b, "=== stream %d read %d blocked > %v at %d (piece %d), %s\n", idx, read, r.threshold, pos, pos>>20, time.Now().Format(time.RFC3339Nano))
	fmt.Fprintf(&b, "\n=== leecher piece states: %v\n", lt.PieceStateRuns())
	s := lt.Stats()
	fmt.Fprintf(&b, "=== leecher stats: BytesReadData=%d BytesReadUsefulData=%d ActivePeers=%d\n",
		s.BytesReadData.Int64(), s.BytesReadUsefulData.Int64(), s.ActivePeers)
	fmt.Fprintf(&b, "\n=== leecher status\n")
	leecher.WriteStatus(&b)
	fmt.Fprintf(&b, "\n=== seeder status\n")
	seeder.WriteStatus(&b)
	fmt.Fprintf(&b, "\n=== goroutines\n")
	pprof.Lookup("goroutine").WriteTo(&b, 2)
	if err := os.WriteFile(name, b.Bytes(), 0o644); err != nil {
		return ""
	}
	return name
}

func appendFile(name, s string) {
	f, err := os.OpenFile(name, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return
	}
	defer f.Close()
	f.WriteString(s)
}
