package reliability

import (
	"flag"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/memtorrent/memtorrent/internal/testutil"
	"github.com/memtorrent/memtorrent/stream"
)

var throughput = flag.Bool("throughput", false, "TestTransmissionThroughput: measure (skipped otherwise)")

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
	for _, capacity := range []int64{64 * mib, 8 * mib, 4 * mib} {
		e := newEnv(t, capacity, stream.Options{})
		tor := e.add(mi, addr)
		start := time.Now()
		resp, err := e.get(t.Context(), e.url(tor, 0), "")
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatal(err)
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
			for _, m := range []int64{1, 4, 8, 16, 24, 32} {
				if n >= m*mib-100000 && marks[m] == 0 {
					marks[m] = time.Since(start)
				}
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		resp.Body.Close()
		st := tor.Stats()
		t.Logf("capacity %d MiB: first byte %v, MiB marks %v, total %v; read %d useful %d, peers %d",
			capacity>>20, first.Round(time.Millisecond), marks, time.Since(start).Round(time.Millisecond), st.BytesReadData.Int64(), st.BytesReadUsefulData.Int64(), len(tor.PeerConns()))
		e.h.Close()
		e.cl.Close()
	}
}
