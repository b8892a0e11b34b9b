package lookbehind

import (
	"math"
	"strings"
	"testing"
)

func TestPieces(t *testing.T) {
	// One file filling a torrent of 1050 bytes: pieces 0..9 of 100 bytes and
	// a short last piece 10 of 50 bytes.
	single := File{PieceLength: 100, TorrentLength: 1050, Offset: 0, Length: 1050}
	// Three files in a torrent of 1000 bytes: A [0,250), B [250,730),
	// C [730,1000). B starts in piece 2, shared with A, and ends in piece 7,
	// shared with C.
	fileB := File{PieceLength: 100, TorrentLength: 1000, Offset: 250, Length: 480}
	fileC := File{PieceLength: 100, TorrentLength: 1000, Offset: 730, Length: 270}

	tests := []struct {
		name     string
		f        File
		playhead int64
		budget   int64
		want     Range
	}{
		{"at start of file", single, 0, 1000, Range{0, 0}},
		{"inside first piece", single, 50, 1000, Range{0, 0}},
		{"at start of second piece", single, 100, 1000, Range{0, 1}},
		{"budget of three pieces", single, 550, 300, Range{2, 5}},
		{"budget rounds down to whole pieces", single, 550, 299, Range{3, 5}},
		{"budget of exactly one piece", single, 550, 100, Range{4, 5}},
		{"budget smaller than one piece", single, 550, 99, Range{5, 5}},
		{"budget zero", single, 550, 0, Range{5, 5}},
		{"budget larger than file", single, 550, 1 << 40, Range{0, 5}},
		{"budget of max int64", single, 550, math.MaxInt64, Range{0, 5}},
		{"playhead in short last piece", single, 1020, 200, Range{8, 10}},
		{"end of file includes short last piece", single, 1050, 200, Range{9, 11}},
		{"end of file, whole file", single, 1050, 1 << 40, Range{0, 11}},
		{"mid-piece start, at start", fileB, 0, 1000, Range{2, 2}},
		{"mid-piece start, in shared piece", fileB, 10, 1000, Range{2, 2}},
		{"mid-piece start, shared piece behind", fileB, 60, 1000, Range{2, 3}},
		{"mid-piece start, large budget stops at file", fileB, 300, 1000, Range{2, 5}},
		{"mid-piece start, small budget", fileB, 300, 200, Range{3, 5}},
		{"mid-piece end, in shared last piece", fileB, 479, 1000, Range{2, 7}},
		{"mid-piece end, end of file", fileB, 480, 1000, Range{2, 8}},
		{"mid-piece end, end of file, one piece", fileB, 480, 100, Range{7, 8}},
		{"last file, end of torrent", fileC, 270, 1000, Range{7, 10}},
		{"empty file mid-piece", File{PieceLength: 100, TorrentLength: 1000, Offset: 250}, 0, 1000, Range{2, 2}},
		{"empty file at end of torrent", File{PieceLength: 100, TorrentLength: 1000, Offset: 1000}, 0, 1000, Range{10, 10}},
		{"piece length one", File{PieceLength: 1, TorrentLength: 10, Length: 10}, 7, 3, Range{4, 7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Pieces(tt.f, tt.playhead, tt.budget)
			if err != nil {
				t.Fatalf("Pieces(%+v, %d, %d): got error %v; want %v", tt.f, tt.playhead, tt.budget, err, tt.want)
			}
			if got != tt.want {
				t.Errorf("Pieces(%+v, %d, %d): got %v; want %v", tt.f, tt.playhead, tt.budget, got, tt.want)
			}
		})
	}
}

