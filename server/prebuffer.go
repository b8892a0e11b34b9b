package server

import (
	"context"
	"time"

	"github.com/anacrolix/torrent"
)

// Prebuffer fetches the first n bytes of t's main file (MainFile; less if
// the file is shorter), so that a player starts at once, and waits for them
// or the end of ctx. It raises those pieces' priority for the wait only.
// progress, if not nil, is called with the bytes of those pieces done and
// their total at the start, every tick while it waits, and at the end. A
// piece counts once it has been complete: a player streaming meanwhile may
// have read it and let the storage evict it since.
func Prebuffer(ctx context.Context, t *torrent.Torrent, n int64, tick time.Duration, progress func(done, total int64)) error {
	f := MainFile(t)
	if f == nil || n <= 0 {
		return nil
	}
	n = min(n, f.Length())
	pl := t.Info().PieceLength
	begin := int(f.Offset() / pl)
	end := int((f.Offset()+n-1)/pl) + 1
	var total int64
	for i := begin; i < end; i++ {
		total += t.Piece(i).Info().Length()
	}
	t.DownloadPieces(begin, end)
	defer t.CancelPieces(begin, end)
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	seen := make([]bool, end-begin)
	var done int64
	for {
		for j := range seen {
			if p := t.Piece(begin + j); !seen[j] && p.State().Complete {
				seen[j] = true
				done += p.Info().Length()
			}
		}
		if progress != nil {
			progress(done, total)
		}
		if done >= total {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticker.C:
		}
	}
}

// PrebufferBytes is how much of the head of each torrent's main file a
// server with this capacity and session readahead fetches before a player
// asks (Prebuffer): a readahead, at most a quarter of the capacity.
func PrebufferBytes(capacity, readahead int64) int64 {
	return min(readahead, capacity/4)
}
