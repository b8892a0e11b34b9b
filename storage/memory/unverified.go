package memory

import (
	"fmt"
)

// ReadUnverified copies into p the bytes of piece i that are written from
// off on, whether or not the piece has passed its hash check: the run of
// written bytes that starts at off, up to len(p) and the end of the piece.
// It returns 0 and a nil error when byte off is not written (yet, or any
// more). The copy runs under the torrent's lock, so it never sees a write
// half done nor a buffer being freed.
//
// When the hash of the leaf at off is known (SetLeafHashes,
// SetLeafHashRange) it returns only what ReadVerified returns: bytes those
// hashes prove; otherwise it stops at the first leaf whose hash is known.
// Both tell Options.OnWantLeafHashes where the read is (see there).
//
// Bytes of a piece that has not passed its hash may be wrong. If a piece
// that ReadUnverified returned bytes of while it was incomplete, bytes no
// leaf hash proved, later fails its hash check, the function set with
// OnUnverifiedFailure is called. Whatever the outcome, a failed hash
// forgets the piece's written bytes, so ReadUnverified never returns bytes
// the hash refused; it returns the bytes written again after the failure.
//
// Errors: ErrOutOfRange (wrapped) when i is not a piece of t or off is
// outside it; ErrClosed after Close.
func (t *Torrent) ReadUnverified(i int, off int64, p []byte) (int, error) {
	return t.readEarly(i, off, p, false)
}

// readEarly is ReadUnverified, and ReadVerified when proven.
func (t *Torrent) readEarly(i int, off int64, p []byte, proven bool) (int, error) {
	if i < 0 || i >= len(t.pieces) {
		return 0, fmt.Errorf("memory: torrent %s: piece %d out of range [0, %d): %w", t.ih, i, len(t.pieces), ErrOutOfRange)
	}
	pc := &t.pieces[i]
	if off < 0 || off > pc.length {
		return 0, fmt.Errorf("memory: reading at offset %d of piece %d (length %d): %w", off, i, pc.length, ErrOutOfRange)
	}
	want := min(int64(len(p)), pc.length-off)
	t.mu.Lock()
	if t.closed.Load() {
		t.mu.Unlock()
		return 0, ErrClosed
	}
	var n int64
	switch {
	case off < pc.length && pc.leafKnownLocked(off):
		n = pc.provenLocked(off, want)
	case !proven:
		n = pc.unprovenLocked(off, want)
		if n > 0 && !pc.complete {
			pc.served = true
		}
	}
	bs := t.c.blockSize
	for done := int64(0); done < n; {
		j := int((off + done) / bs)
		in := (off + done) - int64(j)*bs
		done += int64(copy(p[done:n], pc.blocks[j].buf[in:]))
	}
	if n > 0 {
		pc.touchLocked()
		t.reindexLocked(pc)
	}
	leaf := int32(off / LeafSize)
	tell := !pc.complete && t.c.onWantLeaves != nil && off < pc.length && pc.leafTold != leaf+1
	if tell {
		pc.leafTold = leaf + 1
	}
	t.mu.Unlock()
	if tell {
		t.c.onWantLeaves(t.ih, i, int(leaf))
	}
	return int(n), nil
}

// Written returns a channel that is closed at the next write to piece i,
// and at once (closed already) when i is not a piece of t or t is closed.
// A reader waiting for bytes takes the channel before it reads, so that no
// write between the read and the wait goes unnoticed.
func (t *Torrent) Written(i int) <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	if i < 0 || i >= len(t.pieces) || t.closed.Load() {
		return closedChan
	}
	pc := &t.pieces[i]
	if pc.written == nil {
		pc.written = make(chan struct{})
	}
	return pc.written
}

var closedChan = func() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()

// OnUnverifiedFailure sets f as the function called when a piece fails its
// hash check after ReadUnverified returned bytes of it (nil: none). f is
// called with the piece's index from the torrent client's hashing
// goroutine, outside every lock of the storage; it must return quickly and
// must not call into the torrent client. It replaces any function set
// before.
func (t *Torrent) OnUnverifiedFailure(f func(piece int)) {
	if f == nil {
		t.onUnverifiedFailure.Store(nil)
		return
	}
	t.onUnverifiedFailure.Store(&f)
}

// wakeLocked closes the channel readers of p wait on (see Written).
func (p *piece) wakeLocked() {
	if p.written != nil {
		close(p.written)
		p.written = nil
	}
}

// hashFailedLocked forgets the written bytes of p, which failed its hash
// check, if every byte of it is written: they are wrong, and must not be
// read before peers send them again (the torrent client asks for every
// chunk of a piece that failed whole). The blocks stay, to be written
// again. It reports whether it did so for a piece that ReadUnverified
// returned bytes of since its last hash check. A piece not written whole
// (its hash failed for missing bytes, after an eviction) is left as it is.
func (p *piece) hashFailedLocked() (served bool) {
	if p.blocks == nil || int(p.full) != p.numBlocks() {
		return false
	}
	served = p.served
	p.served = false
	for j := range p.blocks {
		b := &p.blocks[j]
		b.n = 0
		b.spans = nil
	}
	p.full = 0
	p.early = nil
	p.t.reindexLocked(p)
	return served
}
