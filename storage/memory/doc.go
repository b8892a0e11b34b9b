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
// tail pins ([Torrent.Pin]); pieces in reader windows ([Torrent.NewWindow]),
// furthest ahead of the playhead first; and last of all pieces whose every
// byte is written but not yet verified, because the client is about to hash
// them and evicting one wastes a whole piece and fails its hash.
// Lookbehind may hold Options.LookbehindShare of the capacity less what
// reader windows cover; beyond that its pieces count as unprotected. The
// capacity reported to the torrent client is the capacity less what
// lookbehind and pins hold, never below half of it. An evicted
// complete piece answers Completion{Ok: true, Complete: false}, reads of it
// fail with an error wrapping io.ErrUnexpectedEOF (never (0, nil), which the
// client's wrapper turns into a panic), and [Options.OnEvict] is told
// asynchronously, in batches, by a worker goroutine, outside every lock of
// this package. The package depends on the host's storage interface only,
// not on its client: package host wires the hook to an anacrolix
// torrent.Client (host.New), which re-reads the pieces' completion and tells
// peers the pieces are gone.
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
//	Torrent.mu        one torrent's pieces, lookbehind, windows and pins
//	lookbehind.Set's  the torrent's lookbehind set (taken under Torrent.mu,
//	mutex             and under capMu when the reported capacity is summed)
//	budget.mu, spaceSignal.mu, notifier.mu   leaves: a slice push or pop
//
// A goroutine never holds two torrent locks, never calls the torrent client
// or Options.OnEvict while holding one of our locks, and holds no lock but
// resizeMu while it waits for space.
//
// # Closing
//
// [Client.Close] is idempotent: it closes every torrent, joins the worker and
// drops the pool. Handles held after Close stay valid and answer [ErrClosed].
// A buffer pinned by a read in flight is returned to the pool only when that
// read ends, so no read ever sees a buffer that is in use elsewhere.
package memory
