package host

import (
	"time"

	"github.com/anacrolix/torrent"
)

const (
	// LateChunkAfter is how long a request of a piece at
	// PiecePriorityNow (the playhead's) may be outstanding at a connection
	// that delivers far slower than another of its torrent before that
	// connection is closed, so that the faster one takes the chunk.
	LateChunkAfter = time.Second
	// slowerBy is how many times faster the torrent's fastest connection
	// must be than the holder of a late urgent chunk for it to be closed.
	slowerBy = 4
)

// lateUrgent returns the connections that have held a request of a piece
// at PiecePriorityNow for LateChunkAfter at now, deliver at under
// 1/slowerBy of the rate of the fastest connection of the same torrent,
// and would take longer than RequestQueueTime to deliver what they hold;
// a connection that delivered nothing for RequestQueueTime counts as rate 0.
//
// Why: within the playhead's piece v1.59.1 hands out chunks in order, and a
// peer that plans with an empty queue takes chunks of the highest priority
// first, from a peer holding more requests if none is left ("stealing"),
// so a slow line gets chunks of the playhead's piece and holds up every
// byte after them while the others have arrived. Closing the holder frees
// its chunks: the client requests them again from the next peer that
// plans, within about RequestQueueTime; so a holder is closed only when it
// would take longer than that. The redials connect it again later.
func (r *requests) lateUrgent(now time.Time) []held {
	rate := func(s *peerRequests) float64 {
		if now.Sub(s.lastChunk) >= r.queue {
			return 0
		}
		return s.rate.rate
	}
	var cands []held
	r.mu.Lock()
	best := map[*torrent.Torrent]float64{}
	for _, s := range r.peers {
		if s.t != nil {
			best[s.t] = max(best[s.t], rate(s))
		}
	}
	for _, s := range r.peers {
		if s.pc == nil || s.t == nil || len(s.out) == 0 {
			continue
		}
		rt := rate(s)
		if rt == 0 && now.Sub(s.lastChunk) < r.queue {
			continue // delivering, rate not measured yet
		}
		if rt*slowerBy >= best[s.t] {
			continue
		}
		if rt > 0 && float64(len(s.out)*chunkSize)/rt <= r.queue.Seconds() {
			continue // it delivers what it holds sooner than another peer would take it
		}
		if h := s.heldFor(now, LateChunkAfter); len(h.pieces) > 0 {
			cands = append(cands, h)
		}
	}
	r.mu.Unlock()
	return holdingAtLeast(cands, torrent.PiecePriorityNow)
}
