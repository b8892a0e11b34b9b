package lookbehind

import (
	"fmt"
	"iter"
	"math/bits"
	"sync"

	"github.com/bits-and-blooms/bitset"
	"go.uber.org/atomic"
)

// cacheLine is the padding that keeps fields written at different rates off
// each other's cache line.
const cacheLine = 64

// Set is the set of protected pieces of one torrent of a fixed number of
// pieces, plus the residency and hit counters the storage keeps for them.
//
// Reads (Contains, Count, Stats, All, AppendTo) load an immutable snapshot and
// never block; writes copy the snapshot, change the copy and publish it. A Set
// is safe for concurrent use. Create one with [New]; the zero value is not
// usable.
type Set struct {
	n    int                      // number of pieces; never changes after New
	snap atomic.Pointer[snapshot] // the current members; replaced, never mutated
	_    [cacheLine - 16]byte

	hits   atomic.Int64 // reads of a protected piece served from memory
	misses atomic.Int64 // protected pieces that had to be downloaded again
	_      [cacheLine - 16]byte

	mu       sync.Mutex     // serialises writers; guards the fields below
	resident *bitset.BitSet // pieces the storage holds in memory
	bytes    []int64        // bytes held for each resident piece
}

// snapshot is one published state of a Set. Nothing in it changes after it
// is stored in Set.snap, so readers use it without locks.
type snapshot struct {
	members       *bitset.BitSet // the protected pieces; shared by later snapshots until replaced
	count         int            // members.Count()
	resident      int            // protected pieces that are resident
	residentBytes int64          // bytes held for them
}

// New returns an empty Set for a torrent of numPieces pieces. It returns an
// error if numPieces is not positive. New allocates about 9 bytes per piece
// and starts no goroutines.
func New(numPieces int) (*Set, error) {
	if numPieces <= 0 {
		return nil, fmt.Errorf("lookbehind: creating set: %d pieces; want at least 1", numPieces)
	}
	s := &Set{
		n:        numPieces,
		resident: bitset.New(uint(numPieces)),
		bytes:    make([]int64, numPieces),
	}
	s.snap.Store(&snapshot{members: bitset.New(uint(numPieces))})
	return s, nil
}

// NumPieces returns the number of pieces the Set was created for.
func (s *Set) NumPieces() int { return s.n }

// Contains reports whether piece i is protected. It is false for an index out
// of range. Contains is wait-free and allocates nothing.
func (s *Set) Contains(i int) bool {
	if uint(i) >= uint(s.n) {
		return false
	}
	return s.snap.Load().members.Test(uint(i))
}

// Count returns the number of protected pieces. It is wait-free, O(1) and
// allocates nothing.
func (s *Set) Count() int { return s.snap.Load().count }

// All returns an iterator over the protected pieces in ascending order, that
// is, for forward playback, furthest behind the playhead first. It iterates
// over the members as they were when All was called; writes made since do not
// show. Iteration costs O(N/64 + members) and never blocks writers; All
// allocates its iterator, so hot paths should prefer [Set.AppendTo] with a
// reused slice.
func (s *Set) All() iter.Seq[int] {
	m := s.snap.Load().members
	return func(yield func(int) bool) {
		for i, ok := m.NextSet(0); ok; i, ok = m.NextSet(i + 1) {
			if !yield(int(i)) {
				return
			}
		}
	}
}

// AppendTo appends the protected pieces, in ascending order, to dst and
// returns the extended slice. It reads one snapshot, and allocates only if dst
// lacks the capacity.
func (s *Set) AppendTo(dst []int) []int {
	m := s.snap.Load().members
	for i, ok := m.NextSet(0); ok; i, ok = m.NextSet(i + 1) {
		dst = append(dst, int(i))
	}
	return dst
}

