package memory

import (
	"fmt"
	"slices"

	"github.com/memtorrent/memtorrent/lookbehind"
)

// This file holds what a playback session tells the storage about the
// pieces it needs: the lookbehind set (pieces behind the playhead, kept for
// backward seeks), reader windows (the playhead and the readahead in front
// of it) and pins (container indexes at a file's head and tail). They decide
// the eviction order (see slotLocked) and the capacity reported to the
// torrent client. Each change of them reindexes, under the torrent's lock,
// the resident pieces it moves between eviction slots.

// SetLookbehind makes pieces the torrent's lookbehind set, replacing the
// previous one. When the pieces would hold more than the lookbehind budget
// (Options.LookbehindShare of the capacity, less what reader windows need),
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

// LookbehindStats returns the lookbehind figures: protected pieces, how
// many are resident and their bytes, hits (protected pieces a reader window
// moved back onto while held) and misses (the same, not held: downloaded
// again). Wait-free.
func (t *Torrent) LookbehindStats() lookbehind.Stats { return t.lb.Stats() }

// Window is a reader window: the bytes a playback session is about to read,
// from its playhead on. Pieces in a window are evicted last, furthest ahead
// first. A Window is safe for concurrent use.
type Window struct {
	t *Torrent // never changes
	// Guarded by t.mu.
	begin, end int // pieces [begin, end); begin is the playhead's piece
	closed     bool
}

// NewWindow returns an empty reader window of the torrent. Close it when
// the session ends.
func (t *Torrent) NewWindow() *Window {
	w := &Window{t: t}
	t.mu.Lock()
	if t.closed.Load() {
		w.closed = true
	} else {
		t.windows = append(t.windows, w)
	}
	t.mu.Unlock()
	return w
}

// Set moves the window to the bytes [offset, offset+length) of the torrent
// (offsets in the torrent, not in a file). A move backwards counts, for each
// lookbehind piece it covers, a hit if the piece is held and a miss if not
// (see LookbehindStats); so move the window before the lookbehind set. It returns an error naming the
// bad value, leaving the window unchanged, when the range is not inside the
// torrent, and ErrClosed after the window or the torrent was closed. It
// moves the resident pieces that entered or left the window to their
// eviction slot, O(log resident pieces) each.
func (w *Window) Set(offset, length int64) error {
	t := w.t
	if offset < 0 || length < 0 || offset+length > t.length {
		return fmt.Errorf("memory: torrent %s: window [%d, %d) outside [0, %d): %w", t.ih, offset, offset+length, t.length, ErrOutOfRange)
	}
	begin := int(offset / t.pieceLength)
	end := int((offset + length + t.pieceLength - 1) / t.pieceLength)
	if end <= begin && begin < len(t.pieces) {
		end = begin + 1 // the playhead's piece, even for an empty readahead
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if w.closed || t.closed.Load() {
		return ErrClosed
	}
	t.windowBytes.Add(int64((end-begin)-(w.end-w.begin)) * t.pieceLength)
	if begin < w.begin {
		// A backward seek: each protected piece the window now covers is a
		// lookbehind hit if still held, a miss if it must be downloaded again.
		for i := begin; i < min(end, w.begin); i++ {
			if t.lb.Contains(i) {
				if t.pieces[i].complete {
					t.lb.RecordHit()
				} else {
					t.lb.RecordMiss()
				}
			}
		}
	}
	old0, old1 := w.begin, w.end
	w.begin, w.end = begin, end
	t.reindexMovedLocked(old0, old1, begin, end)
	return nil
}

// Pieces returns the window's piece range [begin, end).
func (w *Window) Pieces() (begin, end int) {
	w.t.mu.Lock()
	defer w.t.mu.Unlock()
	return w.begin, w.end
}

// Close removes the window. It is idempotent.
func (w *Window) Close() {
	t := w.t
	t.mu.Lock()
	defer t.mu.Unlock()
	if w.closed {
		return
	}
	w.closed = true
	t.windowBytes.Sub(int64(w.end-w.begin) * t.pieceLength)
	t.windows = slices.DeleteFunc(t.windows, func(o *Window) bool { return o == w })
	t.reindexRangeLocked(w.begin, w.end)
}

// Pin keeps the pieces of a byte range (a container index such as an MP4
// moov atom or MKV cues) in memory in preference to everything but reader
// windows. Release it when done.
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
// reader window, so that readahead always fits.
func (c *Client) lookbehindLimit() int64 {
	capacity := c.budget.capacity.Load()
	limit := int64(float64(capacity) * c.lookbehindShare)
	var windows int64
	for _, t := range *c.torrents.Load() {
		windows += t.windowBytes.Load()
	}
	return max(0, min(limit, capacity-windows))
}

// updateReported recomputes the capacity reported to the torrent client:
// the capacity less what lookbehind and pins hold, never below half the
// capacity (so requests never stop, and reader windows always fit).
func (c *Client) updateReported() {
	capacity := c.budget.capacity.Load()
	held := c.pinnedBytes.Load()
	var lb int64
	for _, t := range *c.torrents.Load() {
		lb += t.lb.Stats().ResidentBytes
	}
	held += min(lb, c.lookbehindLimit())
	c.reported.Store(max(capacity-held, capacity/2))
}
