package server

import (
	"context"
	"slices"
	"time"

	"github.com/anacrolix/torrent"
)

// Prebuffer fetches the first n bytes of t's main file (MainFile; less if
// the file is shorter), so that a player starts at once, and waits for them
// or the end of ctx: stream.Handler.Preload, with its progress reports.
func (s *Server) Prebuffer(ctx context.Context, t *torrent.Torrent, n int64, tick time.Duration, progress func(done, total int64)) error {
	f := MainFile(t)
	if f == nil || n <= 0 {
		return nil
	}
	return s.h.Preload(ctx, t, slices.Index(t.Files(), f), n, tick, progress)
}

// PrebufferBytes is how much of the head of each torrent's main file a
// server with this capacity and session readahead fetches before a player
// asks (Prebuffer): a readahead, at most a quarter of the capacity.
func PrebufferBytes(capacity, readahead int64) int64 {
	return min(readahead, capacity/4)
}
