package testutil

import (
	"context"
	"testing"
	"time"

	"github.com/memtorrent/memtorrent/internal/swarm"
)

// SetupTimeout bounds the waits of NewSeeder and AddTorrent, which move no
// piece data and normally finish in milliseconds.
const SetupTimeout = swarm.SetupTimeout

// WaitFor polls cond, sleeping 1 ms at first and doubling up to 50 ms
// between calls, until it returns true, and fails the test with "timed out
// after <timeout> waiting for <what>" if it has not within timeout. cond is
// called from the calling goroutine only. Call WaitFor from the test
// goroutine (it may call tb.Fatalf).
func WaitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for pause := time.Millisecond; !cond(); pause = min(2*pause, 50*time.Millisecond) {
		left := time.Until(deadline)
		if left <= 0 {
			tb.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(min(pause, left))
	}
}

// WaitChan waits until ch is closed or receives, and fails the test with
// "timed out after <timeout> waiting for <what>" if that has not happened
// within timeout. It suits the library's event channels, e.g.
// t.Complete().On() or t.GotInfo(). Call it from the test goroutine (it may
// call tb.Fatalf).
func WaitChan(tb testing.TB, timeout time.Duration, what string, ch <-chan struct{}) {
	tb.Helper()
	if err := swarm.Wait(context.Background(), timeout, what, ch); err != nil {
		tb.Fatal(err)
	}
}
