package memory

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/anacrolix/torrent/storage"
)

// FuzzStorageOps runs a random sequence of storage operations (write, read,
// hash-read, mark complete / not complete, set capacity, close) against a
// model that remembers the last byte written at every offset. A read must
// never return a byte that was not written at that offset, nothing may
// panic, and Resident <= Capacity after every step.
func FuzzStorageOps(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add([]byte{0, 0, 0, 200, 0, 1, 0, 10, 1, 1, 0, 50, 2, 1, 5, 5})
	f.Add(bytes.Repeat([]byte{0, 2, 255, 255, 1, 2, 0, 0, 3, 2, 5, 0, 5, 1, 0, 0}, 8))
	f.Add([]byte{6, 0, 1, 0, 0, 0, 0, 9, 7, 0, 0, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		const (
			pl        = 40000 // not a multiple of the block size
			numPieces = 5
			length    = numPieces*pl - 1234 // a short last piece
		)
		c, err := New(Options{Capacity: 3 * 4096 * 10, BlockSize: 4096})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		info := testInfo(pl, numPieces, length)
		ti, err := c.OpenTorrent(t.Context(), info, ihOf(1))
		if err != nil {
			t.Fatal(err)
		}
		tt := storage.Torrent{TorrentImpl: ti}
		model := make([][]int16, numPieces) // -1: never written
		for i := range model {
			model[i] = make([]int16, info.Piece(i).Length())
			for j := range model[i] {
				model[i][j] = -1
			}
		}
		closed := false
		next := func() int {
			if len(ops) == 0 {
				return 0
			}
			b := ops[0]
			ops = ops[1:]
			return int(b)
		}
		buf := make([]byte, 3*4096)
		for len(ops) > 0 {
			op, i := next()%7, next()%numPieces
			p := tt.Piece(info.Piece(i)).PieceImpl
			plen := info.Piece(i).Length()
			off := int64(next()<<8|next()) % (plen + 10)
			n := next() * 48
			switch op {
			case 0: // write
				if off+int64(n) > plen {
					n = int(plen - off)
					if n < 0 {
						n = 0
					}
				}
				val := byte(next())
				b := buf[:n]
				for k := range b {
					b[k] = val + byte(k)
				}
				w, err := p.WriteAt(b, off)
				switch {
				case off > plen:
					if !errors.Is(err, ErrOutOfRange) {
						t.Fatalf("WriteAt at %d past the end of piece %d (length %d): got %v; want ErrOutOfRange", off, i, plen, err)
					}
					continue
				case closed && !errors.Is(err, ErrClosed):
					t.Fatalf("WriteAt after Close: got %v; want ErrClosed", err)
				case !closed && err != nil:
					t.Fatalf("WriteAt(%d, %d bytes at %d): %v", i, n, off, err)
				case err == nil:
					if w != n {
						t.Fatalf("WriteAt: wrote %d of %d", w, n)
					}
					for k := range b {
						model[i][off+int64(k)] = int16(b[k])
					}
				}
			case 1: // read
				b := buf[:min(n, len(buf))]
				got, err := p.ReadAt(b, off)
				if closed && !errors.Is(err, ErrClosed) {
					t.Fatalf("ReadAt after Close: got %v; want ErrClosed", err)
				}
				if got == 0 && err == nil && len(b) > 0 {
					t.Fatalf("ReadAt(%d bytes at %d): (0, nil)", len(b), off)
				}
				for k := 0; k < got; k++ {
					if want := model[i][off+int64(k)]; int16(b[k]) != want {
						t.Fatalf("ReadAt piece %d byte %d: got %d; want %d (-1: never written)", i, off+int64(k), b[k], want)
					}
				}
				if err != nil && !closed && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, ErrOutOfRange) {
					t.Fatalf("ReadAt: unexpected error %v", err)
				}
			case 2: // hash-read
				var out bytes.Buffer
				_, err := p.(io.WriterTo).WriteTo(&out)
				for k, v := range out.Bytes() {
					if want := model[i][k]; int16(v) != want {
						t.Fatalf("WriteTo piece %d byte %d: got %d; want %d", i, k, v, want)
					}
				}
				if closed != errors.Is(err, ErrClosed) {
					t.Fatalf("WriteTo: got %v with closed=%v", err, closed)
				}
			case 3:
				err := p.MarkComplete()
				if cpl := p.Completion(); err == nil && !closed && !cpl.Complete {
					t.Fatalf("MarkComplete succeeded but Completion is %+v", cpl)
				}
			case 4:
				p.MarkNotComplete()
				if cpl := p.Completion(); !closed && cpl.Complete {
					t.Fatalf("Completion after MarkNotComplete: %+v", cpl)
				}
			case 5:
				newCap := int64(next()%40+1) * 4096
				err := c.SetCapacity(newCap)
				if err == nil && c.Stats().Capacity != newCap {
					t.Fatalf("SetCapacity(%d) succeeded; Capacity %d", newCap, c.Stats().Capacity)
				}
			case 6:
				if next()%4 == 0 {
					c.Close()
					closed = true
				}
			}
			if s := c.Stats(); s.Resident > s.Capacity {
				t.Fatalf("Resident %d > Capacity %d", s.Resident, s.Capacity)
			}
		}
	})
}
