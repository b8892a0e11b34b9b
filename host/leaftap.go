package host

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/anacrolix/torrent"
	pp "github.com/anacrolix/torrent/peer_protocol"
)

// This file is the tap on the client's TCP connections that leaf hashes
// need (see leafhashes.go): v1.59.1 neither sends a BEP 52 hash request
// for the block layer nor exports a way to send one, so the host listens
// and dials TCP itself (the client's own TCP is disabled: Config.DisableTCP,
// Client.AddListener, Client.AddDialer) and wraps each connection. A
// wrapped connection follows both byte streams: the two handshakes, then
// the length-prefixed messages. When both handshakes name the same info
// hash (a v2 torrent's truncated v2 info hash, after BEP 52's upgrade), it
// can carry our hash requests, which it writes between two of the client's
// messages, and it hands the peer's hashes and hash reject messages to the
// leafHashes; the client reads them too and ignores them
// (ignoreHashMessages). On every plaintext connection, upgraded or not, it
// also follows the client's requests and the peer's answers, and hands
// the client a message of ours between two of the peer's when the
// connection's request queue is about to run dry (topup.go). A connection
// that starts with anything but a plaintext BitTorrent handshake (an
// MSE-encrypted one) is passed through untouched.

// handshakeLen is the length of a BitTorrent handshake: protocol string,
// reserved bytes, info hash, peer id.
const handshakeLen = 68

// maxTappedMessage bounds the hash messages a tap copies out: a hashes
// message of 512 hashes (BEP 52's limit) with proof layers fits.
const maxTappedMessage = 1 + 48 + 1024*32

// tcpTakeover listens on TCP for a client about to be made from cfg, in
// place of the client's own TCP sockets, and returns the listeners; it sets
// cfg.DisableTCP, and cfg.ListenPort to the port it got, so that the
// client's other sockets (uTP, DHT) take the same port. Like v1.59.1's
// listenAll it listens on tcp4 and tcp6 (not on one that cfg disables) at
// cfg.ListenHost's address for each, on one port, skips a network the
// machine lacks (bind: cannot assign requested address), and with port 0
// tries again when the port it got for the first is taken on the second.
// A nil slice means cfg disables TCP.
func tcpTakeover(cfg *torrent.ClientConfig) ([]net.Listener, error) {
	if cfg.DisableTCP {
		return nil, nil
	}
	for attempt := 0; ; attempt++ {
		ls, retry, err := listenTCP(cfg)
		if err == nil {
			if len(ls) > 0 {
				cfg.DisableTCP = true
				cfg.ListenPort = ls[0].Addr().(*net.TCPAddr).Port
			}
			return ls, nil
		}
		if !retry || attempt == 10 {
			return nil, err
		}
	}
}

// listenTCP is one attempt of tcpTakeover: the listeners, or an error and
// whether another attempt may succeed.
func listenTCP(cfg *torrent.ClientConfig) (ls []net.Listener, retry bool, err error) {
	port := cfg.ListenPort
	for _, network := range []string{"tcp4", "tcp6"} {
		if (network == "tcp4" && cfg.DisableIPv4) || (network == "tcp6" && cfg.DisableIPv6) {
			continue
		}
		host := ""
		if cfg.ListenHost != nil {
			host = cfg.ListenHost(network)
		}
		// BitTorrent connections have their own keep-alives (as v1.59.1's
		// listenTcp).
		l, err := (&net.ListenConfig{KeepAlive: -1}).Listen(context.Background(), network, net.JoinHostPort(host, strconv.Itoa(port)))
		var sysErr *os.SyscallError
		if errors.As(err, &sysErr) && sysErr.Syscall == "bind" && errors.Is(sysErr.Err, syscall.EADDRNOTAVAIL) {
			continue // no such network here
		}
		if err != nil {
			for _, l := range ls {
				l.Close()
			}
			return nil, len(ls) > 0 && cfg.ListenPort == 0 && errors.Is(err, syscall.EADDRINUSE),
				fmt.Errorf("host: listening on %s: %w", network, err)
		}
		port = l.Addr().(*net.TCPAddr).Port
		ls = append(ls, l)
	}
	return ls, false, nil
}

// tapListener accepts connections and wraps them for lh.
type tapListener struct {
	net.Listener
	lh *leafHashes
}

func (l tapListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.lh.tap(c, false), nil
}

