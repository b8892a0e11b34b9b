package host

import (
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"
	"go.uber.org/atomic"

	"github.com/memtorrent/memtorrent/storage/memory"
)

// Client is an anacrolix torrent client whose default storage is a
// memtorrent memory.Client, wired so that
//   - the torrent client learns of every evicted complete piece (it caches
//     completion, and would otherwise go on serving and announcing it);
//   - peers that advertised BEP 54 lt_donthave are told each such piece is
//     gone (see ExtensionDontHave), so that a cache that has seen every
//     piece does not look like a seed;
//   - the peers a torrent knows (those given to AddPeers and
//     AddTorrentSpec, and those it was connected to) are dialled again
//     while it is starved (it wants a piece no connected peer has, or its
//     info with no peer connected) and when a connection we dialled closes,
//     with a backoff per address (RedialMinBackoff to RedialMaxBackoff),
//     from a goroutine that Close stops (see redial.go);
//   - each peer's outstanding requests are bounded by RequestQueueTime at
//     its measured rate, and a connection that holds an urgent piece's
//     request and delivers nothing for SilentPeerTimeout is closed, as is
//     a far slower one that holds a chunk of the playhead's piece past
//     LateChunkAfter, from a goroutine that Close stops (see request.go
//     and late.go).
//
// Both exported fields are set by New and never change; use them directly.
// A Client is safe for concurrent use.
type Client struct {
	Torrent *torrent.Client
	Storage *memory.Client

	bound  atomic.Pointer[torrent.Client] // Torrent, once it exists
	redial *redialer                      // set by New, never changes
	reqs   *requests                      // set by New, never changes
	guard  *seedGuard                     // set by New, never changes
	peers  *peerLog                       // set by New, never changes

	// dropMu orders drops of torrents (Drop, Close: write) with eviction
	// reports (read): v1.59.1 panics when the completion of a torrent
	// dropped meanwhile is updated while another torrent shares its
	// request order (TestV1591UpdateCompletionAfterDropPanics). It is
	// taken before the client's lock, never under it.
	dropMu sync.RWMutex

	dontHaveSent atomic.Int64 // lt_donthave messages queued

	leaves    *leafHashes    // nil unless Options.LeafHashes
	listeners []net.Listener // the TCP listeners of leaves' tap, closed by Close
}

// PeerStats counts what a Client did for its peers beyond the host
// library's own protocol.
type PeerStats struct {
	// DontHaveSent is the number of lt_donthave messages queued to peers.
	DontHaveSent int64
	// Connections the host closed, by rule: holding a request of an
	// urgent piece and silent for SilentPeerTimeout (ClosedSilent),
	// waiting StuckCancelTimeout for the answer to a cancel (ClosedStuck),
	// too slow for the urgent chunks it holds (ClosedLate, see
	// LateChunkAfter).
	ClosedSilent, ClosedStuck, ClosedLate int64
}

// PeerStats returns the counts so far. It never blocks.
func (c *Client) PeerStats() PeerStats {
	return PeerStats{DontHaveSent: c.dontHaveSent.Load(), ClosedSilent: c.reqs.closedSilent.Load(),
		ClosedStuck: c.reqs.closedStuck.Load(), ClosedLate: c.reqs.closedLate.Load()}
}

// AddPeers adds peers to t (Torrent.AddPeers) and remembers them as
// sources of t to dial again when t is starved, whether or not a dial
// succeeds. Use it for the peers that came with a torrent (peers given with
// a .torrent); peers the client connects to are remembered anyway when
// their connection closes, but an address given to Torrent.AddPeers
// directly whose dial fails is forgotten. It returns what Torrent.AddPeers
// returns: how many were new to the client. Safe for concurrent use.
func (c *Client) AddPeers(t *torrent.Torrent, peers []torrent.PeerInfo) int {
	for _, p := range peers {
		if p.Addr != nil {
			c.redial.remember(t, p)
		}
	}
	return t.AddPeers(peers)
}

// AddTorrentSpec is torrent.Client.AddTorrentSpec that remembers spec.PeerAddrs
// (a magnet's x.pe) as AddPeers does, so that they are dialled again while
// the torrent waits for its info or a piece. Safe for concurrent use.
func (c *Client) AddTorrentSpec(spec *torrent.TorrentSpec) (t *torrent.Torrent, isNew bool, err error) {
	t, isNew, err = c.Torrent.AddTorrentSpec(spec)
	if err != nil {
		return t, isNew, err
	}
	for _, a := range spec.PeerAddrs {
		c.redial.remember(t, torrent.PeerInfo{Addr: torrent.StringAddr(a), Source: torrent.PeerSourceDirect})
	}
	return t, isNew, nil
}

