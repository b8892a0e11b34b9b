package host

import (
	"cmp"
	"encoding/binary"
	"slices"
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
// (memory.Options.OnWantLeafHashes, once per 16 KiB leaf it moves to);
// the host keeps each torrent's recent readers, and the earlyWindow chunks
// from each reader on are its window. A chunk of a window that is neither
// written, nor asked by the client of any connection, nor asked by the
// host already, is wanted, unless the client has asked for the first chunk
// the reader lacks: then its own order has come to the reader (a read from
// a piece's start, or the client caught up), and chunks the host fetched
// ahead of it would come twice.
//
// Wanted chunks go first, on the lines the client already uses: when the
// client sends a connection a request of a chunk that is in no window
// (the part of the reader's piece before the reader, which only the
// piece's hash needs; readahead past the window) while the connection's
// peer has a wanted chunk, the tap sends the peer a request of the wanted
// chunk instead and holds the client's (lends its place in the peer's
// queue). When the peer answers the wanted chunk, the place goes to the
// next wanted chunk, or, when none is left, back to the oldest request
// held, which goes to the peer then. So the peer's queue is as long as the
// client made it, and the reader's chunks are served before the rest of
// the piece. A cancel of a held request goes to the peer with the request
// before it, so the peer answers it as the client expects. Only on
// connections with the fast extension on both sides: the client then
// keeps its requests over a choke, and the peer rejects what it will not
// serve, which frees the place (the held request goes, to be rejected as
// well).
//
// The answers to the host's requests go not to the client, which never
// asked for them (v1.59.1 closes a connection that sends an unasked
// chunk), but to the storage (memory.Torrent.WriteEarly): the client
// fetches the chunk again itself when its order reaches it, and its copy
// replaces the early one, so the piece's hash check judges the bytes of
// the peers the client knows of (and blames). Early bytes are served as
// the client's are (leaf hashes prove them, or -verify playhead serves
// them unverified); a client's copy that differs from early bytes a reader
// had is reported as a failure of a piece served before its hash. The
// host's rules on slow and silent connections (late.go) measure the
// connection's rate with these chunks too.
//
// When a reader first appears (a seek), the client has often asked the
// piece's first chunks of every peer already, and the peers serve their
// queues in order; so the host cancels those requests at the peers that
// answer cancels (recall: each one let go of is held and lends its place),
// and asks the new window at once, over the connections that would answer
// first.

// earlyWindow is how many chunks from a reader's on are its window: 2 MiB,
// four seconds of a 4 Mbit/s stream.
const earlyWindow = 128

// earlyRetry is how long an early request stays asked: after it, the chunk
// may be asked again (of another connection). It is longer than a peer's
// queue (RequestQueueTime): asking again sooner fetches chunks still
// queued a second time.
const earlyRetry = 3 * time.Second

// earlyReading is how long a reader stays known after its last read
// before the hash check, and earlyWaiting how long while the chunk it
// read at is not written: the storage tells of a read once per leaf, and
// a reader waits at the same leaf.
const (
	earlyReading = 500 * time.Millisecond
	earlyWaiting = 30 * time.Second
)

// earlyReaders is how many readers of one torrent the host keeps.
const earlyReaders = 4

// earlyReader is a reader of a torrent: where it last read before the
// hash check, and the torrent's geometry.
type earlyReader struct {
	pos    int64 // in the torrent's bytes
	at     time.Time
	mt     *memory.Torrent
	plen   int64 // piece length
	length int64 // the torrent's
}

// inWindow reports whether the chunk at byte pos of the torrent is in r's
// window.
func (r *earlyReader) inWindow(pos int64) bool {
	from := r.pos / chunkSize * chunkSize
	return pos >= from && pos < from+earlyWindow*chunkSize
}

// chunk returns the chunk at byte pos of the torrent and its length.
func (r *earlyReader) chunk(pos int64) (chunkKey, int64) {
	i, off := pos/r.plen, pos%r.plen
	plen := min(r.plen, r.length-i*r.plen)
	return chunkKey{pp.Integer(i), pp.Integer(off)}, min(chunkSize, plen-off)
}

// connFetch is what a tapped connection knows of its peer for the early
// fetch, and the early requests it carries.
type connFetch struct {
	mu       sync.Mutex
	unchoked bool   // the peer unchoked us
	all      bool   // the peer has every piece (have all)
	pieces   []byte // the peer's bitfield, with its haves
	ours     map[chunkKey]ownRequest
	// held are the client's requests the peer has not been sent, each
	// lending its place to one of ours (ownRequest.lent), oldest first.
	held []heldRequest
	// recalled are the client's requests the tap cancelled at the peer to
	// hold them (recall), by chunk.
	recalled map[chunkKey]recall
	// rejected are the chunks the peer rejected an early request of, and
	// when: not asked of it again within earlyRetry.
	rejected map[chunkKey]time.Time
	rate     rateMeter
}

// ownRequest is an early request outstanding.
type ownRequest struct {
	at   time.Time
	mt   *memory.Torrent
	lent bool // it has the place of a held request of the client's
}

// recall is a request of the client's the tap cancelled at the peer.
type recall struct {
	length pp.Integer
	// cancelled: the client cancelled the request since, and the
	// peer's reject is the client's.
	cancelled bool
}

// heldRequest is a request of the client's the tap holds.
type heldRequest struct {
	k      chunkKey
	length pp.Integer
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

// received counts n bytes of chunk data from the peer, and returns the
// peer's rate when that changed, else 0.
func (f *connFetch) received(n int) float64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rate.add(time.Now(), int64(n)) {
		return f.rate.rate
	}
	return 0
}

// recalledReject reports whether a reject of k from the peer answers a
// recall the client knows nothing of (and is not to reach it).
func (f *connFetch) recalledReject(k chunkKey) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.recalled[k]
	if ok && r.cancelled {
		delete(f.recalled, k)
	}
	return ok && !r.cancelled
}

