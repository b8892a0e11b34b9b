package stream

import (
	"context"
	"testing"

	"github.com/anacrolix/torrent"

	"github.com/memtorrent/memtorrent/internal/testutil"
)

func TestReadPieceRejects(t *testing.T) {
	e := newEnv(t, 4*mib, Options{})
	spec := testutil.Spec{Name: "a.mkv", Length: mib, PieceLength: pieceLength, Seed: 31}
	tor := e.unseeded(spec)
	ctx := t.Context()
	for _, c := range []struct {
		name string
		t    *torrent.Torrent
		off  int64
	}{
		{"nil torrent", nil, 0},
		{"negative offset", tor, -1},
		{"offset at the end", tor, spec.Length},
	} {
		if n, err := ReadPiece(ctx, c.t, make([]byte, 10), c.off); err == nil || n != 0 {
			t.Errorf("%s: got (%d, %v); want an error", c.name, n, err)
		}
	}
	// An empty read returns at once, even of data that never comes.
	if n, err := ReadPiece(ctx, tor, nil, 0); n != 0 || err != nil {
		t.Errorf("empty read: got (%d, %v); want (0, nil)", n, err)
	}
	// A cancelled context ends the read before it waits.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := ReadPiece(cancelled, tor, make([]byte, 10), 0); err != context.Canceled {
		t.Errorf("cancelled read: got %v; want context.Canceled", err)
	}
}

// TestSetWindow checks the piece priorities the sessions of a torrent set:
// Now for the first piece of each window, Readahead for the rest, the
// highest where windows overlap, None once no window has the piece.
func TestSetWindow(t *testing.T) {
	e := newEnv(t, 4*mib, Options{})
	spec := testutil.Spec{Name: "a.mkv", Length: 10 * pieceLength, PieceLength: pieceLength, Seed: 32}
	tor := e.unseeded(spec)
	ts := &torState{wins: make(map[*session]window), applied: make(map[int]torrent.PiecePriority)}
	s1, s2 := &session{}, &session{}
	const (
		n = torrent.PiecePriorityNone
		r = torrent.PiecePriorityReadahead
		N = torrent.PiecePriorityNow
	)
	check := func(step string, want [10]torrent.PiecePriority) {
		t.Helper()
		for i, w := range want {
			if got := tor.Piece(i).State().Priority; got != w {
				t.Errorf("%s: piece %d: priority %v; want %v", step, i, got, w)
			}
		}
	}
	// win is a window whose first piece is urgent, as a lone session's.
	win := func(begin, end int) window {
		return window{pieceRange: pieceRange{begin, end}, urgentEnd: begin + 1, prios: priorities{N, N, r}}
	}
	ts.setWindow(tor, s1, win(2, 6))
	check("s1 at 2", [10]torrent.PiecePriority{n, n, N, r, r, r, n, n, n, n})
	ts.setWindow(tor, s2, win(4, 8))
	check("s2 at 4", [10]torrent.PiecePriority{n, n, N, r, N, r, r, r, n, n})
	ts.setWindow(tor, s1, win(3, 7))
	check("s1 at 3", [10]torrent.PiecePriority{n, n, n, N, N, r, r, r, n, n})
	ts.setWindow(tor, s1, window{})
	check("s1 gone", [10]torrent.PiecePriority{n, n, n, n, N, r, r, r, n, n})
	ts.setWindow(tor, s2, win(9, 10))
	check("s2 at 9", [10]torrent.PiecePriority{n, n, n, n, n, n, n, n, n, N})
	ts.setWindow(tor, s2, window{})
	check("s2 gone", [10]torrent.PiecePriority{})
	if len(ts.applied) != 0 || len(ts.wins) != 0 {
		t.Errorf("after every session left: applied %v, windows %v; want none", ts.applied, ts.wins)
	}
}
