package memory

import (
	"io"
	"slices"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"
)

// BenchmarkBlocks compares mapped blocks with Go heap blocks in one run:
// each iteration runs the same batch of operations on a Client of each
// kind, alternately, and times both, so that load on the machine weighs on
// both alike. It reports each kind's ns per operation and their ratio
// (mmap/heap; 1 is parity).
func BenchmarkBlocks(b *testing.B) {
	const (
		mib   = 1 << 20
		chunk = 16 << 10
	)
	newPair := func(b *testing.B, capacity int64) [2]*Client {
		var cs [2]*Client
		for i := range cs {
			cs[i] = newTestClient(b, Options{Capacity: capacity})
			cs[i].budget.arena.heapOnly = i == 1
		}
		return cs
	}
	run := func(b *testing.B, perIter int, op [2]func()) {
		var took [2][]float64
		var ratio []float64
		for i := 0; b.Loop(); i++ {
			var d [2]float64
			for j := range op {
				k := (i + j) % 2 // alternate which kind goes first
				start := time.Now()
				op[k]()
				d[k] = float64(time.Since(start)) / float64(perIter)
			}
			took[0], took[1] = append(took[0], d[0]), append(took[1], d[1])
			ratio = append(ratio, d[0]/d[1])
		}
		// Medians: a preemption under load lands on one sample, not on
		// the result.
		b.ReportMetric(median(took[0]), "mmap-ns/op")
		b.ReportMetric(median(took[1]), "heap-ns/op")
		b.ReportMetric(median(ratio), "mmap/heap")
		b.ReportMetric(0, "ns/op")
	}
	buf := make([]byte, chunk)
	b.Run("WriteAt", func(b *testing.B) {
		// 16 KiB writes cycling over 64 MiB in a 128 MiB cache: steady state.
		cs := newPair(b, 128*mib)
		var write [2]func()
		for k, c := range cs {
			tt, info := openTest(b, c, 1, mib, 64)
			pieces, total := handles(tt, info), info.TotalLength()
			var off int64
			write[k] = func() {
				for range 64 {
					if _, err := pieces[off/mib].WriteAt(buf, off%mib); err != nil {
						b.Fatal(err)
					}
					off = (off + chunk) % total
				}
			}
			for range 64 {
				write[k]()
			}
		}
		b.ReportAllocs()
		run(b, 64, write)
	})
	b.Run("WriteEvicting", func(b *testing.B) {
		// 16 KiB writes cycling over 128 MiB in a 32 MiB cache.
		cs := newPair(b, 32*mib)
		var write [2]func()
		for k, c := range cs {
			tt, info := openTest(b, c, 1, mib, 128)
			pieces, total := handles(tt, info), info.TotalLength()
			var off int64
			write[k] = func() {
				for range 64 {
					p := pieces[off/mib]
					if _, err := p.WriteAt(buf, off%mib); err != nil {
						b.Fatal(err)
					}
					off = (off + chunk) % total
					if off%mib == 0 {
						_ = p.MarkComplete()
					}
				}
			}
			for range 128 {
				write[k]()
			}
		}
		b.ReportAllocs()
		run(b, 64, write)
	})
	b.Run("Fill", func(b *testing.B) {
		// A fresh Client filled with 16 MiB and closed: the cost of
		// growth (mappings and page faults, or make and the collector).
		// Biased against mmap: the heap kind reuses pages the Go heap
		// faulted in during earlier iterations, while each Close unmaps.
		var fill [2]func()
		for k := range fill {
			fill[k] = func() {
				c, err := New(Options{Capacity: 16 * mib})
				if err != nil {
					b.Fatal(err)
				}
				c.budget.arena.heapOnly = k == 1
				tt, info := openTest(b, c, 1, mib, 16)
				for i, p := range handles(tt, info) {
					for off := int64(0); off < mib; off += chunk {
						if _, err := p.WriteAt(buf, off); err != nil {
							b.Fatalf("piece %d: %v", i, err)
						}
					}
				}
				c.Close()
			}
		}
		b.ReportAllocs()
		run(b, 16*mib/chunk, fill)
	})
	b.Run("WriteTo", func(b *testing.B) {
		// A 1 MiB piece read through WriteTo, as the client hashes it.
		cs := newPair(b, 64*mib)
		var read [2]func()
		for k, c := range cs {
			tt, info := openTest(b, c, 1, mib, 16)
			writePiece(b, tt, info, 1, 3)
			p := tt.Piece(info.Piece(3))
			s := &sink{buf: make([]byte, 16*mib)}
			read[k] = func() {
				if _, err := p.WriteTo(s); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportAllocs()
		run(b, 1, read)
	})
}

// sink copies what it is given into buf, like a hash consuming the bytes.
type sink struct {
	buf []byte
	off int
}

var _ io.Writer = (*sink)(nil)

func (s *sink) Write(b []byte) (int, error) {
	n := copy(s.buf[s.off:], b)
	s.off = (s.off + n) % len(s.buf)
	return n, nil
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	xs = slices.Clone(xs)
	slices.Sort(xs)
	return xs[len(xs)/2]
}

// handles returns the piece handles of tt, made once as the client's
// wrappers would be.
func handles(tt storage.Torrent, info *metainfo.Info) []storage.Piece {
	ps := make([]storage.Piece, info.NumPieces())
	for i := range ps {
		ps[i] = tt.Piece(info.Piece(i))
	}
	return ps
}
