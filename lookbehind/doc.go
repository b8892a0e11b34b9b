// Package lookbehind decides which pieces of a torrent stay in memory behind
// a video playhead, so that a player seeking backwards is served from memory
// instead of waiting for the pieces to be downloaded again.
//
// # Model
//
// Whoever knows the playhead (the streaming layer) calls [Pieces] with the
// file's place in the torrent, the playhead and a byte budget, and gives the
// resulting [Range] to the storage, which keeps the pieces in a [Set] and
// asks [Set.Contains] when it chooses what to evict. The storage, not this
// package, knows which pieces it holds, and counts what the set saves
// (storage/memory's LookbehindStats).
//
// The range stops before the piece that holds the playhead: that piece and
// the ones after it belong to the reader's readahead, so lookbehind and
// readahead never count the same piece twice, and the budget is a hard bound
// in whole pieces (a budget smaller than one piece protects nothing).
//
// # Snapshots
//
// The members of a Set live in an immutable snapshot published through an
// atomic pointer. A write builds a new bitset and publishes it with one
// atomic store; a reader loads the pointer and reads: it never locks, never
// retries and never allocates. A reader sees the old set or the new one in
// full, never a mix. The Set has no mutex: every write replaces the whole
// set, so concurrent writes leave the last one stored, and a caller that
// must pair a write with work of its own (storage/memory reindexes the
// pieces that entered or left the set) serialises them itself.
//
// docs/bench.md has the measurements behind this design (a lock-free set
// against a bitset behind a mutex, and writers outside the storage's lock).
//
// # Costs
//
// With N the number of pieces of the torrent:
//
//	Contains, Count                 O(1), wait-free, no allocation
//	AppendTo                        O(N/64 + members), one snapshot
//	Replace, ReplaceRange           O(N/64 + len(list)), allocates N/8 bytes;
//	                                a range write that changes nothing
//	                                allocates nothing
//	Clear                           allocates N/8 bytes unless already empty
//
// # Concurrency
//
// [Pieces] is a pure function. Every method of [Set] is safe for
// concurrent use and takes no lock. The package has no package-level mutable
// state.
package lookbehind