// tapDialer dials TCP on one network and wraps the connections for lh. d
// is set as v1.59.1's listenTcp sets its dialer: no TCP keep-alives, no
// fallback between IPv4 and IPv6 (the network is one of them).
type tapDialer struct {
	network string
	d       net.Dialer
	lh      *leafHashes
}

func (d *tapDialer) DialerNetwork() string { return d.network }

func (d *tapDialer) Dial(ctx context.Context, addr string) (net.Conn, error) {
	c, err := d.d.DialContext(ctx, d.network, addr)
	if err != nil {
		return nil, err
	}
	return d.lh.tap(c, true), nil
}

// streamParser follows one direction of a peer connection: the handshake,
// then messages. It is fed the bytes in order.
type streamParser struct {
	hs     [handshakeLen]byte
	hsN    int
	lenBuf [4]byte
	lenN   int
	left   int    // bytes of the current message's body still to come
	typed  bool   // the current message's type byte went by
	keep   bool   // the current message is copied into msg
	msg    []byte // the current message's body so far, when keep
	head   [tappedHead]byte
	headN  int // bytes of head so far
}

// tappedHead is how much of each message's body a streamParser always
// keeps: the type byte, and for the messages about a chunk (request,
// piece, cancel, reject) its piece index and offset.
const tappedHead = 9

// tapped is one whole message a streamParser saw, valid only during the
// call it is given to.
type tapped struct {
	head []byte // the body's first bytes, up to tappedHead; empty for a keep-alive
	body []byte // the whole body, when the parser's keepType selected it and it fits in maxTappedMessage; else nil
	// length is the body's length (Read's messages only).
	length int
}

// typ is the message's type, -1 for a keep-alive.
func (m tapped) typ() int {
	if len(m.head) == 0 {
		return -1
	}
	return int(m.head[0])
}

// chunk is the piece index and offset a message about a chunk names; ok
// false when the message is too short to name one.
func (m tapped) chunk() (k chunkKey, ok bool) {
	if len(m.head) < tappedHead {
		return k, false
	}
	return chunkKey{pp.Integer(binary.BigEndian.Uint32(m.head[1:])), pp.Integer(binary.BigEndian.Uint32(m.head[5:]))}, true
}

// handshakeDone reports whether the whole handshake went by.
func (p *streamParser) handshakeDone() bool { return p.hsN == handshakeLen }

// infoHash is the handshake's info hash; valid once handshakeDone.
func (p *streamParser) infoHash() (ih [20]byte) {
	copy(ih[:], p.hs[28:48])
	return ih
}

// reserved is the handshake's reserved bytes; valid once handshakeDone.
func (p *streamParser) reserved() (b pp.PeerExtensionBits) {
	copy(b[:], p.hs[20:28])
	return b
}

// atBoundary reports whether the bytes so far end between two messages,
// after the handshake.
func (p *streamParser) atBoundary() bool {
	return p.handshakeDone() && p.lenN == 0 && p.left == 0
}

// feed follows b. msgDone is called at the end of each message (see
// tapped; keepType selects the message types whose whole body it gets);
// when it returns true, feed stops right after that message. feed returns
// how much of b it followed (all of it unless msgDone stopped it), and
// ok false once the stream is known not to start with a plaintext
// BitTorrent handshake; it must not be called again then.
func (p *streamParser) feed(b []byte, keepType func(byte) bool, msgDone func(tapped) bool) (n int, ok bool) {
	all := len(b)
	for len(b) > 0 {
		if p.hsN < handshakeLen {
			n := copy(p.hs[p.hsN:], b)
			for i := p.hsN; i < min(p.hsN+n, len(pp.Protocol)); i++ {
				if p.hs[i] != pp.Protocol[i] {
					return all - len(b), false
				}
			}
			p.hsN += n
			b = b[n:]
			continue
		}
		if p.left == 0 {
			n := copy(p.lenBuf[p.lenN:], b)
			p.lenN += n
			b = b[n:]
			if p.lenN < 4 {
				continue
			}
			p.lenN = 0
			p.left = int(binary.BigEndian.Uint32(p.lenBuf[:]))
			p.typed, p.keep, p.msg, p.headN = false, false, p.msg[:0], 0
			if p.left == 0 && msgDone(tapped{}) { // a keep-alive
				return all - len(b), true
			}
			continue
		}
		if !p.typed {
			p.typed = true
			p.keep = keepType(b[0]) && p.left <= maxTappedMessage
		}
		n := min(len(b), p.left)
		if p.keep {
			p.msg = append(p.msg, b[:n]...)
		}
		p.headN += copy(p.head[p.headN:], b[:n])
		p.left -= n
		b = b[n:]
		if p.left == 0 {
			m := tapped{head: p.head[:p.headN]}
			if p.keep {
				m.body = p.msg
			}
			p.keep = false
			if msgDone(m) {
				return all - len(b), true
			}
		}
	}
	return all, true
}

