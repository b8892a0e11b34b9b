package main

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bits-and-blooms/bitset"

	"github.com/memtorrent/memtorrent/lookbehind"
)

// The lookbehind scenario measures the storage's eviction-time question
// (Contains) and the stats a UI polls (Stats) while writers move the set,
// against the design memtorrent replaces: every call, read or write, under
// one mutex shared by all sets.

const (
	lbPieces = 10_000 // e.g. a 40 GiB torrent of 4 MiB pieces
	lbWidth  = 256    // protected pieces
)

// protectedSet is what the scenario exercises, in lookbehind.Set and in
// the global-mutex set.
type protectedSet interface {
	Contains(i int) bool
	Stats() lookbehind.Stats
	ReplaceRange(begin, end int) error
}

// mutexSet is a protected-piece set whose every method takes one mutex
// shared with every other mutexSet made from the same lock: the global
// lock of the C++ design. Writers change the bitset in place.
type mutexSet struct {
	mu      *sync.Mutex // shared; guards the fields below
	members *bitset.BitSet
	count   int
}

func (s *mutexSet) Contains(i int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.members.Test(uint(i))
}

func (s *mutexSet) Stats() lookbehind.Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return lookbehind.Stats{Protected: s.count}
}

func (s *mutexSet) ReplaceRange(begin, end int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.members.ClearAll()
	s.members.SetRange(uint(begin), uint(end))
	s.count = end - begin
	return nil
}

// lookbehindBench is the lookbehind scenario.
type lookbehindBench struct{ cfg config }

func (lookbehindBench) name() string                { return scenarioLookbehind }
func (lookbehindBench) start(context.Context) error { return nil }
func (lookbehindBench) notes() []string             { return nil }
func (lookbehindBench) close() error                { return nil }
func (b lookbehindBench) about() string             { return lookbehindAbout(b.cfg) }
func (b lookbehindBench) groups() []group           { return lookbehindGroups(b.cfg) }

func lookbehindAbout(cfg config) string {
	return fmt.Sprintf("Contains and Stats called %d times in a row by one goroutine on a set of %d pieces "+
		"(%d protected) while 0, 2 or 8 writer goroutines move the range (ReplaceRange, yielding after each write), "+
		"in ns per call. lookbehind.Set reads an immutable snapshot through an atomic pointer; the baseline takes one "+
		"mutex for every call, read or write, as the C++ design's global lock did.", cfg.LookbehindOps, lbPieces, lbWidth)
}

func lookbehindGroups(cfg config) []group {
	newSet := func() protectedSet {
		s, err := lookbehind.New(lbPieces)
		if err != nil {
			panic(err) // lbPieces is positive
		}
		return s
	}
	global := new(sync.Mutex)
	newMutexSet := func() protectedSet {
		return &mutexSet{mu: global, members: bitset.New(lbPieces)}
	}
	var gs []group
	for _, writers := range []int{0, 2, 8} {
		gs = append(gs, group{
			key:  strconv.Itoa(writers),
			name: fmt.Sprintf("%d writer(s)", writers),
			metrics: []metric{
				{key: "contains", name: "Contains", unit: "ns/op"},
				{key: "stats", name: "Stats", unit: "ns/op"},
			},
			contestants: []contestant{
				{"lookbehind.Set", lookbehindRun(newSet, writers, cfg.LookbehindOps)},
				{"global mutex", lookbehindRun(newMutexSet, writers, cfg.LookbehindOps)},
			},
		})
	}
	return gs
}

// lookbehindRun returns a run that times ops calls of Contains, then of
// Stats, on a fresh set while writers goroutines replace its range.
func lookbehindRun(newSet func() protectedSet, writers, ops int) func(context.Context, int) ([]float64, error) {
	return func(context.Context, int) ([]float64, error) {
		s := newSet()
		if err := s.ReplaceRange(0, lbWidth); err != nil {
			return nil, err
		}
		var (
			stop   atomic.Bool
			wg     sync.WaitGroup
			failed atomic.Pointer[error]
		)
		for w := range writers {
			wg.Go(func() {
				for k := w; !stop.Load(); k++ {
					begin := (k * 37) % (lbPieces - lbWidth)
					if err := s.ReplaceRange(begin, begin+lbWidth); err != nil {
						failed.Store(&err)
						return
					}
					runtime.Gosched()
				}
			})
		}
		hits := 0
		start := time.Now()
		for i, j := 0, 0; i < ops; i++ {
			if s.Contains(j) {
				hits++
			}
			j = (j + 97) % lbPieces
		}
		contains := time.Since(start)
		start = time.Now()
		protected := 0
		for range ops {
			protected += s.Stats().Protected
		}
		stats := time.Since(start)
		stop.Store(true)
		wg.Wait()
		if err := failed.Load(); err != nil {
			return nil, *err
		}
		if protected == 0 {
			return nil, fmt.Errorf("Stats saw no protected piece in %d calls", ops)
		}
		runtime.KeepAlive(hits)
		return []float64{float64(contains.Nanoseconds()) / float64(ops), float64(stats.Nanoseconds()) / float64(ops)}, nil
	}
}
