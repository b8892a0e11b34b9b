package host

import (
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
)

const (
	// RedialCheckInterval is the least time between two checks of the
	// redialer. A check runs only when something may have made a dial due:
	// a piece state or a connection of a torrent with known addresses
	// changed, or an address's backoff has passed while its torrent is
	// starved or its connection is owed (see redialer).
	RedialCheckInterval = 500 * time.Millisecond
	// RedialMinBackoff is the wait after the first dial of an address, and
	// the wait again once the address delivers a chunk, its torrent's
	// starvation begins or the watchdog asks for a redial.
	RedialMinBackoff = time.Second
	// RedialMaxBackoff bounds the wait between dials of an address: it
	// doubles from RedialMinBackoff up to this with each dial and each
	// close of a connection that delivered nothing. It is short because a
	// read may be waiting meanwhile: a peer that comes back is dialled
	// within RedialMaxBackoff, at the cost of one dial of each known
	// address every RedialMaxBackoff while nothing arrives.
	RedialMaxBackoff = 4 * time.Second
	// redialGiveUp bounds how long the address of a closed connection we
	// dialled is dialled again, outside starvation, without a connection
	// coming of it.
	redialGiveUp = 2 * time.Minute
	// maxRemembered bounds the addresses remembered per torrent; the
	// oldest is forgotten first.
	maxRemembered = 64
)

// redialer is the one place that remembers the addresses of each
// torrent's peers and decides when to dial one again. It dials an address
// that has no connection, once its backoff has passed, when
//   - its torrent is starved: it wants a piece no connected peer has, or
//     it has no info yet and no peer connected;
//   - a connection we dialled to it closed, whoever closed it (until a
//     connection is back, or for redialGiveUp);
//   - the watchdog asked (kick).
//
// Why: anacrolix v1.59.1 dials an address only when a source (the caller,
// a tracker, the DHT, PEX) reports it, once; an address whose dial failed
// or whose connection closed is never dialled again by itself. A seeder
// without lt_donthave (Transmission, aria2) closes the connection as
// redundant once a bounded cache has announced every piece, aria2 1.36
// closes connections of its own accord, a dial through a stalled line
// times out, a seeder restarts, a magnet's only peer (x.pe) is down when the
// magnet is added: a read would then wait forever. A new connection
// carries the true bitfield, so a seeder accepts it.
//
// The addresses remembered are those given to Client.AddPeers and
// Client.AddTorrentSpec (whether or not their dial succeeds) and those of
// every connection that closed. Each has its own backoff, from
// RedialMinBackoff doubling to RedialMaxBackoff with each dial or closed
// connection, back to RedialMinBackoff when it delivers a chunk; when a
// torrent's starvation begins, every address of it is dialled at once.
//
// The redialer costs nothing while nothing changes: a torrent's starvation
// is tested (which walks its pieces) only after one of its pieces changed
// state (a subscription per torrent with known addresses), a connection of
// it opened or closed (a closed one it still lists: until it is gone), or,
// while it is starved, before each dial; the run goroutine sleeps until
// then. Should an event be missed, the watchdog's kick has the torrent
// tested.
type redialer struct {
	mu     sync.Mutex                 // guards the fields below; never held across a call into the client
	books  map[*torrent.Torrent]*book // torrents with known addresses, until dropped
	closed bool                       // Close was called: no watcher starts

	wake     chan struct{} // a dial may have become due; buffered, never closed
	stop     chan struct{} // closed by Close
	done     chan struct{} // closed when run returns
	watchers sync.WaitGroup
	once     sync.Once
	tests    atomic.Int64 // starvation tests so far
}

