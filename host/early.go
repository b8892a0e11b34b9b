package host

import (
	"sync"
	"time"

	"github.com/anacrolix/torrent/metainfo"
	pp "github.com/anacrolix/torrent/peer_protocol"

	"github.com/memtorrent/memtorrent/storage/memory"
)

// The early fetch: v1.59.1 asks for a piece's chunks in order from the
// piece's first, so a reader that starts in the middle of a big piece (a
// seek, a player reading a file's index at its end) waits for every chunk
// before its own: with 16 MiB pieces at 1 MB/s, seconds per MiB into the
// piece. The storage tells where a read before the hash check is
// (memory.Options.OnWantLeafHashes, once per 16 KiB leaf); when a chunk in
// the first half of earlyWindow chunks from there is neither written nor
// asked of any tapped connection, and the client asks none of the window
// (its requests run in order from the piece's first: it is behind the
// reader), the host asks the chunks of the window that are neither itself, of the tapped connections that have the piece
// and unchoke us, those that would answer first (their requests
// outstanding at their measured rate) first. It writes the answers to the
// storage (memory.Torrent.WriteEarly) and hands them not to the client,
// which never asked for them: the client still fetches the chunk itself
// later, so an early chunk costs its 16 KiB twice. Bytes so fetched are no
// less verified: the storage serves them as it serves the client's chunks
// (leaf hashes prove them, or -verify playhead serves them unverified), and
// the piece's hash check judges them.

// earlyWindow is how many chunks from a reader's on the early fetch covers:
// 2 MiB, four seconds of a 4 Mbit/s stream; its chunks wait behind the
// queues the host allows the client at each peer (RequestQueueTime).
const earlyWindow = 128

// earlyRetry is how long an early request stays asked: after it, the chunk
// may be asked again (of another connection).
const earlyRetry = 3 * time.Second

// connFetch is what a tapped connection knows of its peer for the early
// fetch, and the early requests it carries.
type connFetch struct {
	mu       sync.Mutex
	unchoked bool   // the peer unchoked us
	all      bool   // the peer has every piece (have all)
	pieces   []byte // the peer's bitfield, with its haves
	ours     map[chunkKey]ownRequest
	rate     rateMeter
}

// ownRequest is an early request outstanding.
type ownRequest struct {
	at time.Time
	mt *memory.Torrent
}

func (f *connFetch) setChoked(choked bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unchoked = !choked
}

func (f *connFetch) haveAll(all bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.all, f.pieces = all, nil
}

func (f *connFetch) bitfield(b []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pieces = append(f.pieces[:0], b...)
}

func (f *connFetch) have(i int) {
	if i < 0 || i >= 1<<24 { // no torrent has more pieces; bounds the bitfield
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for len(f.pieces) <= i/8 {
		f.pieces = append(f.pieces, 0)
	}
	f.pieces[i/8] |= 0x80 >> (i % 8)
}

// hasLocked reports whether the peer has piece i. f.mu must be held.
func (f *connFetch) hasLocked(i int) bool {
	return f.all || (i/8 < len(f.pieces) && f.pieces[i/8]&(0x80>>(i%8)) != 0)
}

// received counts n bytes of chunk data from the peer.
func (f *connFetch) received(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rate.add(time.Now(), int64(n))
}

// isOurs reports whether an early request of k is outstanding.
func (f *connFetch) isOurs(k chunkKey) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.ours[k]
	return ok
}

// take removes the early request of k, reporting it.
func (f *connFetch) take(k chunkKey) (ownRequest, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.ours[k]
	delete(f.ours, k)
	return r, ok
}

// ownAnswer handles a piece or reject message of c's peer that answers an
// early request (Read kept it from the client): a piece's chunk goes to
// the storage.
func (lh *leafHashes) ownAnswer(c *tapConn, m tapped) {
	k, ok := m.chunk()
	if !ok {
		return
	}
	r, ok := c.fetch.take(k)
	if !ok {
		return
	}
	if m.typ() != int(pp.Piece) || m.body == nil {
		lh.earlyRejected.Add(1)
		return
	}
	c.fetch.received(len(m.body) - tappedHead)
	wrote, err := r.mt.WriteEarly(int(k.index), int64(k.begin), m.body[tappedHead:])
	switch {
	case err != nil:
		lh.earlyRejected.Add(1)
	case wrote:
		lh.earlyWritten.Add(1)
	default:
		lh.earlyLate.Add(1)
	}
}

// earlyFrom is the first leaf of a piece the early fetch starts at: the
// client's own fetch, from the piece's first chunk, comes to a reader
// before it within about a second of a 1 MB/s swarm, and a read at a
// piece's start (a player's first) is the client's.
const earlyFrom = 64

// earlyTries and earlyTryEvery: when no connection can carry an early
// request yet (none unchoked us: the client just became interested), the
// early fetch tries again, so many times this far apart.
const (
	earlyTries    = 8
	earlyTryEvery = 250 * time.Millisecond
)

// earlyRate is the rate the early fetch assumes of a connection that has
// not delivered a second's worth yet: a slow line's.
const earlyRate = 64 << 10

