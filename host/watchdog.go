package host

import (
	"net"
	"slices"
	"sync"
	"time"

	"github.com/anacrolix/torrent"
	pp "github.com/anacrolix/torrent/peer_protocol"
)

// Reason says why a read waits for a piece, as Client.Diagnose finds it.
type Reason string

// The reasons, in the order Diagnose tests them.
const (
	// ReasonNone: the piece is complete and in storage; the read is about
	// to return.
	ReasonNone Reason = ""
	// ReasonNoInfo: the torrent has no info (a magnet waiting for its
	// metadata). Action: redial the torrent's known peers.
	ReasonNoInfo Reason = "metadata missing"
	// ReasonCompleteNotStored: the client holds the piece complete but the
	// storage lost it, and the eviction report has not arrived. Action:
	// report the piece's completion to the client again.
	ReasonCompleteNotStored Reason = "complete in the client, not in storage"
	// ReasonChecking: the piece is queued for its hash check or being
	// hashed. No action: the check ends it.
	ReasonChecking Reason = "hash check"
	// ReasonNotRequestable: the client will not request the piece: its
	// completion is unknown to the client, its priority is none, or the
	// torrent's downloads were disabled (after a failed write). Action:
	// report its completion again and allow the torrent's downloads.
	ReasonNotRequestable Reason = "not requestable in the client"
	// ReasonNoPeer: no peer is connected. Action: redial the known peers.
	ReasonNoPeer Reason = "no peer connected"
	// ReasonBanned: no peer is connected and every known address is banned
	// by the client (after a piece failed its hash). No action possible in
	// v1.59.1, which never lifts a ban.
	ReasonBanned Reason = "peer addresses banned"
	// ReasonNoSource: peers are connected but none has the piece. Action:
	// redial the known peers (a new connection carries our true bitfield).
	ReasonNoSource Reason = "no connected peer has the piece"
	// ReasonChoked: every connected peer that has the piece chokes us. No
	// action: a peer unchokes at its next rechoke.
	ReasonChoked Reason = "peers with the piece choke us"
	// ReasonSilent: requests are outstanding to every unchoking peer with
	// the piece, and none sent data for SilentTimeout. Action: close those
	// connections; the redialer connects again.
	ReasonSilent Reason = "requests unanswered"
	// ReasonDownloading: a peer with the piece unchokes us and sent data
	// lately, or has no requests yet. No action.
	ReasonDownloading Reason = "downloading"
)

// SilentTimeout is how long a peer with requests of ours outstanding may
// send no piece data before Diagnose calls it silent.
const SilentTimeout = 10 * time.Second

// PeerState is one connection of a torrent, as Diagnose reports it.
type PeerState struct {
	Addr   string `json:"addr"`
	Client string `json:"client"` // from its extended handshake ("v"), or its peer ID
	// PeerChoking and PeerInterested are the peer's last choke and
	// interest messages; Interesting means it has a piece the torrent
	// wants and lacks (what makes the client interested in it).
	PeerChoking    bool `json:"peerChoking"`
	PeerInterested bool `json:"peerInterested"`
	Interesting    bool `json:"interesting"`
	// Requests are our requests outstanding to it.
	Requests     int     `json:"requests"`
	DownloadRate float64 `json:"downloadRate"` // bytes per second of useful data, over the connection's life
	HasPiece     bool    `json:"hasPiece"`     // the piece diagnosed
	// SilentSeconds is the time since its last useful chunk (or since the
	// connection, if none came).
	SilentSeconds float64 `json:"silentSeconds"`
}

// Diagnosis is why a read waits for a piece, and what Diagnose did.
type Diagnosis struct {
	Reason Reason      `json:"reason"`
	Action string      `json:"action,omitempty"` // empty: none
	Peers  []PeerState `json:"peers"`
}

