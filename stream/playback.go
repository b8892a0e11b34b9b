package stream

import (
	"time"

	"github.com/anacrolix/torrent"
)

// Playback timing: urgency and readahead in seconds of media at the rate a
// session learns from its player's reads (see the package doc).
const (
	urgentMedia       = 4 * time.Second  // from the playhead on: the urgent pieces
	readaheadLearned  = 30 * time.Second // the readahead, once the rate is known
	defaultRate       = 500_000          // bytes per second assumed until learned (4 Mbit/s)
	rateWindow        = 5 * time.Second  // reads are measured over windows this long
	pacedShare        = 0.2              // a window whose reads waited less than this share of it was paced by the player
	lowWater          = 10 * time.Second // a session with less buffered is needy
	highWater         = 25 * time.Second // a session with more buffered is well ahead
	promoteAfter      = time.Second      // a read waiting this long makes its session's urgent pieces PiecePriorityNow
	minLearnedRate    = 16_000           // bytes per second; slower windows are pauses, not a rate
	bufferedUnknownNs = int64(-1)        // session.buffered before the first read
)

// playback is what a session learns from its player's reads: the rate at
// which the player consumes the file, and an estimate of how much media
// the player holds buffered. It is owned by the request holding the
// session.
//
// The rate is measured over windows of rateWindow in which the reads
// hardly waited for data (less than pacedShare of the window): then the
// player, not the download, set the pace. The buffer estimate counts the
// bytes the player received since the playhead was last set (a seek)
// against the time since at the rate; it never goes below zero (a player
// with an empty buffer waits, it does not play).
type playback struct {
	rate float64 // bytes per second; 0 until a paced window was seen

	winStart time.Time
	winBytes int64
	winWait  time.Duration

	origin time.Time // the buffer clock's start
	fed    int64     // bytes read since origin
}

// seek restarts the buffer estimate at now: the player flushed its buffer.
func (p *playback) seek(now time.Time) {
	p.origin, p.fed = now, 0
	p.winStart, p.winBytes, p.winWait = now, 0, 0
}

// read counts n bytes read at now, after waiting waited for the data.
func (p *playback) read(now time.Time, n int, waited time.Duration) {
	if p.origin.IsZero() {
		p.seek(now.Add(-waited))
	}
	p.fed += int64(n)
	p.winBytes += int64(n)
	p.winWait += waited
	el := now.Sub(p.winStart)
	if el < rateWindow {
		return
	}
	if p.winWait < time.Duration(pacedShare*float64(el)) {
		if r := float64(p.winBytes) / el.Seconds(); r >= minLearnedRate {
			if p.rate == 0 {
				p.rate = r
			} else {
				p.rate = (p.rate + r) / 2
			}
		}
	}
	p.winStart, p.winBytes, p.winWait = now, 0, 0
}

// rateOr returns the learned rate, or fallback (bytes per second) if none
// was learned yet.
func (p *playback) rateOr(fallback float64) float64 {
	if p.rate > 0 {
		return p.rate
	}
	return fallback
}

// buffered estimates the media the player holds at now, at rate bytes per
// second.
func (p *playback) buffered(now time.Time, rate float64) time.Duration {
	if p.origin.IsZero() || rate <= 0 {
		return 0
	}
	media := time.Duration(float64(p.fed) / rate * float64(time.Second))
	b := media - now.Sub(p.origin)
	if b < 0 {
		// The player ran dry and waited: its clock stopped meanwhile.
		p.origin = now.Add(-media)
		return 0
	}
	return b
}

// sharePriorities is the sharing rule between sessions: the priorities of
// a session's playhead piece, of the rest of its urgent pieces and of the
// rest of its readahead, from the media it has buffered and the least any
// playing session has. The session closest to a stall, and any session
// with less than lowWater buffered, gets PiecePriorityNow for the playhead
// piece, PiecePriorityNext for the rest of its urgent pieces and
// PiecePriorityReadahead after them (a lone session always gets these:
// the playhead's piece first, so that the first frame waits for one piece,
// not for all the urgent ones at once); one with more yields a step
// (PiecePriorityNext, PiecePriorityReadahead, PiecePriorityHigh) and, well
// ahead (over highWater), two. The client requests higher priorities
// first, across the torrents that share the storage's capacity.
func sharePriorities(buffered, neediest time.Duration) priorities {
	switch {
	case buffered <= neediest || buffered < lowWater:
		return needy
	case buffered < highWater:
		return priorities{torrent.PiecePriorityNext, torrent.PiecePriorityReadahead, torrent.PiecePriorityHigh}
	}
	return priorities{torrent.PiecePriorityReadahead, torrent.PiecePriorityHigh, torrent.PiecePriorityNormal}
}

// priorities are those of a session's playhead piece, the rest of its
// urgent pieces and the rest of its readahead.
type priorities struct{ first, urgent, ahead torrent.PiecePriority }

// needy are the priorities of the session closest to a stall.
var needy = priorities{torrent.PiecePriorityNow, torrent.PiecePriorityNext, torrent.PiecePriorityReadahead}

// The classes of sharePriorities, as /status names them.
const (
	ShareNeedy     = "needy"     // closest to a stall, or under lowWater: the highest priorities
	ShareAhead     = "ahead"     // between lowWater and highWater, another needier: a step lower
	ShareWellAhead = "wellAhead" // over highWater, another needier: two steps lower
)

// class names the sharing rule's class of p.
func (p priorities) class() string {
	switch p.first {
	case needy.first:
		return ShareNeedy
	case torrent.PiecePriorityNext:
		return ShareAhead
	}
	return ShareWellAhead
}

// shortfall returns by how many bytes per second rate, a torrent's (or all
// torrents') measured download rate, falls below the playback rates of
// its playing sessions, when one of them has less than lowWater buffered
// and so is starving for it; 0 otherwise. Sessions well supplied from
// memory need no download: their rates count only when one is short.
func shortfall(rate float64, playing []demand) float64 {
	var sum float64
	short := false
	for _, d := range playing {
		sum += d.rate
		short = short || d.buffered < lowWater
	}
	if !short || rate >= sum {
		return 0
	}
	return sum - rate
}

// demand is what a playing session asks of the download: its playback
// rate in bytes per second, and the media its player holds.
type demand struct {
	rate     float64
	buffered time.Duration
}

// neediest returns the least media buffered by a playing (busy) session
// whose buffer is known, or a day if there is none.
func (h *Handler) neediest() time.Duration {
	least := 24 * time.Hour
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range h.sessions {
		if b := s.buffered.Load(); s.busy && b != bufferedUnknownNs {
			least = min(least, time.Duration(b))
		}
	}
	return least
}