// tapConn is a peer connection the host follows (see the top of this
// file). Read never waits for mu, which a write blocked on the socket
// holds: a reader waiting for a writer that waits for the peer, which
// waits for us to read, would never end.
type tapConn struct {
	net.Conn
	lh      *leafHashes
	dialled bool          // we dialled the peer (else it dialled us); never changes
	done    chan struct{} // closed by Close

	in       streamParser         // Read's: the handshake
	inOff    bool                 // Read's: not plaintext, bytes pass through
	msg      inMessage            // Read's: the peer's current message
	ready    []byte               // Read's: bytes for the client, in order, from readyOff on
	readyOff int                  // Read's
	readBuf  []byte               // Read's
	readErr  error                // Read's: what the connection's last read returned, for after ready
	peerIH   [20]byte             // the peer's handshake info hash, written before haveIn is set
	peerBits pp.PeerExtensionBits // the peer's handshake reserved bytes, written before haveIn is set
	peerID   [20]byte             // the peer's handshake peer ID, written before haveIn is set
	haveIn   atomic.Bool
	// readyTo is the info hash both handshakes named, written under mu
	// before usable is set; usable means hash requests may go.
	readyTo [20]byte
	usable  atomic.Bool
	ourFast atomic.Bool // the client's handshake has the fast extension bit
	top     topUp       // the client's requests outstanding (see topup.go); its own lock
	fetch   connFetch   // the peer's state and our own requests (see early.go); its own lock

	mu     sync.Mutex   // guards the fields below; held across the connection's writes
	out    streamParser // the client's bytes
	outOff bool         // not plaintext: nothing to do
	sent   int          // whole messages the client sent after its handshake
	queued [][]byte     // our messages waiting for a boundary of the client's
	closed bool         // Close was called
}

// isHashMessage selects the messages the tap copies out of the peer's stream.
func isHashMessage(t byte) bool {
	return t == byte(pp.Hashes) || t == byte(pp.HashReject)
}

// Read hands the client the peer's bytes, less the answers to our own
// requests (early.go), and between two of the peer's messages, a message
// of ours (a top-up, see topup.go) when peerMessage asks for one.
func (c *tapConn) Read(b []byte) (int, error) {
	for c.readyOff == len(c.ready) {
		c.ready, c.readyOff = c.ready[:0], 0
		if c.readErr != nil {
			return 0, c.readErr
		}
		if c.inOff {
			return c.Conn.Read(b)
		}
		if c.readBuf == nil {
			c.readBuf = make([]byte, 32<<10)
		}
		n, err := c.Conn.Read(c.readBuf)
		c.filter(c.readBuf[:n])
		c.readErr = err
	}
	n := copy(b, c.ready[c.readyOff:])
	c.readyOff += n
	return n, nil
}

// inMessage is what Read knows of the peer's current message.
type inMessage struct {
	hdr    [4 + tappedHead]byte // the length prefix and the head of the body, held until decided
	hdrN   int                  // bytes of hdr so far
	need   int                  // bytes of hdr to hold before deciding: 4, then 4 + the head's length
	length int                  // of the body
	left   int                  // body bytes after the head still to come
	strip  bool                 // the message is an answer to our own request: not handed over
	keep   bool                 // the body is copied into body
	body   []byte
}

