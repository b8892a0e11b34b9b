package host

import (
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
)

const (
	// RedialCheckInterval is how often a Client looks for torrents that
	// want a piece no connected peer has, or their info with no peer
	// connected.
	RedialCheckInterval = 500 * time.Millisecond
	// RedialMinBackoff is the wait after the first redial of a starved
	// torrent, and the wait again once data arrives, a connection is
	// made or a new starvation begins.
	RedialMinBackoff = time.Second
	// RedialMaxBackoff bounds the wait between redials: it doubles from
	// RedialMinBackoff up to this while the torrent stays starved. It is
	// short because a read is waiting meanwhile: a peer that comes back
	// is dialled within RedialMaxBackoff, at the cost of one dial per
	// remembered address every RedialMaxBackoff while nothing arrives.
	RedialMaxBackoff = 4 * time.Second
	// maxRemembered bounds the addresses remembered per torrent; the
	// oldest is forgotten first.
	maxRemembered = 64
)

// redialer remembers the addresses of a torrent's peers and dials them
// again when the torrent is starved: it wants a piece no connected peer
// has, or it has no info yet and no peer connected.
//
// Why: anacrolix v1.59.1 dials an address only when a source (the caller,
// a tracker, the DHT, PEX) reports it, once; an address whose dial failed
// or whose connection closed is never dialled again by itself. A seeder
// without lt_donthave (Transmission, aria2) closes the connection as
// redundant once a bounded cache has announced every piece, a seeder
// restarts, a magnet's only peer (x.pe) is down when the magnet is added:
// a read would then wait forever. A new connection carries the true
// bitfield, so a seeder accepts it.
//
// The addresses remembered are those given to Client.AddPeers and
// Client.AddTorrentSpec (whether or not their dial succeeds) and those of
// every connection that closed.
type redialer struct {
	mu    sync.Mutex // guards the fields below; never held across a call into the client
	books map[metainfo.Hash]*book

	stop chan struct{} // closed by Close
	done chan struct{} // closed when run returns
	once sync.Once
}

// book is what a redialer knows of one torrent.
type book struct {
	addrs   []torrent.PeerInfo // remembered, oldest first, at most maxRemembered
	next    time.Time          // no redial before
	backoff time.Duration      // wait after the next redial
	useful  int64              // BytesReadUsefulData at the last check
	starved bool               // at the last check
	redials int64              // redials of this torrent so far
	last    time.Time          // of the last redial
}

// RedialState is what the redialer knows of one torrent.
type RedialState struct {
	Addrs   []string      // remembered addresses, oldest first
	Starved bool          // wants a piece no connected peer has, or its info with no peer
	Redials int64         // redials so far (each dials every remembered address)
	Last    time.Time     // of the last redial; zero if none
	Next    time.Time     // no redial before; zero: at the next check
	Backoff time.Duration // the wait after the next redial
}