// answeredRecalled notes a chunk from the peer: a recall of it came too
// late, and the chunk is the client's.
func (f *connFetch) answeredRecalled(k chunkKey) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.recalled, k)
}

// isOurs reports whether an early request of k is outstanding.
func (f *connFetch) isOurs(k chunkKey) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.ours[k]
	return ok
}

// askedSince reports whether an early request of k was sent after t.
func (f *connFetch) askedSince(k chunkKey, t time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.ours[k]
	return ok && r.at.After(t)
}

// addLocked notes an early request of k and reports true, unless one is
// outstanding already: a second request of a chunk would bring it twice,
// and the second copy would reach the client, which never asked for it.
// f.mu must be held.
func (f *connFetch) addLocked(k chunkKey, r ownRequest) bool {
	if _, ok := f.ours[k]; ok {
		return false
	}
	if f.ours == nil {
		f.ours = make(map[chunkKey]ownRequest)
	}
	f.ours[k] = r
	return true
}

// requestMessage is a request message, length prefix first.
func requestMessage(k chunkKey, length pp.Integer) []byte {
	b := make([]byte, 17)
	binary.BigEndian.PutUint32(b, 13)
	b[4] = byte(pp.Request)
	binary.BigEndian.PutUint32(b[5:], uint32(k.index))
	binary.BigEndian.PutUint32(b[9:], uint32(k.begin))
	binary.BigEndian.PutUint32(b[13:], uint32(length))
	return b
}

