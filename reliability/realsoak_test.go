package reliability

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/memtorrent/memtorrent/internal/testutil"
	"github.com/memtorrent/memtorrent/stream"
)

var (
	realSoakFor  = flag.Duration("soak.real", 0, "TestRealSoak: run this long instead of its short CI run; needs -timeout above it")
	realSoakSeed = flag.Uint64("soak.real.seed", 0, "TestRealSoak: the seed of its steps (0: drawn from the clock, and printed)")
)

// realSoakSteps is how many steps TestRealSoak takes without -soak.real.
const realSoakSteps = 30

// maxReadWait is the longest a torrent read of TestRealSoak may wait for
// data.
const maxReadWait = 15 * time.Second

// TestRealSoak streams one file of 65 pieces from qBittorrent, aria2 and
// Transmission at once (three processes) through a cache of a quarter of it,
// in steps drawn from a printed seed (-soak.real.seed replays it): a Range
// read at a random offset, a full pass, or the torrent dropped and added
// again. Every byte is checked and no torrent read may wait longer than
// maxReadWait. On failure it prints the Handler's status, with the
// watchdog's reasons and the peers. It takes realSoakSteps steps, or as many
// as fit in -soak.real.
func TestRealSoak(t *testing.T) {
	for _, p := range []seederProgram{qbittorrentProgram, aria2Program, transmissionProgram} {
		p.require(t)
	}
	seed := *realSoakSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (replay: -soak.real.seed=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 17))

	dataDir := t.TempDir()
	spec := testutil.Spec{Name: "soak.bin", PieceLength: pieceLength, Length: 16*mib + 999, Seed: 41}
	mi := testutil.MakeTorrent(t, dataDir, spec)
	content := testutil.Content(spec)
	file := writeTorrent(t, mi)
	var addrs []net.Addr
	for _, p := range []seederProgram{qbittorrentProgram, aria2Program, transmissionProgram} {
		addrs = append(addrs, p.start(t, dataDir, file))
	}
	e := newEnv(t, spec.Length/4, stream.Options{}, listenOn("127.0.0.51"))
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := json.MarshalIndent(e.h.Status(), "", " ")
			t.Logf("status at the failure:\n%s", b)
		}
	})
	tor := e.add(mi, addrs...)

	deadline := time.Now().Add(*realSoakFor)
	var steps, passes, ranges, readds int
	var longestFirst time.Duration
	for step := 0; ; step++ {
		if *realSoakFor > 0 && time.Now().After(deadline) || *realSoakFor == 0 && step == realSoakSteps {
			break
		}
		steps++
		switch k := rng.IntN(10); {
		case k < 6:
			off := rng.Int64N(spec.Length)
			n := min(1+rng.Int64N(2*mib), spec.Length-off)
			first, _ := timedRange(t, e, e.url(tor, 0), off, content[off:off+n])
			longestFirst = max(longestFirst, first)
			ranges++
			t.Logf("step %d: Range %d+%d: first byte %v", step, off, n, first.Round(time.Millisecond))
		case k < 8:
			start := time.Now()
			ctx, cancel := context.WithTimeout(t.Context(), transferTimeout)
			body, err := e.fetch(ctx, e.url(tor, 0), "", http.StatusOK)
			cancel()
			if err != nil {
				t.Fatalf("step %d: full pass: %v", step, err)
			}
			equal(t, fmt.Sprintf("step %d: full pass", step), body, content)
			passes++
			t.Logf("step %d: full pass in %v", step, time.Since(start).Round(time.Millisecond))
		default:
			e.hc.Drop(tor)
			tor = e.add(mi, addrs...)
			readds++
			t.Logf("step %d: dropped and added again", step)
		}
		if w := time.Duration(e.h.Status().LongestReadWait * float64(time.Second)); w > maxReadWait {
			t.Fatalf("step %d: a torrent read waited %v; want at most %v", step, w.Round(time.Millisecond), maxReadWait)
		}
	}
	st := e.h.Status()
	t.Logf("seed %d: %d steps (%d ranges, %d full passes, %d re-adds); longest first byte %v, longest read wait %.1fs, stalls %d",
		seed, steps, ranges, passes, readds, longestFirst.Round(time.Millisecond), st.LongestReadWait, st.Stalls)
}
