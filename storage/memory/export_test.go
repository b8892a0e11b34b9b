package memory

// This file exports to the tests what only they use.

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

// Pieces returns the readahead's piece range [begin, end).
func (r *Readahead) Pieces() (begin, end int) {
	r.t.mu.Lock()
	defer r.t.mu.Unlock()
	return r.begin, r.end
}
