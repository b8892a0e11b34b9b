package reliability

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/memtorrent/memtorrent/internal/testutil"
	"github.com/memtorrent/memtorrent/stream"
)

var (
	throughput      = flag.Bool("throughput", false, "TestTransmissionThroughput: measure (skipped otherwise)")
	throughputCaps  = flag.String("throughput.capacities", "64,8,4", "TestTransmissionThroughput: cache capacities in MiB")
	throughputTrace = flag.Bool("throughput.trace", false, "TestTransmissionThroughput: log requests outstanding, chunks and chokes over time")
)

// TestTransmissionThroughput streams a 32 MiB file from Transmission 3.00
// through caches of 64, 8 and 4 MiB and logs when each MiB mark arrived: a
// measurement of where the time goes (issue 11, point 3), not a check.
//
//	go test ./reliability -run TestTransmissionThroughput -throughput -v
//
// -throughput.trace adds the leecher's request batches (requests
// outstanding before + sent), chunks, chokes, connections and piece states
// over time; -throughput.capacities=4 measures one cache.
//
// Where the time goes (2 vCPU, no -race, 2026-12-01). Transmission answers
// the requests it holds once per bandwidth pulse, every 500 ms: a batch sent
// at t arrives at about t+0.5 s. v1.59.1 sends a connection's next batch
// only when every request of the last is answered, and at most twice as
// many requests as its last request update added (nominalMaxRequests). So
// throughput is batch size / 0.5 s, and the batch doubles per pulse from
// one request after each unchoke: with 64 MiB (the whole file fits), the
// first byte at 13.2 s (the unchoke at Transmission's 10 s rechoke, then
// 1, 2, 4, ... 500 requests), then 32 MiB in 4 s.
//
// Through a full cache, each eviction reported to the client started a
// request update that added nothing, and such an update sets the budget to
// one request: 8 to 24 MiB took 14.0 s with 8 MiB of cache, 14.6 s with 4
// MiB. Since storage/memory answers unknown completion for evicted pieces
// outside the readaheads, which starts no update: 3.0 s and 10.0 s (runs
// back to back). What remains is the host's: a batch that takes the whole
// readahead leaves, when it has arrived, every piece of it waiting for its
// hash, so that update adds nothing either (capping the peer's queue at
// half the readahead keeps 4 MiB steady at 64 requests a pulse, 2 MB/s, no
// faster on average); and the seed guard's reconnection once per pass, at
// 7/8 of the pieces: about 1 s to redial, 0-10 s to Transmission's next
// rechoke, 3 s for the batch to grow again (24 to 32 MiB took 16-19 s).
func TestTransmissionThroughput(t *testing.T) {
	if !*throughput {
		t.Skip("set -throughput to measure")
	}
	transmissionProgram.require(t)
	dataDir := t.TempDir()
	spec := testutil.Spec{Name: "movie.bin", PieceLength: pieceLength, Length: 32 * mib, Seed: 12}
	mi := testutil.MakeTorrent(t, dataDir, spec)
	addr := transmissionProgram.start(t, dataDir, writeTorrent(t, mi))
	var capacities []int64
	for _, f := range strings.Split(*throughputCaps, ",") {
		c, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
		if err != nil || c <= 0 {
			t.Fatalf("-throughput.capacities: %q is not a number of MiB", f)
		}
		capacities = append(capacities, c*mib)
	}
	for i, capacity := range capacities {
		// Each leecher has an address of its own: Transmission marks an
		// address that was a seed (the 64 MiB leecher ends as one) and
		// refuses it while it seeds itself.
		tr := newReqTrace()
		e := newEnv(t, capacity, stream.Options{}, tr.config, listenOn(fmt.Sprintf("127.0.0.%d", 20+i)))
		tor := e.add(mi, addr)
		stop, watched := make(chan struct{}), make(chan struct{})
		if *throughputTrace {
			go tr.watch(tor, func() int64 { return e.mem.Stats().Reported }, stop, watched)
		} else {
			close(watched)
		}
		start := time.Now()
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
		defer cancel()
		resp, err := e.get(ctx, e.url(tor, 0), "")
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("capacity %d MiB: GET: %v (trace:\n%s)", capacity>>20, err, tr.report())
		}
		buf := make([]byte, 64<<10)
		var n int64
		var first time.Duration
		marks := map[int64]time.Duration{}
		for {
			k, err := resp.Body.Read(buf)
			if k > 0 && first == 0 {
				first = time.Since(start)
			}
			n += int64(k)
			tr.read(k)
			for _, m := range []int64{1, 4, 8, 16, 24, 32} {
				if n >= m*mib-100000 && marks[m] == 0 {
					marks[m] = time.Since(start)
				}
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("capacity %d MiB: after %d bytes: %v (trace:\n%s)", capacity>>20, n, err, tr.report())
			}
		}
		resp.Body.Close()
		st := tor.Stats()
		t.Logf("capacity %d MiB: first byte %v, MiB marks %v, total %v; read %d useful %d, peers %d",
			capacity>>20, first.Round(time.Millisecond), marks, time.Since(start).Round(time.Millisecond), st.BytesReadData.Int64(), st.BytesReadUsefulData.Int64(), len(tor.PeerConns()))
		close(stop)
		<-watched
		if *throughputTrace {
			t.Logf("capacity %d MiB trace:\n%s", capacity>>20, tr.report())
		}
		e.h.Close()
		e.cl.Close()
	}
}
