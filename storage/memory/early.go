package memory

import "fmt"

// WriteEarly writes b at off of piece i, as the torrent client's writes
// do, unless the piece is complete or every byte of [off, off+len(b)) is
// written already; it reports whether it wrote. It is for bytes fetched
// outside the torrent client for a reader that waits for them (the host's
// early fetch): the client later writes the same chunk itself, and never
// learns of this one, so a write must not make a complete piece
// incomplete again (as WriteAt does) nor replace bytes already written.
// The client's own write of the same bytes later leaves these in place:
// a reader may have had them, and the piece's hash check must judge the
// bytes it had (a corrupt early chunk fails the piece, which is then
// reported and fetched again as any other). Errors as WriteAt's.
func (t *Torrent) WriteEarly(i int, off int64, b []byte) (bool, error) {
	if i < 0 || i >= len(t.pieces) {
		return false, fmt.Errorf("memory: torrent %s: piece %d out of range [0, %d): %w", t.ih, i, len(t.pieces), ErrOutOfRange)
	}
	return t.pieces[i].writeAt(b, off, true)
}

// Has reports whether the n bytes of piece i from off are written (and
// held), whether or not the piece passed its hash check. False when
// [off, off+n) is not inside a piece of t.
func (t *Torrent) Has(i int, off, n int64) bool {
	if i < 0 || i >= len(t.pieces) || off < 0 || n < 0 || off+n > t.pieces[i].length {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.pieces[i].validLocked(off, n) == n
}
