package memory

// TorrentStats is a snapshot of one torrent's storage.
type TorrentStats struct {
	Pieces         int             // pieces in the torrent
	PieceLength    int64           // bytes per piece (the last may be shorter)
	ResidentPieces int64           // pieces holding at least one block
	ResidentBytes  int64           // bytes of blocks held
	Readaheads     int             // open readaheads
	ReadaheadBytes int64           // bytes the readaheads cover
	Pins           int             // head/tail pins
	Lookbehind     LookbehindStats // the lookbehind set's figures
}

// Stats returns the torrent's figures. It waits for a change of the
// lookbehind set in flight, takes the torrent's lock briefly and does not
// allocate.
func (t *Torrent) Stats() TorrentStats {
	s := TorrentStats{
		Pieces:         len(t.pieces),
		PieceLength:    t.pieceLength,
		ResidentPieces: t.residentPieces.Load(),
		ResidentBytes:  t.residentBytes.Load(),
		ReadaheadBytes: t.readaheadBytes.Load(),
	}
	t.lbMu.Lock()
	t.mu.Lock()
	s.Readaheads, s.Pins = len(t.readaheads), len(t.pins)
	s.Lookbehind = t.lookbehindStatsLocked()
	t.mu.Unlock()
	t.lbMu.Unlock()
	return s
}

// PieceState describes one piece for a piece map. The bits combine.
type PieceState uint8

// Bits of a PieceState.
const (
	PieceResident   PieceState = 1 << iota // holds at least one block
	PieceComplete                          // verified and held whole
	PieceLookbehind                        // in the lookbehind set
	PieceReadahead                         // in a readahead
	PiecePlayhead                          // the first piece of a readahead
	PiecePinned                            // in a head/tail pin
)

// AppendPieceStates appends the state of every piece, in index order, to dst
// and returns it. It holds the torrent's lock for one pass over the pieces
// and allocates only if dst is too small.
func (t *Torrent) AppendPieceStates(dst []PieceState) []PieceState {
	t.mu.Lock()
	defer t.mu.Unlock()
	start := len(dst)
	for i := range t.pieces {
		p := &t.pieces[i]
		var s PieceState
		if p.pos >= 0 {
			s |= PieceResident
		}
		if p.complete {
			s |= PieceComplete
		}
		if t.lb.Contains(i) {
			s |= PieceLookbehind
		}
		dst = append(dst, s)
	}
	for _, w := range t.readaheads {
		for i := w.begin; i < w.end && i < len(t.pieces); i++ {
			dst[start+i] |= PieceReadahead
		}
		if w.begin < w.end && w.begin < len(t.pieces) {
			dst[start+w.begin] |= PiecePlayhead
		}
	}
	for _, p := range t.pins {
		for i := p.begin; i < p.end; i++ {
			dst[start+i] |= PiecePinned
		}
	}
	return dst
}
