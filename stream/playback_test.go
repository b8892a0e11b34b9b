package stream

import (
	"testing"
	"time"

	"github.com/anacrolix/torrent"
)

// TestSharePriorities checks the sharing rule between sessions: the one
// closest to a stall, and any with little buffered, gets its urgent pieces
// at PiecePriorityNow; one comfortably ahead yields, more so well ahead.
func TestSharePriorities(t *testing.T) {
	const (
		now  = torrent.PiecePriorityNow
		next = torrent.PiecePriorityNext
		ra   = torrent.PiecePriorityReadahead
		high = torrent.PiecePriorityHigh
		norm = torrent.PiecePriorityNormal
	)
	for _, c := range []struct {
		name               string
		buffered, neediest time.Duration
		want               priorities
	}{
		{"alone (the neediest itself)", 28 * time.Second, 28 * time.Second, priorities{now, next, ra}},
		{"the neediest of two", 12 * time.Second, 12 * time.Second, priorities{now, next, ra}},
		{"low but not the neediest", 5 * time.Second, 2 * time.Second, priorities{now, next, ra}},
		{"comfortable, another is needier", 15 * time.Second, 3 * time.Second, priorities{next, ra, high}},
		{"well ahead, another is needier", 29 * time.Second, 3 * time.Second, priorities{ra, high, norm}},
	} {
		if got := sharePriorities(c.buffered, c.neediest); got != c.want {
			t.Errorf("%s: got %v; want %v", c.name, got, c.want)
		}
	}
	// The needier session's playhead piece and urgent pieces come before
	// anything of a session well ahead, and its whole window before the
	// well-ahead session's readahead.
	n := sharePriorities(2*time.Second, 2*time.Second)
	w := sharePriorities(29*time.Second, 2*time.Second)
	if !(n.first > w.first && n.urgent > w.first && n.ahead > w.ahead) {
		t.Errorf("needy %v; well ahead %v: want the needy session's pieces first", n, w)
	}
}

// TestPlaybackLearnsRate checks that a session learns the player's rate
// from reads that did not wait (the player set the pace) and ignores the
// windows in which the reads waited for the download.
func TestPlaybackLearnsRate(t *testing.T) {
	var p playback
	t0 := time.Unix(1000, 0)
	p.seek(t0)
	// Filling the buffer: 1 MB/s, waiting most of the time.
	at := t0
	for range 100 {
		at = at.Add(100 * time.Millisecond)
		p.read(at, 100_000, 80*time.Millisecond)
	}
	if p.rate != 0 {
		t.Fatalf("rate %v learned while the reads waited; want none", p.rate)
	}
	if got := p.rateOr(123); got != 123 {
		t.Errorf("rateOr before learning: got %v; want the fallback 123", got)
	}
	// Buffer full: the player reads 500 KB/s, the data is there.
	for range 100 {
		at = at.Add(100 * time.Millisecond)
		p.read(at, 50_000, 0)
	}
	if p.rate < 450_000 || p.rate > 550_000 {
		t.Errorf("rate %v after 10 s of paced reads at 500000; want about 500000", p.rate)
	}
}

// TestPlaybackBuffered checks the buffer estimate: media fed minus time
// since the seek, never below zero, and a dry spell is not owed later.
func TestPlaybackBuffered(t *testing.T) {
	var p playback
	t0 := time.Unix(1000, 0)
	p.seek(t0)
	p.read(t0.Add(time.Second), 5_000_000, 0) // 10 s of media at 500 KB/s
	if got := p.buffered(t0.Add(4*time.Second), 500_000); got != 6*time.Second {
		t.Errorf("after 4 s: buffered %v; want 6s", got)
	}
	if got := p.buffered(t0.Add(20*time.Second), 500_000); got != 0 {
		t.Errorf("after 20 s (dry for 10 s): buffered %v; want 0", got)
	}
	// The session estimates before each read (moved), so a read that
	// ends a dry spell finds the buffer at zero.
	p.buffered(t0.Add(21*time.Second), 500_000)
	p.read(t0.Add(21*time.Second), 1_000_000, 0) // 2 s more
	if got := p.buffered(t0.Add(21*time.Second), 500_000); got != 2*time.Second {
		t.Errorf("2 s fed after running dry: buffered %v; want 2s", got)
	}
}
