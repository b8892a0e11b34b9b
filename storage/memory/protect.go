package memory

import (
	"fmt"
	"slices"
)

// This file holds what a playback session tells the storage about the
// pieces it needs: the lookbehind set (pieces behind the playhead, kept for
// backward seeks), readaheads (the playhead and the pieces in front
// of it) and pins (container indexes at a file's head and tail). They decide
// the eviction order (see slotLocked) and the capacity reported to the
// torrent client. Each change of them reindexes, under the torrent's lock,
// the resident pieces it moves between eviction slots.

// SetLookbehind makes pieces the torrent's lookbehind set, replacing the
// previous one. When the pieces would hold more than the lookbehind budget
// (Options.LookbehindShare of the capacity, less what readaheads need),
// the highest indices are kept: for forward playback, the pieces nearest the
// playhead. It returns an error naming the bad index, leaving the set
// unchanged, if one is outside the torrent, and ErrClosed after Close.
// Safe for concurrent use; it never blocks on I/O. Changes of one torrent's
// set are serialised; each takes the torrent's lock once, to move the
// resident pieces that entered or left the set to their eviction slot
// (O(log resident pieces) each).
func (t *Torrent) SetLookbehind(pieces []int) error {
	if t.closed.Load() {
		return ErrClosed
	}
	for _, i := range pieces {
		if i < 0 || i >= len(t.pieces) {
			return fmt.Errorf("memory: torrent %s: lookbehind piece %d out of range [0, %d): %w", t.ih, i, len(t.pieces), ErrOutOfRange)
		}
	}
	if most := int(t.c.lookbehindLimit() / t.pieceLength); len(pieces) > most {
		sorted := slices.Clone(pieces)
		slices.Sort(sorted)
		sorted = slices.Compact(sorted)
		pieces = sorted[max(0, len(sorted)-most):]
	}
	t.lbMu.Lock()
	t.lbOld = t.lb.AppendTo(t.lbOld[:0])
	if err := t.lb.Replace(pieces); err != nil {
		t.lbMu.Unlock()
		return fmt.Errorf("memory: torrent %s: %w", t.ih, err)
	}
	t.lbIsRange = false
	if len(t.lbOld)+len(pieces) > 0 {
		t.mu.Lock()
		t.reindexPiecesLocked(t.lbOld)
		t.reindexPiecesLocked(pieces)
		t.mu.Unlock()
	}
	t.lbMu.Unlock()
	t.c.updateReported()
	return nil
}

// reindexPiecesLocked reindexes the resident pieces of a list.
func (t *Torrent) reindexPiecesLocked(pieces []int) {
	for _, i := range pieces {
		if p := &t.pieces[i]; p.pos >= 0 {
			t.reindexLocked(p)
		}
	}
}

// SetLookbehindRange is SetLookbehind for the pieces [begin, end). Moving
// the range reindexes only the pieces that entered or left it, and setting
// the same range again takes no lock but the set's own.
func (t *Torrent) SetLookbehindRange(begin, end int) error {
	if begin < 0 || end < begin || end > len(t.pieces) {
		return fmt.Errorf("memory: torrent %s: lookbehind range [%d, %d) outside [0, %d): %w", t.ih, begin, end, len(t.pieces), ErrOutOfRange)
	}
	if t.closed.Load() {
		return ErrClosed
	}
	if most := int(t.c.lookbehindLimit() / t.pieceLength); end-begin > most {
		begin = end - most
	}
	t.lbMu.Lock()
	if !t.lbIsRange {
		t.lbOld = t.lb.AppendTo(t.lbOld[:0])
	}
	if err := t.lb.ReplaceRange(begin, end); err != nil {
		t.lbMu.Unlock()
		return fmt.Errorf("memory: torrent %s: %w", t.ih, err)
	}
	switch {
	case !t.lbIsRange:
		t.mu.Lock()
		t.reindexPiecesLocked(t.lbOld)
		t.reindexRangeLocked(begin, end)
		t.mu.Unlock()
	case t.lbRange != [2]int{begin, end} && (begin < end || t.lbRange[0] < t.lbRange[1]):
		t.mu.Lock()
		t.reindexMovedLocked(t.lbRange[0], t.lbRange[1], begin, end)
		t.mu.Unlock()
	}
	t.lbRange, t.lbIsRange = [2]int{begin, end}, true
	t.lbMu.Unlock()
	t.c.updateReported()
	return nil
}