// filter follows p, the peer's next bytes, and appends to c.ready what
// the client is to read.
func (c *tapConn) filter(p []byte) {
	m := &c.msg
	for len(p) > 0 {
		if c.inOff {
			c.ready = append(c.ready, p...)
			return
		}
		if !c.in.handshakeDone() {
			k := min(len(p), handshakeLen-c.in.hsN)
			_, ok := c.in.feed(p[:k], nil, nil)
			c.ready = append(c.ready, p[:k]...)
			p = p[k:]
			if !ok {
				c.inOff = true
			} else if c.in.handshakeDone() {
				c.peerIH, c.peerBits, c.peerID = c.in.infoHash(), c.in.reserved(), [20]byte(c.in.hs[48:])
				c.haveIn.Store(true)
				if c.mu.TryLock() { // else the next write checks
					c.checkUsableLocked()
					c.mu.Unlock()
				}
			}
			continue
		}
		if m.need == 0 {
			m.need = 4
		}
		if m.hdrN < m.need {
			k := copy(m.hdr[m.hdrN:m.need], p)
			m.hdrN += k
			p = p[k:]
			if m.hdrN < m.need {
				continue
			}
			if m.need == 4 {
				m.length = int(binary.BigEndian.Uint32(m.hdr[:4]))
				if m.need = 4 + min(m.length, tappedHead); m.need > 4 {
					continue
				}
			}
			head := m.hdr[4:m.hdrN]
			m.left = m.length - len(head)
			m.strip, m.keep = c.decide(head, m.length)
			m.body = m.body[:0]
			if m.keep {
				m.body = append(m.body, head...)
			}
			if !m.strip {
				c.ready = append(c.ready, m.hdr[:m.hdrN]...)
			}
		} else {
			k := min(len(p), m.left)
			if !m.strip {
				c.ready = append(c.ready, p[:k]...)
			}
			if m.keep {
				m.body = append(m.body, p[:k]...)
			}
			m.left -= k
			p = p[k:]
		}
		if m.left == 0 {
			t := tapped{head: m.hdr[4:m.hdrN], length: m.length}
			if m.keep {
				t.body = m.body
			}
			pass := !m.strip
			if m.strip {
				if back := c.lh.ownAnswer(c, t); back != nil {
					c.ready = append(c.ready, back...)
					pass = true
				}
			}
			if pass {
				if inject := c.peerMessage(t); inject != nil {
					c.ready = append(c.ready, inject...)
				}
			}
			m.hdrN, m.need, m.strip, m.keep = 0, 0, false, false
		}
	}
}

// decide says, from the head of a message of the peer's and its length,
// whether it answers a request of ours (and is not to reach the client),
// and whether its body is to be copied out.
func (c *tapConn) decide(head []byte, length int) (strip, keep bool) {
	if len(head) == 0 {
		return false, false
	}
	switch pp.MessageType(head[0]) {
	case pp.Hashes, pp.HashReject, pp.Bitfield:
		return false, length <= maxTappedMessage
	case pp.Piece, pp.Reject:
		k, ok := (tapped{head: head}).chunk()
		// A stripped message's body is kept: it goes to the client after
		// all if the client asks for the chunk while it comes (ownAnswer).
		if ok && head[0] == byte(pp.Reject) && c.fetch.recalledReject(k) {
			return true, length <= maxTappedMessage
		}
		if !ok || c.top.has(k) || !c.fetch.isOurs(k) {
			return false, false
		}
		if head[0] == byte(pp.Piece) {
			return length <= tappedHead+chunkSize, length <= tappedHead+chunkSize
		}
		return true, length <= maxTappedMessage
	}
	return false, false
}

// peerMessage is called by Read with each message from the peer that
// reaches the client; it returns a message of ours for the client to read
// right after it, or nil. It gives the leafHashes the hash messages, and
// follows the answers to the client's requests and the peer's state.
func (c *tapConn) peerMessage(m tapped) []byte {
	if m.body != nil && c.usable.Load() && isHashMessage(m.body[0]) {
		c.lh.peerReply(c.readyTo, m.body)
	}
	fast := c.ourFast.Load() && c.in.reserved().SupportsFast()
	switch m.typ() {
	case int(pp.Piece):
		k, ok := m.chunk()
		if !ok {
			break
		}
		c.lh.received(c, m.length-tappedHead)
		c.fetch.answeredRecalled(k)
		// A suggest is a fast extension message: v1.59.1 closes a connection
		// without the extension on both sides that sends one.
		if c.top.answered(k) && !c.lh.noTopUp && fast && c.usable.Load() && c.lh.readSince(c.readyTo) {
			c.lh.topUps.Add(1)
			return suggestMessage(k.index)
		}
	case int(pp.Reject):
		if k, ok := m.chunk(); ok {
			c.top.forget(k)
		}
	case int(pp.Choke):
		c.fetch.setChoked(true)
		if !fast {
			c.top.choked()
		}
	case int(pp.Unchoke):
		c.fetch.setChoked(false)
	case int(pp.Have):
		if len(m.head) >= 5 {
			c.fetch.have(int(binary.BigEndian.Uint32(m.head[1:])))
		}
	case int(pp.Bitfield):
		if m.body != nil {
			c.fetch.bitfield(m.body[1:])
		}
	case int(pp.HaveAll):
		c.fetch.haveAll(true)
	case int(pp.HaveNone):
		c.fetch.haveAll(false)
	}
	return nil
}

