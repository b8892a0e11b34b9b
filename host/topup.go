package host

import (
	"encoding/binary"
	"sync"
	"time"

	pp "github.com/anacrolix/torrent/peer_protocol"
)

// topUp keeps a tapped connection's request queue from running dry.
//
// Why: v1.59.1 sends a connection new requests only when every request
// it holds is answered (PeerConn.isLowOnRequests: none outstanding), or
// on a message from the peer that asks for a new plan (unchoke, have,
// bitfield, suggest...), and then at most twice as many as it added the
// last time (nominalMaxRequests: 2 × peakRequests, where peakRequests is
// the count added by the last plan), up to PeerConn.PeerMaxRequests. So a
// connection works in rounds: it asks, waits for all of it, and asks
// again; the line idles a round trip each round, and the queue grows by
// doubling one round at a time from one request. On a line 100-200 ms
// away that is most of the first seconds of a stream (docs/qoe.md has the
// traces).
//
// So the tap counts the requests the client sent on the connection that
// the peer has not answered (with a piece or a reject) and the client has
// not cancelled, and when a piece leaves a third or less of the
// most there were since the last top-up, it hands the client a suggest
// message (BEP 6) of that piece, as if from the peer: v1.59.1 reads a
// suggest as nothing but a reason to plan again (peerconn.go, "suggested"),
// and plans while requests are still outstanding, so the queue is filled
// again before it runs dry. A third keeps the queue growing: the plan adds
// up to twice the last plan's count less what is outstanding, and a plan
// that adds fewer than it did before lowers the next plan's bound (with
// one third or less outstanding, the plan adds at least as many as the
// last one did). The queue's length stays the client's and the host's
// (requests bounds PeerMaxRequests by the line's rate): only the bubble
// between rounds goes. When the client has nothing more to ask (every
// wanted chunk asked of some peer), the plan adds nothing and v1.59.1
// cuts the connection's budget to one request; it grows again from the
// next plan on, as after any round, and no top-up goes until the client
// has requested again. That is why top-ups go only while a reader reads
// an incomplete piece of the torrent (topUpReading): a prebuffer, which
// wants a few pieces and reads none, would otherwise end with every
// connection's budget at one just when a player comes (the serve binary's
// startup in docs/qoe.md, fourth session).
type topUp struct {
	mu    sync.Mutex       // guards the fields below; never held across I/O
	out   map[chunkKey]int // requests outstanding, by chunk (a count: the client may ask a chunk again)
	n     int              // the sum of out
	high  int              // the most n was since the last top-up
	asked bool             // a top-up went and the client has not requested since
}

// requested notes a request the client sent.
func (q *topUp) requested(k chunkKey) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.out == nil {
		q.out = make(map[chunkKey]int)
	}
	q.out[k]++
	q.n++
	q.high = max(q.high, q.n)
	q.asked = false
}

// has reports whether the client has a request of k outstanding.
func (q *topUp) has(k chunkKey) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.out[k] > 0
}

// keys returns the chunks the client has requests of outstanding.
func (q *topUp) keys() []chunkKey {
	q.mu.Lock()
	defer q.mu.Unlock()
	ks := make([]chunkKey, 0, len(q.out))
	for k := range q.out {
		ks = append(ks, k)
	}
	return ks
}

// count returns how many requests the client has outstanding.
func (q *topUp) count() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}

// forget notes a cancel the client sent, or a reject from the peer: the
// request no longer counts, whatever the peer answers. A reject asks for
// no top-up: v1.59.1 deliberately asks a peer that rejected for nothing
// until something else changes.
func (q *topUp) forget(k chunkKey) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.forgetLocked(k)
}

// answered notes a piece from the peer and reports whether the client
// should be asked to plan again now.
func (q *topUp) answered(k chunkKey) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.forgetLocked(k) || q.asked || q.n == 0 || q.n*3 > q.high {
		return false
	}
	q.asked, q.high = true, q.n
	return true
}

// forgetLocked removes one request of k, reporting whether there was one.
// q.mu must be held.
func (q *topUp) forgetLocked(k chunkKey) bool {
	c := q.out[k]
	if c == 0 {
		return false
	}
	if c == 1 {
		delete(q.out, k)
	} else {
		q.out[k] = c - 1
	}
	q.n--
	return true
}

// choked notes a choke from a peer without the fast extension, which
// drops every request it holds, as the client does (BEP 3).
func (q *topUp) choked() {
	q.mu.Lock()
	defer q.mu.Unlock()
	clear(q.out)
	q.n, q.high, q.asked = 0, 0, false
}

// topUpReading is how long after a reader's last read of an incomplete
// piece of a torrent (memory.Options.OnWantLeafHashes, once per 16 KiB)
// its connections are topped up.
const topUpReading = 2 * time.Second

// suggestMessage is a BEP 6 suggest message of piece, length prefix first.
func suggestMessage(piece pp.Integer) []byte {
	b := []byte{0, 0, 0, 5, byte(pp.Suggest), 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[5:], uint32(piece))
	return b
}
