// Package lookbehind decides which pieces of a torrent stay in memory behind
// a video playhead, so that a player seeking backwards is served from memory
// instead of waiting for the pieces to be downloaded again.
//
// # Model
//
// A [Set] holds the protected pieces of one torrent. Whoever knows the
// playhead (the streaming layer) computes a [Window] from the playhead and a
// byte budget (see [Budget] to turn seconds of video into bytes) and
// publishes it with [Set.ReplaceRange]. The storage asks [Set.Contains] when
// it chooses what to evict, reports residency with [Set.MarkResident] and
// [Set.MarkEvicted] as it fills and frees piece buffers, and counts reads of
// protected pieces with [Set.RecordHit] and [Set.RecordMiss]. [Set.Stats]
// sums it up.
//
// The window stops before the piece that holds the playhead: that piece and
// the ones after it belong to the reader's readahead window, so lookbehind
// and readahead never count the same piece twice, and the budget is a hard
// bound in whole pieces (a budget smaller than one piece protects nothing).
//
// # Snapshots
//
// The members of a Set live in an immutable snapshot published through an
// atomic pointer. A writer takes the Set's mutex, builds a new bitset (copy on
// write), counts it, and publishes it with one atomic store; the old snapshot
// is never touched again and the garbage collector frees it once the last
// reader is done. A reader loads the pointer and reads: it never locks, never
// retries and never allocates, however many writers are busy. A reader sees
// the old set or the new one in full, never a mix, and the counts in [Stats]
// always belong to the same snapshot as the members.
//
// # Costs
//
// With N the number of pieces of the torrent:
//
//	Contains, Count, Stats, RecordHit, RecordMiss   O(1), wait-free, no allocation
//	All, AppendTo                                   O(N/64 + members), one snapshot
//	Replace, ReplaceRange, AddRange, RemoveRange,   O(N/64 + len(list)), allocates a
//	Clear                                           bitset of N/8 bytes; a range write
//	                                                that changes nothing allocates nothing
//	MarkResident, MarkEvicted                       O(1); allocates a small snapshot
//	                                                header only when a protected
//	                                                piece changes state
//
// A Set also keeps 8 bytes per piece to remember how many bytes the storage
// holds for each resident piece.
//
// # Concurrency
//
// Every method of [Set] is safe for concurrent use. The only lock is the
// mutex inside each Set; writers take it, readers never do, and nothing runs
// under it but the package's own bookkeeping: there are no callbacks. The
// package has no package-level mutable state.
package lookbehind
