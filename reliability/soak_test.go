package reliability

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/atomic"

	"github.com/memtorrent/memtorrent/internal/testutil"
	"github.com/memtorrent/memtorrent/stream"
)

var (
	soakFor = flag.Duration("soak", 0, "run TestSoak for this long (0 skips it); needs -timeout above it")
	soakOut = flag.String("soak.out", "", "TestSoak also writes its summary to this file")
)

const (
	soakCapacity = 8 * mib
	soakPlayers  = 2
	soakSeed     = 20261129
)

// TestSoak streams a file over HTTP for -soak with soakPlayers players
// doing playback-like reads (mostly continuing where they were, sometimes
// seeking to a random place, forward or back), checks every byte, and
// samples every second the process's RSS (VmRSS, VmHWM), the Go heap
// (runtime/metrics), goroutines and the storage's Stats, asserting
// Resident <= Capacity at every sample (and every millisecond through a
// startBoundSampler). The summary goes to the test log and to -soak.out.
//
//	go test ./reliability -run TestSoak -soak=20m -timeout 30m -soak.out docs/soak.md
func TestSoak(t *testing.T) {
	if *soakFor == 0 {
		t.Skip("reliability: TestSoak runs only with -soak=DURATION")
	}
	if dl, ok := t.Deadline(); ok && time.Until(dl) < *soakFor+2*time.Minute {
		t.Fatalf("-soak=%v does not fit in the test deadline (%v left): pass -timeout %v or more",
			*soakFor, time.Until(dl).Round(time.Second), *soakFor+5*time.Minute)
	}
	spec := testutil.Spec{Name: "soak.mkv", PieceLength: pieceLength, Length: 48*mib + 1234, Seed: 108}
	src := spec.Source() // the reference bytes, generated on demand: the test holds no copy of the file
	e := newEnv(t, soakCapacity, stream.Options{})
	s := newSeeder(t, spec, nil)
	tor := e.add(s.mi, s.addr())
	url := e.url(tor, 0)

	// Warm up, so that the goroutine count at start includes the peer
	// connection's and the count at the end can be compared with it.
	if _, err := e.fetch(t.Context(), url, "bytes=0-65535", http.StatusPartialContent); err != nil {
		t.Fatal(err)
	}
	e.srv.Client().CloseIdleConnections()
	testutil.WaitFor(t, testutil.SetupTimeout, "one peer connection", func() bool { return len(tor.PeerConns()) == 1 })

	sampler := startBoundSampler(e.mem)
	var (
		requests, seeks, bytesRead, slow atomic.Int64
		maxLatency                       atomic.Int64 // nanoseconds
	)
	ctx, cancel := context.WithTimeout(t.Context(), *soakFor)
	defer cancel()
	start := time.Now()
	startGoroutines := runtime.NumGoroutine()
	samples := make(chan soakSample, 1)
	go func() { samples <- sampleEverySecond(ctx, e, t) }()

	var wg sync.WaitGroup
	var failed atomic.Bool
	for p := range soakPlayers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(soakSeed, uint64(p)))
			size := src.Size()
			off := int64(0)
			player := url + "?session=player" + strconv.Itoa(p)
			const maxRead = 64*kib + 2*mib
			got, want := make([]byte, maxRead), make([]byte, maxRead)
			for ctx.Err() == nil {
				if off >= size || rng.IntN(10) < 3 {
					off = rng.Int64N(size)
					seeks.Add(1)
				}
				n := min(int64(64*kib+rng.IntN(2*mib)), size-off)
				rctx, rcancel := context.WithTimeout(t.Context(), transferTimeout)
				begin := time.Now()
				err := e.fetchInto(rctx, player, fmt.Sprintf("bytes=%d-%d", off, off+n-1), got[:n])
				rcancel()
				d := time.Since(begin)
				if int64(d) > maxLatency.Load() {
					maxLatency.Store(int64(d))
				}
				if d > 500*time.Millisecond {
					slow.Add(1)
				}
				if err != nil {
					if ctx.Err() != nil {
						return // the soak's time is up; t.Context() is still live, so this was not a stall
					}
					failed.Store(true)
					t.Errorf("player %d at %d: %v", p, off, err)
					cancel()
					return
				}
				src.ReadAt(want[:n], off)
				if !testutil.Equal(t, got[:n], want[:n]) {
					failed.Store(true)
					t.Errorf("player %d: bytes %d-%d differ", p, off, off+n-1)
					cancel()
					return
				}
				requests.Add(1)
				bytesRead.Add(n)
				off += n
			}
		})
	}
	wg.Wait()
	cancel()
	sm := <-samples
	bs := sampler.Stop()
	bs.Check(t)
	elapsed := time.Since(start)
	// The players' keep-alive connections are the only goroutines the
	// soak adds on purpose; without them the count must come back.
	e.srv.Client().CloseIdleConnections()
	endGoroutines := runtime.NumGoroutine()
	for deadline := time.Now().Add(10 * time.Second); endGoroutines > startGoroutines && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond) // polling a count, as testutil.WaitFor does
		endGoroutines = runtime.NumGoroutine()
	}
	leaked := endGoroutines > startGoroutines
	if leaked {
		buf := make([]byte, 1<<20)
		t.Errorf("goroutines: %d at start, %d at end; stacks:\n%s", startGoroutines, endGoroutines, buf[:runtime.Stack(buf, true)])
	}
	st := e.mem.Stats()

	summary := fmt.Sprintf(`# memtorrent soak

- date: %s
- machine: %d CPUs (%s), Go %s %s/%s
- command: go test ./reliability -run TestSoak -soak=%v
- result: %s
- duration: %v (asked %v)
- players: %d, requests: %d, seeks: %d, bytes read and checked: %d (%.1f MB/s)
- file: %d bytes in %d-byte pieces; storage capacity %d bytes (%.1f MiB)
- bound samples (every ms): %d, Resident > Capacity in %d; max Resident %d
- 1-s samples: %d, Resident > Capacity in %d
- peak RSS (VmHWM): %.1f MiB; last VmRSS %.1f MiB; peak VmRSS sampled %.1f MiB; peak RssAnon %.1f MiB (capacity %.1f MiB; the process also runs the seeder, whose %.1f MiB file is mmapped: file-backed RSS)
- Go heap objects: peak %.1f MiB, last %.1f MiB; Go total memory peak %.1f MiB
- goroutines: %d at start, %d at end (peak %d)
- slowest request: %v; requests over 500 ms: %d
- storage: evictions %d (%d bytes; before their hash: %d partial, %d whole), write waits %d, notified %d
`,
		time.Now().UTC().Format(time.RFC3339), runtime.NumCPU(), cpuModel(), runtime.Version(), runtime.GOOS, runtime.GOARCH,
		*soakFor, map[bool]string{false: "PASS", true: "FAIL"}[failed.Load() || leaked || bs.Violations > 0 || sm.violations > 0],
		elapsed.Round(time.Second), *soakFor,
		soakPlayers, requests.Load(), seeks.Load(), bytesRead.Load(), float64(bytesRead.Load())/elapsed.Seconds()/1e6,
		src.Size(), spec.PieceLength, soakCapacity, float64(soakCapacity)/mib,
		bs.Samples, bs.Violations, bs.MaxResident,
		sm.n, sm.violations,
		float64(sm.hwm)/mib, float64(sm.lastRSS)/mib, float64(sm.peakRSS)/mib, float64(sm.peakAnon)/mib, float64(soakCapacity)/mib, float64(src.Size())/mib,
		float64(sm.peakHeap)/mib, float64(sm.lastHeap)/mib, float64(sm.peakTotal)/mib,
		startGoroutines, endGoroutines, sm.peakGoroutines,
		time.Duration(maxLatency.Load()).Round(time.Millisecond), slow.Load(),
		st.Evictions, st.EvictedBytes, st.EvictedPartial, st.EvictedUnhashed, st.WriteWaits, st.Notified)
	t.Log("\n" + summary)
	if *soakOut != "" {
		if err := os.WriteFile(*soakOut, []byte(summary), 0o644); err != nil {
			t.Errorf("writing -soak.out: %v", err)
		}
	}
	if sm.violations > 0 {
		t.Errorf("%d one-second samples had Resident > Capacity", sm.violations)
	}
}

