package memory

import (
	"fmt"
	"slices"
)

// This file holds readaheads: the playhead and the pieces in front of it,
// which a playback session is about to read.

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
