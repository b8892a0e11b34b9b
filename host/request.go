package host

import (
	"net"
	"sync"
	"time"

	"github.com/anacrolix/torrent"
	pp "github.com/anacrolix/torrent/peer_protocol"
	"go.uber.org/atomic"
)

const (
	// RequestQueueTime bounds each peer's outstanding requests by time: at
	// most what the peer delivers in this long at its measured rate (and
	// at least MinPeerRequests, at most what it advertised).
	RequestQueueTime = 2 * time.Second
	// MinPeerRequests is the least a peer's request queue is cut to.
	MinPeerRequests = 1
	// SilentPeerTimeout is how long a connection that holds a request of
	// an urgent piece (PiecePriorityNext or above) may go without
	// delivering a chunk before it is closed, so that other peers take
	// its requests; the redialer may connect it again later.
	SilentPeerTimeout = 5 * time.Second
	// StuckCancelTimeout is how long a connection may wait for the
	// answer to a cancel, with no request outstanding, before it is
	// connected again (see requests).
	StuckCancelTimeout = 3 * time.Second
	// requestCheckInterval is how often the request goroutine looks for
	// silent peers holding urgent requests.
	requestCheckInterval = 500 * time.Millisecond
	// rateWindow is the shortest time over which a peer's rate is measured.
	rateWindow = time.Second
	chunkSize  = 16 << 10
)

// requests bounds the request queues of a client's peers by time, and
// closes connections that hold urgent requests and do not answer.
//
// Why: anacrolix v1.59.1 lets a peer hold as many requests as it
// advertised (hundreds: tens of seconds of queue on a slow line), a
// connection asks for more only once every request it holds is answered,
// no request ever times out, and a chunk is requested from one peer at a
// time. A peer that re-plans does take a chunk of a higher priority from a
// peer holding more requests than itself (applyRequestState's "stealing"),
// so short queues make the playhead's chunks move to the peers that
// deliver; a connection that delivers nothing at all keeps what it holds
// until it is closed.
//
// A cancel can also stop a connection for good: v1.59.1 expects a peer
// with the fast extension (other than Transmission before 4.0) to answer
// each cancel with a reject, and asks that peer for nothing more until it
// has; aria2 1.36 advertises the fast extension and never rejects a
// cancel. So a connection that has no request outstanding and has waited
// StuckCancelTimeout for the answer to a cancel is closed (its pending
// cancels die with it).
//
// The redialer dials a connection we dialled again when it closes, whoever
// closed it (see redialer).
//
// Everything the client calls (the callbacks) runs under the client's
// lock, which is also the lock under which v1.59.1 reads
// PeerConn.PeerMaxRequests, so the callbacks may set it. The run goroutine
// calls into the client (Piece.State, PeerConn.Close) without holding mu.
type requests struct {
	queue time.Duration // never changes

	mu     sync.Mutex    // guards the fields below; taken under the client's lock, never held across a call into the client
	silent time.Duration // SilentPeerTimeout but in tests
	peers  map[*torrent.Peer]*peerRequests

	// Connections closed by run, by rule: silent (silentUrgent), stuck
	// (stuck), late (lateUrgent).
	closedSilent, closedStuck, closedLate atomic.Int64

	wake chan struct{} // a request was sent while none was outstanding; buffered, never closed
	stop chan struct{} // closed by Close
	done chan struct{} // closed when run returns
	once sync.Once
}

// peerRequests is what requests knows of one connection.
type peerRequests struct {
	pc        *torrent.PeerConn
	t         *torrent.Torrent
	reqq      int                           // what the peer advertised (after Apply's cap); 0 unknown
	out       map[torrent.Request]time.Time // outstanding, and when sent
	rate      rateMeter
	lastChunk time.Time // or when the connection's first request was sent
	limit     int       // the PeerMaxRequests set; 0 none yet
	// answered are outstanding requests whose piece or reject was read
	// (before the client deletes them); cancelled are requests deleted
	// unanswered from a peer that must answer a cancel, and since when.
	answered  map[chunkKey]struct{}
	cancelled map[chunkKey]time.Time
}

// chunkKey names a request by piece and offset.
type chunkKey struct{ index, begin pp.Integer }

func newRequests(queue, silent time.Duration) *requests {
	return &requests{
		queue: queue, silent: silent,
		peers: make(map[*torrent.Peer]*peerRequests),
		wake:  make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
}

// stateLocked returns the state of p, creating it. r.mu must be held.
func (r *requests) stateLocked(p *torrent.Peer) *peerRequests {
	s := r.peers[p]
	if s == nil {
		pc, _ := p.TryAsPeerConn()
		s = &peerRequests{pc: pc, t: p.Torrent(), out: make(map[torrent.Request]time.Time),
			answered: make(map[chunkKey]struct{}), cancelled: make(map[chunkKey]time.Time)}
		r.peers[p] = s
	}
	return s
}

// handshake remembers the request queue the peer advertised and keeps
// the bound already set: the client copies msg.Reqq into PeerMaxRequests
// after this callback.
func (r *requests) handshake(pc *torrent.PeerConn, msg *pp.ExtendedHandshakeMessage) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stateLocked(&pc.Peer)
	s.reqq = msg.Reqq
	if s.limit > 0 {
		msg.Reqq = s.limit
		if s.reqq > 0 {
			msg.Reqq = min(s.limit, s.reqq)
		}
	}
}

