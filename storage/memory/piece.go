package memory

import (
	"bytes"
	"fmt"
	"io"
	"time"

	"github.com/anacrolix/torrent/storage"
)

// piece is one piece of a Torrent: the storage.PieceImpl the torrent client
// uses. Handles live in Torrent.pieces and are never copied.
type piece struct {
	t      *Torrent // never changes
	index  int      // never changes
	length int64    // never changes

	// Guarded by t.mu.
	blocks   []block            // nil while nothing is held; reused from Torrent.spare
	complete bool               // MarkComplete was called and no byte changed since
	pins     int32              // WriteTo calls in flight; a pinned piece is never evicted
	lastUse  int64              // Client.clock at the last access
	pos      int32              // index in t.resident, or -1
	full     int32              // blocks written from their first to their last byte
	hpos     int32              // position in its slot's heap (see evictIndex)
	slot     uint8              // where the piece is indexed for eviction (see slotLocked)
	lbHeld   bool               // counted in Torrent.lbHeld and lbBytes
	gone     bool               // evicted while complete, nothing written since (see Completion)
	hidden   bool               // Completion last answered "unknown" (see Completion)
	served   bool               // ReadUnverified returned bytes of it since its last hash check
	leaves   [][32]byte         // its leaf hashes (Torrent.SetLeafHashes, SetLeafHashRange; zero: not known), or nil
	leafSet  int32              // how many of leaves are known
	leafTold int32              // 1 + the leaf Options.OnWantLeafHashes was last told of; 0: none
	written  chan struct{}      // closed at the next write; nil while nobody waits (see Torrent.Written)
	early    map[int64]struct{} // offsets of writes of Torrent.WriteEarly not yet written again; nil if none
}

// block is one buffer of a piece. Bytes [0, n) of it hold written data and
// are readable; spans records data written beyond a gap, which joins the
// prefix when the gap is filled. Peers send whole 16 KiB chunks, one per
// block, so spans stays empty unless chunks are smaller than blocks and
// arrive out of order.
type block struct {
	buf   []byte
	n     int32
	spans []span // sorted, disjoint, all starting after n
}

// span is the written bytes [lo, hi) of a block.
type span struct{ lo, hi int32 }

// wrote records that bytes [lo, hi) of the block now hold data.
func (b *block) wrote(lo, hi int32) {
	if lo > b.n {
		b.addSpan(lo, hi)
		return
	}
	b.n = max(b.n, hi)
	k := 0
	for k < len(b.spans) && b.spans[k].lo <= b.n {
		b.n = max(b.n, b.spans[k].hi)
		k++
	}
	b.spans = b.spans[:copy(b.spans, b.spans[k:])]
}

// addSpan merges [lo, hi) into spans.
func (b *block) addSpan(lo, hi int32) {
	out := b.spans[:0:0]
	placed := false
	for _, s := range b.spans {
		switch {
		case s.hi < lo:
			out = append(out, s)
		case hi < s.lo:
			if !placed {
				out = append(out, span{lo, hi})
				placed = true
			}
			out = append(out, s)
		default: // overlapping or touching: merge
			lo, hi = min(lo, s.lo), max(hi, s.hi)
		}
	}
	if !placed {
		out = append(out, span{lo, hi})
	}
	b.spans = out
}

var (
	_ storage.PieceImpl = (*piece)(nil)
	_ io.WriterTo       = (*piece)(nil)
)

func (p *piece) numBlocks() int {
	return int((p.length + p.t.c.blockSize - 1) / p.t.c.blockSize)
}

// WriteAt copies b into the piece at off. When the budget is full it evicts
// other pieces first, and waits up to Options.WaitTimeout when nothing is
// evictable. The copy runs under the torrent's lock, so a piece is never
// evicted while it is being written; a piece evicted between a write's
// reservation and its copy costs the write one more reservation. Errors:
// ErrOutOfRange (wrapped) when [off, off+len(b)) is not inside the piece;
// ErrClosed; ErrNoSpace (wrapped) after the wait. A write into a complete
// piece makes it incomplete again.
func (p *piece) WriteAt(b []byte, off int64) (int, error) {
	if _, err := p.writeAt(b, off, false); err != nil {
		return 0, err
	}
	return len(b), nil
}

