package memory

import (
	"fmt"
	"slices"
)

// This file holds pins: byte ranges (container indexes at a file's head and
// tail) whose pieces stay while pinned.

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