func (r *requests) sent(e torrent.PeerRequestEvent) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stateLocked(e.Peer)
	if len(s.out) == 0 {
		s.rate.resume(now)
		if s.lastChunk.IsZero() {
			s.lastChunk = now
		}
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
	s.out[e.Request] = now
}

func (r *requests) deleted(e torrent.PeerRequestEvent) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.peers[e.Peer]
	if s == nil {
		return
	}
	delete(s.out, e.Request)
	k := chunkKey{e.Index, e.Begin}
	if _, ok := s.answered[k]; ok {
		delete(s.answered, k)
	} else if s.pc != nil && answersCancels(s.pc) {
		s.cancelled[k] = now
	}
}

// read notes the pieces and rejects that answer requests.
func (r *requests) read(pc *torrent.PeerConn, msg *pp.Message) {
	if msg.Type != pp.Piece && msg.Type != pp.Reject {
		return
	}
	k := chunkKey{msg.Index, msg.Begin}
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.peers[&pc.Peer]
	if s == nil {
		return
	}
	if _, ok := s.out[torrent.Request{Index: msg.Index, ChunkSpec: torrent.ChunkSpec{Begin: msg.Begin, Length: chunkLength(msg)}}]; ok {
		s.answered[k] = struct{}{}
	} else {
		delete(s.cancelled, k)
	}
}

// chunkLength is the length of the chunk a piece or reject message is about.
func chunkLength(msg *pp.Message) pp.Integer {
	if msg.Type == pp.Piece {
		return pp.Integer(len(msg.Piece))
	}
	return msg.Length
}

// answersCancels reports whether v1.59.1 waits for pc to answer a cancel
// (PeerConn.remoteRejectsCancels): a peer with the fast extension, unless it
// is Transmission before 4.0.
func answersCancels(pc *torrent.PeerConn) bool {
	return rejectsCancels(pc.PeerExtensionBytes, pc.PeerID)
}

// rejectsCancels reports whether a peer that sent the handshake
// reserved bits and peer ID id answers a cancel with a reject or the
// chunk.
func rejectsCancels(bits pp.PeerExtensionBits, id [20]byte) bool {
	if !bits.SupportsFast() {
		return false
	}
	transmission := string(id[:3]) == "-TR" && id[7] == '-'
	return !transmission || id[3] >= '4'
}

// received measures the peer's rate and bounds its queue by it.
func (r *requests) received(e torrent.PeerMessageEvent) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stateLocked(e.Peer)
	s.lastChunk = now
	if !s.rate.add(now, int64(len(e.Message.Piece))) || s.pc == nil {
		return
	}
	s.limit = queueLimit(s.rate.rate, r.queue, s.reqq)
	s.pc.PeerMaxRequests = s.limit // under the client's lock, see requests
}

// earlyReceived counts a chunk of n bytes the host's early fetch (early.go)
// brought from the peer at addr, on the client's connection to it, as a
// chunk the client received: the connection delivers it in place of the
// client's requests it holds.
func (r *requests) earlyReceived(addr net.Addr, n int) {
	now := time.Now()
	a := addr.String()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.peers {
		if s.pc == nil || s.pc.RemoteAddr == nil || s.pc.RemoteAddr.String() != a {
			continue
		}
		s.lastChunk = now
		if s.rate.add(now, int64(n)) {
			s.limit = queueLimit(s.rate.rate, r.queue, s.reqq)
		}
	}
}

// closed forgets p.
func (r *requests) closed(p *torrent.Peer) {
	r.mu.Lock()
	delete(r.peers, p)
	r.mu.Unlock()
}

// limit returns the request bound set on pc, 0 if none yet.
func (r *requests) limit(pc *torrent.PeerConn) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s := r.peers[&pc.Peer]; s != nil {
		return s.limit
	}
	return 0
}

// queueLimit is the request bound of a peer delivering rate bytes per
// second: queue's worth of chunks, at least MinPeerRequests, at most
// reqq (when known).
func queueLimit(rate float64, queue time.Duration, reqq int) int {
	n := max(MinPeerRequests, int(rate*queue.Seconds()/chunkSize))
	if reqq > 0 {
		n = min(n, max(reqq, 1))
	}
	return n
}

