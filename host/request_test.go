package host_test

import (
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"

	"github.com/memtorrent/memtorrent/host"
	"github.com/memtorrent/memtorrent/internal/testutil"
	"github.com/memtorrent/memtorrent/storage/memory"
)

// testLine is a TCP proxy to a seeder that caps the rate towards the
// leecher and can stall (hold everything, connection kept). It is closed
// at the end of the test.
type testLine struct {
	ln       net.Listener
	upstream string
	rate     float64 // bytes per second towards the leecher

	mu      sync.Mutex // guards the fields below
	cond    *sync.Cond // signalled when stalled or closed changes
	stalled bool
	closed  bool
	conns   []net.Conn

	wg sync.WaitGroup
}

func newTestLine(t *testing.T, upstream net.Addr, rate float64) *testLine {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &testLine{ln: ln, upstream: upstream.String(), rate: rate}
	l.cond = sync.NewCond(&l.mu)
	l.wg.Go(l.accept)
	t.Cleanup(l.close)
	return l
}

func (l *testLine) addr() net.Addr { return l.ln.Addr() }

// stall makes the line hold (true) or pass (false) what the seeder sends.
func (l *testLine) stall(on bool) {
	l.mu.Lock()
	l.stalled = on
	l.mu.Unlock()
	l.cond.Broadcast()
}

func (l *testLine) close() {
	l.ln.Close()
	l.mu.Lock()
	l.closed = true
	for _, c := range l.conns {
		c.Close()
	}
	l.mu.Unlock()
	l.cond.Broadcast()
	l.wg.Wait()
}

func (l *testLine) accept() {
	for {
		down, err := l.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", l.upstream)
		if err != nil {
			down.Close()
			continue
		}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			up.Close()
			down.Close()
			return
		}
		l.conns = append(l.conns, down, up)
		l.mu.Unlock()
		l.wg.Go(func() {
			io.Copy(up, down)
			up.Close()
		})
		l.wg.Go(func() {
			l.pace(down, up)
			down.Close()
		})
	}
}

// pace copies from up to down at l.rate, holding the data while stalled.
func (l *testLine) pace(down, up net.Conn) {
	buf := make([]byte, 4<<10)
	var next time.Time // when the next write may start
	for {
		n, err := up.Read(buf)
		if n > 0 {
			l.mu.Lock()
			for l.stalled && !l.closed {
				l.cond.Wait()
			}
			closed := l.closed
			l.mu.Unlock()
			if closed {
				return
			}
			if now := time.Now(); next.Before(now) {
				next = now
			}
			time.Sleep(time.Until(next)) // the line's rate, not a synchronisation
			next = next.Add(time.Duration(float64(n) / l.rate * float64(time.Second)))
			if _, err := down.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// requestLog records the leecher's outstanding requests by peer address.
type requestLog struct {
	mu   sync.Mutex // guards the fields below
	out  map[torrent.Request]string
	sent []sentRequest
}

type sentRequest struct {
	peer  string
	piece int
	at    time.Time
}

func newRequestLog() *requestLog { return &requestLog{out: map[torrent.Request]string{}} }

func (l *requestLog) config(cfg *torrent.ClientConfig) {
	cfg.Callbacks.SentRequest = append(cfg.Callbacks.SentRequest, func(e torrent.PeerRequestEvent) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.out[e.Request] = e.Peer.RemoteAddr.String()
		l.sent = append(l.sent, sentRequest{e.Peer.RemoteAddr.String(), int(e.Index), time.Now()})
	})
	cfg.Callbacks.DeletedRequest = append(cfg.Callbacks.DeletedRequest, func(e torrent.PeerRequestEvent) {
		l.mu.Lock()
		defer l.mu.Unlock()
		delete(l.out, e.Request)
	})
}

// outstanding returns the pieces with a request outstanding at peer ("" any).
func (l *requestLog) outstanding(peer string) map[int]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := map[int]int{}
	for r, p := range l.out {
		if peer == "" || p == peer {
			m[int(r.Index)]++
		}
	}
	return m
}

// freshAt returns a piece with a request outstanding at peer that was
// sent within the last d, -1 if none.
func (l *requestLog) freshAt(peer string, d time.Duration) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	for r, p := range l.out {
		if p != peer {
			continue
		}
		for _, s := range slices.Backward(l.sent) {
			if time.Since(s.at) > d {
				break
			}
			if s.peer == peer && s.piece == int(r.Index) {
				return s.piece
			}
		}
	}
	return -1
}