// RedialState returns what the Client's redialer knows of the torrent ih:
// the addresses it remembers and its redials. It never blocks on the
// torrent client.
func (c *Client) RedialState(ih metainfo.Hash) RedialState { return c.redial.state(ih) }

// New makes the memory storage from opts, sets it as cfg.DefaultStorage and
// makes the torrent client from cfg. opts.OnEvict, if set, still runs, after
// the client and the peers have been told. New adds its callbacks to
// cfg.Callbacks after those already there, which run first (callbacks.go),
// and starts the goroutines that redial and watch requests (see Client);
// Close stops them. Apply cfg first for memtorrent's recommended
// configuration. New returns the error of memory.New or torrent.NewClient,
// wrapped, and leaves nothing running when it fails.
func New(cfg *torrent.ClientConfig, opts memory.Options) (*Client, error) {
	return NewWrapped(cfg, opts, nil)
}

// NewWrapped is New with the storage the torrent client sees made by wrap
// from the memory storage (to check or count what the client opens, say).
// A nil wrap is New.
func NewWrapped(cfg *torrent.ClientConfig, opts memory.Options, wrap func(*memory.Client) storage.ClientImpl) (*Client, error) {
	return NewWith(cfg, opts, Options{Wrap: wrap})
}

// Options are the choices of NewWith beyond the client's configuration and
// the storage's options.
type Options struct {
	// Wrap, when set, makes the storage the torrent client sees from the
	// memory storage (see NewWrapped).
	Wrap func(*memory.Client) storage.ClientImpl
	// LeafHashes fetches, for the pieces of v2 and hybrid torrents that
	// reads before the hash check want, the SHA-256 of each 16 KiB block
	// from peers (BEP 52 hash requests), so that the storage serves each
	// block verified as soon as it arrives (memory.Torrent.ReadVerified);
	// for a torrent added by magnet it first asks peers for the piece
	// layers the hashes are checked against, and dials again a peer whose
	// connection it could not upgrade to v2 before the info came. It
	// makes the host listen and dial TCP itself, in place of the
	// client (which it configures with DisableTCP), to follow plaintext
	// connections (see leaftap.go); MSE-encrypted connections carry no
	// hash requests, so LeafHashes makes the client try plaintext first
	// on the connections it makes (HeaderObfuscationPolicy.Preferred
	// false; v1.59.1's default tries MSE first), unless the policy
	// requires its preference (RequirePreferred), which it leaves alone. It
	// implies ignoring the peers' hash messages in the client
	// (ignoreHashMessages), whose v1.59.1 handling of a block-layer reply
	// would corrupt its piece hashes or panic. The same tap keeps each
	// plaintext connection's request queue from running dry between
	// v1.59.1's request rounds (topup.go), unless NoTopUp.
	LeafHashes bool
	// NoTopUp, with LeafHashes, leaves the client's request rounds as
	// v1.59.1 makes them: without it the tap on each plaintext
	// connection asks the client to top up the connection's request
	// queue before it runs dry (see topup.go). For measuring the
	// difference.
	NoTopUp bool
	// NoEarlyFetch, with LeafHashes, leaves a read in the middle of a
	// piece to wait for the client, which fetches the piece's chunks in
	// order from its first: without it the chunks at each reader are
	// fetched first, in the places of the client's other requests in the
	// peers' queues (see early.go). For measuring the difference.
	NoEarlyFetch bool
}