// ownAnswer handles a piece or reject message of c's peer that Read kept
// from the client as the answer to an early request or to a recall: a
// piece's chunk goes to the storage, and the request's place, if lent, to
// the next wanted chunk or back to the client. It returns the message,
// length prefix first, when it is the client's after all: the client
// asked for the chunk (or cancelled the recalled request) while the
// message came.
func (lh *leafHashes) ownAnswer(c *tapConn, m tapped) []byte {
	k, ok := m.chunk()
	if !ok {
		return nil
	}
	whole := func() []byte {
		if m.body == nil {
			return nil // too long to keep: the peer broke the protocol
		}
		return binary.BigEndian.AppendUint32(nil, uint32(len(m.body))) // then the body
	}
	c.fetch.mu.Lock()
	if rc, ok := c.fetch.recalled[k]; ok && m.typ() == int(pp.Reject) {
		delete(c.fetch.recalled, k)
		if rc.cancelled {
			// The client cancelled it meanwhile: the reject answers that.
			c.fetch.mu.Unlock()
			return append(whole(), m.body...)
		}
		// The peer let go of a request of the client's the tap recalled:
		// it is held, and its place lent.
		c.fetch.held = append(c.fetch.held, heldRequest{k, rc.length})
		c.fetch.mu.Unlock()
		lh.relend(c)
		return nil
	}
	r, ok := c.fetch.ours[k]
	delete(c.fetch.ours, k)
	c.fetch.mu.Unlock()
	if !ok {
		// The client asked for the chunk while the answer came
		// (substituteLocked let the host's request stand for it).
		if b := whole(); b != nil {
			return append(b, m.body...)
		}
		return nil
	}
	if r.lent {
		// After the chunk is written: it is wanted no more.
		defer lh.relend(c)
	}
	if m.typ() != int(pp.Piece) || m.body == nil {
		c.fetch.mu.Lock()
		if c.fetch.rejected == nil {
			c.fetch.rejected = make(map[chunkKey]time.Time)
		}
		c.fetch.rejected[k] = time.Now()
		c.fetch.mu.Unlock()
		lh.earlyRejected.Add(1)
		return nil
	}
	n := len(m.body) - tappedHead
	lh.received(c, n)
	lh.earlyBytes.Add(int64(n))
	if lh.onEarlyChunk != nil {
		lh.onEarlyChunk(c.Conn.RemoteAddr(), n)
	}
	wrote, err := r.mt.WriteEarly(int(k.index), int64(k.begin), m.body[tappedHead:])
	switch {
	case err != nil:
		lh.earlyRejected.Add(1)
	case wrote:
		lh.earlyWritten.Add(1)
	default:
		lh.earlyLate.Add(1)
		lh.earlyLateBytes.Add(int64(n))
	}
	return nil
}

// relend gives the place of an answered lent request of c's to the next
// wanted chunk c's peer has, or back to the oldest request held.
func (lh *leafHashes) relend(c *tapConn) {
	var msg []byte
	if ih, ok := lh.storageIH(c.readyTo); ok {
		if ws := lh.wanted(ih, c, 1); len(ws) > 0 {
			c.fetch.mu.Lock()
			if c.fetch.addLocked(ws[0].k, ownRequest{at: time.Now(), mt: ws[0].mt, lent: true}) {
				lh.earlyAsked.Add(1)
				msg = requestMessage(ws[0].k, ws[0].length)
			}
			c.fetch.mu.Unlock()
		}
	}
	if msg == nil {
		c.fetch.mu.Lock()
		if len(c.fetch.held) > 0 {
			h := c.fetch.held[0]
			c.fetch.held = c.fetch.held[1:]
			msg = requestMessage(h.k, h.length)
		}
		c.fetch.mu.Unlock()
	}
	if msg != nil {
		// Not from Read's goroutine: a write may wait for the peer,
		// which may wait for us to read.
		go c.send(msg)
	}
}

