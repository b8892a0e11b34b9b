package host

import (
	"context"
	"io"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"

	gen "github.com/anacrolix/generics"
	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
	pp "github.com/anacrolix/torrent/peer_protocol"
	"github.com/anacrolix/torrent/storage"
	"github.com/bits-and-blooms/bitset"
)

// seedGuard keeps a bounded cache from ever looking like a seed to a peer
// that cannot be told otherwise (one without lt_donthave).
//
// Why: anacrolix v1.59.1 announces every piece it verifies and never takes
// an announcement back, so after a full pass through a cache a peer has
// seen HAVE for every piece. A seeder then drops us as redundant, and some
// never serve that address again: Transmission 3.00 marks the address a
// seed once a connection's bitfield is full (peer-mgr.c atomSetSeed: its
// peer_atom is keyed by IP alone, and only PEX lowers the mark) and, while
// it is itself a seed, refuses every later encrypted handshake from it and
// closes every later connection from it at its next reconnect pulse
// (shouldPeerBeClosed: at once without PEX, 30 s after the connection with
// it).
//
// How: the guard counts, per connection, the pieces the client can have
// announced on it (those complete when it opened, as its bitfield, and
// each piece completed since). When a piece is about to be marked complete
// (the storage's MarkComplete, which the client calls without its lock,
// before it sends HAVE) and that HAVE would bring the peer's view of us
// within guardMargin pieces of a seed while a new connection would start
// well below it, it closes the connection first. The
// peer never sees a seed; the redialer then connects again, and the new
// connection carries the true bitfield. The count over-estimates (a piece
// counts from the moment we mark it until the client has been told it was
// evicted), so the guard may close a connection a little early, never late.
type seedGuard struct {
	mu       sync.Mutex // guards the field below; never held across a call into the client
	torrents map[metainfo.Hash]*guarded
}

// guarded is the guard's view of one torrent. A torrent added without its
// info (a magnet) has connections before the storage opens it: its entry is
// made by the first connection, with n 0 until OpenTorrent.
type guarded struct {
	n        uint           // pieces; set by OpenTorrent, 0 before
	complete *bitset.BitSet // a superset of the client's complete pieces
	conns    map[*torrent.PeerConn]*connView
}

// torrentLocked returns ih's entry, making it.
func (g *seedGuard) torrentLocked(ih metainfo.Hash) *guarded {
	gt := g.torrents[ih]
	if gt == nil {
		gt = &guarded{complete: bitset.New(0), conns: make(map[*torrent.PeerConn]*connView)}
		g.torrents[ih] = gt
	}
	return gt
}

// connView is what one peer can believe we have.
type connView struct {
	announced *bitset.BitSet
	toldGone  bool // the peer advertised lt_donthave: it learns of evictions
	keepsSeed bool // an anacrolix peer: it never drops a connection to a seed
}

// anacrolixPeerIDPrefix starts the peer ID of anacrolix/torrent clients
// (BEP 20, version.DefaultBep20Prefix "-GT0003-"). They never close a
// connection because both ends are seeds, so guarding them only costs
// reconnections (docs/soak.md has what it cost a soak).
const anacrolixPeerIDPrefix = "-GT"

func newSeedGuard() *seedGuard {
	return &seedGuard{torrents: make(map[metainfo.Hash]*guarded)}
}

// wrap returns st with MarkComplete of every piece reported to g first.
// Everything else, including the Capacity pointer, is st's.
func (g *seedGuard) wrap(st storage.ClientImpl) storage.ClientImpl {
	return guardedStorage{st, g}
}

type guardedStorage struct {
	storage.ClientImpl
	g *seedGuard
}

func (s guardedStorage) OpenTorrent(ctx context.Context, info *metainfo.Info, ih metainfo.Hash) (storage.TorrentImpl, error) {
	ti, err := s.ClientImpl.OpenTorrent(ctx, info, ih)
	if err != nil {
		return ti, err
	}
	g := s.g
	n := uint(info.NumPieces())
	g.mu.Lock()
	gt := g.torrentLocked(ih)
	gt.n, gt.complete = n, bitset.New(n)
	g.mu.Unlock()
	cache := make([]atomic.Pointer[cachedPiece], n)
	if inner := ti.PieceWithHash; inner != nil {
		ti.PieceWithHash = func(p metainfo.Piece, h gen.Option[[]byte]) storage.PieceImpl {
			return g.piece(cache, ih, p.Index(), inner(p, h))
		}
	}
	if inner := ti.Piece; inner != nil {
		ti.Piece = func(p metainfo.Piece) storage.PieceImpl { return g.piece(cache, ih, p.Index(), inner(p)) }
	}
	if inner := ti.Close; inner != nil {
		ti.Close = func() error {
			g.mu.Lock()
			delete(g.torrents, ih)
			g.mu.Unlock()
			return inner()
		}
	}
	return ti, nil
}

// cachedPiece is a wrapped piece handle and the handle it wraps.
type cachedPiece struct {
	inner, wrapped storage.PieceImpl
}