func (c *tapConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := b
	if !c.outOff && c.usable.Load() && c.out.atBoundary() {
		out = c.substituteLocked(b)
	}
	n, err := c.Conn.Write(out)
	if len(out) != len(b) || (len(b) > 0 && &out[0] != &b[0]) {
		// What the peer was sent is not what the client wrote: all of it
		// or, after an error, none of it counts as written.
		if n = len(b); err != nil {
			n = 0
		}
	}
	if n > 0 && !c.outOff {
		if _, ok := c.out.feed(b[:n], func(byte) bool { return false }, c.clientMessage); !ok {
			c.outOff = true
		}
		c.checkUsableLocked()
	}
	if err == nil {
		err = c.flushLocked()
	}
	return n, err
}

// clientMessage is called by Write with each message of the client's.
// c.mu must be held.
func (c *tapConn) clientMessage(m tapped) bool {
	if c.sent == 0 {
		c.ourFast.Store(c.out.reserved().SupportsFast())
	}
	c.sent++
	switch m.typ() {
	case int(pp.Request):
		if k, ok := m.chunk(); ok {
			c.top.requested(k)
		}
	case int(pp.Cancel):
		if k, ok := m.chunk(); ok {
			c.top.forget(k)
		}
	}
	return false
}

// checkUsableLocked makes the connection usable, and tells lh, when both
// handshakes went by and the client has sent a message (its bitfield must
// be the first after the handshake, BEP 3). It is registered under the
// peer's info hash: a v2 info hash (truncated) when the peer upgraded our
// v1 one or named it itself, which the leafHashes know; a v1 one, which
// they ignore, otherwise. c.mu must be held.
func (c *tapConn) checkUsableLocked() {
	if c.usable.Load() || c.outOff || c.closed || !c.haveIn.Load() || !c.out.handshakeDone() || c.sent == 0 {
		return
	}
	c.readyTo = c.peerIH
	c.usable.Store(true)
	go c.lh.connReady(c, c.readyTo, c.notUpgradedLocked())
}

// notUpgradedLocked reports whether the connection could have been
// upgraded to v2 had the client known the v2 info hash when it dialled:
// we dialled, the client's handshake lacks the v2 bit (a magnet with the
// v1 info hash alone, before its info), the peer's has it, and the peer
// answered with our info hash. Both handshakes must have gone by; c.mu
// must be held.
func (c *tapConn) notUpgradedLocked() bool {
	return c.dialled && c.out.infoHash() == c.peerIH &&
		!c.out.reserved().GetBit(pp.ExtensionBitV2Upgrade) && c.peerBits.GetBit(pp.ExtensionBitV2Upgrade)
}

// send writes msg (a whole message with its length prefix) between two of
// the client's messages: at once if the client's bytes end at a message
// boundary, else after the client's next write that ends at one. It
// reports whether the connection can carry it.
func (c *tapConn) send(msg []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.usable.Load() || c.closed {
		return false
	}
	c.queued = append(c.queued, msg)
	return c.flushLocked() == nil
}

// flushLocked writes the queued messages if the client's bytes end at a
// message boundary. c.mu must be held.
func (c *tapConn) flushLocked() error {
	if len(c.queued) == 0 || !c.out.atBoundary() {
		return nil
	}
	for len(c.queued) > 0 {
		if _, err := c.Conn.Write(c.queued[0]); err != nil {
			c.queued = nil
			return err
		}
		c.queued[0] = nil
		c.queued = c.queued[1:]
	}
	return nil
}

// Close closes the connection first, which ends a write blocked under
// c.mu, then forgets it.
func (c *tapConn) Close() error {
	err := c.Conn.Close()
	c.mu.Lock()
	wasUsable := c.usable.Swap(false)
	if !c.closed {
		close(c.done)
	}
	c.closed, c.queued = true, nil
	c.mu.Unlock()
	if wasUsable {
		c.lh.connClosed(c, c.readyTo)
	}
	return err
}
