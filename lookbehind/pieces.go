package lookbehind

import (
	"fmt"
	"math"
)

// File places one file of a torrent in the torrent's byte and piece space.
// With anacrolix/torrent: PieceLength is info.PieceLength, TorrentLength is
// info.TotalLength(), Offset and Length are (*torrent.File).Offset() and
// Length(). In a multi-file torrent a file may start or end in the middle of
// a piece it shares with its neighbours.
type File struct {
	PieceLength   int64 // bytes per piece; the torrent's last piece may be shorter
	TorrentLength int64 // bytes in the whole torrent
	Offset        int64 // the file's first byte, counted from the torrent's start
	Length        int64 // bytes in the file
}

// Range is the run of pieces [Begin, End). It is empty when Begin == End.
type Range struct {
	Begin, End int
}

// Len returns the number of pieces in r.
func (r Range) Len() int { return r.End - r.Begin }

// Pieces returns the pieces to protect behind a playhead: the whole pieces
// before the piece that holds byte playhead of file f, as many as budget bytes
// pay for at PieceLength each, nearest to the playhead first, never a piece
// that holds none of the file's bytes. playhead counts bytes from the file's
// start; playhead == f.Length means the end of the file, where nothing is left
// to read and every piece of the file is behind the playhead.
//
// The piece that holds the playhead is left out on purpose: it is the first
// piece of the reader's readahead, and counting it here too would
// spend the budget on a piece that is kept anyway. The budget is a hard bound,
// rounded down to whole pieces: the result never holds more than
// budget/PieceLength pieces, because the storage keeps whole pieces and the
// lookbehind share of its capacity must not eat into the readahead share. So
// a budget smaller than one piece protects nothing; choose a budget of at
// least one piece. Bytes of the playhead's own piece that lie behind the
// playhead are not counted against the budget.
//
// The result is empty when the playhead is at the file's start, or when the
// budget is below one piece. Pieces returns an error, and a zero Range, if
// PieceLength is not positive, the file does not lie within the torrent, the
// playhead is outside [0, f.Length], or budget is negative. Pieces is a pure
// function: it allocates nothing unless it fails.
func Pieces(f File, playhead, budget int64) (Range, error) {
	if err := f.check(); err != nil {
		return Range{}, fmt.Errorf("lookbehind: computing pieces: %w", err)
	}
	if playhead < 0 || playhead > f.Length {
		return Range{}, fmt.Errorf("lookbehind: computing pieces: playhead %d outside the file's %d bytes", playhead, f.Length)
	}
	if budget < 0 {
		return Range{}, fmt.Errorf("lookbehind: computing pieces: budget %d is negative", budget)
	}
	pl := f.PieceLength
	first := f.Offset / pl // the file's first piece
	if playhead == 0 {
		return Range{int(first), int(first)}, nil
	}
	var end int64
	if playhead < f.Length {
		end = (f.Offset + playhead) / pl // the piece holding the playhead
	} else {
		end = (f.Offset+f.Length-1)/pl + 1 // one past the file's last piece
	}
	begin := max(first, end-budget/pl)
	return Range{int(begin), int(end)}, nil
}

// check reports what is wrong with f, if anything.
func (f File) check() error {
	switch {
	case f.PieceLength <= 0:
		return fmt.Errorf("piece length %d is not positive", f.PieceLength)
	case f.TorrentLength < 0:
		return fmt.Errorf("torrent length %d is negative", f.TorrentLength)
	case f.Offset < 0 || f.Length < 0 || f.Offset > f.TorrentLength || f.Length > f.TorrentLength-f.Offset:
		return fmt.Errorf("file at offset %d of length %d lies outside the torrent's %d bytes", f.Offset, f.Length, f.TorrentLength)
	case (f.TorrentLength-1)/f.PieceLength >= math.MaxInt:
		return fmt.Errorf("torrent of %d bytes in pieces of %d has too many pieces for an int", f.TorrentLength, f.PieceLength)
	}
	return nil
}