// sentTo reports whether a request of piece went to peer after since.
func (l *requestLog) sentTo(peer string, piece int, since time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.sent {
		if s.peer == peer && s.piece == piece && !s.at.Before(since) {
			return true
		}
	}
	return false
}

// lineSwarm seeds spec from one in-process seeder per rate, each behind a
// testLine of that rate, and starts a memory leecher (log's callbacks
// installed) that knows only the lines.
func lineSwarm(t *testing.T, spec testutil.Spec, log *requestLog, rates ...float64) (*host.Client, *torrent.Torrent, []*testLine) {
	t.Helper()
	var lines []*testLine
	var peers []torrent.PeerInfo
	var mi *metainfo.MetaInfo
	for i, r := range rates {
		s := testutil.NewSeeder(t, spec)
		if i == 0 {
			mi = s.MetaInfo
		}
		l := newTestLine(t, s.Client.ListenAddrs()[0], r)
		lines = append(lines, l)
		peers = append(peers, torrent.PeerInfo{Addr: l.addr()})
	}
	hc := testutil.NewMemLeecher(t, memory.Options{Capacity: 64 << 20}, log.config)
	tor, err := hc.Torrent.AddTorrent(mi)
	if err != nil {
		t.Fatal(err)
	}
	hc.AddPeers(tor, peers)
	testutil.WaitChan(t, testutil.SetupTimeout, "the torrent's info", tor.GotInfo())
	return hc, tor, lines
}

// peerConn returns tor's connection through line l, nil if none.
func peerConn(tor *torrent.Torrent, l *testLine) *torrent.PeerConn {
	for _, pc := range tor.PeerConns() {
		if pc.RemoteAddr.String() == l.addr().String() {
			return pc
		}
	}
	return nil
}

// TestRequestQueueFollowsRate checks that a peer's request bound follows
// its rate: a line of 800 KB/s gets a longer queue than one of 200 KB/s,
// each about RequestQueueTime at its rate, where v1.59.1 lets both hold
// what they advertised (500).
func TestRequestQueueFollowsRate(t *testing.T) {
	spec := testutil.Spec{Name: "rate.bin", Length: 24 << 20, PieceLength: 256 << 10, Seed: 41}
	hc, tor, lines := lineSwarm(t, spec, newRequestLog(), 800_000, 200_000)
	tor.DownloadAll()
	limit := func(l *testLine) int {
		if pc := peerConn(tor, l); pc != nil {
			return hc.RequestLimit(pc)
		}
		return 0
	}
	const chunk = 16 << 10
	want := func(rate float64) int { return int(rate * host.RequestQueueTime.Seconds() / chunk) }
	testutil.WaitFor(t, time.Minute, "request bounds of about RequestQueueTime at each line's rate", func() bool {
		fast, slow := limit(lines[0]), limit(lines[1])
		return slow > 0 && slow <= 2*want(200_000) && fast >= 2*slow && fast <= 2*want(800_000)
	})
}

// TestLateUrgentChunkMoves checks that the chunks of an urgent piece held
// by a peer whose line stalls are requested from another peer and arrive.
func TestLateUrgentChunkMoves(t *testing.T) {
	spec := testutil.Spec{Name: "late.bin", Length: 16 << 20, PieceLength: 256 << 10, Seed: 42}
	log := newRequestLog()
	_, tor, lines := lineSwarm(t, spec, log, 200_000, 200_000)
	tor.DownloadAll()
	stalledAddr, otherAddr := lines[0].addr().String(), lines[1].addr().String()
	piece := -1
	testutil.WaitFor(t, time.Minute, "a piece requested from the first line only", func() bool {
		if useful(tor) < 3<<20 { // long enough for v1.59.1's queues to grow
			return false
		}
		other := log.outstanding(otherAddr)
		for p := range log.outstanding(stalledAddr) {
			if other[p] == 0 && !tor.Piece(p).State().Partial {
				piece = p
				return true
			}
		}
		return false
	})
	lines[0].stall(true)
	since := time.Now()
	tor.Piece(piece).SetPriority(torrent.PiecePriorityNow)
	testutil.WaitFor(t, time.Minute, "the urgent piece", func() bool { return tor.Piece(piece).State().Complete })
	took := time.Since(since)
	t.Logf("piece %d, held by the stalled line, complete after %v", piece, took.Round(time.Millisecond))
	if !log.sentTo(otherAddr, piece, since) {
		t.Errorf("piece %d: no request to the other line after the stall", piece)
	}
	if bound := host.SilentPeerTimeout + 3*time.Second; took > bound {
		t.Errorf("urgent piece held by a stalled line took %v; want at most %v", took.Round(time.Millisecond), bound)
	}
}

