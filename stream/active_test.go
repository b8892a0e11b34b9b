package stream

import (
	"net/http"
	"testing"
	"time"

	"github.com/memtorrent/memtorrent/internal/testutil"
)

// TestSessionsCount checks Handler.Sessions: zero before any request, one
// per client after requests of two clients on one torrent, none on
// another torrent, and zero again once the sessions expired.
func TestSessionsCount(t *testing.T) {
	// Sessions expire only when the test says so (reapIdle): with a short
	// IdleTimeout a loaded machine expired the first before the second
	// request.
	e := newEnv(t, 2*mib, Options{IdleTimeout: time.Hour})
	a := e.seed(testutil.Spec{Name: "a.mkv", Length: mib, PieceLength: pieceLength, Seed: 11})
	b := e.seed(testutil.Spec{Name: "b.mkv", Length: mib, PieceLength: pieceLength, Seed: 12})
	if n := e.h.Sessions(a.InfoHash()); n != 0 {
		t.Errorf("before any request: %d sessions; want 0", n)
	}
	e.get(streamPath(a, 0)+"?session=x", http.StatusOK)
	e.get(streamPath(a, 0)+"?session=y", http.StatusOK)
	if n := e.h.Sessions(a.InfoHash()); n != 2 {
		t.Errorf("after two clients' requests: %d sessions; want 2", n)
	}
	if n := e.h.Sessions(b.InfoHash()); n != 0 {
		t.Errorf("on the other torrent: %d sessions; want 0", n)
	}
	testutil.WaitFor(t, time.Minute, "the requests to release their sessions", func() bool {
		e.h.reapIdle(time.Now().Add(2 * time.Hour))
		return e.h.Sessions(a.InfoHash()) == 0
	})
}
