package reliability

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/anacrolix/torrent"
	pp "github.com/anacrolix/torrent/peer_protocol"
)

// reqTrace records, from the leecher's callbacks, the requests it has
// outstanding, the chunks that arrive, chokes and connections, in buckets
// of traceBucket: where a transfer's time goes.
type reqTrace struct {
	mu          sync.Mutex // guards the fields below
	start       time.Time
	outstanding int
	buckets     []traceBucket
	conns       int
	reconnects  int
	chokes      int
	unchokes    int
	events      []string
	batches     []traceBatch
	inBatch     bool
	nominal     []string
}

// traceBatch is one run of requests sent with nothing received between
// them: one request update of the client.
type traceBatch struct {
	at        time.Duration
	before, n int
}

type traceBucket struct {
	sent, got, cancelled int
	read                 int64 // bytes the player read
	maxOut               int
	choked               bool
}

const traceStep = 100 * time.Millisecond

func newReqTrace() *reqTrace { return &reqTrace{start: time.Now()} }

func (r *reqTrace) bucketLocked() *traceBucket {
	i := int(time.Since(r.start) / traceStep)
	for len(r.buckets) <= i {
		r.buckets = append(r.buckets, traceBucket{})
	}
	return &r.buckets[i]
}

func (r *reqTrace) event(format string, args ...any) {
	r.events = append(r.events, fmt.Sprintf("%6.2fs ", time.Since(r.start).Seconds())+fmt.Sprintf(format, args...))
}

// config adds r's callbacks to cfg.
func (r *reqTrace) config(cfg *torrent.ClientConfig) {
	cb := &cfg.Callbacks
	cb.SentRequest = append(cb.SentRequest, func(torrent.PeerRequestEvent) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if !r.inBatch {
			r.inBatch = true
			r.batches = append(r.batches, traceBatch{at: time.Since(r.start), before: r.outstanding})
		}
		r.batches[len(r.batches)-1].n++
		r.outstanding++
		b := r.bucketLocked()
		b.sent++
		b.maxOut = max(b.maxOut, r.outstanding)
	})
	cb.DeletedRequest = append(cb.DeletedRequest, func(torrent.PeerRequestEvent) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.outstanding--
		r.inBatch = false
		r.bucketLocked()
	})
	cb.ReceivedRequested = append(cb.ReceivedRequested, func(torrent.PeerMessageEvent) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.bucketLocked().got++
	})
	cb.PeerConnAdded = append(cb.PeerConnAdded, func(pc *torrent.PeerConn) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.conns++
		if r.conns > 1 {
			r.reconnects++
		}
		r.event("conn added %v", pc.RemoteAddr)
	})
	prevClosed := cb.PeerConnClosed
	cb.PeerConnClosed = func(pc *torrent.PeerConn) {
		if prevClosed != nil {
			prevClosed(pc)
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		r.event("conn closed %v (outstanding %d)", pc.RemoteAddr, r.outstanding)
	}
	prevRead := cb.ReadMessage
	cb.ReadMessage = func(pc *torrent.PeerConn, m *pp.Message) {
		if prevRead != nil {
			prevRead(pc, m)
		}
		switch m.Type {
		case pp.Choke, pp.Unchoke, pp.Reject:
		default:
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		switch m.Type {
		case pp.Choke:
			r.chokes++
			r.event("choke (outstanding %d)", r.outstanding)
		case pp.Unchoke:
			r.unchokes++
			r.event("unchoke")
		case pp.Reject:
			r.bucketLocked().cancelled++
		}
	}
}

// read notes that the player read n bytes.
func (r *reqTrace) read(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.bucketLocked().read += int64(n)
}

// report returns the events and the buckets that saw traffic, one line each.
func (r *reqTrace) report() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var sb strings.Builder
	fmt.Fprintf(&sb, "reconnects %d, chokes %d, unchokes %d\n", r.reconnects, r.chokes, r.unchokes)
	for _, e := range r.events {
		sb.WriteString(e + "\n")
	}
	sb.WriteString("batches (at: outstanding before + sent):")
	for i, b := range r.batches {
		if i%8 == 0 {
			sb.WriteString("\n")
		}
		fmt.Fprintf(&sb, " %6.2fs:%d+%d", b.at.Seconds(), b.before, b.n)
	}
	sb.WriteString("\n")
	for i, b := range r.buckets {
		if b.sent == 0 && b.got == 0 && b.read == 0 {
			continue
		}
		fmt.Fprintf(&sb, "%6.2fs sent %3d got %3d maxOut %3d rej %d read %5d KiB\n", (time.Duration(i) * traceStep).Seconds(), b.sent, b.got, b.maxOut, b.cancelled, b.read>>10)
	}
	return sb.String()
}

// watch samples tor's piece states every few milliseconds until stop is
// closed and records each change of the pieces' summary (one character
// per piece: C complete, H hashing or queued, * Now, R readahead with
// nothing yet, r readahead partial, . none) with the capacity the storage
// reports.
func (r *reqTrace) watch(tor *torrent.Torrent, reported func() int64, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	var last string
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		var sb strings.Builder
		for _, run := range tor.PieceStateRuns() {
			c := byte('.')
			switch {
			case run.Complete:
				c = 'C'
			case run.Checking || run.Marking:
				c = 'H'
			case run.Priority == torrent.PiecePriorityNow:
				c = '*'
			case run.Priority != torrent.PiecePriorityNone && run.Partial:
				c = 'r'
			case run.Priority != torrent.PiecePriorityNone:
				c = 'R'
			}
			sb.WriteString(strings.Repeat(string(c), run.Length))
		}
		s := fmt.Sprintf("%s reported %d KiB", sb.String(), reported()>>10)
		if s != last {
			last = s
			r.mu.Lock()
			r.event("%s out %d", s, r.outstanding)
			r.mu.Unlock()
		}
	}
}
