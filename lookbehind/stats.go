package lookbehind

import "fmt"

// Stats describes the protected pieces of a Set at one moment.
//
// Protected, Resident and ResidentBytes come from one snapshot and agree with
// each other (Resident <= Protected). Hits and Misses are running totals read
// separately; they only grow.
type Stats struct {
	Protected     int   // pieces in the set
	Resident      int   // protected pieces the storage holds in memory
	ResidentBytes int64 // bytes the storage holds for those pieces
	Hits          int64 // reads of a protected piece served from memory (RecordHit)
	Misses        int64 // protected pieces downloaded again (RecordMiss)
}

// Stats returns the current figures. It is wait-free and allocates nothing.
func (s *Set) Stats() Stats {
	sn := s.snap.Load()
	return Stats{
		Protected:     sn.count,
		Resident:      sn.resident,
		ResidentBytes: sn.residentBytes,
		Hits:          s.hits.Load(),
		Misses:        s.misses.Load(),
	}
}

// RecordHit counts one read of a protected piece that the storage served from
// memory. It is one atomic add: wait-free, no allocation.
func (s *Set) RecordHit() { s.hits.Add(1) }

// RecordMiss counts one protected piece that had to be downloaded again
// because it was not in memory. It is one atomic add: wait-free, no
// allocation.
func (s *Set) RecordMiss() { s.misses.Add(1) }

// MarkResident records that the storage holds bytes bytes of piece i in
// memory; calling it again for a resident piece updates the byte count. The
// storage calls it when a piece's buffer is filled or grows, not for every
// block. It returns an error naming the bad value, and changes nothing, if i
// is out of range or bytes is negative.
//
// MarkResident takes the Set's writer mutex. It allocates a small snapshot
// header only when i is protected and its residency or bytes change.
func (s *Set) MarkResident(i int, bytes int64) error {
	if err := s.checkIndex(i); err != nil {
		return fmt.Errorf("lookbehind: marking piece resident: %w", err)
	}
	if bytes < 0 {
		return fmt.Errorf("lookbehind: marking piece %d resident: negative size %d", i, bytes)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	was := s.resident.Test(uint(i))
	if was && s.bytes[i] == bytes {
		return nil
	}
	delta := bytes - s.bytes[i]
	s.resident.Set(uint(i))
	s.bytes[i] = bytes
	old := s.snap.Load()
	if !old.members.Test(uint(i)) {
		return nil
	}
	sn := *old
	if !was {
		sn.resident++
	}
	sn.residentBytes += delta
	s.snap.Store(&sn)
	return nil
}

// MarkEvicted records that the storage no longer holds piece i. Marking a
// piece that is not resident does nothing. It returns an error naming i, and
// changes nothing, if i is out of range.
//
// MarkEvicted takes the Set's writer mutex. It allocates a small snapshot
// header only when i is protected and was resident.
func (s *Set) MarkEvicted(i int) error {
	if err := s.checkIndex(i); err != nil {
		return fmt.Errorf("lookbehind: marking piece evicted: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.resident.Test(uint(i)) {
		return nil
	}
	bytes := s.bytes[i]
	s.resident.Clear(uint(i))
	s.bytes[i] = 0
	old := s.snap.Load()
	if !old.members.Test(uint(i)) {
		return nil
	}
	sn := *old
	sn.resident--
	sn.residentBytes -= bytes
	s.snap.Store(&sn)
	return nil
}
