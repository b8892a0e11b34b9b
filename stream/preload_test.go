package stream

import (
	"testing"
	"time"

	"github.com/anacrolix/torrent"

	"github.com/memtorrent/memtorrent/internal/testutil"
)

// TestPreload checks that Preload fetches the head of a file and reports
// its progress up to the whole, and refuses a file the torrent lacks.
func TestPreload(t *testing.T) {
	e := newEnv(t, 8*mib, Options{})
	spec := testutil.Spec{Name: "head.mkv", Length: 4 * mib, PieceLength: pieceLength, Seed: 31}
	tor := e.seed(spec)
	var done, total int64
	err := e.h.Preload(t.Context(), tor, 0, mib+1, 10*time.Millisecond, func(d, tt int64) { done, total = d, tt })
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(mib + pieceLength); done != want || total != want {
		t.Errorf("progress at the end: %d of %d; want %d of %d (the pieces holding the first MiB and a byte)", done, total, want, want)
	}
	for i := range 5 {
		if !tor.Piece(i).State().Complete {
			t.Errorf("piece %d not complete after the preload", i)
		}
	}
	if err := e.h.Preload(t.Context(), tor, 1, mib, 10*time.Millisecond, nil); err == nil {
		t.Error("preload of file 1 of a one-file torrent: no error")
	}
}

// TestPreloadYieldsToSession checks that a preload wants its pieces in
// order below a session's urgent ones, ends once a session reads the
// torrent, and leaves each piece at the session's priority (none where the
// session wants nothing; v1.59.1's CancelPieces, which the preload once
// used, would also set the session's own pieces to none).
func TestPreloadYieldsToSession(t *testing.T) {
	e := newEnv(t, 8*mib, Options{IdleTimeout: time.Hour})
	tor := e.unseeded(testutil.Spec{Name: "both.mkv", Length: 32 * mib, PieceLength: pieceLength, Seed: 32})
	prio := func(i int) torrent.PiecePriority { return tor.Piece(i).State().Priority }
	errc := make(chan error, 1)
	go func() { errc <- e.h.Preload(t.Context(), tor, 0, 6*mib, 10*time.Millisecond, nil) }()
	last := 6*mib/pieceLength - 1 // the preload's last piece
	testutil.WaitFor(t, transferTimeout, "the preload's pieces at PiecePriorityReadahead", func() bool {
		return prio(0) == torrent.PiecePriorityReadahead && prio(last) == torrent.PiecePriorityReadahead
	})

	at := int64(24 * mib) // the session plays from piece 96, past the preload
	p := e.startRange(streamPath(tor, 0), at)
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("preload ended by a session: %v; want nil", err)
		}
	case <-time.After(transferTimeout):
		t.Fatal("the preload did not end once a session read the torrent")
	}
	if got := prio(int(at / pieceLength)); got != torrent.PiecePriorityNow {
		t.Errorf("the session's playhead piece at %v; want %v", got, torrent.PiecePriorityNow)
	}
	for i := range last + 1 {
		if prio(i) != torrent.PiecePriorityNone {
			t.Errorf("after the preload, piece %d at %v; want none (no session wants it)", i, prio(i))
		}
	}
	p.cancel()
	p.wait(t)
}
