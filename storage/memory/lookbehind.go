package memory

import (
	"fmt"
	"slices"
)

// This file holds the lookbehind set a playback session gives the storage
// (pieces behind the playhead, kept for backward seeks) and the budget it
// has. Readaheads (readahead.go) and pins (pins.go) are the other two
// things a session declares; together they decide the eviction order (see
// slotLocked) and the capacity reported to the torrent client (reported.go).
// Each change of them reindexes, under the torrent's lock, the resident
// pieces it moves between eviction slots.

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
