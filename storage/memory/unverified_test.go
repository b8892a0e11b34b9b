package memory

import (
	"errors"
	"sync"
	"testing"

	"go.uber.org/atomic"
)

// TestReadUnverified checks that ReadUnverified returns the run of written
// bytes from an offset, before the piece is verified, and nothing where
// nothing is written.
func TestReadUnverified(t *testing.T) {
	const pl = 64 << 10
	c := newTestClient(t, Options{Capacity: 1 << 20})
	tt, info := openTest(t, c, 1, pl, 2)
	mt, ok := c.Torrent(ihOf(1))
	if !ok {
		t.Fatal("Torrent: not found")
	}
	p := tt.Piece(info.Piece(1))
	chunk := make([]byte, 16<<10)
	write := func(off int64) {
		t.Helper()
		fill(chunk, 1, pl+off)
		if _, err := p.WriteAt(chunk, off); err != nil {
			t.Fatalf("WriteAt(%d): %v", off, err)
		}
	}
	write(0)
	write(32 << 10) // a gap at [16 KiB, 32 KiB)

	buf := make([]byte, pl)
	for _, tc := range []struct {
		name    string
		off     int64
		size    int
		wantN   int
		wantOff int64
	}{
		{"prefix up to the gap", 0, pl, 16 << 10, 0},
		{"inside the prefix", 100, pl, 16<<10 - 100, 100},
		{"shorter buffer", 100, 50, 50, 100},
		{"in the gap", 20 << 10, pl, 0, 0},
		{"span after the gap", 32 << 10, pl, 16 << 10, 32 << 10},
		{"end of the piece", pl, pl, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := mt.ReadUnverified(1, tc.off, buf[:tc.size])
			if err != nil || n != tc.wantN {
				t.Fatalf("ReadUnverified(1, %d): got (%d, %v); want (%d, nil)", tc.off, n, err, tc.wantN)
			}
			if err := checkPattern(buf[:n], 1, pl+tc.wantOff); err != nil {
				t.Error(err)
			}
		})
	}

	for _, tc := range []struct {
		name  string
		piece int
		off   int64
	}{
		{"negative piece", -1, 0},
		{"piece past the end", 2, 0},
		{"negative offset", 0, -1},
		{"offset past the piece", 0, pl + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := mt.ReadUnverified(tc.piece, tc.off, buf); !errors.Is(err, ErrOutOfRange) {
				t.Errorf("ReadUnverified(%d, %d): got %v; want ErrOutOfRange", tc.piece, tc.off, err)
			}
		})
	}

	mt.Close()
	if _, err := mt.ReadUnverified(1, 0, buf); !errors.Is(err, ErrClosed) {
		t.Errorf("ReadUnverified after Close: got %v; want ErrClosed", err)
	}
	select {
	case <-mt.Written(1):
	default:
		t.Error("Written after Close: channel open; want closed")
	}
}

// TestWrittenWakes checks that the channel of Written closes at the next
// write of its piece, and only of its piece.
func TestWrittenWakes(t *testing.T) {
	c := newTestClient(t, Options{Capacity: 1 << 20})
	tt, info := openTest(t, c, 1, 64<<10, 2)
	mt, _ := c.Torrent(ihOf(1))
	ch := mt.Written(1)
	if _, err := tt.Piece(info.Piece(0)).WriteAt(make([]byte, 100), 0); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
		t.Fatal("Written(1) closed by a write of piece 0")
	default:
	}
	if _, err := tt.Piece(info.Piece(1)).WriteAt(make([]byte, 100), 0); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	default:
		t.Fatal("Written(1) still open after a write of piece 1")
	}
}

