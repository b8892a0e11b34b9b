package stream

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/anacrolix/torrent"

	"github.com/memtorrent/memtorrent/internal/testutil"
)

// TestSessions drives sessions over a torrent whose data never arrives, so
// that requests stay busy until their client goes away: a concurrent request
// of the same client gets a session of its own, a request beyond
// MaxSessions busy sessions gets 503, a closed connection ends its read at
// once, an idle session makes room for a new client, and expired sessions
// give back their reader, window, lookbehind and pins.
func TestSessions(t *testing.T) {
	const idle = time.Minute
	e := newEnv(t, 2*mib, Options{MaxSessions: 2, IdleTimeout: idle})
	tor := e.unseeded(testutil.Spec{Name: "stuck.mkv", Length: 4 * mib, PieceLength: pieceLength, Seed: 5})
	path := streamPath(tor, 0)
	waitBusy := func(what string, sessions, want int) {
		t.Helper()
		testutil.WaitFor(t, transferTimeout, what, func() bool {
			st := e.status(tor)
			return len(st.Sessions) == sessions && busy(st) == want
		})
	}

	a := e.start(path)
	waitBusy("the first request's session", 1, 1)
	b := e.start(path)
	waitBusy("a second session for the same client's concurrent request", 2, 2)

	resp, body := e.get(path+"?session=c", http.StatusServiceUnavailable)
	if got := resp.Header.Get("Retry-After"); got != retryAfter {
		t.Errorf("503: Retry-After %q; want %q", got, retryAfter)
	}
	if string(body) != "Service Unavailable\n" {
		t.Errorf("503: body %q; want the status text", body)
	}

	a.cancel()
	if err := a.wait(t); err == nil {
		t.Errorf("cancelled request: got no error")
	}
	waitBusy("the cancelled request to release its session", 2, 1)

	c := e.start(path + "?session=c")
	testutil.WaitFor(t, transferTimeout, "the idle session to make room for a new client", func() bool {
		st := e.status(tor)
		return len(st.Sessions) == 2 && busy(st) == 2 && st.Sessions[1].Client == "session=c"
	})
	st := e.status(tor)
	if st.ReadersCreated != 3 || st.Pieces.Window == 0 || st.Pieces.Pinned == 0 {
		t.Errorf("status: %d readers created, %d window pieces, %d pinned; want 3 and some of each",
			st.ReadersCreated, st.Pieces.Window, st.Pieces.Pinned)
	}

	b.cancel()
	c.cancel()
	b.wait(t)
	c.wait(t)
	waitBusy("every request to release its session", 2, 0)

	e.h.reapIdle(time.Now()) // not idle long enough
	if n := len(e.status(tor).Sessions); n != 2 {
		t.Fatalf("reaped too early: %d sessions left; want 2", n)
	}
	e.h.reapIdle(time.Now().Add(idle))
	st = e.status(tor)
	mt, _ := e.mem.Torrent(tor.InfoHash())
	ms := mt.Stats()
	if len(st.Sessions) != 0 || ms.Readaheads != 0 || ms.Pins != 0 || ms.Lookbehind.Protected != 0 {
		t.Errorf("after expiry: %d sessions, %d windows, %d pins, %d lookbehind pieces; want none",
			len(st.Sessions), ms.Readaheads, ms.Pins, ms.Lookbehind.Protected)
	}
}

// TestCloseEndsRequests checks that Close ends a request waiting for data,
// returns, is idempotent, and that requests after it get 503.
func TestCloseEndsRequests(t *testing.T) {
	e := newEnv(t, 2*mib, Options{})
	tor := e.unseeded(testutil.Spec{Name: "stuck.mp4", Length: mib, PieceLength: pieceLength, Seed: 6})
	p := e.start(streamPath(tor, 0))
	testutil.WaitFor(t, transferTimeout, "a busy session", func() bool { return busy(e.status(tor)) == 1 })

	closed := make(chan error, 1)
	go func() { closed <- e.h.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(transferTimeout):
		t.Fatalf("Close still waiting after %v", transferTimeout)
	}
	p.wait(t) // the response ended, one way or another
	if err := e.h.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	for _, path := range []string{streamPath(tor, 0), "/status", "/metrics"} {
		resp, _ := e.get(path, http.StatusServiceUnavailable)
		if resp.Header.Get("Retry-After") == "" {
			t.Errorf("GET %s after Close: no Retry-After", path)
		}
	}
	if n := e.h.readers.Load(); n != 1 {
		t.Errorf("readers created: got %d; want 1", n)
	}
	mt, _ := e.mem.Torrent(tor.InfoHash())
	if ms := mt.Stats(); ms.Readaheads != 0 || ms.Pins != 0 {
		t.Errorf("after Close: %d windows, %d pins; want none", ms.Readaheads, ms.Pins)
	}
}