// substituteLocked returns b, the client's next bytes (starting at a
// message boundary), with the requests of chunks in no window replaced by
// requests of wanted chunks (see the top of this file), and cancels of
// held requests preceded by the requests. c.mu must be held.
func (c *tapConn) substituteLocked(b []byte) []byte {
	lh := c.lh
	if lh.noEarly || !c.ourFast.Load() || !c.peerBits.SupportsFast() {
		return b
	}
	ih, ok := lh.storageIH(c.readyTo)
	if !ok {
		return b
	}
	readers := lh.readersOf(ih)
	if len(readers) == 0 {
		c.fetch.mu.Lock()
		held := len(c.fetch.held)
		c.fetch.mu.Unlock()
		if held == 0 {
			return b
		}
	}
	inWindow := func(k chunkKey) bool {
		for _, r := range readers {
			if r.inWindow(int64(k.index)*r.plen + int64(k.begin)) {
				return true
			}
		}
		return false
	}
	type msg struct {
		at, end int
		typ     pp.MessageType
		k       chunkKey
		length  pp.Integer
	}
	var msgs []msg
	cands := 0
	for at := 0; at+4 <= len(b); {
		n := int(binary.BigEndian.Uint32(b[at:]))
		end := at + 4 + n
		if end > len(b) || end < at {
			break
		}
		if n == 13 && (b[at+4] == byte(pp.Request) || b[at+4] == byte(pp.Cancel)) {
			m := msg{at: at, end: end, typ: pp.MessageType(b[at+4]),
				k:      chunkKey{pp.Integer(binary.BigEndian.Uint32(b[at+5:])), pp.Integer(binary.BigEndian.Uint32(b[at+9:]))},
				length: pp.Integer(binary.BigEndian.Uint32(b[at+13:]))}
			msgs = append(msgs, m)
			if m.typ == pp.Request && !inWindow(m.k) {
				cands++
			}
		}
		at = end
	}
	if len(msgs) == 0 {
		return b
	}
	var wants []wantedChunk
	if cands > 0 && len(readers) > 0 {
		wants = lh.wanted(ih, c, cands)
	}
	now := time.Now()
	out := make([]byte, 0, len(b)+17)
	last := 0
	c.fetch.mu.Lock()
	defer c.fetch.mu.Unlock()
	for _, m := range msgs {
		switch m.typ {
		case pp.Request:
			if r, ok := c.fetch.ours[m.k]; ok {
				// The client asks what the host asked already: the
				// peer's answer is the client's, and a place lent to it
				// goes back to the oldest request held.
				delete(c.fetch.ours, m.k)
				out = append(out, b[last:m.at]...)
				last = m.end
				if r.lent && len(c.fetch.held) > 0 {
					h := c.fetch.held[0]
					c.fetch.held = c.fetch.held[1:]
					out = append(out, requestMessage(h.k, h.length)...)
				}
				continue
			}
			if len(wants) == 0 || inWindow(m.k) {
				continue
			}
			w := wants[0]
			wants = wants[1:]
			if !c.fetch.addLocked(w.k, ownRequest{at: now, mt: w.mt, lent: true}) {
				continue // asked since wanted ran
			}
			c.fetch.held = append(c.fetch.held, heldRequest{m.k, m.length})
			c.lh.earlyAsked.Add(1)
			out = append(out, b[last:m.at]...)
			out = append(out, requestMessage(w.k, w.length)...)
			last = m.end
		case pp.Cancel:
			if rc, ok := c.fetch.recalled[m.k]; ok {
				// The tap's cancel is at the peer already: its reject
				// answers the client's.
				rc.cancelled = true
				c.fetch.recalled[m.k] = rc
				out = append(out, b[last:m.at]...)
				last = m.end
				continue
			}
			for i, h := range c.fetch.held {
				if h.k == m.k {
					c.fetch.held = append(c.fetch.held[:i], c.fetch.held[i+1:]...)
					out = append(out, b[last:m.at]...)
					out = append(out, requestMessage(h.k, h.length)...)
					last = m.at // the cancel follows
					break
				}
			}
		}
	}
	if last == 0 && len(out) == 0 {
		return b
	}
	return append(out, b[last:]...)
}

// wantedChunk is a chunk the early fetch wants.
type wantedChunk struct {
	k      chunkKey
	length pp.Integer
	mt     *memory.Torrent
}

// wanted returns up to n chunks wanted (see the top of this file) of the
// torrent the storage knows as ih that c's peer has and can serve now, the
// readers' latest first, each in reading order.
func (lh *leafHashes) wanted(ih metainfo.Hash, c *tapConn, n int) []wantedChunk {
	readers := lh.readersOf(ih)
	if len(readers) == 0 || n <= 0 {
		return nil
	}
	c.fetch.mu.Lock()
	unchoked := c.fetch.unchoked
	c.fetch.mu.Unlock()
	if !unchoked {
		return nil
	}
	conns := lh.connsOf(ih)
	now := time.Now()
	// A slow connection takes the chunks furthest from the readers: those
	// have time to come.
	slow := lh.slow(c, conns)
	limit := n
	if slow {
		n = earlyWindow * len(readers)
	}
	var ws []wantedChunk
	seen := make(map[chunkKey]bool)
readers:
	for _, r := range readers {
		if clientAtReader(r, conns) {
			continue
		}
		from := r.pos / chunkSize * chunkSize
		for pos := from; pos < from+earlyWindow*chunkSize && pos < r.length; pos += chunkSize {
			k, length := r.chunk(pos)
			if seen[k] {
				continue
			}
			seen[k] = true
			c.fetch.mu.Lock()
			has := c.fetch.hasLocked(int(k.index))
			if at, ok := c.fetch.rejected[k]; ok && !at.After(now.Add(-earlyRetry)) {
				delete(c.fetch.rejected, k)
			} else if ok {
				has = false
			}
			c.fetch.mu.Unlock()
			if !has || r.mt.Has(int(k.index), int64(k.begin), length) || lh.askedAnywhere(conns, k, now.Add(-earlyRetry)) {
				continue
			}
			ws = append(ws, wantedChunk{k, pp.Integer(length), r.mt})
			if len(ws) == n {
				break readers
			}
		}
	}
	if slow {
		slices.Reverse(ws)
		ws = ws[:min(len(ws), limit)]
	}
	return ws
}

