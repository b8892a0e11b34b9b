package stream

import "github.com/anacrolix/torrent/metainfo"

// Sessions returns how many playback sessions, busy or idle, the Handler
// has on the torrent with the info hash: zero means no player has used it
// for Options.IdleTimeout. It takes the Handler's lock briefly and never
// calls into the torrent client or the storage. Safe for concurrent use.
func (h *Handler) Sessions(ih metainfo.Hash) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, s := range h.sessions {
		if s.key.ih == ih {
			n++
		}
	}
	return n
}
