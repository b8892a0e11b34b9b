package memory

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"
	"go.uber.org/atomic"
)

// Errors callers may branch on. Every other error wraps one of these or says
// what was wrong in its text.
var (
	// ErrClosed is returned by every operation on a Client, a torrent or a
	// piece after the Client or the torrent was closed.
	ErrClosed = errors.New("memory: storage closed")
	// ErrNoSpace is wrapped by a write that found no evictable piece within
	// Options.WaitTimeout, and by a SetCapacity shrink that could not evict
	// down to the new capacity in that time.
	ErrNoSpace = errors.New("memory: no evictable space")
	// ErrInvalidOptions is wrapped by New's errors for options it refuses.
	ErrInvalidOptions = errors.New("memory: invalid options")
	// ErrOutOfRange is wrapped by reads and writes outside a piece.
	ErrOutOfRange = errors.New("memory: offset out of range")
)

// Defaults for Options.
const (
	DefaultBlockSize       = 16 << 10
	DefaultWaitTimeout     = 10 * time.Second
	DefaultLookbehindShare = 0.25
)

// Options configure a Client. The zero value of every field but Capacity
// selects its default.
type Options struct {
	// Capacity is the most bytes of piece data held at once, across every
	// torrent of the Client. Required, > 0.
	Capacity int64
	// BlockSize is the unit of allocation and accounting: a power of two
	// between 4 KiB and 4 MiB. Default 16 KiB, the chunk size peers send,
	// so that a piece holds exactly the chunks it received.
	BlockSize int
	// WaitTimeout bounds how long a write waits when the cache is full and
	// every resident piece is pinned or being written. Default 10 s.
	WaitTimeout time.Duration
	// LookbehindShare is the largest share of the capacity that lookbehind
	// pieces may hold, in [0, 1]. Default 0.25; NoLookbehind disables it.
	LookbehindShare float64
	// NoLookbehind makes LookbehindShare 0.
	NoLookbehind bool
	// OnEvict, when set, is told which pieces of a torrent that were
	// complete have been evicted, so that the torrent client can learn it
	// (it caches completion) and peers can be told the pieces are gone. It
	// is called from one goroutine owned by the Client, outside every lock
	// of this package, in batches of one torrent's pieces, never after
	// Close returns; pieces is only valid during the call. It must not call
	// Close. The package host wires it to an anacrolix torrent.Client;
	// without it the client finds out when a read of such a piece fails.
	// A piece evicted while no readahead covered it may come again when a
	// readahead covers it: the client was told its completion is unknown
	// and must read it again (see the package doc).
	OnEvict func(ih metainfo.Hash, pieces []int)
	// OnWantLeafHashes, when set, is told where reads before the hash
	// check (Torrent.ReadUnverified, Torrent.ReadVerified) are in a piece:
	// the leaf (BEP 52's 16 KiB block, see Torrent.SetLeafHashes) at the
	// read's offset, whether or not its hash is known, so that the caller
	// can fetch the hashes of that leaf and of those after it before the
	// reader gets there. It is told again when a read of the piece is at
	// another leaf than the one it was last told of, while the piece is
	// incomplete: at most once per leaf a reader moves through. It is
	// called on the reader's goroutine, outside every lock of this
	// package, and must return quickly. The package host wires it to BEP
	// 52 hash requests to peers.
	OnWantLeafHashes func(ih metainfo.Hash, piece, leaf int)
}

