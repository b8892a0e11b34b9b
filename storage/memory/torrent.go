package memory

import (
	"fmt"
	"sync"

	g "github.com/anacrolix/generics"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"
	"go.uber.org/atomic"

	"github.com/memtorrent/memtorrent/lookbehind"
)

// Torrent is the storage of one torrent opened by a Client. It is safe for
// concurrent use. Its piece handles stay valid after Close and answer
// ErrClosed.
type Torrent struct {
	c           *Client       // never changes
	ih          metainfo.Hash // never changes
	pieceLength int64         // never changes
	length      int64         // never changes

	lb *lookbehind.Set // never changes; changed under lbMu, read anywhere

	closed         atomic.Bool
	residentPieces atomic.Int64 // pieces with at least one block
	residentBytes  atomic.Int64 // bytes of blocks held
	readaheadBytes atomic.Int64 // bytes covered by readaheads
	// lbBytes is the bytes of the lookbehind pieces held whole (see
	// countLookbehindLocked); written under mu, loaded without a lock by
	// updateReported and evictOne.
	lbBytes atomic.Int64
	// onUnverifiedFailure is the function set with OnUnverifiedFailure, or nil.
	onUnverifiedFailure atomic.Pointer[func(int)]
	// leafRefusals counts reads that stopped at a leaf whose bytes did
	// not match its hash (see RefusedLeaves).
	leafRefusals atomic.Int64

	mu         sync.Mutex // guards the fields below and every piece's guarded fields
	pieces     []piece
	resident   []int32 // indices of pieces holding blocks; see piece.pos
	readaheads []*Readahead
	pins       []*Pin
	ev         evictIndex // the evictable pieces, by slot
	lbHeld     int        // lookbehind pieces held whole: those with piece.lbHeld
	lbHits     int64      // readahead moves back onto a held lookbehind piece
	lbMisses   int64      // readahead moves back onto a lookbehind piece not held
	// spare holds block indexes of evicted pieces for reuse, so that the
	// per-piece metadata follows what is resident, not the torrent's size.
	spare [][]block

	// lbMu serialises changes of the lookbehind set, and guards the fields
	// below. It is taken before mu, never while holding it. A change
	// replaces the set, then reindexes under mu the resident pieces that
	// entered or left it; between the two they are ranked as before the
	// change, as if the eviction had come first.
	lbMu sync.Mutex
	// lbRange is the lookbehind set when lbIsRange, so that moving it
	// reindexes only the pieces that entered or left it.
	lbRange   [2]int
	lbIsRange bool
	lbOld     []int // scratch for the lookbehind set's members
}

func newTorrent(c *Client, info *metainfo.Info, ih metainfo.Hash) *Torrent {
	t := &Torrent{
		c:           c,
		ih:          ih,
		pieceLength: info.PieceLength,
		length:      info.TotalLength(),
	}
	n := info.NumPieces()
	t.lb, _ = lookbehind.New(max(n, 1))
	t.pieces = make([]piece, n)
	t.ev.init(n)
	t.lbIsRange = true
	for i := range t.pieces {
		p := &t.pieces[i]
		p.t = t
		p.index = i
		p.length = min(t.pieceLength, t.length-int64(i)*t.pieceLength)
		p.pos = -1
	}
	return t
}

// InfoHash returns the torrent's info hash.
func (t *Torrent) InfoHash() metainfo.Hash { return t.ih }

// pieceImpl is TorrentImpl.PieceWithHash. It returns a handle kept in the
// torrent, so it does not allocate.
func (t *Torrent) pieceImpl(p metainfo.Piece, _ g.Option[[]byte]) storage.PieceImpl {
	i := p.Index()
	if i < 0 || i >= len(t.pieces) {
		return badPiece{fmt.Errorf("memory: torrent %s: piece %d out of range [0, %d): %w", t.ih, i, len(t.pieces), ErrOutOfRange)}
	}
	return &t.pieces[i]
}

// Close frees the torrent's blocks and removes it from its Client; the other
// torrents are untouched. Blocks pinned by a read in flight are freed when
// the read ends. It is idempotent and returns nil.
func (t *Torrent) Close() error {
	if t.closed.Swap(true) {
		return nil
	}
	t.mu.Lock()
	for len(t.resident) > 0 {
		p := &t.pieces[t.resident[len(t.resident)-1]]
		if p.pins > 0 {
			// Freed by the last unpin; take it off the list now.
			t.unlistLocked(p)
			continue
		}
		t.freeLocked(p)
	}
	for _, w := range t.readaheads {
		w.closed = true
	}
	t.readaheads = nil
	for _, p := range t.pins {
		p.released = true
		t.c.pinnedBytes.Sub(int64(p.end-p.begin) * t.pieceLength)
	}
	t.pins = nil
	t.mu.Unlock()
	t.c.removeTorrent(t)
	t.c.space.broadcast()
	t.c.updateReported()
	return nil
}

// listLocked puts p on the resident list.
func (t *Torrent) listLocked(p *piece) {
	if p.pos >= 0 {
		return
	}
	p.pos = int32(len(t.resident))
	p.gone = false
	t.resident = append(t.resident, int32(p.index))
	t.residentPieces.Inc()
}

// unlistLocked takes p off the resident list.
func (t *Torrent) unlistLocked(p *piece) {
	if p.pos < 0 {
		return
	}
	last := len(t.resident) - 1
	moved := t.resident[last]
	t.resident[p.pos] = moved
	t.pieces[moved].pos = p.pos
	t.resident = t.resident[:last]
	p.pos = -1
	t.residentPieces.Dec()
	t.countLookbehindLocked(p)
	t.unindexLocked(p)
}

// freeLocked returns every block of p to the pool and forgets p's data.
// p must not be pinned.
func (t *Torrent) freeLocked(p *piece) int64 {
	var freed int64
	for j := range p.blocks {
		b := &p.blocks[j]
		if b.buf != nil {
			t.c.budget.put(b.buf)
			b.buf = nil
			freed += t.c.blockSize
		}
		b.n = 0
		b.spans = nil
	}
	p.complete = false
	p.full = 0
	p.early = nil // the bytes written early are gone
	if p.blocks != nil && len(p.blocks) == t.blocksPerPiece() {
		t.spare = append(t.spare, p.blocks)
	}
	p.blocks = nil
	t.residentBytes.Sub(freed)
	t.unlistLocked(p)
	return freed
}

func (t *Torrent) blocksPerPiece() int {
	return int((t.pieceLength + t.c.blockSize - 1) / t.c.blockSize)
}

// indexLocked returns a zeroed block index of n blocks, reusing a spare
// one when it fits.
func (t *Torrent) indexLocked(n int) []block {
	if k := len(t.spare); k > 0 && n == t.blocksPerPiece() {
		b := t.spare[k-1]
		t.spare[k-1] = nil
		t.spare = t.spare[:k-1]
		return b
	}
	return make([]block, n)
}

// badPiece answers every call with its error. It is only returned for a
// piece index outside the torrent, which the torrent client never asks for.
type badPiece struct{ err error }

func (b badPiece) ReadAt([]byte, int64) (int, error)  { return 0, b.err }
func (b badPiece) WriteAt([]byte, int64) (int, error) { return 0, b.err }
func (b badPiece) MarkComplete() error                { return b.err }
func (b badPiece) MarkNotComplete() error             { return b.err }
func (b badPiece) Completion() storage.Completion     { return storage.Completion{Err: b.err} }
