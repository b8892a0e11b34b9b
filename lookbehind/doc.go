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
// This is what measurement justified, on a 2 vCPU AMD EPYC VM shared with
// other work, 2026-12-01:
//
//   - storage/memory asks Contains under its torrent's lock, on every
//     reindex of a piece; writers of the set run outside that lock and take
//     it only to reindex the pieces that entered or left the set.
//     TestLookbehindConcurrent (4 torrents written into half their size
//     while 16 goroutines move readaheads and lookbehind sets and read
//     stats), `go test -race -count=1 -v -run TestLookbehindConcurrent
//     ./storage/memory`: 2.2, 3.7, 5.6 and 8.8 s with the writes outside the
//     torrent lock; 7.7, 8.4, 13.6, 15.5, 17.4 and 17.9 s with the same code
//     writing the set under it (median 4.7 s against 14.5 s). The change that
//     introduced the per-torrent eviction index saw its writers starve for
//     more than 40 s when every lookbehind call took the torrent lock.
//
//   - Contains against a bitset behind a mutex, `go test -run '^$' -bench .
//     -benchtime 300ms -count 3 ./lookbehind`, ns/op (three runs):
//
//     writers  Set             mutex
//     0        6.5 11.5 27.8   17.9 21.2 18.9
//     2        9.4  9.7 10.1   32.1 33.8 35.3
//     8       13.8 12.5 13.8   29.2 19.6 18.4
//
//     A write that changes the set costs 1.3-2.8 µs and 1,328 bytes for
//     10,000 pieces; one that changes nothing, 12-18 ns and no allocation.
//
//   - Cache-line padding between the snapshot pointer and the hit counters,
//     which this Set used to hold, showed no gain for Contains (12-14 ns
//     padded, 9-12 ns without, same command, writers 0 to 8); the counters
//     now live in storage/memory under its torrent lock, and nothing is left
//     to pad.
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