// TestSessionKeys checks that the session query parameter, the remote
// address and the User-Agent make separate sessions, and that a file
// reached by index and by path shares one.
func TestSessionKeys(t *testing.T) {
	e := newEnv(t, 2*mib, Options{})
	spec := testutil.Spec{Name: "show", PieceLength: pieceLength, Seed: 7, Files: []testutil.File{
		{Path: "ep1.mkv", Length: 600 << 10},
		{Path: "ep2.mkv", Length: 700 << 10},
	}}
	tor := e.seed(spec)
	ih := tor.InfoHash().HexString()
	for _, req := range []struct {
		path string
		hdr  []string
	}{
		{"/stream/" + ih + "/0", nil},
		{"/stream/" + ih + "/path/ep1.mkv", nil},      // same session
		{"/stream/" + ih + "/path/show/ep1.mkv", nil}, // same session
		{"/stream/" + ih + "/0", []string{"User-Agent", "TV"}},
		{"/stream/" + ih + "/0?session=x", nil},
		{"/stream/" + ih + "/0?session=x", []string{"User-Agent", "TV"}}, // same as the previous
		{"/stream/" + ih + "/1?session=x", nil},
	} {
		_, body := e.get(req.path, http.StatusOK, req.hdr...)
		file := 0
		if strings.HasSuffix(req.path, "/1?session=x") {
			file = 1
		}
		testutil.Equal(t, body, testutil.FileContent(spec, file))
	}
	st := e.status(tor)
	var got []string
	for _, s := range st.Sessions {
		got = append(got, fmt.Sprintf("%d:%d", s.File, s.Requests))
	}
	if want := "[0:3 0:1 0:2 1:1]"; fmt.Sprint(got) != want {
		t.Errorf("sessions (file:requests): got %v; want %s", got, want)
	}
}

// TestAbandonedSessionGivesUpWindow checks that a player closing its
// connection mid-read (a seek, a stop) leaves its session idle without a
// window: no piece keeps a priority and the storage holds no readahead,
// while a request that read its whole range keeps its window for the
// player's next request. A stale window kept pieces downloading and
// resident for the IdleTimeout after every seek.
func TestAbandonedSessionGivesUpWindow(t *testing.T) {
	e := newEnv(t, 4*mib, Options{IdleTimeout: time.Hour})
	stuck := e.unseeded(testutil.Spec{Name: "stuck.mkv", Length: 4 * mib, PieceLength: pieceLength, Seed: 8})
	wanted := func(tor *torrent.Torrent) (n int) {
		for i := range tor.NumPieces() {
			if tor.Piece(i).State().Priority != torrent.PiecePriorityNone {
				n++
			}
		}
		return n
	}
	p := e.startRange(streamPath(stuck, 0), 2*pieceLength)
	testutil.WaitFor(t, transferTimeout, "a busy session with a window", func() bool {
		st := e.status(stuck)
		return busy(st) == 1 && st.Pieces.Window > 0
	})
	if n := wanted(stuck); n == 0 {
		t.Fatalf("busy session: no piece wanted")
	}
	p.cancel()
	p.wait(t)
	testutil.WaitFor(t, transferTimeout, "the abandoned request to release its session", func() bool {
		return busy(e.status(stuck)) == 0
	})
	st := e.status(stuck)
	if len(st.Sessions) != 1 || st.Pieces.Window != 0 {
		t.Errorf("abandoned: %d sessions, %d window pieces; want 1 idle session and no window", len(st.Sessions), st.Pieces.Window)
	}
	if n := wanted(stuck); n != 0 {
		t.Errorf("abandoned: %d pieces still wanted; want none", n)
	}

	spec := testutil.Spec{Name: "done.mkv", Length: 2 * mib, PieceLength: pieceLength, Seed: 9}
	done := e.seed(spec)
	_, body := e.get(streamPath(done, 0), http.StatusPartialContent, "Range", "bytes=0-1000")
	testutil.Equal(t, body, testutil.FileContent(spec, 0)[:1001])
	if st := e.status(done); len(st.Sessions) != 1 || busy(st) != 0 || st.Pieces.Window == 0 {
		t.Errorf("completed range: %d sessions (%d busy), %d window pieces; want 1 idle session keeping its window",
			len(st.Sessions), busy(st), st.Pieces.Window)
	}
}