// clientAtReader reports whether the client has asked one of conns for the
// first chunk r lacks (in r's window): its own order has come to the
// reader, and serves it; chunks the host fetched before it would come
// twice.
func clientAtReader(r earlyReader, conns []*tapConn) bool {
	from := r.pos / chunkSize * chunkSize
	for pos := from; pos < from+earlyWindow*chunkSize && pos < r.length; pos += chunkSize {
		k, length := r.chunk(pos)
		if r.mt.Has(int(k.index), int64(k.begin), length) {
			continue
		}
		for _, c := range conns {
			if c.top.has(k) {
				return true
			}
		}
		return false
	}
	return false
}

// slowRate is the rate the early fetch assumes of a connection it has not
// measured, to a peer it knows no rate of: a slow line's, so that an
// unknown line does not carry the chunks a reader needs first.
const slowRate = 16 << 10

// rate returns the rate of c's peer: measured on c, else the last measured
// on a connection to the same address, else slowRate.
func (lh *leafHashes) rate(c *tapConn) float64 {
	c.fetch.mu.Lock()
	r := c.fetch.rate.rate
	c.fetch.mu.Unlock()
	if r > 0 {
		return r
	}
	lh.mu.Lock()
	defer lh.mu.Unlock()
	if r := lh.addrRates[c.Conn.RemoteAddr().String()]; r > 0 {
		return r
	}
	return slowRate
}

// received counts n bytes of chunk data c's peer sent, and keeps the
// peer's rate by its address (for the next connection to it).
func (lh *leafHashes) received(c *tapConn, n int) {
	if r := c.fetch.received(n); r > 0 {
		lh.mu.Lock()
		defer lh.mu.Unlock()
		if lh.addrRates == nil {
			lh.addrRates = make(map[string]float64)
		}
		if len(lh.addrRates) >= 4096 { // bounded: a long-running server meets many peers
			clear(lh.addrRates)
		}
		lh.addrRates[c.Conn.RemoteAddr().String()] = r
	}
}

// slow reports whether c's peer delivers at under 1/slowerBy of the
// fastest of conns (late.go's rule).
func (lh *leafHashes) slow(c *tapConn, conns []*tapConn) bool {
	r, best := lh.rate(c), 0.0
	for _, o := range conns {
		best = max(best, lh.rate(o))
	}
	return r*slowerBy < best
}

// askedAnywhere reports whether the client has k asked of one of conns, or
// the host asked it of one since since.
func (lh *leafHashes) askedAnywhere(conns []*tapConn, k chunkKey, since time.Time) bool {
	for _, c := range conns {
		if c.top.has(k) || c.fetch.askedSince(k, since) {
			return true
		}
	}
	return false
}

// storageIH returns the storage's key of the torrent whose handshakes
// name short (its v1 info hash, or its truncated v2 one).
func (lh *leafHashes) storageIH(short [20]byte) (metainfo.Hash, bool) {
	lh.mu.Lock()
	defer lh.mu.Unlock()
	if lt := lh.torrents[short]; lt != nil {
		return lt.ih, true
	}
	if lh.readers[metainfo.Hash(short)] != nil || lh.v1[metainfo.Hash(short)] != nil {
		return metainfo.Hash(short), true
	}
	return metainfo.Hash{}, false
}

// readersOf returns the torrent's readers that read within earlyReading,
// or wait (within earlyWaiting) for the chunk they read at, the latest
// first.
func (lh *leafHashes) readersOf(ih metainfo.Hash) []earlyReader {
	lh.mu.Lock()
	rs := slices.Clone(lh.readers[ih])
	lh.mu.Unlock()
	now := time.Now()
	var live []earlyReader
	for i := len(rs) - 1; i >= 0; i-- {
		r := &rs[i]
		age := now.Sub(r.at)
		if age < earlyReading {
			live = append(live, *r)
			continue
		}
		if age < earlyWaiting {
			k, length := r.chunk(r.pos / chunkSize * chunkSize)
			if !r.mt.Has(int(k.index), int64(k.begin), length) {
				live = append(live, *r)
			}
		}
	}
	return live
}

