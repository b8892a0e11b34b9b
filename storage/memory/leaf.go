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
	if i >= 0 && i < len(t.pieces) {
		if n := int((t.pieces[i].length + LeafSize - 1) / LeafSize); len(hashes) < n {
			return fmt.Errorf("memory: torrent %s: piece %d has %d leaves, got %d hashes", t.ih, i, n, len(hashes))
		}
	}
	return t.SetLeafHashRange(i, 0, hashes)
}

// SetLeafHashRange is SetLeafHashes for some of piece i's leaves: hashes
// are those of its leaves first, first+1, and so on (as many as the piece
// has; the extra ones are ignored). A leaf whose hash is known is read as
// SetLeafHashes says; a leaf whose hash is not is read as before:
// ReadUnverified returns its written bytes (up to the next leaf whose hash
// is known), ReadVerified nothing. A zero hash leaves the leaf's hash
// unknown. Errors as SetLeafHashes', and ErrOutOfRange (wrapped) when
// first is not a leaf of the piece.
func (t *Torrent) SetLeafHashRange(i, first int, hashes [][32]byte) error {
	if i < 0 || i >= len(t.pieces) {
		return fmt.Errorf("memory: torrent %s: piece %d out of range [0, %d): %w", t.ih, i, len(t.pieces), ErrOutOfRange)
	}
	if t.pieceLength%LeafSize != 0 {
		return fmt.Errorf("memory: torrent %s: piece length %d is not a multiple of the %d-byte leaves", t.ih, t.pieceLength, LeafSize)
	}
	pc := &t.pieces[i]
	n := int((pc.length + LeafSize - 1) / LeafSize)
	if first < 0 || first >= n {
		return fmt.Errorf("memory: torrent %s: leaf %d of piece %d out of range [0, %d): %w", t.ih, first, i, n, ErrOutOfRange)
	}
	hashes = hashes[:min(len(hashes), n-first)]
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed.Load() {
		return ErrClosed
	}
	if pc.leaves == nil {
		pc.leaves = make([][32]byte, n)
	}
	for k, h := range hashes {
		if h == ([32]byte{}) {
			continue
		}
		if pc.leaves[first+k] == ([32]byte{}) {
			pc.leafSet++
		}
		pc.leaves[first+k] = h
	}
	pc.wakeLocked()
	return nil
}

// HasLeafHashes reports whether piece i has the hashes of all its leaves
// (false when i is not a piece of t).
func (t *Torrent) HasLeafHashes(i int) bool {
	if i < 0 || i >= len(t.pieces) {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	pc := &t.pieces[i]
	return pc.leaves != nil && int(pc.leafSet) == len(pc.leaves)
}

// HasLeafHash reports whether the hash of the leaf that holds byte off of
// piece i is known (false when i is not a piece of t or off is outside
// it).
func (t *Torrent) HasLeafHash(i int, off int64) bool {
	if i < 0 || i >= len(t.pieces) || off < 0 || off >= t.pieces[i].length {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.pieces[i].leafKnownLocked(off)
}

// leafKnownLocked reports whether the hash of the leaf holding byte off
// of p is known. t.mu must be held.
func (p *piece) leafKnownLocked(off int64) bool {
	return p.leaves != nil && p.leaves[off/LeafSize] != [32]byte{}
}

// ReadVerified is ReadUnverified restricted to bytes that leaf hashes
// prove: it copies into p the bytes of piece i from off on that lie in
// whole, written leaves matching their hash (SetLeafHashes), up to len(p),
// stopping at the first leaf that is not written whole or does not match.
// It returns 0 and a nil error when the hash of the leaf at off is not
// known or the leaf is not proven.
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
// whole, written leaves that match their known hash in p.leaves (which
// must not be nil), stopping at the first that does not or whose hash is
// not known. t.mu must be held.
func (p *piece) provenLocked(off, n int64) int64 {
	var got int64
	for got < n {
		j := (off + got) / LeafSize
		lo := j * LeafSize
		hi := min(lo+LeafSize, p.length)
		if p.leaves[j] == ([32]byte{}) {
			break
		}
		if p.validLocked(lo, hi-lo) < hi-lo {
			break
		}
		if p.leafSumLocked(lo, hi) != p.leaves[j] {
			p.t.leafRefusals.Add(1)
			p.t.c.leafRefusals.Add(1)
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

// unprovenLocked returns how many of the n bytes of p from off on are
// written and lie in leaves whose hash is not known, stopping at the
// first leaf whose hash is. t.mu must be held.
func (p *piece) unprovenLocked(off, n int64) int64 {
	if p.leaves != nil {
		for j := off / LeafSize; j*LeafSize < off+n; j++ {
			if p.leaves[j] != ([32]byte{}) {
				n = max(0, j*LeafSize-off)
				break
			}
		}
	}
	return p.validLocked(off, n)
}
