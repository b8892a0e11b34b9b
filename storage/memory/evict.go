package memory

import (
	"fmt"
	"time"
)

// Eviction classes, first evicted first. Within a class the least recently
// used piece goes first unless noted.
const (
	classComplete   = iota // verified pieces nobody asked to keep
	classLookbehind        // verified pieces behind a playhead: furthest behind first
	classPartial           // pieces still missing bytes
	classPinned            // a file's head or tail (container indexes)
	classWindow            // in a reader window: furthest ahead of the playhead first
	classUnhashed          // every byte written, hash pending: evicting it wastes a whole piece and fails its hash
)

// rank orders eviction candidates: lower ranks are evicted first.
type rank struct {
	class int
	key   int64
}

func (r rank) less(o rank) bool {
	if r.class != o.class {
		return r.class < o.class
	}
	return r.key < o.key
}

// rankLocked ranks p for eviction; ok is false when p may not be evicted.
// lbOver says lookbehind pieces hold more than their budget, which demotes
// them to ordinary complete pieces.
func (p *piece) rankLocked(lbOver bool) (r rank, ok bool) {
	if p.pins > 0 || p.pos < 0 {
		return rank{}, false
	}
	if !p.complete && p.validLocked(0, p.length) == p.length {
		return rank{classUnhashed, p.lastUse}, true
	}
	t := p.t
	ahead := -1
	for _, w := range t.windows {
		if p.index >= w.begin && p.index < w.end && (ahead < 0 || p.index-w.begin < ahead) {
			ahead = p.index - w.begin
		}
	}
	if ahead >= 0 {
		return rank{classWindow, -int64(ahead)}, true
	}
	for _, pin := range t.pins {
		if p.index >= pin.begin && p.index < pin.end {
			return rank{classPinned, p.lastUse}, true
		}
	}
	switch {
	case p.complete && !lbOver && t.lb.Contains(p.index):
		return rank{classLookbehind, int64(p.index)}, true
	case p.complete:
		return rank{classComplete, p.lastUse}, true
	default:
		return rank{classPartial, p.lastUse}, true
	}
}

// candidate returns the torrent's best eviction candidate. It costs
// O(resident pieces) under the torrent's lock.
func (t *Torrent) candidate(lbOver bool) (index int, r rank, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed.Load() {
		return 0, rank{}, false
	}
	for _, i := range t.resident {
		pr, pok := t.pieces[i].rankLocked(lbOver)
		if pok && (!ok || pr.less(r)) {
			index, r, ok = int(i), pr, true
		}
	}
	return index, r, ok
}

// evict frees piece i if it is still evictable, and reports whether it did.
// A complete piece is reported to the torrent client through the notifier.
func (t *Torrent) evict(i int) bool {
	t.mu.Lock()
	p := &t.pieces[i]
	if _, ok := p.rankLocked(false); !ok || t.closed.Load() {
		t.mu.Unlock()
		return false
	}
	wasComplete := p.complete
	freed := t.freeLocked(p)
	t.mu.Unlock()
	c := t.c
	c.evictions.Inc()
	c.evictedBytes.Add(freed)
	if wasComplete {
		c.notifier.add(t.ih, i)
	}
	if t.lb.Contains(i) {
		c.updateReported()
	}
	c.space.broadcast()
	return true
}

// evictOne evicts the best candidate across all torrents, taking one
// torrent lock at a time. It reports false when nothing is evictable.
func (c *Client) evictOne() bool {
	ts := *c.torrents.Load()
	var lb int64
	for _, t := range ts {
		lb += t.lb.Stats().ResidentBytes
	}
	lbOver := lb > c.lookbehindLimit()
	for range 3 { // a candidate can be pinned between the scan and the eviction
		var best *Torrent
		var bestIndex int
		var bestRank rank
		for _, t := range ts {
			i, r, ok := t.candidate(lbOver)
			if ok && (best == nil || r.less(bestRank)) {
				best, bestIndex, bestRank = t, i, r
			}
		}
		if best == nil {
			return false
		}
		if best.evict(bestIndex) {
			return true
		}
	}
	return false
}

// makeRoom evicts one piece, or, when nothing is evictable, waits until a
// pin or write ends, a piece is freed, or deadline passes. A nil error means
// the caller should try to reserve again.
func (c *Client) makeRoom(deadline time.Time) error {
	if c.closed.Load() {
		return ErrClosed
	}
	if c.evictOne() {
		return nil
	}
	ch := c.space.wait()
	defer c.space.done()
	// Look again now that a release would wake us.
	if c.evictOne() || c.budget.used.Load()+c.blockSize <= c.budget.limit.Load() {
		return nil
	}
	c.waits.Inc()
	if !sleepUntil(ch, deadline) {
		return fmt.Errorf("nothing evictable within %v (every resident piece pinned by a read in flight): %w",
			c.waitTimeout, ErrNoSpace)
	}
	if c.closed.Load() {
		return ErrClosed
	}
	return nil
}
