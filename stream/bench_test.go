package stream

import (
	"net/http"
	"testing"

	"github.com/memtorrent/memtorrent/internal/testutil"
)

// BenchmarkDownloadStream streams a 32 MiB file over loopback through a
// Handler into 4 MiB of storage: every byte is downloaded, verified and
// read while the storage evicts behind the playhead. The torrent is added
// again for each iteration.
func BenchmarkDownloadStream(b *testing.B) {
	e := newEnv(b, 4*mib, Options{})
	spec := testutil.Spec{Name: "movie.mkv", Length: 32 * mib, PieceLength: pieceLength, Seed: 11}
	s := testutil.NewSeeder(b, spec)
	b.SetBytes(spec.Length)
	defer reportCPU(b)()
	for b.Loop() {
		tor := testutil.AddTorrent(b, e.cl, s.MetaInfo, s)
		if _, body := e.get(streamPath(tor, 0), http.StatusOK); int64(len(body)) != spec.Length {
			b.Fatalf("got %d bytes; want %d", len(body), spec.Length)
		}
		e.hc.Drop(tor)
	}
}

// BenchmarkCachedStream reads a 16 MiB file that is already complete in
// storage: the cost of the read path itself, without the network.
func BenchmarkCachedStream(b *testing.B) {
	e := newEnv(b, 64*mib, Options{})
	spec := testutil.Spec{Name: "movie.mkv", Length: 16 * mib, PieceLength: pieceLength, Seed: 12}
	tor := e.seed(spec)
	e.get(streamPath(tor, 0), http.StatusOK) // download it all
	b.SetBytes(spec.Length)
	defer reportCPU(b)()
	for b.Loop() {
		if _, body := e.get(streamPath(tor, 0), http.StatusOK); int64(len(body)) != spec.Length {
			b.Fatalf("got %d bytes; want %d", len(body), spec.Length)
		}
	}
}

// reportCPU returns a function that reports the process's CPU time per
// iteration since the call (seeder, leecher, Handler and HTTP client
// together): on a machine shared with other work, a steadier figure than
// the wall time.
func reportCPU(b *testing.B) func() {
	start := testutil.CPUTime(b)
	return func() {
		b.ReportMetric(float64(testutil.CPUTime(b)-start)/float64(b.N), "cpu-ns/op")
	}
}