// book is what a redialer knows of one torrent.
type book struct {
	addrs   []*peerAddr                // remembered, oldest first, at most maxRemembered
	byAddr  map[string]*peerAddr       // addrs by address
	closing map[*torrent.PeerConn]bool // closed connections the torrent may still list
	dirty   bool                       // a piece state or connection changed since the last starvation test
	starved bool                       // at the last test
	kicked  bool                       // the next check dials whether or not the torrent is starved
	redials int64                      // checks that dialled an address of this torrent
	last    time.Time                  // of the last such check
}

// peerAddr is a remembered address and its backoff.
type peerAddr struct {
	info      torrent.PeerInfo
	key       string        // info.Addr.String()
	wait      time.Duration // after the next dial
	next      time.Time     // no dial before
	connected bool          // a connection with this remote address was up at the last check or event
	owed      time.Time     // zero; or a connection we dialled closed: dial again until this
	closeNow  bool          // the next close of a connection we dialled has it dialled again at once (dialAfterClose)
}

// RedialState is what the redialer knows of one torrent.
type RedialState struct {
	Addrs   []string  // remembered addresses, oldest first
	Starved bool      // wants a piece no connected peer has, or its info with no peer
	Redials int64     // checks that dialled some of the addresses
	Last    time.Time // of the last redial; zero if none
	Next    time.Time // the earliest an address without a connection may be dialled; zero: at once, or none
}