// writeAt is WriteAt; when early, it writes only into a piece that is not
// complete, and only when some byte of [off, off+len(b)) is not written
// yet, and reports whether it wrote.
func (p *piece) writeAt(b []byte, off int64, early bool) (bool, error) {
	if off < 0 || off+int64(len(b)) > p.length {
		return false, fmt.Errorf("memory: writing %d bytes at offset %d of piece %d (length %d): %w",
			len(b), off, p.index, p.length, ErrOutOfRange)
	}
	if p.t.closed.Load() {
		return false, ErrClosed
	}
	if len(b) == 0 {
		return false, nil
	}
	t, c := p.t, p.t.c
	first, last := int(off/c.blockSize), int((off+int64(len(b))-1)/c.blockSize)
	var deadline time.Time
	var small [4][]byte
	bufs := small[:0] // reserved buffers not yet in the piece
	differed := false // the client's copy replaced different early bytes a reader had
	for {
		t.mu.Lock()
		if t.closed.Load() {
			t.mu.Unlock()
			p.freeBufs(bufs)
			return false, ErrClosed
		}
		if early && (p.complete || p.validLocked(off, int64(len(b))) == int64(len(b))) {
			t.mu.Unlock()
			p.freeBufs(bufs)
			return false, nil
		}
		if _, ok := p.early[off]; ok && !early {
			// The client's own copy of a chunk written early replaces it,
			// so the piece's hash judges the bytes the client got from
			// the peers it knows of (and blames). A copy that differs
			// from early bytes a reader had means the reader had wrong
			// bytes: reported as a failure of a piece served before its
			// hash.
			delete(p.early, off)
			if p.validLocked(off, int64(len(b))) == int64(len(b)) {
				if p.equalLocked(off, b) {
					t.mu.Unlock()
					p.freeBufs(bufs)
					return true, nil
				}
				// Once per piece: the bytes served so far are judged.
				differed, p.served = p.served, false
			}
		}
		if p.pins > 0 {
			// A hash of this piece is in flight: let it finish so that it
			// never reads bytes being overwritten.
			t.mu.Unlock()
			if deadline.IsZero() {
				deadline = time.Now().Add(c.waitTimeout)
			}
			if err := p.waitUnpinned(deadline); err != nil {
				p.freeBufs(bufs)
				return false, err
			}
			continue
		}
		if p.blocks == nil {
			p.blocks = t.indexLocked(p.numBlocks())
		}
		missing := 0
		for j := first; j <= last; j++ {
			if p.blocks[j].buf == nil {
				missing++
			}
		}
		if missing <= len(bufs) {
			bufs = p.copyLocked(b, off, first, last, bufs)
			if early {
				if p.early == nil {
					p.early = make(map[int64]struct{})
				}
				p.early[off] = struct{}{}
			}
			t.mu.Unlock()
			p.freeBufs(bufs)
			if f := t.onUnverifiedFailure.Load(); differed && f != nil {
				(*f)(p.index)
			}
			return true, nil
		}
		t.mu.Unlock()
		for len(bufs) < missing {
			if c.budget.reserve() {
				bufs = append(bufs, c.budget.get())
				continue
			}
			if deadline.IsZero() {
				deadline = time.Now().Add(c.waitTimeout)
			}
			if err := c.makeRoom(deadline); err != nil {
				p.freeBufs(bufs)
				return false, fmt.Errorf("memory: writing %d bytes to piece %d of torrent %s: %w", len(b), p.index, t.ih, err)
			}
		}
	}
}

// equalLocked reports whether the bytes at off equal b; they must be
// written. t.mu must be held.
func (p *piece) equalLocked(off int64, b []byte) bool {
	bs := p.t.c.blockSize
	for done := 0; done < len(b); {
		j := int((off + int64(done)) / bs)
		in := (off + int64(done)) - int64(j)*bs
		n := min(len(b)-done, int(bs-in))
		if !bytes.Equal(p.blocks[j].buf[in:in+int64(n)], b[done:done+n]) {
			return false
		}
		done += n
	}
	return true
}

// copyLocked copies b to off, installing buffers from bufs where blocks
// first..last are missing, and returns the buffers it did not use.
func (p *piece) copyLocked(b []byte, off int64, first, last int, bufs [][]byte) [][]byte {
	t, c := p.t, p.t.c
	for j := first; j <= last; j++ {
		bl := &p.blocks[j]
		if bl.buf == nil {
			bl.buf = bufs[len(bufs)-1]
			bufs[len(bufs)-1] = nil
			bufs = bufs[:len(bufs)-1]
			t.residentBytes.Add(c.blockSize)
		}
		start := int64(j) * c.blockSize
		lo := max(off, start) - start
		hi := min(off+int64(len(b)), start+c.blockSize) - start
		copy(bl.buf[lo:hi], b[start+lo-off:start+hi-off])
		blockLen := int32(min(c.blockSize, p.length-start))
		wasFull := bl.n >= blockLen
		bl.wrote(int32(lo), int32(hi))
		if !wasFull && bl.n >= blockLen {
			p.full++
		}
	}
	p.complete = false
	p.wakeLocked()
	p.touchLocked()
	t.listLocked(p)
	t.reindexLocked(p)
	return bufs
}