// Client is a storage.ClientImplCloser that keeps piece data in memory under
// one capacity shared by all the torrents it opens. It is safe for concurrent
// use. Create it with New.
type Client struct {
	blockSize       int64                                   // never changes
	waitTimeout     time.Duration                           // never changes
	lookbehindShare float64                                 // never changes
	onWantLeaves    func(ih metainfo.Hash, piece, leaf int) // Options.OnWantLeafHashes; never changes

	budget   budget
	notifier notifier
	space    spaceSignal

	// capFn is the TorrentImpl.Capacity of every torrent of this Client:
	// one pointer, so the torrent client shares one request order.
	capFn    func() (int64, bool)
	reported atomic.Int64 // the capacity capFn reports
	clock    atomic.Int64 // ticks once per piece access; the LRU clock

	closed    atomic.Bool
	closeOnce sync.Once

	// resizeMu serialises SetCapacity calls. It is held across a shrink's
	// wait for space, so nothing the torrent client calls takes it.
	resizeMu sync.Mutex
	// capMu orders capacity changes with OpenTorrent's piece-size check and
	// with Close. It is never held across a wait: OpenTorrent runs under
	// the torrent client's lock (when a magnet's metadata arrives).
	capMu sync.Mutex

	mu sync.Mutex // guards writes to torrents
	// torrents is the immutable list of open torrents, replaced on open and
	// close, read without a lock by eviction.
	torrents atomic.Pointer[[]*Torrent]

	evictions    atomic.Int64 // pieces evicted
	evictedBytes atomic.Int64 // bytes freed by eviction
	// Evicted pieces that were not verified: partly written, or whole
	// and waiting for their hash.
	evictedPartial, evictedUnhashed atomic.Int64
	leafRefusals                    atomic.Int64 // Stats.RefusedLeaves
	waits                           atomic.Int64 // writes that had to wait for space
	pinnedBytes                     atomic.Int64 // bytes covered by Pins
}

var _ storage.ClientImplCloser = (*Client)(nil)

// New returns a Client with the given options and starts the notifier goroutine that
// calls Options.OnEvict, which Close stops. It returns an error wrapping
// ErrInvalidOptions and naming the bad field when Capacity <= 0, BlockSize
// is not a power of two in [4 KiB, 4 MiB], Capacity is below one block,
// LookbehindShare is outside [0, 1], or WaitTimeout < 0.
func New(opts Options) (*Client, error) {
	if opts.Capacity <= 0 {
		return nil, fmt.Errorf("%w: capacity %d: must be > 0", ErrInvalidOptions, opts.Capacity)
	}
	bs := opts.BlockSize
	if bs == 0 {
		bs = DefaultBlockSize
	}
	if bs < 4<<10 || bs > 4<<20 || bs&(bs-1) != 0 {
		return nil, fmt.Errorf("%w: block size %d: must be a power of two from 4 KiB to 4 MiB", ErrInvalidOptions, bs)
	}
	if opts.Capacity < int64(bs) {
		return nil, fmt.Errorf("%w: capacity %d is smaller than one block (%d bytes)", ErrInvalidOptions, opts.Capacity, bs)
	}
	if opts.LookbehindShare < 0 || opts.LookbehindShare > 1 {
		return nil, fmt.Errorf("%w: lookbehind share %v: must be in [0, 1]", ErrInvalidOptions, opts.LookbehindShare)
	}
	if opts.WaitTimeout < 0 {
		return nil, fmt.Errorf("%w: wait timeout %v: must be >= 0", ErrInvalidOptions, opts.WaitTimeout)
	}
	c := &Client{
		blockSize:    int64(bs),
		waitTimeout:  opts.WaitTimeout,
		onWantLeaves: opts.OnWantLeafHashes,
	}
	switch {
	case opts.NoLookbehind:
		c.lookbehindShare = 0
	case opts.LookbehindShare == 0:
		c.lookbehindShare = DefaultLookbehindShare
	default:
		c.lookbehindShare = opts.LookbehindShare
	}
	if c.waitTimeout == 0 {
		c.waitTimeout = DefaultWaitTimeout
	}
	c.clock.Store(1) // above every fresh piece's lastUse (see touchLocked)
	c.budget.init(c.blockSize, opts.Capacity)
	c.reported.Store(opts.Capacity)
	c.capFn = func() (int64, bool) { return c.reported.Load(), true }
	c.torrents.Store(&[]*Torrent{})
	c.space.init()
	c.notifier.start(opts.OnEvict)
	return c, nil
}

