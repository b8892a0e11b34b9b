package memory

import "fmt"

// WriteEarly writes b at off of piece i, as the torrent client's writes
// do, unless the piece is complete or every byte of [off, off+len(b)) is
// written already; it reports whether it wrote. It is for bytes fetched
// outside the torrent client for a reader that waits for them (the host's
// early fetch): readers see them as they see the client's, and the client,
// which never learns of them, later writes the same chunk itself. That
// copy replaces the early one, so the piece's hash check judges only the
// client's bytes; if it differs from early bytes ReadUnverified returned,
// the function set with OnUnverifiedFailure is called, as for a piece
// that failed its hash after a reader had its bytes. Errors as WriteAt's.
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
