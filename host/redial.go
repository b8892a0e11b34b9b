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
	// want a piece no connected peer has.
	RedialCheckInterval = 500 * time.Millisecond
	// RedialMinBackoff is the wait after the first redial of a torrent
	// with no source, and the wait again once data arrives.
	RedialMinBackoff = time.Second
	// RedialMaxBackoff bounds the wait between redials: it doubles from
	// RedialMinBackoff up to this while no data arrives.
	RedialMaxBackoff = 30 * time.Second
	// maxRemembered bounds the addresses remembered per torrent; the
	// oldest is forgotten first.
	maxRemembered = 64
)

// redialer remembers the addresses of a torrent's peers and dials them
// again when the torrent wants a piece no connected peer has.
//
// Why: anacrolix v1.59.1 dials an address only when a source (the caller,
// a tracker, the DHT, PEX) reports it; once a connection has closed it
// never dials it again by itself. A seeder without lt_donthave
// (Transmission, aria2) closes the connection as redundant once a bounded
// cache has announced every piece, and a backward seek into evicted data
// would then wait forever. A new connection carries the true bitfield, so
// the seeder accepts it.
type redialer struct {
	mu    sync.Mutex // guards the fields below; never held across a call into the client
	books map[metainfo.Hash]*book

	stop chan struct{} // closed by Close
	done chan struct{} // closed when run returns
	once sync.Once
}

// book is what a redialer knows of one torrent.
type book struct {
	addrs []torrent.PeerInfo // remembered, oldest first, at most maxRemembered
	// The fields below are used only by the run goroutine.
	next    time.Time     // no redial before
	backoff time.Duration // wait after the next redial
	useful  int64         // BytesReadUsefulData at the last check
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

// peerConnClosed remembers where pc's peer listens. The client calls it
// with its lock held: it reads only fields of pc that are set before the
// connection is added, or under that lock.
func (r *redialer) peerConnClosed(pc *torrent.PeerConn) {
	t := pc.Torrent()
	if t == nil || pc.RemoteAddr == nil {
		return
	}
	addr := pc.RemoteAddr
	if pc.Discovery == torrent.PeerSourceIncoming {
		// An incoming connection comes from an ephemeral port; the
		// peer listens where its extended handshake said, if it did.
		host, _, err := net.SplitHostPort(addr.String())
		if err != nil || pc.PeerListenPort <= 0 {
			return
		}
		tcp, err := net.ResolveTCPAddr("tcp", net.JoinHostPort(host, strconv.Itoa(pc.PeerListenPort)))
		if err != nil {
			return
		}
		addr = tcp
	}
	r.remember(t.InfoHash(), torrent.PeerInfo{Addr: addr, Source: torrent.PeerSourceDirect})
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

// check redials, for each torrent that wants a piece no connected peer
// has, the remembered addresses it is not connected to, with backoff.
func (r *redialer) check(cl *torrent.Client, now time.Time) {
	present := make(map[metainfo.Hash]bool)
	for _, t := range cl.Torrents() {
		ih := t.InfoHash()
		present[ih] = true
		if t.Info() == nil {
			continue
		}
		st := t.Stats()
		useful := st.BytesReadUsefulData.Int64()
		starved := noSource(t)

		r.mu.Lock()
		b := r.bookLocked(ih)
		if useful > b.useful {
			b.useful = useful
			b.backoff = RedialMinBackoff
			b.next = time.Time{}
		}
		var dial []torrent.PeerInfo
		if starved && !now.Before(b.next) {
			dial = append(dial, b.addrs...)
			b.next = now.Add(b.backoff)
			b.backoff = min(2*b.backoff, RedialMaxBackoff)
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

// noSource reports whether t wants a piece it lacks that no connected
// peer claims to have.
func noSource(t *torrent.Torrent) bool {
	var wanted []int
	i := 0
	for _, run := range t.PieceStateRuns() {
		if run.Priority != torrent.PiecePriorityNone && !run.Complete && !run.Checking {
			for j := range min(run.Length, 64-len(wanted)) {
				wanted = append(wanted, i+j)
			}
		}
		i += run.Length
		if len(wanted) >= 64 {
			break
		}
	}
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

// Close stops run and waits for it. Safe to call more than once.
func (r *redialer) Close() {
	r.once.Do(func() { close(r.stop) })
	<-r.done
}