// NewWith is New with options.
func NewWith(cfg *torrent.ClientConfig, opts memory.Options, o Options) (*Client, error) {
	wrap := o.Wrap
	c := &Client{redial: newRedialer(), guard: newSeedGuard(), peers: newPeerLog(),
		reqs: newRequests(RequestQueueTime, SilentPeerTimeout)}
	if o.LeafHashes {
		ls, err := tcpTakeover(cfg)
		if err != nil {
			return nil, err
		}
		c.leaves, c.listeners = newLeafHashes(), ls
		c.leaves.noTopUp, c.leaves.noEarly = o.NoTopUp, o.NoEarlyFetch
		c.leaves.redialAfterClose = c.redial.dialAfterClose
		c.leaves.onEarlyChunk = c.reqs.earlyReceived
		ignoreHashMessages(cfg)
		if !cfg.HeaderObfuscationPolicy.RequirePreferred {
			cfg.HeaderObfuscationPolicy.Preferred = false
		}
		nextWant := opts.OnWantLeafHashes
		opts.OnWantLeafHashes = func(ih metainfo.Hash, piece, leaf int) {
			c.leaves.want(ih, piece, leaf)
			c.leaves.fetchEarly(ih, piece, leaf)
			if nextWant != nil {
				nextWant(ih, piece, leaf)
			}
		}
	}
	c.wire(cfg)
	next := opts.OnEvict
	opts.OnEvict = func(ih metainfo.Hash, pieces []int) {
		c.evicted(ih, pieces)
		if next != nil {
			next(ih, pieces)
		}
	}
	mem, err := memory.New(opts)
	if err != nil {
		c.closeListeners()
		return nil, fmt.Errorf("host: making memory storage: %w", err)
	}
	var st storage.ClientImpl = mem
	if wrap != nil {
		st = wrap(mem)
	}
	cfg.DefaultStorage = c.guard.wrap(st)
	cl, err := torrent.NewClient(cfg)
	if err != nil {
		mem.Close()
		c.closeListeners()
		return nil, fmt.Errorf("host: making torrent client: %w", err)
	}
	c.Torrent, c.Storage = cl, mem
	c.bound.Store(cl)
	if c.leaves != nil {
		c.leaves.mem = mem
		c.leaves.cl.Store(cl)
		for _, l := range c.listeners {
			network := "tcp4"
			if l.Addr().(*net.TCPAddr).IP.To4() == nil {
				network = "tcp6"
			}
			cl.AddDialer(&tapDialer{network: network, lh: c.leaves, d: net.Dialer{KeepAlive: -1, FallbackDelay: -1}})
			cl.AddListener(tapListener{Listener: l, lh: c.leaves})
		}
	}
	go c.redial.run()
	go c.reqs.run()
	return c, nil
}

// closeListeners closes the TCP listeners of the leaf-hash tap.
func (c *Client) closeListeners() {
	for _, l := range c.listeners {
		l.Close()
	}
}

// LeafHashStats returns the counts of the leaf-hash traffic (zero unless
// Options.LeafHashes). It never blocks.
func (c *Client) LeafHashStats() LeafHashStats {
	if c.leaves == nil {
		return LeafHashStats{}
	}
	return c.leaves.stats()
}

// evicted tells the torrent client to read the completion of each piece
// again, then tells the peers that can be told (tellGone); memory calls it
// from its worker, outside its locks.
func (c *Client) evicted(ih metainfo.Hash, pieces []int) {
	cl := c.bound.Load()
	if cl == nil {
		return
	}
	c.dropMu.RLock()
	defer c.dropMu.RUnlock()
	t, ok := cl.Torrent(ih)
	if !ok {
		return
	}
	select {
	case <-t.Closed(): // dropped before we took dropMu
		return
	default:
	}
	for _, i := range pieces {
		t.Piece(i).UpdateCompletion()
	}
	c.guard.evicted(ih, pieces)
	c.dontHaveSent.Add(int64(tellGone(t, pieces)))
}

// Drop drops t from the torrent client. Use it instead of t.Drop for the
// torrents of a Client: it waits for an eviction report of t in flight, which
// would otherwise make v1.59.1 panic (see Client.dropMu). It blocks only
// for as long as one report takes. It also forgets what Options.LeafHashes
// knew of t. Safe for concurrent use.
func (c *Client) Drop(t *torrent.Torrent) {
	c.dropMu.Lock()
	defer c.dropMu.Unlock()
	t.Drop()
	if c.leaves != nil {
		c.leaves.forget(t.InfoHash())
	}
}

// Close stops the redialing and request goroutines, closes the torrent client, then the
// storage (the torrent client does not close its DefaultStorage). It
// returns the errors of both, joined. Safe to call more than once.
func (c *Client) Close() error {
	if c.leaves != nil {
		c.leaves.closed.Store(true)
	}
	c.redial.Close()
	c.reqs.Close()
	var errs []error
	c.dropMu.Lock()
	errs = append(errs, c.Torrent.Close()...)
	c.dropMu.Unlock()
	// After the client's Close: its accept loops end on the error of a
	// closed listener only once the client is closed.
	c.closeListeners()
	errs = append(errs, c.Storage.Close())
	return errors.Join(errs...)
}
