package stream

import (
	"time"

	"github.com/anacrolix/torrent"

	"github.com/memtorrent/memtorrent/host"
)

// Watchdog explains why a read waits for a piece and acts on it (see
// Options.Watchdog). *host.Client is one.
type Watchdog interface {
	// Diagnose says why a read of t waits for piece and, with act, does
	// what can be done about it.
	Diagnose(t *torrent.Torrent, piece int, act bool) host.Diagnosis
	// Peers returns t's connections, with whether each has piece (-1:
	// none).
	Peers(t *torrent.Torrent, piece int) []host.PeerState
}

var _ Watchdog = (*host.Client)(nil)

const (
	// WatchAfter is how long a read waits for a piece before the
	// Handler asks the Watchdog why, and acts.
	WatchAfter = 3 * time.Second
	// watchEvery is how often a waiting read is diagnosed again.
	watchEvery = 2 * time.Second
	// LogWaitAfter is how long a read waits before the Handler logs, once
	// per wait, at Info, why.
	LogWaitAfter = 10 * time.Second
)

// waitState is a session's read waiting for a piece, for the watchdog and
// the status. Guarded by Handler.mu.
type waitState struct {
	piece   int       // the piece waited for
	since   time.Time // zero: not waiting
	reason  host.Reason
	action  string
	checked time.Time // last diagnosis
	logged  bool      // the wait was logged
}

// startWait records that s's read waits for piece from now.
func (s *session) startWait(piece int) {
	s.h.mu.Lock()
	s.wait = waitState{piece: piece, since: time.Now()}
	s.h.mu.Unlock()
}

// endWait records that s's read no longer waits.
func (s *session) endWait() {
	s.h.mu.Lock()
	s.wait = waitState{}
	s.h.mu.Unlock()
}

// watch diagnoses the reads that have waited WatchAfter, once every
// watchEvery each, has the Watchdog act on them and logs those past
// LogWaitAfter. It runs on the Handler's goroutine, without its locks held
// across the Watchdog's calls.
func (h *Handler) watch(now time.Time) {
	if h.opts.Watchdog == nil {
		return
	}
	type job struct {
		s     *session
		piece int
		since time.Time
	}
	var jobs []job
	h.mu.Lock()
	for _, s := range h.sessions {
		w := s.wait
		if w.since.IsZero() || now.Sub(w.since) < WatchAfter || now.Sub(w.checked) < watchEvery {
			continue
		}
		jobs = append(jobs, job{s, w.piece, w.since})
	}
	h.mu.Unlock()
	for _, j := range jobs {
		d := h.opts.Watchdog.Diagnose(j.s.key.t, j.piece, true)
		h.mu.Lock()
		w := &j.s.wait
		if w.since != j.since { // the wait ended meanwhile
			h.mu.Unlock()
			continue
		}
		w.reason, w.action, w.checked = d.Reason, d.Action, now
		logIt := !w.logged && now.Sub(w.since) >= LogWaitAfter
		if logIt {
			w.logged = true
		}
		h.mu.Unlock()
		if logIt {
			h.log.Info("stream: read waiting for a piece", "session", j.s.id, "infohash", j.s.key.ih,
				"piece", j.piece, "waited", now.Sub(j.since).Round(time.Second), "reason", string(d.Reason),
				"action", d.Action, "peers", len(d.Peers))
		}
	}
}