// OpenTorrent implements storage.ClientImpl. It fails with ErrClosed after
// Close, and with an error naming the problem when info is nil or malformed
// or when one piece, rounded up to whole blocks, is larger than the capacity.
// The returned TorrentImpl's Capacity reports the Client's capacity, the
// same pointer for every torrent.
func (c *Client) OpenTorrent(_ context.Context, info *metainfo.Info, ih metainfo.Hash) (storage.TorrentImpl, error) {
	if info == nil {
		return storage.TorrentImpl{}, fmt.Errorf("memory: opening torrent %s: nil info", ih)
	}
	if info.PieceLength <= 0 {
		return storage.TorrentImpl{}, fmt.Errorf("memory: opening torrent %s: piece length %d: must be > 0", ih, info.PieceLength)
	}
	if info.TotalLength() < 0 {
		return storage.TorrentImpl{}, fmt.Errorf("memory: opening torrent %s: negative length %d", ih, info.TotalLength())
	}
	c.capMu.Lock()
	defer c.capMu.Unlock()
	if c.closed.Load() {
		return storage.TorrentImpl{}, ErrClosed
	}
	// During a shrink the admission limit is already the new capacity.
	capacity := min(c.budget.capacity.Load(), c.budget.limit.Load())
	if need := c.roundUp(info.PieceLength); need > capacity {
		return storage.TorrentImpl{}, fmt.Errorf("memory: opening torrent %s: piece length %d (%d bytes in blocks) exceeds capacity %d",
			ih, info.PieceLength, need, capacity)
	}
	t := newTorrent(c, info, ih)
	c.mu.Lock()
	old := *c.torrents.Load()
	ts := make([]*Torrent, len(old), len(old)+1)
	copy(ts, old)
	ts = append(ts, t)
	c.torrents.Store(&ts)
	c.mu.Unlock()
	return storage.TorrentImpl{
		PieceWithHash: t.pieceImpl,
		Close:         t.Close,
		Capacity:      &c.capFn,
	}, nil
}

// Torrent returns the newest open torrent with the info hash, or false.
// Safe for concurrent use; never blocks.
func (c *Client) Torrent(ih metainfo.Hash) (*Torrent, bool) {
	ts := *c.torrents.Load()
	for i := len(ts) - 1; i >= 0; i-- {
		if ts[i].ih == ih {
			return ts[i], true
		}
	}
	return nil, false
}

func (c *Client) removeTorrent(t *Torrent) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := *c.torrents.Load()
	ts := make([]*Torrent, 0, len(old))
	for _, o := range old {
		if o != t {
			ts = append(ts, o)
		}
	}
	c.torrents.Store(&ts)
}

// SetCapacity changes the capacity at run time. Growing takes effect at
// once. Shrinking lowers the admission limit first, evicts down to n, and
// publishes the new capacity last, so Stats never shows Resident above
// Capacity. It fails, leaving the capacity unchanged, with an error naming
// the problem when n <= 0 or n is smaller than a piece of an open torrent,
// with an error wrapping ErrNoSpace when pinned pieces kept it from evicting
// down to n within Options.WaitTimeout, and with ErrClosed after Close.
// Safe for concurrent use; concurrent calls are serialised. A shrink that
// waits for pinned pieces holds no lock that OpenTorrent or any other call
// of the torrent client takes.
func (c *Client) SetCapacity(n int64) error {
	if n <= 0 {
		return fmt.Errorf("%w: capacity %d: must be > 0", ErrInvalidOptions, n)
	}
	if n < c.blockSize {
		return fmt.Errorf("%w: capacity %d is smaller than one block (%d bytes)", ErrInvalidOptions, n, c.blockSize)
	}
	c.resizeMu.Lock()
	defer c.resizeMu.Unlock()
	old, err := c.startResize(n)
	if err != nil || n >= old {
		return err
	}
	deadline := time.Now().Add(c.waitTimeout)
	for c.budget.used.Load() > n {
		if err := c.makeRoom(deadline); err != nil {
			c.capMu.Lock()
			c.budget.limit.Store(old)
			c.capMu.Unlock()
			return fmt.Errorf("memory: shrinking capacity from %d to %d: %w", old, n, err)
		}
	}
	c.capMu.Lock()
	defer c.capMu.Unlock()
	if c.closed.Load() {
		return ErrClosed
	}
	c.budget.publish(n)
	c.budget.trim()
	c.updateReported()
	return nil
}

// startResize checks n against the open torrents and returns the old
// capacity. A growth takes effect at once; a shrink lowers the admission
// limit, and OpenTorrent's piece check with it, and leaves the eviction
// down to n to the caller.
func (c *Client) startResize(n int64) (old int64, err error) {
	c.capMu.Lock()
	defer c.capMu.Unlock()
	if c.closed.Load() {
		return 0, ErrClosed
	}
	for _, t := range *c.torrents.Load() {
		if need := c.roundUp(t.pieceLength); need > n {
			return 0, fmt.Errorf("memory: capacity %d is smaller than a piece of torrent %s (%d bytes in blocks)", n, t.ih, need)
		}
	}
	old = c.budget.capacity.Load()
	if n >= old {
		c.budget.publish(n)
		c.budget.limit.Store(n)
		c.budget.trim()
		c.updateReported()
		return old, nil
	}
	c.budget.limit.Store(n)
	return old, nil
}