// piece wraps p so that MarkComplete goes through the guard, keeping
// io.WriterTo (hashing reads through it). The client asks for a piece's
// handle on every access: when the storage returns the same pointer for a
// piece each time (memory does), the wrapper is made once and kept in
// cache, so the call allocates nothing.
func (g *seedGuard) piece(cache []atomic.Pointer[cachedPiece], ih metainfo.Hash, i int, p storage.PieceImpl) storage.PieceImpl {
	pointer := reflect.TypeOf(p) != nil && reflect.TypeOf(p).Kind() == reflect.Pointer
	if pointer && i >= 0 && i < len(cache) {
		if c := cache[i].Load(); c != nil && c.inner == p {
			return c.wrapped
		}
	}
	var wrapped storage.PieceImpl = &guardedPiece{p, g, ih, i}
	if wt, ok := p.(io.WriterTo); ok {
		wrapped = &guardedPieceWriterTo{guardedPiece{p, g, ih, i}, wt}
	}
	if pointer && i >= 0 && i < len(cache) {
		cache[i].Store(&cachedPiece{p, wrapped})
	}
	return wrapped
}

type guardedPieceWriterTo struct {
	guardedPiece
	wt io.WriterTo
}

func (p *guardedPieceWriterTo) WriteTo(w io.Writer) (int64, error) { return p.wt.WriteTo(w) }

type guardedPiece struct {
	storage.PieceImpl
	g  *seedGuard
	ih metainfo.Hash
	i  int
}

func (p *guardedPiece) MarkComplete() error {
	p.g.completing(p.ih, p.i)
	return p.PieceImpl.MarkComplete()
}

// connAdded starts the view of pc: every piece we may have when the
// client sends its bitfield (none before the info). The client calls it
// with its lock held.
func (g *seedGuard) connAdded(pc *torrent.PeerConn) {
	t := pc.Torrent()
	if t == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	gt := g.torrentLocked(t.InfoHash())
	gt.conns[pc] = &connView{
		announced: gt.complete.Clone(),
		keepsSeed: strings.HasPrefix(string(pc.PeerID[:]), anacrolixPeerIDPrefix),
	}
}

// extendedHandshake notes whether pc's peer can be told of evictions.
func (g *seedGuard) extendedHandshake(pc *torrent.PeerConn, msg *pp.ExtendedHandshakeMessage) {
	if pc == nil || pc.Torrent() == nil {
		return
	}
	_, ok := msg.M[ExtensionDontHave]
	g.mu.Lock()
	defer g.mu.Unlock()
	if gt := g.torrents[pc.Torrent().InfoHash()]; gt != nil {
		if v := gt.conns[pc]; v != nil {
			v.toldGone = ok
		}
	}
}

// connClosed forgets pc.
func (g *seedGuard) connClosed(pc *torrent.PeerConn) {
	t := pc.Torrent()
	if t == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	ih := t.InfoHash()
	if gt := g.torrents[ih]; gt != nil {
		delete(gt.conns, pc)
		if gt.n == 0 && len(gt.conns) == 0 {
			delete(g.torrents, ih) // never opened: nothing to keep
		}
	}
}

// evicted notes that the client no longer counts pieces complete. Call it
// after UpdateCompletion, so that complete stays a superset.
func (g *seedGuard) evicted(ih metainfo.Hash, pieces []int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if gt := g.torrents[ih]; gt != nil {
		for _, i := range pieces {
			gt.complete.Clear(uint(i))
		}
	}
}

// guardMargin is how many pieces short of a seed a peer's view of us may
// come before the guard closes the connection: n/8, at least 4. Closing
// before the very last piece leaves pieces for a sequential reader to want,
// so the client dials the peer again at once (it dials only while it needs
// data) and the new connection is established, and unchoked, before a seek
// needs it: a Transmission seeder unchokes a new peer only at its next
// rechoke, up to 10 s later. (A client without Config.Seed dials no one
// once it wants nothing, so the guard cannot dial back itself.) The guard
// closes a connection only when a new one would leave room for 2m more
// pieces, so that it cannot close connection after connection.
func guardMargin(n uint) uint { return max(4, n/8) }

// completing is called before piece i of ih is marked complete, without
// the client's lock: it closes each connection whose peer would otherwise
// see every piece announced while we lack some.
func (g *seedGuard) completing(ih metainfo.Hash, i int) {
	var closing []*torrent.PeerConn
	g.mu.Lock()
	gt := g.torrents[ih]
	if gt == nil || uint(i) >= gt.n {
		g.mu.Unlock()
		return
	}
	gt.complete.Set(uint(i))
	m := guardMargin(gt.n)
	// A new connection's bitfield would leave room for m more pieces.
	worth := gt.complete.Count()+2*m < gt.n
	for pc, v := range gt.conns {
		if v.toldGone || v.keepsSeed || v.announced.Test(uint(i)) {
			continue
		}
		if worth && v.announced.Count()+1+m >= gt.n {
			closing = append(closing, pc)
			delete(gt.conns, pc)
			continue
		}
		v.announced.Set(uint(i))
	}
	g.mu.Unlock()
	for _, pc := range closing {
		pc.Close()
	}
}