func newRedialer() *redialer {
	return &redialer{
		books: make(map[*torrent.Torrent]*book),
		wake:  make(chan struct{}, 1),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
}

// wakeUp has run look at the books again. It never blocks.
func (r *redialer) wakeUp() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// bookLocked returns t's book, making it and starting its watcher.
func (r *redialer) bookLocked(t *torrent.Torrent) *book {
	b := r.books[t]
	if b == nil {
		// dirty once its watcher has subscribed
		b = &book{byAddr: make(map[string]*peerAddr), closing: make(map[*torrent.PeerConn]bool)}
		r.books[t] = b
		if !r.closed {
			r.watchers.Add(1)
			go r.watch(t)
		}
	}
	return b
}

// watch marks t's book dirty once subscribed (so that no change before
// is missed), at each change of a piece's state and when t's info
// arrives, and forgets t when it is dropped, until Close.
func (r *redialer) watch(t *torrent.Torrent) {
	defer r.watchers.Done()
	sub := t.SubscribePieceStateChanges()
	defer func() {
		sub.Close()
		for range sub.Values { // until the subscription's goroutine is gone
		}
	}()
	r.touch(t)
	gotInfo := t.GotInfo()
	for {
		select {
		case <-r.stop:
			return
		case <-t.Closed():
			r.forget(t)
			return
		case <-gotInfo:
			gotInfo = nil
		case _, ok := <-sub.Values:
			if !ok {
				r.forget(t)
				return
			}
		}
		r.touch(t)
	}
}

// touch marks t's book dirty and wakes run.
func (r *redialer) touch(t *torrent.Torrent) {
	r.mu.Lock()
	if b := r.books[t]; b != nil {
		b.dirty = true
	}
	r.mu.Unlock()
	r.wakeUp()
}

// forget drops t's book.
func (r *redialer) forget(t *torrent.Torrent) {
	r.mu.Lock()
	delete(r.books, t)
	r.mu.Unlock()
}

// rememberLocked adds addr to b (moving it to the newest place if it is
// there already, its backoff kept) and returns its entry.
func (b *book) rememberLocked(addr torrent.PeerInfo) *peerAddr {
	key := addr.Addr.String()
	a := b.byAddr[key]
	if a != nil {
		for i, x := range b.addrs {
			if x == a {
				b.addrs = append(b.addrs[:i], b.addrs[i+1:]...)
				break
			}
		}
	} else {
		a = &peerAddr{key: key, wait: RedialMinBackoff}
		b.byAddr[key] = a
	}
	a.info = addr
	if len(b.addrs) >= maxRemembered {
		delete(b.byAddr, b.addrs[0].key)
		b.addrs = b.addrs[1:]
	}
	b.addrs = append(b.addrs, a)
	return a
}

// remember adds addr to t's book. Safe for concurrent use; it takes only
// r.mu, so the client may call it with its own lock held.
func (r *redialer) remember(t *torrent.Torrent, addr torrent.PeerInfo) {
	r.mu.Lock()
	r.bookLocked(t).rememberLocked(addr)
	r.mu.Unlock()
	r.wakeUp()
}

// bookOfLocked returns the book of the open torrent whose info hash is
// ih, nil if none.
func (r *redialer) bookOfLocked(ih metainfo.Hash) *book {
	for t, b := range r.books {
		if t.InfoHash() != ih {
			continue
		}
		select {
		case <-t.Closed():
		default:
			return b
		}
	}
	return nil
}

// state returns what r knows of ih.
func (r *redialer) state(ih metainfo.Hash) RedialState {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.bookOfLocked(ih)
	if b == nil {
		return RedialState{}
	}
	s := RedialState{Starved: b.starved, Redials: b.redials, Last: b.last}
	next := false
	for _, a := range b.addrs {
		s.Addrs = append(s.Addrs, a.key)
		if !a.connected && (!next || a.next.Before(s.Next)) {
			s.Next, next = a.next, true
		}
	}
	return s
}

// listenAddr returns where pc's peer takes connections: the address dialled
// for an outgoing connection, the remote IP with the port of the peer's
// extended handshake for an incoming one (nil if it gave none).
func listenAddr(pc *torrent.PeerConn) torrent.PeerRemoteAddr {
	addr := pc.RemoteAddr
	if addr == nil || pc.Discovery != torrent.PeerSourceIncoming {
		return addr
	}
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil || pc.PeerListenPort <= 0 {
		return nil
	}
	tcp, err := net.ResolveTCPAddr("tcp", net.JoinHostPort(host, strconv.Itoa(pc.PeerListenPort)))
	if err != nil {
		return nil
	}
	return tcp
}

// kick has the next check test ih's torrent and dial its known peers that
// have no connection, whether or not it is starved, with their backoff
// started again.
// It reports whether there is any peer to dial.
func (r *redialer) kick(ih metainfo.Hash) bool {
	r.mu.Lock()
	b := r.bookOfLocked(ih)
	known := b != nil && len(b.addrs) > 0
	if known {
		b.kicked, b.dirty = true, true
		b.resetLocked()
	}
	r.mu.Unlock()
	r.wakeUp()
	return known
}

// resetLocked starts the backoff of every address of b again.
func (b *book) resetLocked() {
	for _, a := range b.addrs {
		a.wait, a.next = RedialMinBackoff, time.Time{}
	}
}

// entryLocked returns the book of p's torrent and p's address in it, nil
// where r knows neither.
func (r *redialer) entryLocked(p *torrent.Peer) (*book, *peerAddr) {
	t := p.Torrent()
	if t == nil {
		return nil, nil
	}
	b := r.books[t]
	if b == nil || p.RemoteAddr == nil {
		return b, nil
	}
	return b, b.byAddr[p.RemoteAddr.String()]
}

// connAdded notes a connection of a torrent r knows: it may end the
// torrent's starvation, and a connection owed to its address is back. The
// client calls it with its lock held.
func (r *redialer) connAdded(pc *torrent.PeerConn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, a := r.entryLocked(&pc.Peer)
	if b != nil {
		b.dirty = true
	}
	if a != nil {
		a.connected = true
		a.owed = time.Time{}
	}
}

// connClosed remembers where pc's peer listens and, if we dialled pc,
// owes its address a dial after its backoff. The client calls it with its
// lock held: it reads only fields of pc that are set before the
// connection is added, or under that lock.
func (r *redialer) connClosed(pc *torrent.PeerConn) {
	t := pc.Torrent()
	if t == nil {
		return
	}
	addr := listenAddr(pc)
	now := time.Now()
	r.mu.Lock()
	b := r.books[t]
	if addr != nil {
		b = r.bookLocked(t)
		a := b.rememberLocked(torrent.PeerInfo{Addr: addr, Source: torrent.PeerSourceDirect})
		if pc.Discovery != torrent.PeerSourceIncoming {
			a.connected = false
			if a.closeNow {
				a.closeNow, a.next = false, now
			} else {
				a.backOff(now)
			}
			a.owed = now.Add(redialGiveUp)
		}
	}
	if b != nil {
		b.dirty = true
		b.closing[pc] = true
	}
	r.mu.Unlock()
	r.wakeUp()
}

// dialAfterClose has the connection we dialled to addr for t, which the
// host is about to close, dialled again at the first check after it
// closed, without a backoff (see leafHashes.afterInfo).
func (r *redialer) dialAfterClose(t *torrent.Torrent, addr net.Addr) {
	r.mu.Lock()
	r.bookLocked(t).rememberLocked(torrent.PeerInfo{Addr: addr, Source: torrent.PeerSourceDirect}).closeNow = true
	r.mu.Unlock()
}

// backOff puts a's next dial a's wait after now and doubles the wait, up
// to RedialMaxBackoff: after each dial, and each close of a connection we
// dialled.
func (a *peerAddr) backOff(now time.Time) {
	a.next = now.Add(a.wait)
	a.wait = min(2*a.wait, RedialMaxBackoff)
}

// delivered starts the backoff of p's address again: it sent a chunk we
// asked for. The client calls it with its lock held, for every chunk.
func (r *redialer) delivered(p *torrent.Peer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, a := r.entryLocked(p); a != nil {
		a.wait = RedialMinBackoff
	}
}

// run checks the books when something may be due, at most every
// RedialCheckInterval, until Close.
func (r *redialer) run() {
	defer close(r.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var last time.Time
	for {
		now := time.Now()
		if at, ok := r.due(now); ok {
			if early := last.Add(RedialCheckInterval); at.Before(early) {
				at = early
			}
			timer.Reset(at.Sub(now))
		}
		select {
		case <-r.stop:
			return
		case <-r.wake:
			timer.Stop()
			continue
		case <-timer.C:
		}
		last = time.Now()
		r.check(last)
	}
}

// due returns the earliest time at which a check has something to do, and
// false if nothing will be due until an event.
func (r *redialer) due(now time.Time) (at time.Time, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, b := range r.books {
		if b.dirty {
			return now, true
		}
		for _, a := range b.addrs {
			if a.connected || !(b.starved || b.kicked || !a.owed.IsZero()) {
				continue
			}
			if !ok || a.next.Before(at) {
				at, ok = a.next, true
			}
		}
	}
	return at, ok
}

// check tests and dials each torrent that has something due at now.
func (r *redialer) check(now time.Time) {
	r.mu.Lock()
	var work []*torrent.Torrent
	for t, b := range r.books {
		if b.hasWorkLocked(now) {
			work = append(work, t)
		}
	}
	r.mu.Unlock()
	for _, t := range work {
		r.checkTorrent(t, now)
	}
}

// hasWorkLocked reports whether b's starvation is to be tested or one of
// its addresses dialled at now.
func (b *book) hasWorkLocked(now time.Time) bool {
	if b.dirty {
		return true
	}
	for _, a := range b.addrs {
		if !a.connected && !now.Before(a.next) && (b.starved || b.kicked || !a.owed.IsZero()) {
			return true
		}
	}
	return false
}

// checkTorrent tests t's starvation if it may have changed, and dials the
// addresses of t that are due: those without a connection whose backoff
// has passed, while t is starved or kicked, or owed a dial. A starvation
// that begins (t was not starved at the last test) dials every address at
// once.
func (r *redialer) checkTorrent(t *torrent.Torrent, now time.Time) {
	conns := t.PeerConns()
	r.mu.Lock()
	b := r.books[t]
	if b == nil {
		r.mu.Unlock()
		return
	}
	test := b.dirty || b.starved
	b.dirty = false
	live, lingering := b.liveLocked(conns)
	r.mu.Unlock()

	starved := false
	if test {
		starved = isStarved(t, live)
		r.tests.Add(1)
	}
	connected := make(map[string]bool)
	for _, pc := range live {
		if pc.RemoteAddr != nil {
			connected[pc.RemoteAddr.String()] = true
		}
	}

	r.mu.Lock()
	if test {
		if starved && !b.starved {
			b.resetLocked()
		}
		b.starved = starved
	}
	var dial []torrent.PeerInfo
	for _, a := range b.addrs {
		a.connected = connected[a.key]
		if !a.owed.IsZero() && now.After(a.owed) {
			a.owed = time.Time{} // given up
		}
		if a.connected || now.Before(a.next) || !(b.starved || b.kicked || !a.owed.IsZero()) {
			continue
		}
		if lingering[a.key] {
			// v1.59.1 does not dial an address it still lists a
			// connection for: look again once the closed one is gone.
			b.dirty = true
			continue
		}
		dial = append(dial, a.info)
		a.backOff(now)
	}
	b.kicked = false
	if len(dial) > 0 {
		b.redials++
		b.last = now
	}
	r.mu.Unlock()

	if len(dial) > 0 {
		t.AddPeers(dial)
	}
}

// liveLocked returns the connections of conns (all that b's torrent
// lists) that did not close, and the remote addresses of those that did
// but are still listed (v1.59.1 lists a closed connection until its
// goroutine has ended, and says nothing when it stops). It forgets the
// closed connections no longer listed; while one is, b stays dirty, so
// that its end is seen.
func (b *book) liveLocked(conns []*torrent.PeerConn) (live []*torrent.PeerConn, lingering map[string]bool) {
	listed := make(map[*torrent.PeerConn]bool, len(conns))
	for _, pc := range conns {
		listed[pc] = true
		if !b.closing[pc] {
			live = append(live, pc)
		} else if pc.RemoteAddr != nil {
			if lingering == nil {
				lingering = make(map[string]bool)
			}
			lingering[pc.RemoteAddr.String()] = true
		}
	}
	for pc := range b.closing {
		if !listed[pc] {
			delete(b.closing, pc)
		}
	}
	if len(b.closing) > 0 {
		b.dirty = true
	}
	return live, lingering
}

// isStarved reports whether t waits for something none of its live
// connections can give: its info with none, or a piece it wants that none
// claims to have.
func isStarved(t *torrent.Torrent, live []*torrent.PeerConn) bool {
	if t.Info() == nil {
		return len(live) == 0
	}
	wanted := wantedPieces(t, 64)
	if len(wanted) == 0 {
		return false
	}
	for _, pc := range live {
		has := pc.PeerPieces()
		for _, p := range wanted {
			if has.Contains(uint32(p)) {
				return false
			}
		}
	}
	return true
}

// wantedPieces returns up to n pieces of t that it wants (a priority other
// than none) and lacks, in index order; t must have its info.
func wantedPieces(t *torrent.Torrent, n int) []int {
	var wanted []int
	i := 0
	for _, run := range t.PieceStateRuns() {
		if run.Priority != torrent.PiecePriorityNone && !run.Complete && !run.Checking {
			for j := range min(run.Length, n-len(wanted)) {
				wanted = append(wanted, i+j)
			}
		}
		i += run.Length
		if len(wanted) >= n {
			break
		}
	}
	return wanted
}

// Close stops run and the watchers and waits for them. Safe to call more
// than once.
func (r *redialer) Close() {
	r.once.Do(func() {
		r.mu.Lock()
		r.closed = true
		r.mu.Unlock()
		close(r.stop)
	})
	<-r.done
	r.watchers.Wait()
}