// TestHashFailureForgetsBytes checks that a piece written whole that fails
// its hash forgets its bytes, that the failure is reported when
// ReadUnverified returned bytes of it, and that neither a piece that passes
// nor a partial one found incomplete is reported.
func TestHashFailureForgetsBytes(t *testing.T) {
	const pl = 64 << 10
	c := newTestClient(t, Options{Capacity: 1 << 20})
	tt, info := openTest(t, c, 1, pl, 4)
	mt, _ := c.Torrent(ihOf(1))
	var failed []int
	mt.OnUnverifiedFailure(func(i int) { failed = append(failed, i) })
	buf := make([]byte, pl)

	// Piece 0: read before its hash, then fails it.
	writePiece(t, tt, info, 1, 0)
	if n, err := mt.ReadUnverified(0, 0, buf); n != pl || err != nil {
		t.Fatalf("ReadUnverified(0): got (%d, %v); want (%d, nil)", n, err, pl)
	}
	if err := tt.Piece(info.Piece(0)).MarkNotComplete(); err != nil {
		t.Fatal(err)
	}
	if n, err := mt.ReadUnverified(0, 0, buf); n != 0 || err != nil {
		t.Errorf("ReadUnverified(0) after a failed hash: got (%d, %v); want (0, nil)", n, err)
	}
	// Written again, the new bytes are read.
	writePiece(t, tt, info, 1, 0)
	if n, err := mt.ReadUnverified(0, 0, buf); n != pl || err != nil {
		t.Errorf("ReadUnverified(0) after writing again: got (%d, %v); want (%d, nil)", n, err, pl)
	}

	// Piece 1: read before its hash, then passes it.
	writePiece(t, tt, info, 1, 1)
	mt.ReadUnverified(1, 0, buf)
	if err := tt.Piece(info.Piece(1)).MarkComplete(); err != nil {
		t.Fatal(err)
	}
	// Piece 2: fails its hash, never read.
	writePiece(t, tt, info, 1, 2)
	tt.Piece(info.Piece(2)).MarkNotComplete()

	// Piece 3: partly written and read, then found incomplete (its hash
	// failed for missing bytes): not a failure of its bytes, kept.
	if _, err := tt.Piece(info.Piece(3)).WriteAt(make([]byte, 100), 0); err != nil {
		t.Fatal(err)
	}
	mt.ReadUnverified(3, 0, buf)
	tt.Piece(info.Piece(3)).MarkNotComplete()
	if n, _ := mt.ReadUnverified(3, 0, buf); n != 100 {
		t.Errorf("ReadUnverified(3) of a partial piece found incomplete: got %d bytes; want 100", n)
	}

	if len(failed) != 1 || failed[0] != 0 {
		t.Errorf("failures reported %v; want [0]", failed)
	}
	if n, _ := mt.ReadUnverified(2, 0, buf); n != 0 {
		t.Errorf("ReadUnverified(2) after its failed hash: got %d bytes; want 0", n)
	}
	if n, _ := mt.ReadUnverified(1, 0, buf); n != pl {
		t.Errorf("ReadUnverified(1) of a complete piece: got %d bytes; want %d", n, pl)
	}
}

// TestReadUnverifiedConcurrent reads a piece while its chunks are written
// and evicted: every byte a read returns is the one written there.
func TestReadUnverifiedConcurrent(t *testing.T) {
	const pl = 256 << 10
	// Room for two pieces of four: writes evict.
	c := newTestClient(t, Options{Capacity: 2 * pl})
	tt, info := openTest(t, c, 1, pl, 4)
	mt, _ := c.Torrent(ihOf(1))
	var done atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		defer done.Store(true)
		chunk := make([]byte, 16<<10)
		for round := 0; round < 20; round++ {
			for i := range 4 {
				p := tt.Piece(info.Piece(i))
				for off := int64(0); off < pl; off += int64(len(chunk)) {
					fill(chunk, 1, int64(i)*pl+off)
					if _, err := p.WriteAt(chunk, off); err != nil {
						t.Errorf("WriteAt(piece %d, %d): %v", i, off, err)
						return
					}
				}
			}
		}
	})
	buf := make([]byte, pl)
	var got int64
	for !done.Load() {
		for i := range 4 {
			off := int64(i*4096) % pl
			n, err := mt.ReadUnverified(i, off, buf)
			if err != nil {
				t.Fatalf("ReadUnverified(%d, %d): %v", i, off, err)
			}
			if err := checkPattern(buf[:n], 1, int64(i)*pl+off); err != nil {
				t.Fatalf("piece %d: %v", i, err)
			}
			got += int64(n)
		}
	}
	wg.Wait()
	t.Logf("%d bytes read while writing", got)
}
