package memory

import (
	"fmt"
	"slices"
	"time"
)

// Eviction classes, first evicted first. Within a class the least recently
// used piece goes first unless noted.
const (
	classComplete   = iota // verified pieces nobody asked to keep
	classLookbehind        // verified pieces behind a playhead: furthest behind first
	classPartial           // pieces still missing bytes
	classPinned            // a file's head or tail (container indexes)
	classReadahead         // in a readahead: furthest ahead of the playhead first
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

// Slots: where a resident piece is indexed for eviction. A piece is in at
// most one slot; the slot follows from the piece's state and the torrent's
// readaheads, pins and lookbehind set (see slotLocked). Lookbehind pieces have
// their own slot because they are ranked two ways: by index while
// lookbehind holds no more than its budget, by last use (with the complete
// pieces) when it holds more.
const (
	slotNone       = iota // not resident, or pinned by a hash: never evicted
	slotComplete          // classComplete, heap by lastUse
	slotLookbehind        // complete and in the lookbehind set: heap by lastUse and set by index
	slotPartial           // classPartial, heap by lastUse
	slotPinned            // classPinned, heap by lastUse
	slotReadahead         // classReadahead, set by index
	slotUnhashed          // classUnhashed, heap by lastUse
	numSlots
)

// evictIndex holds a torrent's evictable pieces by slot, so that the best
// candidate is found without looking at every resident piece: the head of
// a heap, the lowest member of a set, or for readaheads the highest
// member of the set below each readahead boundary. Guarded by Torrent.mu.
type evictIndex struct {
	heaps     [numSlots]lruHeap // by slot; unused for slotNone and slotReadahead
	lbIndex   indexSet          // slotLookbehind pieces by index
	readahead indexSet          // slotReadahead pieces by index
	bounds    []int             // scratch for readaheadCandidateLocked
	examined  int64             // heap entries and set words looked at by eviction; for tests
}

func (e *evictIndex) init(n int) {
	e.lbIndex.init(n)
	e.readahead.init(n)
}

// slotLocked returns the slot piece p belongs in now. It costs O(readaheads +
// pins) of the torrent.
func (t *Torrent) slotLocked(p *piece) uint8 {
	if p.pins > 0 || p.pos < 0 {
		return slotNone
	}
	if !p.complete && int(p.full) == p.numBlocks() {
		return slotUnhashed
	}
	for _, w := range t.readaheads {
		if p.index >= w.begin && p.index < w.end {
			return slotReadahead
		}
	}
	for _, pin := range t.pins {
		if p.index >= pin.begin && p.index < pin.end {
			return slotPinned
		}
	}
	switch {
	case p.complete && t.lb.Contains(p.index):
		return slotLookbehind
	case p.complete:
		return slotComplete
	default:
		return slotPartial
	}
}

// reindexLocked moves p to the slot it belongs in now, and updates its
// position in its heap when its last use changed. Callers call it after
// every change to p's state or to what decides its slot. O(log resident).
func (t *Torrent) reindexLocked(p *piece) {
	t.countLookbehindLocked(p)
	s := t.slotLocked(p)
	e := &t.ev
	if s == p.slot {
		if s != slotNone && s != slotReadahead && e.heaps[s][p.hpos].key != p.lastUse {
			e.heaps[s].fix(t.pieces, p.hpos, p.lastUse)
		}
		return
	}
	t.unindexLocked(p)
	switch s {
	case slotNone:
		return
	case slotReadahead:
		e.readahead.add(p.index)
	case slotLookbehind:
		e.lbIndex.add(p.index)
		e.heaps[s].push(t.pieces, p, p.lastUse)
	default:
		e.heaps[s].push(t.pieces, p, p.lastUse)
	}
	p.slot = s
}

// unindexLocked takes p out of its slot.
func (t *Torrent) unindexLocked(p *piece) {
	e := &t.ev
	switch p.slot {
	case slotNone:
		return
	case slotReadahead:
		e.readahead.remove(p.index)
	case slotLookbehind:
		e.lbIndex.remove(p.index)
		e.examined += e.heaps[p.slot].remove(t.pieces, p.hpos)
	default:
		e.examined += e.heaps[p.slot].remove(t.pieces, p.hpos)
	}
	p.slot = slotNone
}

// reindexRangeLocked reindexes the resident pieces [begin, end).
func (t *Torrent) reindexRangeLocked(begin, end int) {
	for i := max(begin, 0); i < min(end, len(t.pieces)); i++ {
		if p := &t.pieces[i]; p.pos >= 0 {
			t.reindexLocked(p)
		}
	}
}

// reindexMovedLocked reindexes the pieces whose membership of a range
// changed when it moved from [a0, a1) to [b0, b1): those in one range and
// not the other.
func (t *Torrent) reindexMovedLocked(a0, a1, b0, b1 int) {
	if a0 >= a1 || b0 >= b1 || a1 <= b0 || b1 <= a0 { // disjoint or empty
		t.reindexRangeLocked(a0, a1)
		t.reindexRangeLocked(b0, b1)
		return
	}
	t.reindexRangeLocked(min(a0, b0), max(a0, b0))
	t.reindexRangeLocked(min(a1, b1), max(a1, b1))
}

// candidate returns the torrent's best eviction candidate. It costs
// O(log resident pieces) under the torrent's lock, plus O(readaheads²) when
// only readaheads are left.
func (t *Torrent) candidate(lbOver bool) (index int, r rank, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed.Load() {
		return 0, rank{}, false
	}
	e := &t.ev
	e.examined++
	if i, key, found := e.heaps[slotComplete].top(); found {
		index, r, ok = int(i), rank{classComplete, key}, true
	}
	if lbOver {
		// Lookbehind holds more than its budget: its pieces rank as
		// ordinary complete ones.
		if i, key, found := e.heaps[slotLookbehind].top(); found && (!ok || key < r.key) {
			index, r, ok = int(i), rank{classComplete, key}, true
		}
	}
	if ok {
		return index, r, true
	}
	if !lbOver {
		if i, ok := e.lbIndex.next(0, &e.examined); ok {
			return i, rank{classLookbehind, int64(i)}, true
		}
	}
	for _, s := range [...]struct {
		slot  uint8
		class int
	}{{slotPartial, classPartial}, {slotPinned, classPinned}} {
		if i, key, ok := e.heaps[s.slot].top(); ok {
			return int(i), rank{s.class, key}, true
		}
	}
	if i, ahead, ok := t.readaheadCandidateLocked(); ok {
		return i, rank{classReadahead, -int64(ahead)}, true
	}
	if i, key, ok := e.heaps[slotUnhashed].top(); ok {
		return int(i), rank{classUnhashed, key}, true
	}
	return 0, rank{}, false
}

// readaheadCandidateLocked returns the readahead piece furthest ahead of its
// playhead and how far ahead it is. A piece in several readaheads is as far
// ahead as in the one that starts last. The readahead boundaries cut the
// pieces into segments whose pieces all lie in the same readaheads, so in
// each segment the highest indexed piece is the furthest ahead.
func (t *Torrent) readaheadCandidateLocked() (index, ahead int, ok bool) {
	e := &t.ev
	if e.readahead.len == 0 {
		return 0, 0, false
	}
	bounds := e.bounds[:0]
	for _, w := range t.readaheads {
		if w.begin < w.end {
			bounds = append(bounds, w.begin, w.end)
		}
	}
	slices.Sort(bounds)
	bounds = slices.Compact(bounds)
	e.bounds = bounds
	ahead = -1
	for k := 0; k+1 < len(bounds); k++ {
		lo, hi := bounds[k], bounds[k+1]
		start := -1 // the latest start of a readahead holding the segment
		for _, w := range t.readaheads {
			if w.begin <= lo && hi <= w.end && w.begin > start {
				start = w.begin
			}
		}
		if start < 0 {
			continue
		}
		if i, found := e.readahead.prev(hi-1, &e.examined); found && i >= lo && i-start > ahead {
			index, ahead = i, i-start
		}
	}
	return index, ahead, ahead >= 0
}

// evict frees piece i if it is still evictable, and reports whether it did.
// A complete piece is reported to the torrent client through the notifier.
func (t *Torrent) evict(i int) bool {
	t.mu.Lock()
	p := &t.pieces[i]
	if p.pins > 0 || p.pos < 0 || t.closed.Load() {
		t.mu.Unlock()
		return false
	}
	wasComplete := p.complete
	wasWhole := int(p.full) == p.numBlocks()
	freed := t.freeLocked(p)
	p.gone = wasComplete
	t.mu.Unlock()
	c := t.c
	c.evictions.Inc()
	c.evictedBytes.Add(freed)
	switch {
	case wasComplete:
	case wasWhole:
		c.evictedUnhashed.Inc()
	default:
		c.evictedPartial.Inc()
	}
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
		lb += t.lbBytes.Load()
	}
	lbOver := lb > c.lookbehindLimit()
	for range 3 { // a candidate can be pinned between the look and the eviction
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