// freeBufs returns buffers a write reserved but did not use, and wakes
// writers waiting for space if there were any.
func (p *piece) freeBufs(bufs [][]byte) {
	for _, buf := range bufs {
		p.t.c.budget.put(buf)
	}
	if len(bufs) > 0 {
		p.t.c.space.broadcast()
	}
}

func (p *piece) pinned() bool {
	p.t.mu.Lock()
	defer p.t.mu.Unlock()
	return p.pins > 0
}

// waitUnpinned waits until no WriteTo of p is in flight.
func (p *piece) waitUnpinned(deadline time.Time) error {
	c := p.t.c
	c.waits.Inc()
	for {
		ch := c.space.wait()
		pinned := p.pinned()
		if !pinned {
			c.space.done()
			return nil
		}
		ok := sleepUntil(ch, deadline)
		c.space.done()
		if !ok {
			return fmt.Errorf("memory: writing piece %d of torrent %s: a read of it stayed in flight for %v: %w",
				p.index, p.t.ih, c.waitTimeout, ErrNoSpace)
		}
		if p.t.closed.Load() {
			return ErrClosed
		}
	}
}

// validLocked returns how many bytes from off on are written, up to n.
func (p *piece) validLocked(off, n int64) int64 {
	if p.blocks == nil {
		return 0
	}
	bs := p.t.c.blockSize
	var got int64
	for got < n {
		j := int((off + got) / bs)
		in := int32((off + got) - int64(j)*bs)
		end := p.blocks[j].writtenFrom(in)
		if end <= in {
			break
		}
		got += min(int64(end-in), n-got)
	}
	return got
}

// writtenFrom returns the end of the run of written bytes that holds byte
// in, or in itself when byte in was never written.
func (b *block) writtenFrom(in int32) int32 {
	if b.buf == nil {
		return in
	}
	if in < b.n {
		return b.n
	}
	for _, s := range b.spans {
		if s.lo <= in && in < s.hi {
			return s.hi
		}
	}
	return in
}