// ClearLookbehind empties the torrent's lookbehind set.
func (t *Torrent) ClearLookbehind() {
	t.lbMu.Lock()
	if !t.lbIsRange {
		t.lbOld = t.lb.AppendTo(t.lbOld[:0])
	}
	t.lb.Clear()
	switch {
	case !t.lbIsRange:
		t.mu.Lock()
		t.reindexPiecesLocked(t.lbOld)
		t.mu.Unlock()
	case t.lbRange[0] < t.lbRange[1]:
		t.mu.Lock()
		t.reindexRangeLocked(t.lbRange[0], t.lbRange[1])
		t.mu.Unlock()
	}
	t.lbRange, t.lbIsRange = [2]int{}, true
	t.lbMu.Unlock()
	t.c.updateReported()
}

// LookbehindAvailable reports whether piece i is in the lookbehind set and
// held in memory, so that a seek to it will not download it again.
// Lock-free for a piece outside the set; otherwise it takes the torrent's
// lock briefly to read the piece's completion.
func (t *Torrent) LookbehindAvailable(i int) bool {
	if !t.lb.Contains(i) {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.pieces[i].complete
}

// LookbehindStats describes a torrent's lookbehind set at one moment. The
// figures come from one consistent state: Resident <= Protected, and
// ResidentBytes are the bytes of the Resident pieces.
type LookbehindStats struct {
	Protected     int   // pieces in the set
	Resident      int   // pieces of the set held whole (verified and resident)
	ResidentBytes int64 // bytes held for them
	Hits          int64 // readahead moves back onto a Resident piece; only grows
	Misses        int64 // readahead moves back onto a protected piece not held: downloaded again; only grows
}

// LookbehindStats returns the lookbehind figures. It waits for a change of
// the set in flight and takes the torrent's lock briefly; it does not
// allocate.
func (t *Torrent) LookbehindStats() LookbehindStats {
	t.lbMu.Lock()
	defer t.lbMu.Unlock()
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lookbehindStatsLocked()
}

// lookbehindStatsLocked returns the lookbehind figures. lbMu and mu must be
// held: under lbMu no change of the set is half done, so every piece counted
// in lbHeld is a member of the set.
func (t *Torrent) lookbehindStatsLocked() LookbehindStats {
	return LookbehindStats{
		Protected:     t.lb.Count(),
		Resident:      t.lbHeld,
		ResidentBytes: t.lbBytes.Load(),
		Hits:          t.lbHits,
		Misses:        t.lbMisses,
	}
}

// countLookbehindLocked counts p in lbHeld and lbBytes if it is a lookbehind
// piece held whole, and uncounts it if it no longer is. reindexLocked and
// unlistLocked call it, so it follows every change of p's state and every
// reindex after a change of the set. O(1).
func (t *Torrent) countLookbehindLocked(p *piece) {
	held := p.pos >= 0 && p.complete && t.lb.Contains(p.index)
	if held == p.lbHeld {
		return
	}
	p.lbHeld = held
	bytes := t.c.blockSize * int64(p.numBlocks())
	if held {
		t.lbHeld++
		t.lbBytes.Add(bytes)
	} else {
		t.lbHeld--
		t.lbBytes.Sub(bytes)
	}
}

// Readahead is the range of pieces a playback session is about to read,
// from the playhead's piece on. Its pieces are evicted last, furthest ahead
// of the playhead first. A Readahead is safe for concurrent use.
type Readahead struct {
	t *Torrent // never changes
	// Guarded by t.mu.
	begin, end int // pieces [begin, end); begin is the playhead's piece
	closed     bool
}

// NewReadahead returns an empty readahead of the torrent. Close it when
// the session ends.
func (t *Torrent) NewReadahead() *Readahead {
	r := &Readahead{t: t}
	t.mu.Lock()
	if t.closed.Load() {
		r.closed = true
	} else {
		t.readaheads = append(t.readaheads, r)
	}
	t.mu.Unlock()
	return r
}

// Set moves the readahead to the bytes [offset, offset+length) of the
// torrent (offsets in the torrent, not in a file). A move backwards counts,
// for each lookbehind piece it covers, a hit if the piece is held and a miss
// if not (see LookbehindStats); so move the readahead before the lookbehind
// set. It returns an error naming the bad value, leaving the readahead
// unchanged, when the range is not inside the torrent, and ErrClosed after
// the readahead or the torrent was closed. It moves the resident pieces that
// entered or left it to their eviction slot, O(log resident pieces) each.
func (r *Readahead) Set(offset, length int64) error {
	t := r.t
	if offset < 0 || length < 0 || offset+length > t.length {
		return fmt.Errorf("memory: torrent %s: readahead [%d, %d) outside [0, %d): %w", t.ih, offset, offset+length, t.length, ErrOutOfRange)
	}
	begin := int(offset / t.pieceLength)
	end := int((offset + length + t.pieceLength - 1) / t.pieceLength)
	if end <= begin && begin < len(t.pieces) {
		end = begin + 1 // the playhead's piece, even for an empty readahead
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if r.closed || t.closed.Load() {
		return ErrClosed
	}
	t.readaheadBytes.Add(int64((end-begin)-(r.end-r.begin)) * t.pieceLength)
	if begin < r.begin {
		// A backward seek: each protected piece the readahead now covers is a
		// lookbehind hit if still held, a miss if it must be downloaded again.
		for i := begin; i < min(end, r.begin); i++ {
			if t.lb.Contains(i) {
				if t.pieces[i].complete {
					t.lbHits++
				} else {
					t.lbMisses++
				}
			}
		}
	}
	old0, old1 := r.begin, r.end
	r.begin, r.end = begin, end
	t.reindexMovedLocked(old0, old1, begin, end)
	// Only pieces entering the readahead can be hidden: one covered is never.
	t.revealLocked(begin, min(end, old0))
	t.revealLocked(max(begin, old1), end)
	return nil
}

// coveredLocked reports whether a readahead covers piece i.
func (t *Torrent) coveredLocked(i int) bool {
	for _, w := range t.readaheads {
		if w.begin <= i && i < w.end {
			return true
		}
	}
	return false
}

// revealLocked queues for Options.OnEvict the pieces of [begin, end) whose
// completion the torrent client was last told is unknown (see
// piece.Completion), so that it reads it again.
func (t *Torrent) revealLocked(begin, end int) {
	for i := max(begin, 0); i < min(end, len(t.pieces)); i++ {
		if p := &t.pieces[i]; p.hidden {
			p.hidden = false
			t.c.notifier.add(t.ih, i)
		}
	}
}

// Clear empties the readahead, as when its player went away mid-read: its
// pieces become evictable like any other. The playhead stays where it was,
// so a later Set further back still counts lookbehind hits and misses. It
// returns ErrClosed after the readahead or the torrent was closed. Like Set,
// it takes the torrent's lock and costs O(log resident pieces) a piece.
func (r *Readahead) Clear() error {
	t := r.t
	t.mu.Lock()
	defer t.mu.Unlock()
	if r.closed || t.closed.Load() {
		return ErrClosed
	}
	t.readaheadBytes.Sub(int64(r.end-r.begin) * t.pieceLength)
	old1 := r.end
	r.end = r.begin
	t.reindexRangeLocked(r.begin, old1)
	return nil
}

// Pieces returns the readahead's piece range [begin, end).
func (r *Readahead) Pieces() (begin, end int) {
	r.t.mu.Lock()
	defer r.t.mu.Unlock()
	return r.begin, r.end
}

// Close removes the readahead. It is idempotent.
func (r *Readahead) Close() {
	t := r.t
	t.mu.Lock()
	defer t.mu.Unlock()
	if r.closed {
		return
	}
	r.closed = true
	t.readaheadBytes.Sub(int64(r.end-r.begin) * t.pieceLength)
	t.readaheads = slices.DeleteFunc(t.readaheads, func(o *Readahead) bool { return o == r })
	t.reindexRangeLocked(r.begin, r.end)
	if len(t.readaheads) == 0 && !t.closed.Load() {
		// Without readaheads every piece answers known again.
		t.revealLocked(0, len(t.pieces))
	}
}

// Pin keeps the pieces of a byte range (a container index such as an MP4
// moov atom or MKV cues) in memory in preference to everything but
// readaheads. Release it when done.
type Pin struct {
	t          *Torrent // never changes
	begin, end int      // pieces; never change
	released   bool     // guarded by t.mu
}

// Pin protects the pieces holding the bytes [offset, offset+length) of the
// torrent. Pins of a Client may hold at most a quarter of its capacity: a
// pin beyond that fails with an error wrapping ErrNoSpace. It also fails,
// naming the bad value, for a range outside the torrent, and with ErrClosed
// after Close.
func (t *Torrent) Pin(offset, length int64) (*Pin, error) {
	if offset < 0 || length <= 0 || offset+length > t.length {
		return nil, fmt.Errorf("memory: torrent %s: pin [%d, %d) outside [0, %d): %w", t.ih, offset, offset+length, t.length, ErrOutOfRange)
	}
	p := &Pin{t: t, begin: int(offset / t.pieceLength), end: int((offset + length + t.pieceLength - 1) / t.pieceLength)}
	bytes := int64(p.end-p.begin) * t.pieceLength
	if total := t.c.pinnedBytes.Add(bytes); total > t.c.budget.capacity.Load()/4 {
		t.c.pinnedBytes.Sub(bytes)
		return nil, fmt.Errorf("memory: torrent %s: pinning %d bytes: pins would hold %d bytes, above a quarter of the capacity: %w", t.ih, bytes, total, ErrNoSpace)
	}
	t.mu.Lock()
	if t.closed.Load() {
		t.mu.Unlock()
		t.c.pinnedBytes.Sub(bytes)
		return nil, ErrClosed
	}
	t.pins = append(t.pins, p)
	t.reindexRangeLocked(p.begin, p.end)
	t.mu.Unlock()
	t.c.updateReported()
	return p, nil
}

// Release ends the pin. It is idempotent.
func (p *Pin) Release() {
	t := p.t
	t.mu.Lock()
	if p.released {
		t.mu.Unlock()
		return
	}
	p.released = true
	t.pins = slices.DeleteFunc(t.pins, func(o *Pin) bool { return o == p })
	t.reindexRangeLocked(p.begin, p.end)
	t.mu.Unlock()
	t.c.pinnedBytes.Sub(int64(p.end-p.begin) * t.pieceLength)
	t.c.updateReported()
}

// lookbehindLimit is the most bytes lookbehind pieces may hold across the
// Client: Options.LookbehindShare of the capacity, less the bytes of every
// readahead, so that readahead always fits.
func (c *Client) lookbehindLimit() int64 {
	capacity := c.budget.capacity.Load()
	limit := int64(float64(capacity) * c.lookbehindShare)
	var readaheads int64
	for _, t := range *c.torrents.Load() {
		readaheads += t.readaheadBytes.Load()
	}
	return max(0, min(limit, capacity-readaheads))
}

// updateReported recomputes the capacity reported to the torrent client:
// the capacity less what lookbehind and pins hold, never below half the
// capacity (so requests never stop, and readaheads always fit).
func (c *Client) updateReported() {
	capacity := c.budget.capacity.Load()
	held := c.pinnedBytes.Load()
	var lb int64
	for _, t := range *c.torrents.Load() {
		lb += t.lbBytes.Load()
	}
	held += min(lb, c.lookbehindLimit())
	c.reported.Store(max(capacity-held, capacity/2))
}
