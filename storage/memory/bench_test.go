package memory_test

import (
	"context"
	"testing"

	g "github.com/anacrolix/generics"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"

	"github.com/memtorrent/memtorrent/internal/baseline"
	"github.com/memtorrent/memtorrent/storage/memory"
)

// The benchmarks below run each operation on memtorrent's storage and on
// internal/baseline (one global mutex over a map of make'd pieces), and on a
// plain memmove of the same bytes, the physical limit.

const (
	benchChunk = 16 << 10
	benchPiece = 1 << 20
)

func benchInfo(size int64) *metainfo.Info {
	n := int(size / benchPiece)
	return &metainfo.Info{Name: "bench", PieceLength: benchPiece, Length: size, Pieces: make([]byte, n*metainfo.HashSize)}
}

type contestant struct {
	name string
	new  func(tb testing.TB, capacity int64) storage.ClientImplCloser
}

var contestants = []contestant{
	{"memtorrent", func(tb testing.TB, capacity int64) storage.ClientImplCloser {
		c, err := memory.New(memory.Options{Capacity: capacity})
		if err != nil {
			tb.Fatal(err)
		}
		return c
	}},
	{"baseline", func(testing.TB, int64) storage.ClientImplCloser { return baseline.New() }},
}

func openBench(tb testing.TB, ci storage.ClientImpl, info *metainfo.Info, k byte) storage.Torrent {
	ti, err := ci.OpenTorrent(context.Background(), info, metainfo.Hash{k})
	if err != nil {
		tb.Fatal(err)
	}
	return storage.Torrent{TorrentImpl: ti}
}

// pieceHandles returns the piece handles of tt, made once outside the timed
// loop as the client's wrappers would be.
func pieceHandles(tt storage.Torrent, info *metainfo.Info) []storage.Piece {
	pieces := make([]storage.Piece, info.NumPieces())
	for i := range pieces {
		pieces[i] = tt.Piece(info.Piece(i))
	}
	return pieces
}

// BenchmarkWriteAt writes 16 KiB chunks cyclically over a 64 MiB torrent
// that fits: after the first pass, steady state (blocks reused).
func BenchmarkWriteAt(b *testing.B) {
	info := benchInfo(64 << 20)
	chunk := make([]byte, benchChunk)
	for _, ct := range contestants {
		b.Run(ct.name, func(b *testing.B) {
			ci := ct.new(b, 128<<20)
			defer ci.Close()
			tt := openBench(b, ci, info, 1)
			pieces := pieceHandles(tt, info)
			var off int64
			write := func() {
				if _, err := pieces[off/benchPiece].WriteAt(chunk, off%benchPiece); err != nil {
					b.Fatal(err)
				}
				off = (off + benchChunk) % info.Length
			}
			for range info.Length / benchChunk {
				write() // warm: every block allocated once
			}
			b.SetBytes(benchChunk)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				write()
			}
		})
	}
	b.Run("memmove", func(b *testing.B) {
		dst := make([]byte, 64<<20)
		var off int64
		b.SetBytes(benchChunk)
		b.ReportAllocs()
		for b.Loop() {
			copy(dst[off:off+benchChunk], chunk)
			off = (off + benchChunk) % int64(len(dst))
		}
	})
}

// sink copies what it is given into buf, like a hash consuming the bytes,
// without a hash's cost.
type sink struct {
	buf []byte
	off int
}

func (s *sink) Write(b []byte) (int, error) {
	n := copy(s.buf[s.off:], b)
	s.off = (s.off + n) % len(s.buf)
	return n, nil
}

// BenchmarkWriteTo reads a complete 1 MiB piece through WriteTo, the path
// the client hashes through, into a sink that copies the bytes.
func BenchmarkWriteTo(b *testing.B) {
	info := benchInfo(16 << 20)
	chunk := make([]byte, benchChunk)
	for _, ct := range contestants {
		b.Run(ct.name, func(b *testing.B) {
			ci := ct.new(b, 64<<20)
			defer ci.Close()
			tt := openBench(b, ci, info, 1)
			p := tt.Piece(info.Piece(3))
			for off := int64(0); off < benchPiece; off += benchChunk {
				p.WriteAt(chunk, off)
			}
			p.MarkComplete()
			w := &sink{buf: make([]byte, benchPiece)}
			b.SetBytes(benchPiece)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.WriteTo(w); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("memmove", func(b *testing.B) {
		src, dst := make([]byte, benchPiece), make([]byte, benchPiece)
		b.SetBytes(benchPiece)
		b.ReportAllocs()
		for b.Loop() {
			copy(dst, src)
		}
	})
}

// BenchmarkWriteEvicting writes whole pieces of a 256 MiB torrent into 16
// MiB of memory, marking each complete: every piece written evicts one. The
// baseline cannot evict; it holds the whole torrent.
func BenchmarkWriteEvicting(b *testing.B) {
	info := benchInfo(256 << 20)
	chunk := make([]byte, benchChunk)
	for _, ct := range contestants {
		b.Run(ct.name, func(b *testing.B) {
			ci := ct.new(b, 16<<20)
			defer ci.Close()
			tt := openBench(b, ci, info, 1)
			pieces := pieceHandles(tt, info)
			var off int64
			write := func() {
				p := pieces[off/benchPiece]
				if _, err := p.WriteAt(chunk, off%benchPiece); err != nil {
					b.Fatal(err)
				}
				off += benchChunk
				if off%benchPiece == 0 {
					p.MarkComplete()
				}
				off %= info.Length
			}
			for range info.Length / benchChunk {
				write() // warm: a whole pass, so the baseline has allocated everything
			}
			b.SetBytes(benchChunk)
			b.ReportAllocs()
			var ev0 int64
			if mc, ok := ci.(*memory.Client); ok {
				ev0 = mc.Stats().Evictions
			}
			b.ResetTimer()
			for b.Loop() {
				write()
			}
			if mc, ok := ci.(*memory.Client); ok {
				s := mc.Stats()
				b.ReportMetric(float64(s.Evictions-ev0)/float64(b.N), "evictions/op")
				if s.Resident > s.Capacity {
					b.Fatalf("Resident %d > Capacity %d", s.Resident, s.Capacity)
				}
			}
		})
	}
}

// BenchmarkParallelWriteAt writes from GOMAXPROCS goroutines, each into its
// own torrent: memtorrent's per-torrent locks against one global mutex.
func BenchmarkParallelWriteAt(b *testing.B) {
	info := benchInfo(16 << 20)
	for _, ct := range contestants {
		b.Run(ct.name, func(b *testing.B) {
			ci := ct.new(b, 256<<20)
			defer ci.Close()
			var next byte
			var mu = make(chan struct{}, 1)
			b.SetBytes(benchChunk)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				mu <- struct{}{}
				next++
				k := next
				<-mu
				tt := openBench(b, ci, info, k)
				chunk := make([]byte, benchChunk)
				var off int64
				for pb.Next() {
					p := tt.PieceWithHash(info.Piece(int(off/benchPiece)), g.None[[]byte]())
					if _, err := p.WriteAt(chunk, off%benchPiece); err != nil {
						b.Error(err)
						return
					}
					off = (off + benchChunk) % info.Length
				}
			})
		})
	}
}