// Replace makes the set exactly the pieces listed; duplicates are allowed and
// an empty list clears the set. If any index is out of range, Replace returns
// an error naming it and leaves the set unchanged. Replace allocates a new
// bitset of N/8 bytes.
func (s *Set) Replace(pieces []int) error {
	for _, i := range pieces {
		if err := s.checkIndex(i); err != nil {
			return fmt.Errorf("lookbehind: replacing set: %w", err)
		}
	}
	m := bitset.New(uint(s.n))
	for _, i := range pieces {
		m.Set(uint(i))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.publishLocked(m, int(m.Count()))
	return nil
}

// ReplaceRange makes the set exactly the pieces [begin, end); begin == end
// clears it. It returns an error naming the bad value, and leaves the set
// unchanged, unless 0 <= begin <= end <= NumPieces. If the set already is
// that range, ReplaceRange returns without allocating, so it is cheap to call
// on every playhead update.
func (s *Set) ReplaceRange(begin, end int) error {
	if err := s.checkRange(begin, end); err != nil {
		return fmt.Errorf("lookbehind: replacing set with [%d, %d): %w", begin, end, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.snap.Load()
	if old.count == end-begin && old.members.OnesBetween(uint(begin), uint(end)) == uint(end-begin) {
		return nil
	}
	m := bitset.New(uint(s.n))
	m.SetRange(uint(begin), uint(end))
	s.publishLocked(m, end-begin)
	return nil
}

// AddRange adds the pieces [begin, end) to the set. It returns an error naming
// the bad value, and leaves the set unchanged, unless
// 0 <= begin <= end <= NumPieces. If every piece is already protected it
// returns without allocating.
func (s *Set) AddRange(begin, end int) error {
	if err := s.checkRange(begin, end); err != nil {
		return fmt.Errorf("lookbehind: adding [%d, %d): %w", begin, end, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.snap.Load()
	ones := int(old.members.OnesBetween(uint(begin), uint(end)))
	if ones == end-begin {
		return nil
	}
	m := old.members.Clone()
	m.SetRange(uint(begin), uint(end))
	s.publishLocked(m, old.count+end-begin-ones)
	return nil
}

// RemoveRange removes the pieces [begin, end) from the set. It returns an
// error naming the bad value, and leaves the set unchanged, unless
// 0 <= begin <= end <= NumPieces. If no piece in the range is protected it
// returns without allocating.
func (s *Set) RemoveRange(begin, end int) error {
	if err := s.checkRange(begin, end); err != nil {
		return fmt.Errorf("lookbehind: removing [%d, %d): %w", begin, end, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.snap.Load()
	ones := int(old.members.OnesBetween(uint(begin), uint(end)))
	if ones == 0 {
		return nil
	}
	m := old.members.Clone()
	clearRange(m.Words(), uint(begin), uint(end))
	s.publishLocked(m, old.count-ones)
	return nil
}

// Clear empties the set. Clearing an empty set allocates nothing.
func (s *Set) Clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.snap.Load().count == 0 {
		return
	}
	s.publishLocked(bitset.New(uint(s.n)), 0)
}

// publishLocked publishes m, which holds count pieces and must not be shared
// with anyone, as the new members, and counts its resident pieces. s.mu must
// be held.
func (s *Set) publishLocked(m *bitset.BitSet, count int) {
	sn := &snapshot{members: m, count: count}
	rw := s.resident.Words()
	for w, word := range m.Words() {
		for x := word & rw[w]; x != 0; x &= x - 1 {
			sn.resident++
			sn.residentBytes += s.bytes[w*64+bits.TrailingZeros64(x)]
		}
	}
	s.snap.Store(sn)
}

// clearRange clears the bits [begin, end) of words, begin < end.
func clearRange(words []uint64, begin, end uint) {
	first, last := begin/64, (end-1)/64
	lo := ^uint64(0) << (begin % 64)      // bits at or above begin
	hi := ^uint64(0) >> (63 - (end-1)%64) // bits at or below end-1
	if first == last {
		words[first] &^= lo & hi
		return
	}
	words[first] &^= lo
	for w := first + 1; w < last; w++ {
		words[w] = 0
	}
	words[last] &^= hi
}

func (s *Set) checkIndex(i int) error {
	if i < 0 || i >= s.n {
		return fmt.Errorf("piece %d out of range [0, %d)", i, s.n)
	}
	return nil
}

func (s *Set) checkRange(begin, end int) error {
	switch {
	case begin < 0:
		return fmt.Errorf("begin %d is negative", begin)
	case begin > end:
		return fmt.Errorf("begin %d > end %d", begin, end)
	case end > s.n:
		return fmt.Errorf("end %d > %d pieces", end, s.n)
	}
	return nil
}
