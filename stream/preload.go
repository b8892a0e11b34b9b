package stream

import (
	"context"
	"fmt"
	"time"

	"github.com/anacrolix/torrent"
)

// Preload fetches the first n bytes of file i of t (less if the file is
// shorter) before a player asks, so that it starts at once, and waits for
// them, the end of ctx, or a session on t: once a player reads, its own
// readahead wants what it needs, and bytes the preload still asks for
// would only queue at the peers in front of the player's urgent pieces. The pieces are wanted as a session's readahead
// is, through the handler: in file order at PiecePriorityReadahead, below
// every session's urgent pieces, and when Preload returns each piece gets
// the highest priority the torrent's sessions still want (a session
// playing them keeps its priorities).
//
// progress, if not nil, is called with the bytes of those pieces done and
// their total at the start, every tick while Preload waits, and at the
// end. A piece counts once it has been complete: a player streaming
// meanwhile may have read it and let the storage evict it since.
func (h *Handler) Preload(ctx context.Context, t *torrent.Torrent, i int, n int64, tick time.Duration, progress func(done, total int64)) error {
	if t.Info() == nil {
		return fmt.Errorf("stream: preload of %s: no info yet", t.InfoHash().HexString())
	}
	files := t.Files()
	if i < 0 || i >= len(files) {
		return fmt.Errorf("stream: preload of %s: no file %d of %d", t.Name(), i, len(files))
	}
	f := files[i]
	n = min(n, f.Length())
	if n <= 0 {
		return nil
	}
	pl := t.Info().PieceLength
	r := pieceRange{int(f.Offset() / pl), int((f.Offset()+n-1)/pl) + 1}

	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return errClosed
	}
	ts := h.holdTorStateLocked(t)
	h.mu.Unlock()
	self := new(session) // the preload's key among the torrent's windows
	ahead := priorities{first: torrent.PiecePriorityReadahead, urgent: torrent.PiecePriorityReadahead, ahead: torrent.PiecePriorityReadahead}
	ts.setWindow(t, self, window{pieceRange: r, urgentEnd: r.begin, prios: ahead})
	defer func() {
		ts.setWindow(t, self, window{})
		h.letGoTorState(t, ts)
	}()

	var total, done int64
	for j := r.begin; j < r.end; j++ {
		total += t.Piece(j).Info().Length()
	}
	seen := make([]bool, r.end-r.begin)
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	for {
		for j := range seen {
			if p := t.Piece(r.begin + j); !seen[j] && p.State().Complete {
				seen[j] = true
				done += p.Info().Length()
			}
		}
		if progress != nil {
			progress(done, total)
		}
		if done >= total || ts.sessionWants(self) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.Closed():
			return fmt.Errorf("stream: preload of %s: torrent dropped", t.Name())
		case <-ticker.C:
		}
	}
}