func newRedialer() *redialer {
	return &redialer{
		books: make(map[metainfo.Hash]*book),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
}

// bookLocked returns ih's book, making it.
func (r *redialer) bookLocked(ih metainfo.Hash) *book {
	b := r.books[ih]
	if b == nil {
		b = &book{backoff: RedialMinBackoff}
		r.books[ih] = b
	}
	return b
}

// remember adds addr to ih's book (moving it to the newest place if it is
// there already). Safe for concurrent use; it takes only r.mu, so the
// client may call it with its own lock held.
func (r *redialer) remember(ih metainfo.Hash, addr torrent.PeerInfo) {
	key := addr.Addr.String()
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.bookLocked(ih)
	for i, a := range b.addrs {
		if a.Addr.String() == key {
			b.addrs = append(b.addrs[:i], b.addrs[i+1:]...)
			break
		}
	}
	if len(b.addrs) >= maxRemembered {
		b.addrs = b.addrs[1:]
	}
	b.addrs = append(b.addrs, addr)
}

// state returns what r knows of ih.
func (r *redialer) state(ih metainfo.Hash) RedialState {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.books[ih]
	if b == nil {
		return RedialState{}
	}
	s := RedialState{Starved: b.starved, Redials: b.redials, Last: b.last, Next: b.next, Backoff: b.backoff}
	for _, a := range b.addrs {
		s.Addrs = append(s.Addrs, a.Addr.String())
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

// kick has the next check redial ih's known peers whether or not the
// backoff has passed, with the backoff started again. It reports whether
// there is any peer to dial.
func (r *redialer) kick(ih metainfo.Hash) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.bookLocked(ih)
	b.next = time.Time{}
	b.backoff = RedialMinBackoff
	return len(b.addrs) > 0
}

// connAdded starts the backoff of pc's torrent again: a connection was
// made, so the next starvation redials at once. The client calls it with
// its lock held.
func (r *redialer) connAdded(pc *torrent.PeerConn) {
	t := pc.Torrent()
	if t == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.bookLocked(t.InfoHash())
	b.backoff = RedialMinBackoff
	b.next = time.Time{}
}

// connClosed remembers where pc's peer listens. The client calls it
// with its lock held: it reads only fields of pc that are set before the
// connection is added, or under that lock.
func (r *redialer) connClosed(pc *torrent.PeerConn) {
	t := pc.Torrent()
	if t == nil {
		return
	}
	if addr := listenAddr(pc); addr != nil {
		r.remember(t.InfoHash(), torrent.PeerInfo{Addr: addr, Source: torrent.PeerSourceDirect})
	}
}

// run checks cl's torrents every RedialCheckInterval until Close.
func (r *redialer) run(cl *torrent.Client) {
	defer close(r.done)
	tick := time.NewTicker(RedialCheckInterval)
	defer tick.Stop()
	for {
		select {
		case <-r.stop:
			return
		case now := <-tick.C:
			r.check(cl, now)
		}
	}
}

// check redials, for each starved torrent, the remembered addresses, with
// backoff. A starvation that begins (the torrent was not starved at the
// last check) redials at once.
func (r *redialer) check(cl *torrent.Client, now time.Time) {
	present := make(map[metainfo.Hash]bool)
	for _, t := range cl.Torrents() {
		ih := t.InfoHash()
		present[ih] = true
		var useful int64
		if t.Info() != nil {
			st := t.Stats()
			useful = st.BytesReadUsefulData.Int64()
		}
		starved := isStarved(t)

		r.mu.Lock()
		b := r.bookLocked(ih)
		if useful > b.useful || starved && !b.starved {
			b.backoff = RedialMinBackoff
			b.next = time.Time{}
		}
		b.useful = max(b.useful, useful)
		b.starved = starved
		var dial []torrent.PeerInfo
		if starved && !now.Before(b.next) && len(b.addrs) > 0 {
			dial = append(dial, b.addrs...)
			b.next = now.Add(b.backoff)
			b.backoff = min(2*b.backoff, RedialMaxBackoff)
			b.redials++
			b.last = now
		}
		r.mu.Unlock()

		if len(dial) > 0 {
			t.AddPeers(dial)
		}
	}
	r.mu.Lock()
	for ih := range r.books {
		if !present[ih] {
			delete(r.books, ih)
		}
	}
	r.mu.Unlock()
}

// isStarved reports whether t waits for something no connected peer can
// give: its info with no peer connected, or a piece it wants that no
// connected peer claims to have.
func isStarved(t *torrent.Torrent) bool {
	if t.Info() == nil {
		return len(t.PeerConns()) == 0
	}
	return noSource(t)
}

// noSource reports whether t wants a piece it lacks that no connected
// peer claims to have.
func noSource(t *torrent.Torrent) bool {
	wanted := wantedPieces(t, 64)
	if len(wanted) == 0 {
		return false
	}
	conns := t.PeerConns()
	for _, pc := range conns {
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

// Close stops run and waits for it. Safe to call more than once.
func (r *redialer) Close() {
	r.once.Do(func() { close(r.stop) })
	<-r.done
}
