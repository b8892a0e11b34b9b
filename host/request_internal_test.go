package host

import (
	"testing"
	"time"
)

// TestQueueLimit checks the request bound of a peer: RequestQueueTime at
// its rate, in 16 KiB chunks, at least MinPeerRequests, at most what it
// advertised.
func TestQueueLimit(t *testing.T) {
	for _, c := range []struct {
		name string
		rate float64
		reqq int
		want int
	}{
		{"400 KB/s", 400_000, 500, 48},
		{"16 KB/s gets the minimum", 16_000, 500, MinPeerRequests},
		{"stalled gets the minimum", 0, 500, MinPeerRequests},
		{"fast peer capped by its reqq", 100e6, 500, 500},
		{"unknown reqq", 100e6, 0, 12207},
	} {
		if got := queueLimit(c.rate, 2*time.Second, c.reqq); got != c.want {
			t.Errorf("%s: got %d; want %d", c.name, got, c.want)
		}
	}
}

// TestRateMeter checks that a peer's rate is measured over windows of at
// least rateWindow of the time it had requests outstanding, smoothed.
func TestRateMeter(t *testing.T) {
	var m rateMeter
	t0 := time.Unix(1000, 0)
	m.resume(t0)
	if m.add(t0.Add(500*time.Millisecond), 100_000) {
		t.Fatal("a window shorter than rateWindow closed")
	}
	if !m.add(t0.Add(time.Second), 100_000) || m.rate != 200_000 {
		t.Fatalf("after 200 KB in 1 s: rate %v; want 200000", m.rate)
	}
	// Idle for a minute, then busy again: the idle time is not counted.
	t1 := t0.Add(time.Minute)
	m.resume(t1)
	if !m.add(t1.Add(time.Second), 400_000) || m.rate != 300_000 {
		t.Fatalf("after 400 KB in the next busy second: rate %v; want 300000 (smoothed)", m.rate)
	}
}