// rateMeter measures a peer's delivery rate over the time it was
// expected to deliver (it has requests outstanding).
type rateMeter struct {
	rate  float64   // bytes per second, smoothed; 0 until measured
	start time.Time // of the current window
	bytes int64     // in the current window
}

// resume starts a new window at now, when a peer that had no request
// outstanding gets one: the idle time before is not the peer's.
func (m *rateMeter) resume(now time.Time) {
	if m.bytes == 0 || m.start.IsZero() {
		m.start, m.bytes = now, 0
	}
}

// add counts n bytes received at now; it returns true when a window
// closed and rate changed.
func (m *rateMeter) add(now time.Time, n int64) bool {
	if m.start.IsZero() {
		m.start = now
	}
	m.bytes += n
	el := now.Sub(m.start)
	if el < rateWindow {
		return false
	}
	r := float64(m.bytes) / el.Seconds()
	if m.rate == 0 {
		m.rate = r
	} else {
		m.rate = (m.rate + r) / 2
	}
	m.start, m.bytes = now, 0
	return true
}

// run closes, every requestCheckInterval while some connection has a
// request outstanding or a cancel unanswered, the connections that hold a
// request of an urgent piece and delivered nothing for r.silent, and those
// stuck on a cancel, until Close. Otherwise it sleeps until a request is
// sent.
func (r *requests) run() {
	defer close(r.done)
	tick := time.NewTicker(requestCheckInterval)
	defer tick.Stop()
	for {
		if !r.waiting() {
			select {
			case <-r.stop:
				return
			case <-r.wake:
			}
		}
		select {
		case <-r.stop:
			return
		case <-tick.C:
		}
		now := time.Now()
		for _, rule := range []struct {
			held   []held
			closed *atomic.Int64
		}{{r.silentUrgent(now), &r.closedSilent}, {r.stuck(now), &r.closedStuck}, {r.lateUrgent(now), &r.closedLate}} {
			for _, h := range rule.held {
				h.pc.Close()
				rule.closed.Add(1)
			}
		}
	}
}

// waiting reports whether some connection has a request outstanding or
// waits for the answer to a cancel.
func (r *requests) waiting() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.peers {
		if len(s.out) > 0 || len(s.cancelled) > 0 {
			return true
		}
	}
	return false
}

// silentUrgent returns the connections that delivered nothing for r.silent
// at now while holding a request at least that old of a piece whose
// priority is PiecePriorityNext or above.
func (r *requests) silentUrgent(now time.Time) []held {
	var cands []held
	r.mu.Lock()
	for _, s := range r.peers {
		if s.pc == nil || s.t == nil || now.Sub(s.lastChunk) < r.silent {
			continue
		}
		if h := s.heldFor(now, r.silent); len(h.pieces) > 0 {
			cands = append(cands, h)
		}
	}
	r.mu.Unlock()
	return holdingAtLeast(cands, torrent.PiecePriorityNext)
}

// heldFor returns s's connection with the pieces of its requests
// outstanding for d or longer at now. The requests' mu must be held.
func (s *peerRequests) heldFor(now time.Time, d time.Duration) held {
	h := held{pc: s.pc, t: s.t}
	for req, when := range s.out {
		if now.Sub(when) >= d {
			h.pieces = append(h.pieces, int(req.Index))
		}
	}
	return h
}

// holdingAtLeast returns those of hs that hold a request of a piece whose
// priority is prio or above. It calls into the client (Piece.State).
func holdingAtLeast(hs []held, prio torrent.PiecePriority) []held {
	var at []held
	for _, h := range hs {
		for _, i := range h.pieces {
			if h.t.Piece(i).State().Priority >= prio {
				at = append(at, h)
				break
			}
		}
	}
	return at
}

// held is a connection, its torrent and pieces it holds requests of.
type held struct {
	pc     *torrent.PeerConn
	t      *torrent.Torrent
	pieces []int
}

// stuck returns the connections with no request outstanding that have
// waited StuckCancelTimeout at now for the answer to a cancel.
func (r *requests) stuck(now time.Time) []held {
	var stuck []held
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.peers {
		if s.pc == nil || s.t == nil || len(s.out) > 0 {
			continue
		}
		for _, since := range s.cancelled {
			if now.Sub(since) >= StuckCancelTimeout {
				stuck = append(stuck, held{pc: s.pc, t: s.t})
				break
			}
		}
	}
	return stuck
}

// Close stops the run goroutine and waits for it. Safe to call more than
// once.
func (r *requests) Close() {
	r.once.Do(func() { close(r.stop) })
	<-r.done
}

// RequestLimit returns the bound on outstanding requests that c set on
// pc from its measured rate (RequestQueueTime at that rate), or 0 if none
// yet (pc has delivered less than a second's worth). It never blocks on
// the torrent client. Safe for concurrent use.
func (c *Client) RequestLimit(pc *torrent.PeerConn) int {
	return c.reqs.limit(pc)
}
