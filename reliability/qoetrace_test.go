package reliability

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/anacrolix/torrent"
	pp "github.com/anacrolix/torrent/peer_protocol"
)

// requestHolders follows the leecher's requests (its client's callbacks):
// which peer holds each outstanding chunk request, since when.
type requestHolders struct {
	names map[string]string // proxy address to seeder name; never changes

	mu     sync.Mutex // guards the fields below; taken under the client's lock
	reqs   map[holderKey]holder
	conns  map[string]int     // connections made, by seeder name
	got    map[string][]int64 // bytes received by seeder name, per timelineStep since start
	events []string           // connections closed, chokes
	start  time.Time
	// head is, for each of the first headChunks chunks of headOf (the
	// torrent of the first request), its first request and its arrival,
	// by chunk index.
	head   map[int]*headChunk
	headOf *torrent.Torrent
}

// headChunks is how many chunks from the torrent's start requestHolders
// follows one by one: 1.25 MiB, what a player's startup needs (2 s at
// 500 KB/s) and a little more.
const headChunks = 80

// headChunk is the story of one chunk of the head.
type headChunk struct {
	asked, got     time.Duration // since start; 0 not yet
	askedOf, gotOf string
	asks           int // requests of it sent (more than one: cancelled, stolen or re-asked)
}

// timelineStep is the step of requestHolders.timeline.
const timelineStep = 5 * time.Second

type holderKey struct {
	t     *torrent.Torrent
	piece int
	begin int64
}

type holder struct {
	peer string
	when time.Time
}

func newRequestHolders(names map[string]string) *requestHolders {
	return &requestHolders{names: names, reqs: map[holderKey]holder{}, conns: map[string]int{}, got: map[string][]int64{}, start: time.Now(),
		head: map[int]*headChunk{}}
}

// config adds h's callbacks to cfg.
func (h *requestHolders) config(cfg *torrent.ClientConfig) {
	cb := &cfg.Callbacks
	cb.SentRequest = append(cb.SentRequest, func(e torrent.PeerRequestEvent) {
		peer := e.Peer.RemoteAddr.String()
		if n, ok := h.names[peer]; ok {
			peer = n
		}
		h.mu.Lock()
		h.reqs[holderKey{e.Peer.Torrent(), int(e.Index), int64(e.Begin)}] = holder{peer, time.Now()}
		if c := h.headChunk(e.Peer.Torrent(), int(e.Index), int64(e.Begin)); c != nil {
			if c.asks == 0 {
				c.asked, c.askedOf = time.Since(h.start), peer
			}
			c.asks++
		}
		h.mu.Unlock()
	})
	cb.DeletedRequest = append(cb.DeletedRequest, func(e torrent.PeerRequestEvent) {
		h.mu.Lock()
		delete(h.reqs, holderKey{e.Peer.Torrent(), int(e.Index), int64(e.Begin)})
		h.mu.Unlock()
	})
	cb.ReceivedRequested = append(cb.ReceivedRequested, func(e torrent.PeerMessageEvent) {
		name := h.names[e.Peer.RemoteAddr.String()]
		h.mu.Lock()
		defer h.mu.Unlock()
		i := int(time.Since(h.start) / timelineStep)
		for len(h.got[name]) <= i {
			h.got[name] = append(h.got[name], 0)
		}
		h.got[name][i] += int64(len(e.Message.Piece))
		if c := h.headChunk(e.Peer.Torrent(), int(e.Message.Index), int64(e.Message.Begin)); c != nil && c.got == 0 {
			c.got, c.gotOf = time.Since(h.start), name
		}
	})
	prevClosed := cb.PeerConnClosed
	cb.PeerConnClosed = func(pc *torrent.PeerConn) {
		if prevClosed != nil {
			prevClosed(pc)
		}
		h.event("%s closed", h.names[pc.RemoteAddr.String()])
	}
	prevRead := cb.ReadMessage
	cb.ReadMessage = func(pc *torrent.PeerConn, m *pp.Message) {
		if prevRead != nil {
			prevRead(pc, m)
		}
		if m.Keepalive { // a keep-alive's Type is Choke's 0
			return
		}
		switch m.Type {
		case pp.Choke:
			h.event("%s chokes", h.names[pc.RemoteAddr.String()])
		case pp.Unchoke:
			h.event("%s unchokes", h.names[pc.RemoteAddr.String()])
		}
	}
	cb.StatusUpdated = append(cb.StatusUpdated, func(e torrent.StatusUpdatedEvent) {
		if e.Event == torrent.PeerDisconnected && e.Error != nil {
			h.event("peer %q disconnected: %v", e.PeerId[:8], e.Error)
		}
	})
	cb.PeerConnAdded = append(cb.PeerConnAdded, func(pc *torrent.PeerConn) {
		h.mu.Lock()
		h.conns[h.names[pc.RemoteAddr.String()]]++
		h.mu.Unlock()
	})
}

