package stream

import (
	"fmt"
	"net/http"
	"testing"

	"go.uber.org/goleak"

	"github.com/memtorrent/memtorrent/internal/testutil"
)

// TestVerifyPlayheadStreams streams a file through a cache smaller than it
// with VerifyPlayhead, with a seek back and forth: every byte is exact, and
// the status reports the mode.
func TestVerifyPlayheadStreams(t *testing.T) {
	e := newEnv(t, 2*mib, Options{Verify: VerifyPlayhead})
	spec := testutil.Spec{Name: "movie.mkv", Length: 4*mib + 777, PieceLength: pieceLength, Seed: 31}
	want := testutil.Content(spec)
	tor := e.seed(spec)
	_, body := e.get(streamPath(tor, 0), http.StatusOK)
	testutil.Equal(t, body, want)
	_, body = e.get(streamPath(tor, 0), http.StatusPartialContent, "Range", "bytes=1000-")
	testutil.Equal(t, body, want[1000:])
	_, body = e.get(streamPath(tor, 0), http.StatusPartialContent, "Range", "bytes=3145000-3146000")
	testutil.Equal(t, body, want[3145000:3146001])

	st := e.h.Status()
	if st.Verify != VerifyPlayhead || st.UnverifiedFailed != 0 {
		t.Errorf("verify %q, failed %d; want %q, 0", st.Verify, st.UnverifiedFailed, VerifyPlayhead)
	}
	t.Logf("%d bytes served before their hash", st.UnverifiedBytes)
}

// TestVerifyPlayheadCancel checks that requests waiting under
// VerifyPlayhead for data that never comes return when their players go
// away and when the torrent is dropped, leaving no goroutine behind.
func TestVerifyPlayheadCancel(t *testing.T) {
	const n = 20
	e := newEnv(t, 4*mib, Options{Verify: VerifyPlayhead, MaxSessions: n})
	spec := testutil.Spec{Name: "never.mkv", Length: 16 * mib, PieceLength: pieceLength, Seed: 23}
	tor := e.unseeded(spec)
	before := goleak.IgnoreCurrent()

	startAll := func() []*pending {
		ps := make([]*pending, n)
		for i := range ps {
			ps[i] = e.startRange(fmt.Sprintf("%s?session=%d", streamPath(tor, 0), i), int64(i)*spec.Length/n)
		}
		testutil.WaitFor(t, transferTimeout, "every request to wait", func() bool {
			e.h.mu.Lock()
			defer e.h.mu.Unlock()
			return len(e.h.inflight) == n
		})
		return ps
	}
	served := func() {
		t.Helper()
		testutil.WaitFor(t, transferTimeout, "every request to return", func() bool {
			e.h.mu.Lock()
			defer e.h.mu.Unlock()
			return len(e.h.inflight) == 0
		})
	}

	for _, p := range startAll() {
		p.cancel()
		p.wait(t)
	}
	served()
	ps := startAll()
	e.hc.Drop(tor)
	served()
	for _, p := range ps {
		p.wait(t)
	}
	if st := e.h.Status(); st.UnverifiedBytes != 0 {
		t.Errorf("unverified bytes %d of a torrent with no peer; want 0", st.UnverifiedBytes)
	}
	testutil.VerifyNoLeaks(t, before)
}
