package reliability

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/memtorrent/memtorrent/host"
	"github.com/memtorrent/memtorrent/internal/testutil"
	"github.com/memtorrent/memtorrent/stream"
)

// TestEarlyFetch reads 256 KiB from 3.5 MiB into the first 4 MiB piece of
// a file, as a player does that seeks into the middle of a big piece, from
// one anacrolix seeder 50 ms away at 1 MB/s. v1.59.1 fetches a piece's
// chunks in order from its first, so the client alone downloads the 3.5
// MiB before the read's first byte; with the early fetch (host/early.go)
// the host asks the chunks at the read itself, and the read is served
// before the client has downloaded 3 MiB of the piece (the client's
// bytes, which the early chunks are not, are counted: the bound holds on
// a slow machine). Without (host.Options.NoEarlyFetch) the client has
// downloaded at least 3.5 MiB when the read is served, so the test sees the
// wait it is about. Both reads return the file's bytes.
func TestEarlyFetch(t *testing.T) {
	spec := testutil.Spec{Name: "film.mkv", PieceLength: 4 * mib, Length: 8 * mib, Seed: 41}
	s := newSeeder(t, spec, nil)
	addr := startLine(t, "seeder", line{latency: 50 * time.Millisecond, rate: 1_000_000}, s.addr(), time.Now())
	want := testutil.Content(spec)
	const off, n = 3*mib + 512*kib, 256 * kib
	for _, tc := range []struct {
		name    string
		noEarly bool
	}{{"early", false}, {"without", true}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnvWith(t, 64*mib, host.Options{LeafHashes: true, NoEarlyFetch: tc.noEarly}, stream.Options{Verify: stream.VerifyPlayhead})
			tor := e.add(s.mi, addr)
			ctx, cancel := context.WithTimeout(context.Background(), transferTimeout)
			defer cancel()
			got, err := e.fetch(ctx, e.url(tor, 0), fmt.Sprintf("bytes=%d-%d", off, off+n-1), http.StatusPartialContent)
			if err != nil {
				t.Fatal(err)
			}
			st0 := tor.Stats()
			client := st0.BytesReadUsefulData.Int64()
			equal(t, "the read", got, want[off:off+n])
			st := e.hc.LeafHashStats()
			t.Logf("the client had downloaded %.2f MiB; early: %d chunks asked, %d written, %d late, %d rejected",
				float64(client)/mib, st.EarlyAsked, st.EarlyWritten, st.EarlyLate, st.EarlyRejected)
			if !tc.noEarly && (client >= 3*mib || st.EarlyWritten == 0) {
				t.Errorf("with the early fetch: the read came after the client had %d bytes, %d chunks written early; want under 3 MiB and some", client, st.EarlyWritten)
			}
			if tc.noEarly && client < off {
				t.Errorf("without the early fetch: the read came after the client had only %d bytes; want at least %d (the piece's chunks before it)", client, off)
			}
		})
	}
}
