package stream

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/memtorrent/memtorrent/host"
	"github.com/memtorrent/memtorrent/internal/testutil"
)

// TestWatchdogStatus starts a read of a torrent with no peer and checks
// that /status shows the session waiting for its first piece with the
// Watchdog's reason once it has waited WatchAfter, and that /metrics
// exports the wait.
func TestWatchdogStatus(t *testing.T) {
	e := newEnv(t, 4*mib, Options{})
	spec := testutil.Spec{Name: "alone.bin", Length: 2 * mib, PieceLength: pieceLength, Seed: 21}
	tor := e.unseeded(spec)
	p := e.startRange(streamPath(tor, 0), 3*pieceLength)
	var ss SessionStatus
	testutil.WaitFor(t, WatchAfter+10*time.Second, "the wait's reason in /status", func() bool {
		ts := e.status(tor)
		if len(ts.Sessions) != 1 {
			return false
		}
		ss = ts.Sessions[0]
		return ss.WaitReason != ""
	})
	if ss.WaitPiece != 3 || ss.WaitSeconds < WatchAfter.Seconds() || ss.WaitReason != string(host.ReasonNoPeer) {
		t.Errorf("session %+v: want waiting for piece 3 for at least %v, reason %q", ss, WatchAfter, host.ReasonNoPeer)
	}
	_, body := e.get("/metrics", http.StatusOK)
	want := `memtorrent_session_wait_seconds{infohash="` + tor.InfoHash().HexString() + `",piece="3",reason="` + string(host.ReasonNoPeer) + `"`
	if !strings.Contains(string(body), want) {
		t.Errorf("/metrics has no line starting %s", want)
	}
	p.cancel()
	p.wait(t)
	testutil.WaitFor(t, 10*time.Second, "the wait to end in /status", func() bool {
		ts := e.status(tor)
		return len(ts.Sessions) == 1 && ts.Sessions[0].WaitPiece == -1
	})
}
