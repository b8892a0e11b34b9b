package memory

import (
	"context"
	"fmt"
	"testing"

	g "github.com/anacrolix/generics"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"
)

// pattern is the byte expected at offset off of torrent k: writers and
// readers agree on it without sharing buffers.
func pattern(k int, off int64) byte {
	x := uint64(off)*0x9E3779B97F4A7C15 + uint64(k+1)*0xBF58476D1CE4E5B9
	return byte(x >> 56)
}

func fill(b []byte, k int, off int64) {
	for i := range b {
		b[i] = pattern(k, off+int64(i))
	}
}

// checkPattern returns an error naming the first byte of b that is not the
// pattern of torrent k at off.
func checkPattern(b []byte, k int, off int64) error {
	for i := range b {
		if want := pattern(k, off+int64(i)); b[i] != want {
			return fmt.Errorf("byte at %d: got %#x; want %#x", off+int64(i), b[i], want)
		}
	}
	return nil
}

func testInfo(pieceLength int64, numPieces int, length int64) *metainfo.Info {
	return &metainfo.Info{
		Name:        "test",
		PieceLength: pieceLength,
		Length:      length,
		Pieces:      make([]byte, numPieces*metainfo.HashSize),
	}
}

func newTestClient(tb testing.TB, opts Options) *Client {
	tb.Helper()
	c, err := New(opts)
	if err != nil {
		tb.Fatalf("New(%+v): %v", opts, err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// openTest opens a torrent of numPieces pieces of pieceLength; the info hash
// is derived from k.
func openTest(tb testing.TB, c *Client, k int, pieceLength int64, numPieces int) (storage.Torrent, *metainfo.Info) {
	tb.Helper()
	info := testInfo(pieceLength, numPieces, pieceLength*int64(numPieces))
	var ih metainfo.Hash
	ih[0], ih[1] = byte(k), byte(k>>8)
	ti, err := c.OpenTorrent(context.Background(), info, ih)
	if err != nil {
		tb.Fatalf("OpenTorrent: %v", err)
	}
	return storage.Torrent{TorrentImpl: ti}, info
}

func ihOf(k int) metainfo.Hash {
	var ih metainfo.Hash
	ih[0], ih[1] = byte(k), byte(k>>8)
	return ih
}

// writePiece writes piece i of torrent k in 16 KiB chunks.
func writePiece(tb testing.TB, tt storage.Torrent, info *metainfo.Info, k, i int) {
	tb.Helper()
	p := tt.Piece(info.Piece(i))
	buf := make([]byte, 16<<10)
	base := int64(i) * info.PieceLength
	for off := int64(0); off < info.Piece(i).Length(); off += int64(len(buf)) {
		b := buf[:min(int64(len(buf)), info.Piece(i).Length()-off)]
		fill(b, k, base+off)
		if n, err := p.WriteAt(b, off); err != nil || n != len(b) {
			tb.Fatalf("WriteAt(piece %d, off %d): got (%d, %v); want (%d, nil)", i, off, n, err, len(b))
		}
	}
}

func completePiece(tb testing.TB, tt storage.Torrent, info *metainfo.Info, k, i int) {
	tb.Helper()
	writePiece(tb, tt, info, k, i)
	if err := tt.Piece(info.Piece(i)).MarkComplete(); err != nil {
		tb.Fatalf("MarkComplete(%d): %v", i, err)
	}
}

func isComplete(tt storage.Torrent, info *metainfo.Info, i int) bool {
	c := tt.Piece(info.Piece(i)).Completion()
	return c.Ok && c.Complete
}

var noHash = g.None[[]byte]()