// soakSample is what sampleEverySecond gathered.
type soakSample struct {
	n, violations                   int
	hwm, lastRSS, peakRSS, peakAnon int64
	peakHeap, lastHeap, peakTotal   uint64
	peakGoroutines                  int
}

// sampleEverySecond samples until ctx ends and returns the figures.
func sampleEverySecond(ctx context.Context, e *env, t *testing.T) soakSample {
	var sm soakSample
	ms := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/total:bytes"},
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastLog := time.Now()
	for {
		st := e.mem.Stats()
		sm.n++
		if st.Resident > st.Capacity {
			sm.violations++
		}
		rss, hwm, anon := procStatus()
		sm.lastRSS, sm.hwm = rss, max(sm.hwm, hwm)
		sm.peakAnon = max(sm.peakAnon, anon)
		sm.peakRSS = max(sm.peakRSS, rss)
		metrics.Read(ms)
		sm.lastHeap = ms[0].Value.Uint64()
		sm.peakHeap = max(sm.peakHeap, sm.lastHeap)
		sm.peakTotal = max(sm.peakTotal, ms[1].Value.Uint64())
		g := runtime.NumGoroutine()
		sm.peakGoroutines = max(sm.peakGoroutines, g)
		if time.Since(lastLog) >= time.Minute {
			lastLog = time.Now()
			t.Logf("soak: RSS %.1f MiB (HWM %.1f, anon %.1f), heap %.1f MiB, goroutines %d, Resident %d of %d",
				float64(rss)/mib, float64(hwm)/mib, float64(anon)/mib, float64(sm.lastHeap)/mib, g, st.Resident, st.Capacity)
		}
		select {
		case <-ctx.Done():
			return sm
		case <-tick.C:
		}
	}
}

// procStatus returns VmRSS, VmHWM and RssAnon of this process in bytes,
// or zeros where /proc/self/status cannot be read. RssAnon leaves out
// file-backed pages: the test binary and the seeder's mmapped file.
func procStatus() (rss, hwm, anon int64) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) == 0 {
			continue
		}
		n, err := strconv.ParseInt(fields[0], 10, 64) // kB
		if err != nil {
			continue
		}
		switch k {
		case "VmRSS":
			rss = n << 10
		case "VmHWM":
			hwm = n << 10
		case "RssAnon":
			anon = n << 10
		}
	}
	return rss, hwm, anon
}

// cpuModel returns the first "model name" of /proc/cpuinfo, or "unknown".
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