// fetchEarly is told by the storage that a read before the hash check of
// piece of the torrent ih is at leaf (see the top of this file). It runs
// on the reader's goroutine; the requests go from another.
func (lh *leafHashes) fetchEarly(ih metainfo.Hash, piece, leaf int) {
	lh.fetchEarlyTry(ih, piece, leaf, earlyTries)
}

// fetchEarlyTry is fetchEarly with tries left.
func (lh *leafHashes) fetchEarlyTry(ih metainfo.Hash, piece, leaf, tries int) {
	cl := lh.cl.Load()
	if cl == nil || lh.noEarly || lh.closed.Load() || leaf < earlyFrom {
		return
	}
	mt, ok := lh.mem.Torrent(ih)
	if !ok {
		return
	}
	t, ok := cl.Torrent(ih)
	if !ok || t.Info() == nil || piece < 0 || piece >= t.Info().NumPieces() {
		return
	}
	plen := t.Info().Piece(piece).Length()
	conns := lh.connsOf(ih)
	if len(conns) == 0 {
		lh.fetchEarlyLater(ih, piece, leaf, tries)
		return
	}
	now := time.Now()
	clientAsked := func(k chunkKey) bool {
		for _, c := range conns {
			if c.top.has(k) {
				return true
			}
		}
		return false
	}
	ourAsked := func(k chunkKey) bool {
		for _, c := range conns {
			c.fetch.mu.Lock()
			r, ok := c.fetch.ours[k]
			c.fetch.mu.Unlock()
			if ok && now.Sub(r.at) < earlyRetry {
				return true
			}
		}
		return false
	}
	var want []chunkKey
	trigger := false
	for i := range earlyWindow {
		off := int64(leaf+i) * chunkSize
		if off >= plen {
			break
		}
		k := chunkKey{pp.Integer(piece), pp.Integer(off)}
		if clientAsked(k) {
			// The client's in-order requests reached the window: it
			// fetches from here on, and another fetch would be twice.
			return
		}
		if mt.Has(piece, off, min(chunkSize, plen-off)) || ourAsked(k) {
			continue
		}
		want = append(want, k)
		trigger = trigger || i < earlyWindow/2
	}
	if !trigger {
		return
	}
	// Each chunk to the connection that would deliver it first.
	type cand struct {
		c    *tapConn
		wait float64 // seconds until a new request's answer, at the measured rate
		per  float64 // seconds per chunk
	}
	var cands []cand
	for _, c := range conns {
		if !c.ourFast.Load() || !c.peerBits.SupportsFast() {
			continue
		}
		c.fetch.mu.Lock()
		ok := c.fetch.unchoked && c.fetch.hasLocked(piece)
		rate, ours := c.fetch.rate.rate, len(c.fetch.ours)
		c.fetch.mu.Unlock()
		if rate == 0 {
			rate = earlyRate
		}
		if ok {
			per := chunkSize / rate
			cands = append(cands, cand{c, float64(c.top.count()+ours+1) * per, per})
		}
	}
	if len(cands) == 0 {
		lh.fetchEarlyLater(ih, piece, leaf, tries)
		return
	}
	msgs := make(map[*tapConn][][]byte)
	for _, k := range want {
		best := 0
		for i := range cands {
			if cands[i].wait < cands[best].wait {
				best = i
			}
		}
		b := &cands[best]
		b.wait += b.per
		b.c.fetch.mu.Lock()
		if b.c.fetch.ours == nil {
			b.c.fetch.ours = make(map[chunkKey]ownRequest)
		}
		b.c.fetch.ours[k] = ownRequest{at: now, mt: mt}
		b.c.fetch.mu.Unlock()
		length := min(chunkSize, plen-int64(k.begin))
		msgs[b.c] = append(msgs[b.c], pp.Message{Type: pp.Request, Index: k.index, Begin: k.begin, Length: pp.Integer(length)}.MustMarshalBinary())
	}
	lh.earlyAsked.Add(int64(len(want)))
	go func() {
		for c, ms := range msgs {
			for _, m := range ms {
				if !c.send(m) {
					break
				}
			}
		}
	}()
}

// connsOf returns the usable tapped connections of the torrent the
// storage knows as ih: those whose handshakes named its v1 info hash, and
// its truncated v2 one.
func (lh *leafHashes) connsOf(ih metainfo.Hash) []*tapConn {
	lh.mu.Lock()
	defer lh.mu.Unlock()
	var cs []*tapConn
	for c := range lh.conns[[20]byte(ih)] {
		cs = append(cs, c)
	}
	if lt := lh.byIH[ih]; lt != nil {
		for c := range lh.conns[lt.short] {
			cs = append(cs, c)
		}
	}
	return cs
}

// fetchEarlyLater tries fetchEarly again in earlyTryEvery, if tries are
// left.
func (lh *leafHashes) fetchEarlyLater(ih metainfo.Hash, piece, leaf, tries int) {
	if tries > 1 {
		time.AfterFunc(earlyTryEvery, func() { lh.fetchEarlyTry(ih, piece, leaf, tries-1) })
	}
}