func (c *Client) roundUp(n int64) int64 {
	return (n + c.blockSize - 1) / c.blockSize * c.blockSize
}

// Stats is a snapshot of a Client's counters.
type Stats struct {
	Capacity int64 // bytes of piece data the Client may hold
	Resident int64 // bytes held for piece data now, in whole blocks; <= Capacity
	Pooled   int64 // bytes of free blocks kept for reuse
	// Mapped is the address space mapped outside the Go heap for blocks
	// (0 where blocks come from the Go heap, see the package doc). Blocks
	// are carved from it as needed and returned to the OS when the capacity
	// shrinks, so the RAM it uses is at most Resident + Pooled; the rest is
	// never touched or was given back.
	Mapped       int64
	Torrents     int   // open torrents
	Pieces       int64 // pieces with at least one resident block
	Evictions    int64 // pieces evicted since New
	EvictedBytes int64 // bytes freed by eviction since New
	WriteWaits   int64 // writes that found nothing evictable and waited
	Notified     int64 // evicted complete pieces passed to Options.OnEvict
	// EvictedPartial counts evicted pieces that were partly written. The
	// torrent client still counts their chunks as received (v1.59.1 has no
	// way to be told otherwise), so the piece fails its hash check with a
	// "not resident" error once its last chunk arrives and is downloaded
	// again whole: wasted download, not corruption.
	EvictedPartial int64
	// EvictedUnhashed counts evicted pieces that were written whole but not
	// yet verified: the same waste, a whole piece each. They are the last
	// to be evicted.
	EvictedUnhashed int64
	// RefusedLeaves counts the reads, of every torrent the Client has
	// opened, that stopped at a leaf written whole whose bytes did not
	// match its hash (Torrent.RefusedLeaves): a peer's corrupted block
	// kept from the reader.
	RefusedLeaves int64

	// Reported is the capacity the torrent client is told (TorrentImpl.
	// Capacity): Capacity less what lookbehind and pins hold, at least
	// half of Capacity. Readahead should fit in it.
	Reported int64
	// LookbehindLimit is the most bytes lookbehind pieces may hold now:
	// Options.LookbehindShare of Capacity less what readaheads cover.
	LookbehindLimit int64
}

// Stats returns the Client's counters. It never blocks and does not
// allocate. Resident <= Capacity holds in every snapshot.
func (c *Client) Stats() Stats {
	capacity, used := c.budget.snapshot()
	s := Stats{
		Capacity:        capacity,
		Resident:        used,
		Pooled:          c.budget.pooled.Load() * c.blockSize,
		Mapped:          c.budget.arena.mapped.Load(),
		Evictions:       c.evictions.Load(),
		EvictedBytes:    c.evictedBytes.Load(),
		WriteWaits:      c.waits.Load(),
		Notified:        c.notifier.sent.Load(),
		EvictedPartial:  c.evictedPartial.Load(),
		EvictedUnhashed: c.evictedUnhashed.Load(),
		RefusedLeaves:   c.leafRefusals.Load(),
		Reported:        c.reported.Load(),
	}
	s.LookbehindLimit = c.lookbehindLimit()
	for _, t := range *c.torrents.Load() {
		s.Torrents++
		s.Pieces += t.residentPieces.Load()
	}
	return s
}

// Close closes every torrent, stops the notifier goroutine and drops the
// block pool, unmapping its memory (see the package doc): a Client that is
// never closed keeps its blocks mapped until the process exits. It is idempotent and always returns nil. Reads and writes in
// flight end with ErrClosed or complete normally; none sees a buffer reused
// elsewhere.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.capMu.Lock()
		c.closed.Store(true)
		c.capMu.Unlock()
		for _, t := range *c.torrents.Load() {
			t.Close()
		}
		c.space.broadcast()
		c.notifier.stop()
		c.budget.drop()
	})
	return nil
}