func TestPiecesErrors(t *testing.T) {
	ok := File{PieceLength: 100, TorrentLength: 1000, Offset: 250, Length: 480}
	with := func(change func(*File)) File {
		f := ok
		change(&f)
		return f
	}
	tests := []struct {
		name     string
		f        File
		playhead int64
		budget   int64
		named    string // what the error must name
	}{
		{"piece length zero", with(func(f *File) { f.PieceLength = 0 }), 0, 0, "piece length 0"},
		{"piece length negative", with(func(f *File) { f.PieceLength = -100 }), 0, 0, "piece length -100"},
		{"torrent length negative", File{PieceLength: 1, TorrentLength: -1}, 0, 0, "torrent length -1"},
		{"offset negative", with(func(f *File) { f.Offset = -1 }), 0, 0, "offset -1"},
		{"length negative", with(func(f *File) { f.Length = -2 }), 0, 0, "length -2"},
		{"offset past torrent", with(func(f *File) { f.Offset, f.Length = 1001, 0 }), 0, 0, "offset 1001"},
		{"file runs past torrent", with(func(f *File) { f.Length = 751 }), 0, 0, "length 751"},
		{"file length overflows", with(func(f *File) { f.Length = math.MaxInt64 }), 0, 0, "length 9223372036854775807"},
		{"playhead negative", ok, -1, 0, "playhead -1"},
		{"playhead past end of file", ok, 481, 0, "playhead 481"},
		{"budget negative", ok, 10, -5, "budget -5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Pieces(tt.f, tt.playhead, tt.budget)
			if err == nil {
				t.Fatalf("Pieces(%+v, %d, %d): got %v, nil error; want an error naming %q", tt.f, tt.playhead, tt.budget, got, tt.named)
			}
			if !strings.Contains(err.Error(), tt.named) {
				t.Errorf("got error %q; want it to name %q", err, tt.named)
			}
			if got != (Range{}) {
				t.Errorf("got %v with the error; want the zero Range", got)
			}
		})
	}
}

// FuzzPieces checks the promises of Pieces on any input: an error exactly
// when the input is invalid, and otherwise a range of the file's pieces that
// lies wholly before the playhead's piece, fits the budget in whole pieces,
// and is as long as the budget and the file allow.
func FuzzPieces(f *testing.F) {
	f.Add(int64(100), int64(1000), int64(250), int64(480), int64(300), int64(200))
	f.Add(int64(1<<18), int64(5<<30), int64(0), int64(5<<30), int64(5<<30), int64(64<<20))
	f.Add(int64(1), int64(math.MaxInt64), int64(math.MaxInt64), int64(0), int64(0), int64(math.MaxInt64))
	f.Fuzz(func(t *testing.T, pl, tl, off, length, playhead, budget int64) {
		file := File{PieceLength: pl, TorrentLength: tl, Offset: off, Length: length}
		r, err := Pieces(file, playhead, budget)
		valid := pl > 0 && tl >= 0 && off >= 0 && length >= 0 && off <= tl && length <= tl-off &&
			playhead >= 0 && playhead <= length && budget >= 0
		if valid != (err == nil) {
			t.Fatalf("Pieces(%+v, %d, %d): got error %v; want an error: %v", file, playhead, budget, err, !valid)
		}
		if err != nil {
			return
		}
		first := off / pl // the file's first piece
		var end int64     // where a non-empty result must end
		if playhead < length {
			end = (off + playhead) / pl
		} else if length > 0 {
			end = (off+length-1)/pl + 1
		}
		begin, stop := int64(r.Begin), int64(r.End)
		switch {
		case begin > stop:
			t.Fatalf("got %v; want Begin <= End", r)
		case r.Len() == 0:
			// An empty result is right only when nothing fits.
			if playhead > 0 && budget/pl > 0 && end > first {
				t.Fatalf("Pieces(%+v, %d, %d): got empty %v; want pieces up to %d", file, playhead, budget, r, end)
			}
		case begin < first:
			t.Fatalf("Pieces(%+v, %d, %d): got %v; want no piece before the file's first piece %d", file, playhead, budget, r, first)
		case stop != end:
			t.Fatalf("Pieces(%+v, %d, %d): got %v; want it to end at %d", file, playhead, budget, r, end)
		case stop-begin > budget/pl:
			t.Fatalf("Pieces(%+v, %d, %d): got %d pieces; want at most %d", file, playhead, budget, r.Len(), budget/pl)
		case stop-begin < budget/pl && begin != first:
			t.Fatalf("Pieces(%+v, %d, %d): got %v; want %d pieces or back to the file's first piece %d", file, playhead, budget, r, budget/pl, first)
		}
	})
}
