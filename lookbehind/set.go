package lookbehind

import (
	"fmt"

	"github.com/bits-and-blooms/bitset"
	"go.uber.org/atomic"
)

// Set is the set of protected pieces of one torrent of a fixed number of
// pieces.
//
// Its members live in an immutable snapshot published through an atomic
// pointer: Contains and Count load it and never block, so the storage can
// ask them under its own lock while a writer builds the next set outside it.
// A write replaces the whole set with one atomic store, so a reader sees the
// old set or the new one, never a mix, and concurrent writes leave the last
// one stored. A Set is safe for concurrent use. Create one with [New]; the
// zero value is not usable.
type Set struct {
	n    int                      // number of pieces; never changes after New
	snap atomic.Pointer[snapshot] // the current members; replaced, never mutated
}

// snapshot is one published state of a Set. Nothing in it changes after it
// is stored in Set.snap.
type snapshot struct {
	members *bitset.BitSet
	count   int // members.Count()
}

// New returns an empty Set for a torrent of numPieces pieces. It returns an
// error if numPieces is not positive. New allocates N/8 bytes and starts no
// goroutines.
func New(numPieces int) (*Set, error) {
	if numPieces <= 0 {
		return nil, fmt.Errorf("lookbehind: creating set: %d pieces; want at least 1", numPieces)
	}
	s := &Set{n: numPieces}
	s.snap.Store(&snapshot{members: bitset.New(uint(numPieces))})
	return s, nil
}

// Contains reports whether piece i is protected. It is false for an index out
// of range. Contains is wait-free and allocates nothing.
func (s *Set) Contains(i int) bool {
	if uint(i) >= uint(s.n) {
		return false
	}
	return s.snap.Load().members.Test(uint(i))
}

// Count returns the number of protected pieces. It is wait-free and
// allocates nothing.
func (s *Set) Count() int { return s.snap.Load().count }

// AppendTo appends the protected pieces, in ascending order, to dst and
// returns the extended slice. It reads one snapshot in O(N/64 + members), and
// allocates only if dst lacks the capacity.
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
	m := bitset.New(uint(s.n))
	for _, i := range pieces {
		if i < 0 || i >= s.n {
			return fmt.Errorf("lookbehind: replacing set: piece %d out of range [0, %d)", i, s.n)
		}
		m.Set(uint(i))
	}
	s.snap.Store(&snapshot{members: m, count: int(m.Count())})
	return nil
}

// ReplaceRange makes the set exactly the pieces [begin, end); begin == end
// clears it. It returns an error naming the bad value, and leaves the set
// unchanged, unless 0 <= begin <= end <= N. If the set already is that range,
// ReplaceRange returns without allocating, so it is cheap to call on every
// playhead update; otherwise it allocates a bitset of N/8 bytes.
func (s *Set) ReplaceRange(begin, end int) error {
	switch {
	case begin < 0:
		return fmt.Errorf("lookbehind: replacing set with [%d, %d): begin %d is negative", begin, end, begin)
	case begin > end:
		return fmt.Errorf("lookbehind: replacing set with [%d, %d): begin %d > end %d", begin, end, begin, end)
	case end > s.n:
		return fmt.Errorf("lookbehind: replacing set with [%d, %d): end %d > %d pieces", begin, end, end, s.n)
	}
	old := s.snap.Load()
	if old.count == end-begin && old.members.OnesBetween(uint(begin), uint(end)) == uint(end-begin) {
		return nil
	}
	m := bitset.New(uint(s.n))
	m.SetRange(uint(begin), uint(end))
	s.snap.Store(&snapshot{members: m, count: end - begin})
	return nil
}

// Clear empties the set. Clearing an empty set allocates nothing.
func (s *Set) Clear() {
	if s.snap.Load().count == 0 {
		return
	}
	s.snap.Store(&snapshot{members: bitset.New(uint(s.n))})
}
