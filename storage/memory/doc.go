// Package memory is a capacity-bounded, in-memory storage for
// github.com/anacrolix/torrent, made for streaming video while it downloads.
//
// A [Client] holds the piece data of every torrent it opens under one byte
// budget, its capacity. Data lives in fixed-size blocks (16 KiB by default,
// the BitTorrent chunk size) taken from a pool owned by the Client and reused
// for its whole life: no buffer is allocated per piece, and a piece that has
// received one chunk holds one block, not a whole piece.
//
// # The bound
//
// A writer reserves a block's bytes with a compare-and-swap on the Client's
// used counter before it may take a buffer from the pool, so the bytes held
// for piece data ([Stats].Resident) never exceed [Stats].Capacity, at any
// instant and across all torrents. When a reservation fails the writer
// evicts: it picks a victim across torrents, locking one torrent at a time,
// frees it and retries. A full cache therefore does not fail a write, which
// matters because the torrent client stops downloading a torrent after one
// failed write. Only when every resident piece is pinned (a hash in flight)
// does the writer wait, up to [Options.WaitTimeout];
// after that it fails with an error wrapping [ErrNoSpace]. Callers who prefer
// to keep such a torrent downloading can install their own handler with
// (*torrent.Torrent).SetOnWriteChunkError.
//
// # Eviction
//
// Eviction is whole pieces, never a piece with a read or hash in flight and
// never a piece being written (reads and writes copy under the torrent's
// lock; hashes pin the piece). The order, first to last: complete pieces
// nobody asked to keep, least recently used first; lookbehind pieces
// ([Torrent.SetLookbehind]), furthest behind first; partial pieces; head and
// tail pins ([Torrent.Pin]); pieces in readaheads ([Torrent.NewReadahead]),
// furthest ahead of the playhead first; and last of all pieces whose every
// byte is written but not yet verified, because the client is about to hash
// them and evicting one wastes a whole piece and fails its hash.
// Lookbehind may hold Options.LookbehindShare of the capacity less what
// readaheads cover; beyond that its pieces count as unprotected. The
// capacity reported to the torrent client is the capacity less what
// lookbehind and pins hold, never below half of it. An evicted
// complete piece answers Completion{Ok: true, Complete: false}, or, while
// its torrent has readaheads and none covers it, Completion{Ok: false}
// (unknown: the torrent client neither requests it nor restarts requests
// on every connection for it; a readahead that covers it again hands it
// to Options.OnEvict once more, and it answers Ok; so code that wants
// pieces of such a torrent by other means, a torrent.Reader or
// DownloadPieces, gets evicted ones back only under a Readahead of its
// own, or once the torrent has none), reads of it
// fail with an error wrapping io.ErrUnexpectedEOF (never (0, nil), which the
// client's wrapper turns into a panic), and [Options.OnEvict] is told
// asynchronously, in batches, by a worker goroutine, outside every lock of
// this package. The package depends on the host's storage interface only,
// not on its client: package host wires the hook to an anacrolix
// torrent.Client (host.New), which re-reads the pieces' completion and tells
// peers the pieces are gone.
//
// # The cost of eviction
//
// A write that must evict costs the same whatever the capacity: it never
// looks at every resident piece. Each torrent indexes its evictable pieces,
// under its lock, by slot: complete, partial, pinned and written-but-unhashed
// pieces in 4-ary min-heaps by last use; lookbehind pieces in a heap by last
// use and a bitset by index with a summary bit per word (ranked by index while
// lookbehind holds no more than its share, with the complete pieces by last
// use when it holds more); readahead pieces in a bitset by index, in
// which the piece furthest ahead is the highest one below a readahead
// boundary. A piece pinned by a hash is in no slot. Every change of a
// piece's state (write, read, hash, completion) and every move of a readahead,
// pin or the lookbehind set moves the resident pieces it concerns to their
// slot, O(log n) each. A victim is then the best of each torrent's slot
// heads, taken one torrent lock at a time: O(torrents + log n) (plus
// O(readaheads²) per torrent when only readahead pieces are left), never
// O(resident pieces) as the scan before it was. Tests check the index
// against that scan after every one of thousands of random operations, and
// count the heap entries and bitset words an eviction looks at: 64 times
// the resident pieces cost about twice as many (14.5 vs 26.6).
//
// BenchmarkWriteUnderEviction: 16 KiB writes into a torrent of twice the
// capacity, each piece marked complete when written, lookbehind off, through
// the storage.Piece wrappers. Medians of 5 runs of 2 s each, the scan (the
// code before the index) and the index alternating, 2026-12-01, on a 2 vCPU
// AMD EPYC VM shared with other jobs (load average 8 to 15; single runs
// vary up to 2.5x):
//
//	go test -run '^$' -bench WriteUnderEviction -benchtime 2s ./storage/memory
//
//	us/write        64 MiB    1 GiB    4 GiB   4 GiB/64 MiB
//	16 KiB pieces
//	  scan            33.3    440.8   1515.9   45x
//	  index            3.48     2.84     2.77   0.80x
//	1 MiB pieces
//	  scan             2.31     2.09     2.38   1.03x
//	  index            2.72     2.46     2.30   0.85x
//
// # Concurrency
//
// Every exported method is safe for concurrent use. Each torrent has its own
// mutex, so I/O on different torrents never waits on a shared lock; the only
// locks shared by all torrents are the block pool's and the notification
// queue's, both held for a slice push or pop and never around a copy. Stats,
// and the Capacity function the torrent client calls under its own lock, are
// atomic loads. There is no package-level mutable state.
//
// Lock order, the one true list (a goroutine takes locks only downwards):
//
//	Client.resizeMu   serialises SetCapacity; held across a shrink's wait,
//	                  so no call of the torrent client ever takes it
//	Client.capMu      capacity changes vs OpenTorrent's piece check and Close
//	Client.mu         writers of the list of open torrents
//	Torrent.lbMu      serialises changes of the torrent's lookbehind set
//	Torrent.mu        one torrent's pieces, eviction index, readaheads, pins
//	                  and lookbehind figures; the lookbehind.Set itself
//	                  takes no lock (it is written under lbMu, read anywhere)
//	budget.mu, spaceSignal.mu, notifier.mu   leaves: a slice push or pop
//
// A goroutine never holds two torrent locks, never calls the torrent client
// or Options.OnEvict while holding one of our locks, and holds no lock but
// resizeMu while it waits for space.
//
// # Memory
//
// Where the system has anonymous mmap (every Unix), blocks live outside the
// Go heap: the pool maps chunks of 1 MiB (golang.org/x/sys/unix, no cgo),
// carves them into blocks as it needs them and counts the mappings in
// [Stats].Mapped. The collector neither scans these blocks nor counts them
// when it paces itself, so a cache of N bytes costs N bytes of RSS plus
// the program's own heap, where on the Go heap it would let GOGC=100 grow
// the garbage of everything else (peer messages, upload and HTTP buffers)
// towards N again before a collection. When the capacity shrinks, free
// blocks beyond it return their pages to the OS at once (madvise
// MADV_DONTNEED; other systems than Linux may reclaim them lazily), and
// chunks with no block in use are unmapped. With blocks smaller than the
// OS page (4 KiB blocks on a 16 KiB-page system) only whole chunks are
// returned. Elsewhere (Windows, wasm), and for a block whose mapping fails,
// blocks come from make and are dropped for the collector when the
// capacity shrinks. The block pool's mutex is held for the system calls:
// one mmap per 1 MiB of growth, one madvise per block freed by a shrink.
//
// The package sets no process-wide state: no memory limit, no GC percent,
// no signal handler. A program that wants its process bounded sets a soft
// memory limit (debug.SetMemoryLimit or GOMEMLIMIT) for its own heap; the
// limit does not count the mapped blocks, so it should not include the
// capacity (memtorrent serve sets 64 MiB unless GOMEMLIMIT is set). Where
// blocks come from make, the capacity is heap and belongs in the limit.
//
// Measured on 2026-12-01, 2 vCPU AMD EPYC VM shared with other jobs:
//
//   - Throughput is within a few percent: BenchmarkBlocks runs the same
//     operations on mapped and on heap blocks alternately in one run and
//     reports the median per-iteration ratio, mmap/heap (5 runs, all
//     within 0.01 of these): 16 KiB WriteAt in steady state 1.03, WriteAt
//     under eviction 1.02, a 1 MiB piece's WriteTo 0.95. A block's first
//     fill costs its page faults: filling a new 16 MiB Client costs 2.2x
//     (Fill; 10 us per 16 KiB block on this VM) what it costs on heap
//     pages the Go heap has faulted in before, which a fresh process's
//     heap pays as well.
//   - A leecher process (reliability/leecher: this storage, the stream
//     handler, a loopback client, no memory limit) streaming a 512 MiB
//     file with ten seeks peaks (VmHWM) at capacity + 30 MiB for 32, 64
//     and 256 MiB of capacity (62, 94, 288 MiB); with blocks on the heap
//     it was capacity + 61 to 69 MiB (93, 133, 325 MiB). Of the 30 MiB,
//     about 22 MiB are the binary's code pages and 8 MiB heap and stacks.
//   - The rest of the process grows with uploads, not with this storage:
//     streaming from 8 seeders instead of one peaks at capacity + 34 MiB;
//     uploading a 48 MiB file held whole to 8 loopback leechers at once
//     peaks at the data + 78 MiB (+ 65 MiB under a 64 MiB memory limit),
//     against + 36 MiB for one leecher. The torrent client allocates a 16
//     KiB buffer per chunk it uploads and lets each connection hold up to
//     MaxAllocPeerRequestDataPerConn of them (16 MiB in package settings).
//   - Shrinking a full 96 MiB cache to 16 MiB drops the process's RssAnon
//     from 100 to 20 MiB at once (TestShrinkReturnsPages).
//
// # Closing
//
// [Client.Close] is idempotent: it closes every torrent, joins the worker and
// drops the pool. Handles held after Close stay valid and answer [ErrClosed].
// A buffer pinned by a read in flight is returned to the pool only when that
// read ends, so no read ever sees a buffer that is in use elsewhere; the
// pool unmaps a chunk only once none of its blocks is held, so a read that
// outlives Close still reads mapped memory.
package memory
