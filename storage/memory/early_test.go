package memory

import (
	"bytes"
	"fmt"
	"testing"
)

// TestWriteEarly checks that WriteEarly writes a chunk nobody wrote, so
// that ReadUnverified and Has see it, and writes nothing over bytes
// already written nor into a complete piece (which stays complete); that
// the client's own copy of the chunk replaces it, and when it differs
// from early bytes a reader had, the OnUnverifiedFailure function hears of
// the piece (once), while an equal copy tells nothing; with storage blocks
// smaller than, equal to and larger than a chunk.
func TestWriteEarly(t *testing.T) {
	const chunk = 16 << 10
	for _, bs := range []int{4 << 10, 16 << 10, 64 << 10} {
		t.Run(fmt.Sprintf("block %d KiB", bs>>10), func(t *testing.T) {
			c := newTestClient(t, Options{Capacity: 1 << 20, BlockSize: bs})
			tt, info := openTest(t, c, 1, 4*chunk, 2)
			mt, _ := c.Torrent(ihOf(1))
			a, b := bytes.Repeat([]byte{1}, chunk), bytes.Repeat([]byte{2}, chunk)
			if mt.Has(0, chunk, chunk) {
				t.Fatal("Has before any write")
			}
			if ok, err := mt.WriteEarly(0, chunk, a); !ok || err != nil {
				t.Fatalf("WriteEarly of a fresh chunk: %v, %v; want true, nil", ok, err)
			}
			if !mt.Has(0, chunk, chunk) || mt.Has(0, 0, chunk) {
				t.Fatal("Has: want the chunk written early, and not the one before it")
			}
			if ok, err := mt.WriteEarly(0, chunk, b); ok || err != nil {
				t.Fatalf("WriteEarly over written bytes: %v, %v; want false, nil", ok, err)
			}
			got := make([]byte, chunk)
			if n, err := mt.ReadUnverified(0, chunk, got); n != chunk || err != nil || !bytes.Equal(got, a) {
				t.Fatalf("ReadUnverified: %d bytes, %v; want the first early write", n, err)
			}
			var failed []int
			mt.OnUnverifiedFailure(func(piece int) { failed = append(failed, piece) })
			// An early chunk nobody read, then one a reader had (above).
			if ok, err := mt.WriteEarly(0, 2*chunk, a); !ok || err != nil {
				t.Fatalf("WriteEarly of a second chunk: %v, %v", ok, err)
			}
			// The client's own copies replace the early ones; its other
			// chunks go in as always.
			p := tt.Piece(info.Piece(0))
			for off := int64(0); off < 4*chunk; off += chunk {
				if _, err := p.WriteAt(b, off); err != nil {
					t.Fatal(err)
				}
			}
			for off := int64(0); off < 4*chunk; off += chunk {
				if n, err := mt.ReadUnverified(0, off, got); n != chunk || err != nil || !bytes.Equal(got, b) {
					t.Fatalf("ReadUnverified at %d after the client's copies: %d bytes, %v; want the client's", off, n, err)
				}
			}
			if len(failed) != 1 || failed[0] != 0 {
				t.Fatalf("OnUnverifiedFailure heard of pieces %v; want [0]: the reader had early bytes the client's copy differs from", failed)
			}
			// A client's copy equal to the early chunk tells nothing.
			if ok, err := mt.WriteEarly(1, 0, b); !ok || err != nil {
				t.Fatalf("WriteEarly into piece 1: %v, %v", ok, err)
			}
			mt.ReadUnverified(1, 0, got)
			if _, err := tt.Piece(info.Piece(1)).WriteAt(b, 0); err != nil {
				t.Fatal(err)
			}
			if len(failed) != 1 {
				t.Fatalf("OnUnverifiedFailure heard of pieces %v after an equal copy; want [0] still", failed)
			}
			if err := p.MarkComplete(); err != nil {
				t.Fatal(err)
			}
			if ok, err := mt.WriteEarly(0, 0, b); ok || err != nil {
				t.Fatalf("WriteEarly into a complete piece: %v, %v; want false, nil", ok, err)
			}
			if !p.Completion().Complete {
				t.Fatal("a complete piece became incomplete")
			}
			if _, err := mt.WriteEarly(5, 0, a); err == nil {
				t.Fatal("WriteEarly of piece 5 of 2: no error")
			}
		})
	}
}
