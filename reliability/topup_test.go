package reliability

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/anacrolix/torrent"

	"github.com/memtorrent/memtorrent/host"
	"github.com/memtorrent/memtorrent/internal/testutil"
	"github.com/memtorrent/memtorrent/stream"
)

// TestTopUp streams a 4 MiB file (a player reading it, -verify playhead:
// top-ups go while a reader reads) from one anacrolix seeder 100 ms away
// at 2 MB/s and counts the times the leecher asked again only once every
// request it had sent was answered (a new round: a round trip of the line
// idle), after its queue had grown to 8 requests. With the tap's top-ups
// (host/topup.go) the queue is refilled before it runs dry: at most
// twice (0 or 1 in runs: the client's writer may lose the race for the
// client's lock to the reader of the last pieces, and the last pieces
// leave nothing to ask). Without (host.Options.NoTopUp), v1.59.1's rounds
// of 8, 16, 32, ... requests show: at least 4 (5 in runs), so the test
// sees the rounds it is about.
func TestTopUp(t *testing.T) {
	spec := testutil.Spec{Name: "movie.bin", PieceLength: pieceLength, Length: 4 * mib, Seed: 31}
	s := newSeeder(t, spec, nil)
	addr := startLine(t, "seeder", line{latency: 100 * time.Millisecond, rate: 2_000_000}, s.addr(), time.Now())
	for _, tc := range []struct {
		name    string
		noTopUp bool
	}{{"top-up", false}, {"without", true}} {
		t.Run(tc.name, func(t *testing.T) {
			var r rounds
			e := newEnvWith(t, 64*mib, host.Options{LeafHashes: true, NoTopUp: tc.noTopUp}, stream.Options{Verify: stream.VerifyPlayhead}, r.config)
			tor := e.add(s.mi, addr)
			ctx, cancel := context.WithTimeout(context.Background(), transferTimeout)
			defer cancel()
			got, err := e.fetch(ctx, e.url(tor, 0), "", http.StatusOK)
			if err != nil {
				t.Fatal(err)
			}
			equal(t, "the file", got, testutil.Content(spec))
			n := r.count()
			t.Logf("%d rounds after the queue reached %d requests; %d top-ups", n, roundsFrom, e.hc.LeafHashStats().TopUps)
			if !tc.noTopUp && n > 2 {
				t.Errorf("with top-ups the requests ran dry %d times; want at most 2", n)
			}
			if tc.noTopUp && n < 4 {
				t.Errorf("without top-ups the requests ran dry %d times; want at least 4 (v1.59.1's rounds)", n)
			}
		})
	}
}

// roundsFrom is the queue rounds counts from: below, rounds are short
// enough that the last pieces of one come in a burst the client reads
// before it plans.
const roundsFrom = 8

// rounds counts the times a client sent a request while none was
// outstanding, once it had had roundsFrom outstanding.
type rounds struct {
	mu          sync.Mutex
	outstanding int
	grown       bool
	n           int
}

func (r *rounds) config(cfg *torrent.ClientConfig) {
	cfg.Callbacks.SentRequest = append(cfg.Callbacks.SentRequest, func(torrent.PeerRequestEvent) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.outstanding == 0 && r.grown {
			r.n++
		}
		r.outstanding++
		r.grown = r.grown || r.outstanding >= roundsFrom
	})
	cfg.Callbacks.DeletedRequest = append(cfg.Callbacks.DeletedRequest, func(torrent.PeerRequestEvent) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.outstanding--
	})
}

func (r *rounds) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}
