package lookbehind

import (
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/bits-and-blooms/bitset"
	"go.uber.org/atomic"
)

// mutexSet is the alternative a benchmark compares Set with: a bitset
// guarded by a mutex that every call takes, written in place.
type mutexSet struct {
	mu      sync.Mutex // guards the fields below
	members *bitset.BitSet
	count   int
}

func newMutexSet(n int) *mutexSet {
	return &mutexSet{members: bitset.New(uint(n))}
}

func (m *mutexSet) Contains(i int) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.members.Test(uint(i))
}

func (m *mutexSet) Count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.count
}

func (m *mutexSet) ReplaceRange(begin, end int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.members.ClearAll()
	m.members.SetRange(uint(begin), uint(end))
	m.count = end - begin
	return nil
}

// protectedSet is what the benchmarks exercise, in Set and in mutexSet.
type protectedSet interface {
	Contains(i int) bool
	Count() int
	ReplaceRange(begin, end int) error
}

const (
	benchPieces = 10_000 // e.g. a 40 GiB torrent of 4 MiB pieces
	benchWidth  = 256    // protected pieces
)

// benchImpls are the implementations compared side by side.
var benchImpls = []struct {
	name string
	new  func() protectedSet
}{
	{"lookbehind", func() protectedSet {
		s, err := New(benchPieces)
		if err != nil {
			panic(err)
		}
		return s
	}},
	{"mutex", func() protectedSet { return newMutexSet(benchPieces) }},
}

// runWithWriters runs read for each implementation while writers goroutines
// replace the set in a loop, and reports how many writes they made per read
// (writes/op) to show they were busy. Each writer yields after every write:
// on a machine with few CPUs, writers that never yield would take CPU time
// from the reader, and the benchmark would measure the scheduler instead of
// the set. Writers are stopped and joined before the sub-benchmark returns.
func runWithWriters(b *testing.B, read func(b *testing.B, s protectedSet)) {
	for _, writers := range []int{0, 2, 8} {
		for _, impl := range benchImpls {
			b.Run(fmt.Sprintf("writers=%d/%s", writers, impl.name), func(b *testing.B) {
				s := impl.new()
				if err := s.ReplaceRange(0, benchWidth); err != nil {
					b.Fatal(err)
				}
				var (
					writes atomic.Int64
					wg     sync.WaitGroup
				)
				stop := make(chan struct{})
				for w := range writers {
					wg.Go(func() {
						for k := w; ; k++ {
							select {
							case <-stop:
								return
							default:
							}
							begin := (k * 37) % (benchPieces - benchWidth)
							if err := s.ReplaceRange(begin, begin+benchWidth); err != nil {
								panic(err)
							}
							writes.Add(1)
							runtime.Gosched()
						}
					})
				}
				b.ReportAllocs()
				read(b, s)
				close(stop)
				wg.Wait()
				b.ReportMetric(float64(writes.Load())/float64(b.N), "writes/op")
			})
		}
	}
}

// BenchmarkContains measures Contains, the storage's eviction-time question,
// with 0, 2 and 8 concurrent writers, against a mutex-guarded bitset.
func BenchmarkContains(b *testing.B) {
	runWithWriters(b, func(b *testing.B, s protectedSet) {
		n := 0
		i := 0
		for b.Loop() {
			if s.Contains(i) {
				n++
			}
			i = (i + 97) % benchPieces
		}
		_ = n
	})
}

// BenchmarkReplaceRange measures the cost of a write that changes the set
// (a copy of the bitset) and of one that does not.
func BenchmarkReplaceRange(b *testing.B) {
	b.Run("changed", func(b *testing.B) {
		s, err := New(benchPieces)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		k := 0
		for b.Loop() {
			k ^= 1
			if err := s.ReplaceRange(k, k+benchWidth); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("unchanged", func(b *testing.B) {
		s, err := New(benchPieces)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if err := s.ReplaceRange(100, 100+benchWidth); err != nil {
				b.Fatal(err)
			}
		}
	})
}