// peerLog is what the client's callbacks tell of each connection that the
// library does not export: the peer's choke and interest, our requests
// outstanding and its last useful chunk.
type peerLog struct {
	mu    sync.Mutex // guards the field below; never held across a call into the client
	peers map[*torrent.Peer]*peerEntry
}

type peerEntry struct {
	choking, interested bool
	requests            int
	heard               time.Time // connection added, or last useful chunk
}

func newPeerLog() *peerLog { return &peerLog{peers: make(map[*torrent.Peer]*peerEntry)} }

// entryLocked returns p's entry, making it.
func (l *peerLog) entryLocked(p *torrent.Peer) *peerEntry {
	e := l.peers[p]
	if e == nil {
		e = &peerEntry{choking: true, heard: time.Now()}
		l.peers[p] = e
	}
	return e
}

// connAdded starts pc's entry.
func (l *peerLog) connAdded(pc *torrent.PeerConn) {
	l.mu.Lock()
	l.entryLocked(&pc.Peer)
	l.mu.Unlock()
}

// read notes the peer's choke and interest messages.
func (l *peerLog) read(pc *torrent.PeerConn, msg *pp.Message) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entryLocked(&pc.Peer)
	switch msg.Type {
	case pp.Choke:
		e.choking = true
	case pp.Unchoke:
		e.choking = false
	case pp.Interested:
		e.interested = true
	case pp.NotInterested:
		e.interested = false
	}
}

// sent counts a request sent to the peer.
func (l *peerLog) sent(ev torrent.PeerRequestEvent) {
	l.mu.Lock()
	l.entryLocked(ev.Peer).requests++
	l.mu.Unlock()
}

// deleted counts a request of the peer's answered or cancelled.
func (l *peerLog) deleted(ev torrent.PeerRequestEvent) {
	l.mu.Lock()
	if e := l.entryLocked(ev.Peer); e.requests > 0 {
		e.requests--
	}
	l.mu.Unlock()
}

// useful notes the time of the peer's last useful chunk.
func (l *peerLog) useful(ev torrent.ReceivedUsefulDataEvent) {
	l.mu.Lock()
	l.entryLocked(ev.Peer).heard = time.Now()
	l.mu.Unlock()
}

// closed forgets p.
func (l *peerLog) closed(p *torrent.Peer) {
	l.mu.Lock()
	delete(l.peers, p)
	l.mu.Unlock()
}

// get returns a copy of p's entry.
func (l *peerLog) get(p *torrent.Peer) peerEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.peers[p]; e != nil {
		return *e
	}
	return peerEntry{choking: true, heard: time.Now()}
}

// Peers returns the state of t's connections, HasPiece for piece (-1: no
// piece). It takes the client's lock briefly; call it without holding a
// lock the client's callbacks take.
func (c *Client) Peers(t *torrent.Torrent, piece int) []PeerState {
	conns := t.PeerConns()
	var wanted []int
	if t.Info() != nil {
		wanted = wantedPieces(t, 64)
	}
	now := time.Now()
	peers := make([]PeerState, 0, len(conns))
	for _, pc := range conns {
		has := pc.PeerPieces()
		e := c.peers.get(&pc.Peer)
		ps := PeerState{
			Addr:           pc.RemoteAddr.String(),
			Client:         clientName(pc),
			PeerChoking:    e.choking,
			PeerInterested: e.interested,
			Requests:       e.requests,
			DownloadRate:   pc.Stats().DownloadRate,
			HasPiece:       piece >= 0 && has.Contains(uint32(piece)),
			SilentSeconds:  now.Sub(e.heard).Seconds(),
		}
		for _, w := range wanted {
			if has.Contains(uint32(w)) {
				ps.Interesting = true
				break
			}
		}
		peers = append(peers, ps)
	}
	slices.SortFunc(peers, func(a, b PeerState) int {
		switch {
		case a.Addr < b.Addr:
			return -1
		case a.Addr > b.Addr:
			return 1
		}
		return 0
	})
	return peers
}