// noteReader records a read before the hash check at byte pos of the
// torrent the storage knows as ih: it moves the reader whose window holds
// pos or that read just before it, or adds one (the oldest goes past
// earlyReaders). It reports whether the reader is new.
func (lh *leafHashes) noteReader(ih metainfo.Hash, r earlyReader) bool {
	lh.mu.Lock()
	defer lh.mu.Unlock()
	if lh.readers == nil {
		lh.readers = make(map[metainfo.Hash][]earlyReader)
	}
	rs := slices.DeleteFunc(lh.readers[ih], func(o earlyReader) bool { return r.at.Sub(o.at) >= earlyWaiting })
	for i := range rs {
		if rs[i].inWindow(r.pos) || (r.pos >= rs[i].pos-chunkSize && r.pos < rs[i].pos) {
			rs[i].pos, rs[i].at = r.pos, r.at
			// The latest last.
			moved := rs[i]
			rs = append(append(rs[:i], rs[i+1:]...), moved)
			lh.readers[ih] = rs
			return false
		}
	}
	if len(rs) >= earlyReaders {
		rs = rs[1:]
	}
	lh.readers[ih] = append(rs, r)
	return true
}

// earlyFrom is the first leaf of a piece (1 MiB in) at which a new reader
// has its window asked at once and the client's requests recalled: before
// it, the client's own fetch from the piece's first chunk comes to the
// reader about as soon, and a read at a piece's start (a player's first)
// is the client's.
const earlyFrom = 64

// earlyTries and earlyTryEvery: when no connection can carry an early
// request yet (none unchoked us: the client just became interested), the
// window is asked again, so many times this far apart.
const (
	earlyTries    = 8
	earlyTryEvery = 250 * time.Millisecond
)

