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
// Measured (2 vCPU, -race): 64 MiB (whole file fits): first byte 13.3 s
// (Transmission unchokes at its 10 s rechoke), then 32 MiB in 4 s. 8 MiB:
// the first 8 MiB in 2.5 s, then about 0.9 MB/s; 4 MiB: about 0.7 MB/s.
// qBittorrent and aria2 keep 4 MB/s and more through the same 4 MiB cache.
// So the time goes to the capped request window: once the cache is full,
// the client requests only what fits in the capacity left, a few pieces,
// and Transmission answers a round of requests about every 0.5-1 s (its
// bandwidth pulse is 500 ms; seeks' first bytes from it take 1-2.5 s with
// a connection already unchoked). Throughput = window / Transmission's
// round time. Not fixed here: the window belongs to storage/memory's
// capacity and the reader windows.
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