// TestSlowHolderLetsGoOfUrgentChunk checks that a chunk of the playhead's
// piece held by a line far slower than another (1 KB/s: 16 s per chunk)
// is taken by the faster line within seconds, not when the slow line
// delivers it.
func TestSlowHolderLetsGoOfUrgentChunk(t *testing.T) {
	spec := testutil.Spec{Name: "slow.bin", Length: 64 << 20, PieceLength: 256 << 10, Seed: 44}
	log := newRequestLog()
	hc, tor, lines := lineSwarm(t, spec, log, 1_000_000, 1_000)
	// The slow line delivers a chunk every 16 s, so SilentPeerTimeout
	// would close it too; only the rule under test may here.
	host.SetSilentPeerTimeout(hc, time.Hour)
	tor.DownloadAll()
	slowAddr := lines[1].addr().String()
	piece := -1
	testutil.WaitFor(t, time.Minute, "a fresh request at the slow line", func() bool {
		piece = log.freshAt(slowAddr, 3*time.Second)
		return piece >= 0 && !tor.Piece(piece).State().Complete
	})
	// The playhead's piece and 12 MiB after it urgent, as a session's
	// urgent pieces: the fast line plans for the unrequested ones first,
	// so it does not take the held chunk from the slow line by itself.
	since := time.Now()
	for i := piece; i < min(piece+48, tor.NumPieces()); i++ {
		tor.Piece(i).SetPriority(torrent.PiecePriorityNow)
	}
	testutil.WaitFor(t, time.Minute, "the urgent piece", func() bool { return tor.Piece(piece).State().Complete })
	took := time.Since(since)
	t.Logf("piece %d, a chunk held by the 1 KB/s line, complete after %v", piece, took.Round(time.Millisecond))
	// The slow line would take 13 s or more to deliver its chunk.
	if bound := host.LateChunkAfter + host.RequestQueueTime + 5*time.Second; took > bound {
		t.Errorf("urgent piece held by a slow line took %v; want at most %v", took.Round(time.Millisecond), bound)
	}
}

// TestSeekLetsGoOfStaleRequests checks that once the wanted pieces move
// (a seek: the old ones at PiecePriorityNone, new ones urgent), the
// requests of the old pieces are gone within about RequestQueueTime, not
// after the peer's whole advertised queue.
func TestSeekLetsGoOfStaleRequests(t *testing.T) {
	spec := testutil.Spec{Name: "seek.bin", Length: 32 << 20, PieceLength: 256 << 10, Seed: 43}
	log := newRequestLog()
	_, tor, _ := lineSwarm(t, spec, log, 200_000)
	for i := range 64 {
		tor.Piece(i).SetPriority(torrent.PiecePriorityReadahead)
	}
	testutil.WaitFor(t, 2*time.Minute, "2 MiB from the old window", func() bool {
		return useful(tor) >= 2<<20
	})
	for i := range 64 {
		tor.Piece(i).SetPriority(torrent.PiecePriorityNone)
	}
	for i := 96; i < 112; i++ {
		tor.Piece(i).SetPriority(torrent.PiecePriorityReadahead)
	}
	tor.Piece(96).SetPriority(torrent.PiecePriorityNow)
	since := time.Now()
	stale := func() int {
		n := 0
		for p, k := range log.outstanding("") {
			if p < 64 {
				n += k
			}
		}
		return n
	}
	t.Logf("stale requests at the seek: %d", stale())
	testutil.WaitFor(t, time.Minute, "no request of the old window", func() bool { return stale() == 0 })
	took := time.Since(since)
	t.Logf("stale requests gone after %v", took.Round(time.Millisecond))
	if bound := host.RequestQueueTime + 4*time.Second; took > bound {
		t.Errorf("stale requests gone after %v; want at most %v", took.Round(time.Millisecond), bound)
	}
	testutil.WaitFor(t, time.Minute, "piece 96", func() bool { return tor.Piece(96).State().Complete })
}

// useful returns the payload bytes tor received that it wanted.
func useful(tor *torrent.Torrent) int64 {
	st := tor.Stats()
	return st.BytesReadUsefulData.Int64()
}