// fetchEarly is told by the storage that a read before the hash check of
// piece of the torrent ih is at leaf (see the top of this file). It runs
// on the reader's goroutine; the requests go from another.
func (lh *leafHashes) fetchEarly(ih metainfo.Hash, piece, leaf int) {
	cl := lh.cl.Load()
	if cl == nil || lh.noEarly || lh.closed.Load() {
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
	info := t.Info()
	r := earlyReader{pos: int64(piece)*info.PieceLength + int64(leaf)*memory.LeafSize, at: time.Now(),
		mt: mt, plen: info.PieceLength, length: info.TotalLength()}
	isNew := lh.noteReader(ih, r)
	lh.releaseInWindow(ih)
	if isNew && leaf >= earlyFrom {
		// The recall first: it asks for the window's chunks not asked yet,
		// which askWindow then asks. The peers drop the recalled requests
		// from their queues, which the window's requests then lead,
		// whichever reaches a peer first.
		lh.recall(ih, r)
		lh.askWindow(ih, r, earlyTries)
	}
}

// recall cancels at each peer that answers cancels the client's requests
// outstanding there that are in no window kept, when the peer has a
// chunk the readers want: the peer serves its requests in order, so a
// request of the reader's chunk sent now would wait for those. Each
// request the peer lets go of (rejects) is held, and its place lent (see
// the top of this file); one it answers with the chunk (the cancel came
// too late) goes to the client as usual.
func (lh *leafHashes) recall(ih metainfo.Hash, r earlyReader) {
	const recallKept = 32 // 512 KiB
	// The new reader's window is kept whole; of the other readers' only
	// the first recallKept chunks: another reader that read a moment ago
	// is most likely the same player before its seek, which the host
	// cannot tell from a second player (whose requests go to the peers
	// again once the new reader has its window).
	others := lh.readersOf(ih)
	inWindow := func(k chunkKey) bool {
		if r.inWindow(int64(k.index)*r.plen + int64(k.begin)) {
			return true
		}
		for _, o := range others {
			pos, from := int64(k.index)*o.plen+int64(k.begin), o.pos/chunkSize*chunkSize
			if pos >= from && pos < from+recallKept*chunkSize {
				return true
			}
		}
		return false
	}
	for _, c := range lh.connsOf(ih) {
		if !c.ourFast.Load() || !rejectsCancels(c.peerBits, c.peerID) {
			continue
		}
		if len(lh.wanted(ih, c, 1)) == 0 {
			continue
		}
		var msgs [][]byte
		c.fetch.mu.Lock()
		ks := c.top.keys()
		slices.SortFunc(ks, func(a, b chunkKey) int {
			return cmp.Or(cmp.Compare(a.index, b.index), cmp.Compare(a.begin, b.begin))
		})
		for _, k := range ks {
			if _, ok := c.fetch.recalled[k]; ok || inWindow(k) {
				continue
			}
			pos := int64(k.index)*r.plen + int64(k.begin)
			if pos < 0 || pos >= r.length {
				continue
			}
			_, length := r.chunk(pos)
			if c.fetch.recalled == nil {
				c.fetch.recalled = make(map[chunkKey]recall)
			}
			c.fetch.recalled[k] = recall{length: pp.Integer(length)}
			msgs = append(msgs, pp.Message{Type: pp.Cancel, Index: k.index, Begin: k.begin, Length: pp.Integer(length)}.MustMarshalBinary())
		}
		c.fetch.mu.Unlock()
		lh.earlyRecalled.Add(int64(len(msgs)))
		if len(msgs) > 0 {
			go func() {
				for _, m := range msgs {
					if !c.send(m) {
						return
					}
				}
			}()
		}
	}
}

// releaseInWindow sends the peers the requests held (of the torrent the
// storage knows as ih) that a reader's window now holds: the reader came
// to chunks the client asked for (and no one else will), whose places
// were lent. Their places come back as the lent requests are answered.
func (lh *leafHashes) releaseInWindow(ih metainfo.Hash) {
	readers := lh.readersOf(ih)
	for _, c := range lh.connsOf(ih) {
		var msgs [][]byte
		c.fetch.mu.Lock()
		c.fetch.held = slices.DeleteFunc(c.fetch.held, func(h heldRequest) bool {
			for _, r := range readers {
				if r.inWindow(int64(h.k.index)*r.plen + int64(h.k.begin)) {
					msgs = append(msgs, requestMessage(h.k, h.length))
					return true
				}
			}
			return false
		})
		c.fetch.mu.Unlock()
		if len(msgs) > 0 {
			go func() {
				for _, m := range msgs {
					if !c.send(m) {
						return
					}
				}
			}()
		}
	}
}

// askWindow asks the wanted chunks of a new reader's window of the
// connections that would answer them first, when the client asks none of
// it (it is behind the reader) and a chunk in its first half is wanted.
func (lh *leafHashes) askWindow(ih metainfo.Hash, r earlyReader, tries int) {
	if lh.closed.Load() {
		return
	}
	conns := lh.connsOf(ih)
	now := time.Now()
	var want []wantedChunk
	trigger := false
	from := r.pos / chunkSize * chunkSize
	for pos := from; pos < from+earlyWindow*chunkSize && pos < r.length; pos += chunkSize {
		k, length := r.chunk(pos)
		for _, c := range conns {
			if c.top.has(k) {
				// The client's in-order requests reached the window: it
				// fetches from here on.
				return
			}
		}
		if r.mt.Has(int(k.index), int64(k.begin), length) || lh.askedAnywhere(conns, k, now.Add(-earlyRetry)) {
			continue
		}
		want = append(want, wantedChunk{k, pp.Integer(length), r.mt})
		trigger = trigger || pos < from+earlyWindow/2*chunkSize
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
		ok := c.fetch.unchoked
		ours := len(c.fetch.ours)
		c.fetch.mu.Unlock()
		rate := lh.rate(c)
		if ok {
			per := chunkSize / rate
			cands = append(cands, cand{c, float64(c.top.count()+ours+1) * per, per})
		}
	}
	if len(cands) == 0 {
		if tries > 1 {
			time.AfterFunc(earlyTryEvery, func() { lh.askWindow(ih, r, tries-1) })
		}
		return
	}
	now = time.Now()
	msgs := make(map[*tapConn][][]byte)
	for _, w := range want {
		best := -1
		for i := range cands {
			c := &cands[i].c.fetch
			c.mu.Lock()
			has := c.hasLocked(int(w.k.index))
			c.mu.Unlock()
			if has && (best < 0 || cands[i].wait < cands[best].wait) {
				best = i
			}
		}
		if best < 0 {
			continue
		}
		b := &cands[best]
		b.wait += b.per
		b.c.fetch.mu.Lock()
		added := b.c.fetch.addLocked(w.k, ownRequest{at: now, mt: w.mt})
		b.c.fetch.mu.Unlock()
		if !added {
			continue
		}
		msgs[b.c] = append(msgs[b.c], requestMessage(w.k, w.length))
		lh.earlyAsked.Add(1)
	}
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