// clientName is the client a peer named in its extended handshake, or
// its peer ID's printable prefix.
func clientName(pc *torrent.PeerConn) string {
	if v, ok := pc.PeerClientName.Load().(string); ok && v != "" {
		return v
	}
	id := pc.PeerID[:8]
	for _, b := range id {
		if b < 0x20 || b > 0x7e {
			return ""
		}
	}
	return string(id)
}

// Diagnose works out why a read of t waits for piece and, when act is
// true, does what can be done about it (see the Reason constants): redial
// the known peers, report the piece's completion again and allow the
// torrent's downloads, or close silent connections. It never blocks
// beyond the client's lock. Safe for concurrent use.
func (c *Client) Diagnose(t *torrent.Torrent, piece int, act bool) Diagnosis {
	if t.Info() == nil {
		d := Diagnosis{Reason: ReasonNoInfo, Peers: c.Peers(t, -1)}
		if act {
			d.Action = c.redialNow(t)
		}
		return d
	}
	if piece < 0 || piece >= t.NumPieces() {
		return Diagnosis{Peers: c.Peers(t, -1)}
	}
	peers := c.Peers(t, piece)
	d := Diagnosis{Peers: peers}
	p := t.Piece(piece)
	st := p.State()
	switch {
	case st.Complete:
		d.Reason = ReasonCompleteNotStored
		if act {
			p.UpdateCompletion()
			d.Action = "completion reported again"
		}
		return d
	case st.Checking:
		d.Reason = ReasonChecking
		return d
	case !st.Ok || st.Priority == torrent.PiecePriorityNone:
		d.Reason = ReasonNotRequestable
		if act {
			p.UpdateCompletion()
			t.AllowDataDownload()
			d.Action = "completion reported again, downloads allowed"
		}
		return d
	}
	if len(peers) == 0 {
		d.Reason = ReasonNoPeer
		if c.allBanned(t) {
			d.Reason = ReasonBanned
			return d
		}
		if act {
			d.Action = c.redialNow(t)
		}
		return d
	}
	var unchoking, silent []PeerState
	for _, ps := range peers {
		if !ps.HasPiece {
			continue
		}
		if ps.PeerChoking {
			continue
		}
		unchoking = append(unchoking, ps)
		if ps.Requests > 0 && ps.SilentSeconds > SilentTimeout.Seconds() {
			silent = append(silent, ps)
		}
	}
	switch {
	case !slices.ContainsFunc(peers, func(ps PeerState) bool { return ps.HasPiece }):
		d.Reason = ReasonNoSource
		if act {
			d.Action = c.redialNow(t)
		}
	case len(unchoking) == 0:
		d.Reason = ReasonChoked
	case len(silent) == len(unchoking):
		d.Reason = ReasonSilent
		if act {
			for _, pc := range t.PeerConns() {
				if slices.ContainsFunc(silent, func(ps PeerState) bool { return ps.Addr == pc.RemoteAddr.String() }) {
					pc.Close()
				}
			}
			d.Action = "closed silent connections"
		}
	default:
		d.Reason = ReasonDownloading
	}
	return d
}

// redialNow has the redialer dial t's known peers at its next check, and
// says so.
func (c *Client) redialNow(t *torrent.Torrent) string {
	if !c.redial.kick(t.InfoHash()) {
		return "no known peer to redial"
	}
	return "redial"
}

// allBanned reports whether t has known peers and the client bans the IP
// of every one.
func (c *Client) allBanned(t *torrent.Torrent) bool {
	st := c.redial.state(t.InfoHash())
	if len(st.Addrs) == 0 {
		return false
	}
	banned := c.Torrent.BadPeerIPs()
	for _, a := range st.Addrs {
		host, _, err := net.SplitHostPort(a)
		if err != nil || !slices.Contains(banned, host) {
			return false
		}
	}
	return true
}
