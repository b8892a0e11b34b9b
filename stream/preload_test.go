package stream

import (
	"context"
	"errors"
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

// TestPreloadKeepsSessionPriorities checks that a preload wants its pieces
// in order below a playing session's, and that the session keeps its
// priorities when the preload ends (v1.59.1's CancelPieces, which the
// preload once used, would set them to none).
func TestPreloadKeepsSessionPriorities(t *testing.T) {
	e := newEnv(t, 8*mib, Options{IdleTimeout: time.Hour})
	tor := e.unseeded(testutil.Spec{Name: "both.mkv", Length: 8 * mib, PieceLength: pieceLength, Seed: 32})
	prio := func(i int) torrent.PiecePriority { return tor.Piece(i).State().Priority }
	p := e.startRange(streamPath(tor, 0), 0)
	testutil.WaitFor(t, transferTimeout, "the session's playhead piece at PiecePriorityNow", func() bool {
		return prio(0) == torrent.PiecePriorityNow
	})
	session := make([]torrent.PiecePriority, tor.NumPieces())
	for i := range session {
		session[i] = prio(i)
	}
	last := 6*mib/pieceLength - 1 // the preload's last piece
	if session[last] != torrent.PiecePriorityNone {
		t.Fatalf("piece %d: the session wants it at %v before the preload; the test needs a piece only the preload wants", last, session[last])
	}

	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- e.h.Preload(ctx, tor, 0, 6*mib, 10*time.Millisecond, nil) }()
	testutil.WaitFor(t, transferTimeout, "the preload's pieces at PiecePriorityReadahead", func() bool {
		return prio(last) == torrent.PiecePriorityReadahead
	})
	for i := range last + 1 {
		if want := max(session[i], torrent.PiecePriorityReadahead); prio(i) != want {
			t.Errorf("during the preload, piece %d at %v; want %v", i, prio(i), want)
		}
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled preload returned %v; want context.Canceled", err)
	}
	for i := range session {
		if prio(i) != session[i] {
			t.Errorf("after the preload, piece %d at %v; want the session's %v", i, prio(i), session[i])
		}
	}
	p.cancel()
	p.wait(t)
}
