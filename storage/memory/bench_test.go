package memory_test

import (
	"context"
	"runtime"
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

// BenchmarkWriteUnderEviction writes 16 KiB chunks in order into a torrent
// of twice the capacity, marking each piece complete when its last chunk is
// written, with lookbehind off: once the capacity is full, every new piece
// evicts the least recently used complete one. It runs at three capacities
// so that the cost of a write can be compared as the resident pieces grow
// 64x (the 4GiB/64MiB ratio), for 16 KiB pieces (one eviction per write)
// and 1 MiB pieces (one per 64 writes). The setup fills the capacity once,
// outside the timer: 4 GiB takes a few seconds.
func BenchmarkWriteUnderEviction(b *testing.B) {
	chunk := make([]byte, benchChunk)
	for _, pl := range []struct {
		name string
		size int64
	}{{"16KiB", 16 << 10}, {"1MiB", 1 << 20}} {
		for _, cp := range []struct {
			name string
			size int64
		}{{"64MiB", 64 << 20}, {"1GiB", 1 << 30}, {"4GiB", 4 << 30}} {
			b.Run("piece="+pl.name+"/cap="+cp.name, func(b *testing.B) {
				c, err := memory.New(memory.Options{Capacity: cp.size, NoLookbehind: true})
				if err != nil {
					b.Fatal(err)
				}
				defer runtime.GC() // the next case must not find this one's blocks still on the heap
				defer c.Close()
				length := 2 * cp.size
				n := int(length / pl.size)
				info := &metainfo.Info{Name: "bench", PieceLength: pl.size, Length: length, Pieces: make([]byte, n*metainfo.HashSize)}
				pieces := pieceHandles(openBench(b, c, info, 1), info)
				var off int64
				write := func() {
					p := pieces[off/pl.size]
					if _, err := p.WriteAt(chunk, off%pl.size); err != nil {
						b.Fatal(err)
					}
					off += benchChunk
					if off%pl.size == 0 {
						if err := p.MarkComplete(); err != nil {
							b.Fatal(err)
						}
					}
					off %= length
				}
				for range cp.size / benchChunk {
					write() // fill the capacity: from here on, writes evict
				}
				s0 := c.Stats()
				b.SetBytes(benchChunk)
				b.ReportAllocs()
				ops := 0
				for b.Loop() {
					write()
					ops++
				}
				s := c.Stats()
				b.ReportMetric(float64(s.Evictions-s0.Evictions)/float64(ops), "evictions/op")
				if s.Resident > s.Capacity {
					b.Fatalf("Resident %d > Capacity %d", s.Resident, s.Capacity)
				}
			})
		}
	}
}
