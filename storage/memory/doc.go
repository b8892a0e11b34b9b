// Package memory is a capacity-bounded, in-memory storage for
// github.com/anacrolix/torrent, made for streaming video while it downloads.
//
// A [Client] holds the piece data of every torrent it opens under one byte
// budget, its capacity, in fixed-size blocks (16 KiB by default) from a pool
// reused for the Client's whole life; a piece that has received one chunk
// holds one block. A writer reserves a block's bytes with a compare-and-swap
// before it takes a buffer, so [Stats].Resident never exceeds
// [Stats].Capacity. When the reservation fails the writer evicts a piece and
// retries, so a full cache does not fail a write (the torrent client stops
// downloading a torrent after one); only when every resident piece is pinned
// does it wait, up to [Options.WaitTimeout], then fail with [ErrNoSpace].
//
// Eviction takes whole pieces, never one being read, hashed or written,
// first to last: complete pieces nobody keeps (least recently used first),
// lookbehind pieces ([Torrent.SetLookbehind], furthest behind first; at most
// [Options.LookbehindShare] of the capacity less the readaheads), partial
// pieces, pins ([Torrent.Pin]), readahead pieces ([Torrent.NewReadahead],
// furthest ahead first), and last pieces written whole but not yet hashed.
// Each torrent indexes its evictable pieces by slot (heaps by last use,
// bitsets by index), so an eviction costs O(torrents + log pieces). The
// capacity reported to the client is the capacity less what lookbehind and
// pins hold, never below half of it.
//
// An evicted complete piece answers Completion{Ok: true, Complete: false};
// while its torrent has readaheads and none covers it, it answers unknown
// (Ok: false), which the client neither requests nor restarts requests for,
// so other readers of such a torrent get it back only under a Readahead of
// their own. Reads of missing data fail with io.ErrUnexpectedEOF, never
// (0, nil). [Options.OnEvict] is told of evicted complete pieces in
// batches by the Client's notifier goroutine, outside every lock. The package
// imports the host's storage interface, not its client: package host wires
// the hook to a torrent.Client.
//
// Where anonymous mmap exists blocks live outside the Go heap, so a cache
// of N bytes costs N bytes of RSS, and a shrink returns pages at once. The
// package sets no process-wide state (no memory limit); docs/bench.md has
// the measurements.
//
// # Concurrency
//
// Every exported method is safe for concurrent use; Stats and Capacity are
// atomic loads. Lock order (a goroutine takes locks only downwards):
//
//	Client.resizeMu   serialises SetCapacity; held across a shrink's wait
//	Client.capMu      capacity changes vs OpenTorrent's piece check and Close
//	Client.mu         writers of the list of open torrents
//	Torrent.lbMu      serialises changes of the torrent's lookbehind set
//	Torrent.mu        one torrent's pieces, eviction index, readaheads, pins
//	budget.mu, spaceSignal.mu, notifier.mu   leaves: a slice push or pop
//
// No goroutine holds two torrent locks or calls the client or OnEvict under
// a lock of ours. [Client.Close] is idempotent; handles held after it answer
// [ErrClosed], and a read that outlives it still reads mapped memory.
package memory