// headChunk returns the story of the chunk of t at begin in piece, if t
// is h.headOf and the chunk one of its first headChunks. h.mu must be
// held.
func (h *requestHolders) headChunk(t *torrent.Torrent, piece int, begin int64) *headChunk {
	if h.headOf == nil {
		h.headOf = t
	}
	info := t.Info()
	if info == nil || t != h.headOf {
		return nil
	}
	i := int((int64(piece)*info.PieceLength + begin) / (16 << 10)) // v1.59.1's chunk size
	if i >= headChunks {
		return nil
	}
	c := h.head[i]
	if c == nil {
		c = &headChunk{}
		h.head[i] = c
	}
	return c
}

// headStory says when each chunk of the head was asked of whom and got
// from whom, in order, in seconds since origin (the scenario's start).
func (h *requestHolders) headStory(origin time.Time) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	o := origin.Sub(h.start)
	var b strings.Builder
	for i := range headChunks {
		c := h.head[i]
		if c == nil {
			fmt.Fprintf(&b, "%3d never asked\n", i)
			continue
		}
		got := "not received as requested"
		if c.got != 0 {
			got = fmt.Sprintf("got %.2fs from %s", (c.got - o).Seconds(), c.gotOf)
		}
		fmt.Fprintf(&b, "%3d asked %.2fs of %-18s %-30s asks %d\n", i, (c.asked - o).Seconds(), c.askedOf, got, c.asks)
	}
	return b.String()
}

func (h *requestHolders) event(format string, args ...any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, fmt.Sprintf("%.1fs ", time.Since(h.start).Seconds())+fmt.Sprintf(format, args...))
}

// timeline says what each line delivered (requested chunks), in KB/s per
// timelineStep from the leecher's start.
func (h *requestHolders) timeline() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var b strings.Builder
	var names []string
	for n := range h.got {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Fprintf(&b, "%-18s", n)
		for _, v := range h.got[n] {
			fmt.Fprintf(&b, " %4d", v/1000/int64(timelineStep/time.Second))
		}
		b.WriteByte('\n')
	}
	b.WriteString(strings.Join(h.events, "; "))
	return b.String()
}

// connections says how many connections were made to each line.
func (h *requestHolders) connections() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var s []string
	for n, c := range h.conns {
		s = append(s, fmt.Sprintf("%s %d", n, c))
	}
	slices.Sort(s)
	return strings.Join(s, ", ")
}

// describe says who holds the requests of the piece of t at off (in the
// torrent), and for how long, and that piece's state.
func (h *requestHolders) describe(t *torrent.Torrent, off int64) string {
	piece := int(off / t.Info().PieceLength)
	type agg struct {
		n      int
		oldest time.Duration
	}
	by := map[string]*agg{}
	h.mu.Lock()
	for k, v := range h.reqs {
		if k.t != t || k.piece != piece {
			continue
		}
		a := by[v.peer]
		if a == nil {
			a = &agg{}
			by[v.peer] = a
		}
		a.n++
		a.oldest = max(a.oldest, time.Since(v.when))
	}
	h.mu.Unlock()
	var s []string
	for p, a := range by {
		s = append(s, fmt.Sprintf("%s %d (oldest %.1f s)", p, a.n, a.oldest.Seconds()))
	}
	slices.Sort(s)
	st := t.Piece(piece).State()
	return fmt.Sprintf("piece %d (priority %v, partial %v, complete %v) requests held: %s",
		piece, st.Priority, st.Partial, st.Complete, strings.Join(s, "; "))
}