// ReadAt copies bytes of the piece from off into b. Reading past the end of
// the piece returns the bytes up to it and io.EOF; reading at an offset
// outside the piece fails with ErrOutOfRange (wrapped). Bytes not held
// (never written, or evicted) end the read with an error wrapping
// io.ErrUnexpectedEOF, after the bytes before them. ErrClosed after Close.
// It never returns (0, nil) for a non-empty b.
func (p *piece) ReadAt(b []byte, off int64) (int, error) {
	if off < 0 || off > p.length {
		return 0, fmt.Errorf("memory: reading at offset %d of piece %d (length %d): %w", off, p.index, p.length, ErrOutOfRange)
	}
	if p.t.closed.Load() {
		return 0, ErrClosed
	}
	want := min(int64(len(b)), p.length-off)
	if want == 0 {
		if len(b) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	t, c := p.t, p.t.c
	t.mu.Lock()
	if t.closed.Load() {
		t.mu.Unlock()
		return 0, ErrClosed
	}
	n := p.validLocked(off, want)
	bs := c.blockSize
	for done := int64(0); done < n; {
		j := int((off + done) / bs)
		in := (off + done) - int64(j)*bs
		done += int64(copy(b[done:n], p.blocks[j].buf[in:]))
	}
	if n > 0 {
		p.touchLocked()
		t.reindexLocked(p)
	}
	t.mu.Unlock()
	switch {
	case n < want:
		return int(n), fmt.Errorf("memory: piece %d of torrent %s: bytes [%d, %d) not resident: %w",
			p.index, t.ih, off+n, off+want, io.ErrUnexpectedEOF)
	case want < int64(len(b)):
		return int(n), io.EOF
	}
	return int(n), nil
}

// WriteTo writes the whole piece to w; the torrent client hashes pieces
// through it. The piece is pinned meanwhile: it is not evicted and writes
// to it wait. If part of the piece is not held it writes the bytes before
// the gap and returns an error wrapping io.ErrUnexpectedEOF; ErrClosed
// after Close; otherwise the error of w.
func (p *piece) WriteTo(w io.Writer) (int64, error) {
	t, c := p.t, p.t.c
	t.mu.Lock()
	if t.closed.Load() {
		t.mu.Unlock()
		return 0, ErrClosed
	}
	n := p.validLocked(0, p.length)
	p.pins++
	p.touchLocked()
	t.reindexLocked(p) // out of the index while pinned
	t.mu.Unlock()

	// Buffers of a pinned piece are neither freed nor replaced, and writers
	// wait for the pin, so they are read without the lock.
	var written int64
	var err error
	for j := 0; written < n && err == nil; j++ {
		chunk := p.blocks[j].buf[:min(c.blockSize, n-written)]
		var k int
		k, err = w.Write(chunk)
		written += int64(k)
	}
	p.unpin()
	if err != nil {
		return written, err
	}
	if n < p.length {
		return written, fmt.Errorf("memory: piece %d of torrent %s: bytes [%d, %d) not resident: %w",
			p.index, t.ih, n, p.length, io.ErrUnexpectedEOF)
	}
	return written, nil
}

func (p *piece) unpin() {
	t := p.t
	t.mu.Lock()
	p.pins--
	if p.pins == 0 && t.closed.Load() {
		t.freeLocked(p)
	} else {
		t.reindexLocked(p)
	}
	t.mu.Unlock()
	t.c.space.broadcast()
}

// MarkComplete records that the piece passed its hash check. If part of the
// piece was evicted meanwhile it stays incomplete, the torrent client is
// told so through the notifier goroutine, and the error says which piece.
// ErrClosed after Close.
func (p *piece) MarkComplete() error {
	t := p.t
	t.mu.Lock()
	if t.closed.Load() {
		t.mu.Unlock()
		return ErrClosed
	}
	whole := p.validLocked(0, p.length) == p.length
	p.complete = whole
	p.served = p.served && !whole
	if whole {
		p.touchLocked()
	}
	t.reindexLocked(p)
	t.mu.Unlock()
	if whole && t.lb.Contains(p.index) {
		t.c.updateReported()
	}
	if !whole {
		t.c.notifier.add(t.ih, p.index)
		return fmt.Errorf("memory: marking piece %d of torrent %s complete: data no longer resident: %w",
			p.index, t.ih, io.ErrUnexpectedEOF)
	}
	return nil
}

// MarkNotComplete records that the piece failed its hash check (or was
// found missing). A piece written whole forgets its bytes, which are wrong,
// keeping its blocks for the bytes peers send again (see
// Torrent.ReadUnverified). ErrClosed after Close.
func (p *piece) MarkNotComplete() error {
	t := p.t
	t.mu.Lock()
	if t.closed.Load() {
		t.mu.Unlock()
		return ErrClosed
	}
	p.complete = false
	// Only a torrent whose incomplete pieces are read (OnUnverifiedFailure
	// set) forgets the bytes of a failed piece; for the others
	// MarkNotComplete is a flag, as the storage interface's own tests expect.
	f := t.onUnverifiedFailure.Load()
	served := f != nil && p.hashFailedLocked()
	t.reindexLocked(p)
	t.mu.Unlock()
	if served {
		(*f)(p.index)
	}
	return nil
}

// Completion reports whether the piece is complete and resident; after
// Close it carries ErrClosed. It is Ok (known), so that the torrent client
// never queues a hash check of pieces we do not hold, except for a piece
// evicted while complete that no readahead covers while the torrent has
// readaheads: that one answers unknown (Ok false), until a readahead
// covers it again, when Options.OnEvict gets it once more so the client
// reads its completion again (known, incomplete).
//
// Why: anacrolix v1.59.1 starts a request update on every connection whose
// peer has a piece it learns is incomplete (Torrent.onIncompletePiece),
// even with requests outstanding, but not for a piece of unknown
// completion. An update that can add no request (the connection's queue
// full, or nothing else wanted) sets the connection's request budget
// (nominalMaxRequests, twice the requests the last update added) to one,
// and it grows back only by doubling once per answered batch. A streaming
// cache evicts a piece for every piece it downloads, so this reset the
// budget again and again; against a seeder that answers a batch per
// bandwidth pulse (Transmission 3.00, 500 ms) a 4 MiB cache read 0.7 MB/s.
// Nobody wants a piece outside every readahead, so the client need not
// know it is incomplete until a readahead wants it.
func (p *piece) Completion() storage.Completion {
	t := p.t
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed.Load() {
		return storage.Completion{Err: ErrClosed}
	}
	p.hidden = p.gone && !p.complete && len(t.readaheads) > 0 && !t.coveredLocked(p.index)
	if p.hidden {
		return storage.Completion{}
	}
	return storage.Completion{Ok: true, Complete: p.complete}
}

// touchLocked makes p the most recently used piece. The clock is shared by
// every torrent, so it only ticks when p is not already the newest: a run
// of reads or writes on one piece costs one shared increment, not one each.
func (p *piece) touchLocked() {
	c := p.t.c
	if p.lastUse != c.clock.Load() {
		p.lastUse = c.clock.Inc()
	}
}
