package memory

import (
	"crypto/sha256"
	"fmt"
)

// LeafSize is the size of the blocks whose SHA-256 hashes form the leaves
// of a BitTorrent v2 file's Merkle tree (BEP 52): 16 KiB. A piece's leaf
// hashes prove each of its 16 KiB leaves on its own, before the piece is
// whole. (A leaf is not a block of this package, whose size is
// Options.BlockSize.)
const LeafSize = 1 << 14

// SetLeafHashes gives the storage the leaf hashes of piece i: the SHA-256
// of each of its LeafSize leaves, in order, the last leaf possibly
// shorter. hashes may run past the end of the piece (a torrent's last
// piece: BEP 52 pads it with zero hashes); the extra ones are ignored. The
// caller vouches for them (the package host checks them against the
// piece's hash in the torrent's piece layers before it calls this). From
// then on ReadUnverified and ReadVerified return only bytes of leaves that
// match their hash, and readers waiting in Written are woken. The hashes
// are kept for as long as the torrent is open (32 bytes a leaf), whatever
// becomes of the piece's bytes.
//
// Errors: ErrOutOfRange (wrapped) when i is not a piece of t; an error
// naming the problem when the piece length is not a multiple of LeafSize
// or hashes are too few; ErrClosed after Close.
func (t *Torrent) SetLeafHashes(i int, hashes [][32]byte) error {
	if i < 0 || i >= len(t.pieces) {
		return fmt.Errorf("memory: torrent %s: piece %d out of range [0, %d): %w", t.ih, i, len(t.pieces), ErrOutOfRange)
	}
	if t.pieceLength%LeafSize != 0 {
		return fmt.Errorf("memory: torrent %s: piece length %d is not a multiple of the %d-byte leaves", t.ih, t.pieceLength, LeafSize)
	}
	pc := &t.pieces[i]
	n := int((pc.length + LeafSize - 1) / LeafSize)
	if len(hashes) < n {
		return fmt.Errorf("memory: torrent %s: piece %d has %d leaves, got %d hashes", t.ih, i, n, len(hashes))
	}
	leaves := append([][32]byte(nil), hashes[:n]...)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed.Load() {
		return ErrClosed
	}
	pc.leaves = leaves
	pc.wakeLocked()
	return nil
}

// HasLeafHashes reports whether SetLeafHashes gave piece i its leaf
// hashes (false when i is not a piece of t).
func (t *Torrent) HasLeafHashes(i int) bool {
	if i < 0 || i >= len(t.pieces) {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.pieces[i].leaves != nil
}

// ReadVerified is ReadUnverified restricted to bytes that leaf hashes
// prove: it copies into p the bytes of piece i from off on that lie in
// whole, written leaves matching their hash (SetLeafHashes), up to len(p),
// stopping at the first leaf that is not written whole or does not match.
// It returns 0 and a nil error when the piece has no leaf hashes (and then
// tells Options.OnWantLeafHashes, once) or the leaf at off is not proven.
// Errors as ReadUnverified's.
func (t *Torrent) ReadVerified(i int, off int64, p []byte) (int, error) {
	return t.readEarly(i, off, p, true)
}

// RefusedLeaves counts the reads (ReadUnverified, ReadVerified) that
// stopped at a leaf written whole whose bytes did not match its hash: each
// kept bytes a peer corrupted from the reader. A leaf read several times
// counts each time.
func (t *Torrent) RefusedLeaves() int64 { return t.leafRefusals.Load() }

// provenLocked returns how many of the n bytes of p from off on lie in
// whole, written leaves that match p.leaves (which must not be nil),
// stopping at the first that does not. t.mu must be held.
func (p *piece) provenLocked(off, n int64) int64 {
	var got int64
	for got < n {
		j := (off + got) / LeafSize
		lo := j * LeafSize
		hi := min(lo+LeafSize, p.length)
		if p.validLocked(lo, hi-lo) < hi-lo {
			break
		}
		if p.leafSumLocked(lo, hi) != p.leaves[j] {
			p.t.leafRefusals.Add(1)
			break
		}
		got = min(hi-off, n)
	}
	return got
}

// leafSumLocked is the SHA-256 of bytes [lo, hi) of p, which must be
// written. t.mu must be held.
func (p *piece) leafSumLocked(lo, hi int64) (sum [32]byte) {
	h := sha256.New()
	bs := p.t.c.blockSize
	for off := lo; off < hi; {
		j := off / bs
		in := off - j*bs
		end := min(hi, (j+1)*bs)
		h.Write(p.blocks[j].buf[in : in+end-off])
		off = end
	}
	h.Sum(sum[:0])
	return sum
}
