package stream

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/memtorrent/memtorrent/internal/testutil"
)

const (
	manyReads = 1000
	// returnBound is how soon every cancelled read must have returned.
	returnBound = time.Second
	// requestBound is how soon every request whose read was cancelled must
	// have returned: its read within returnBound, then the HTTP teardown of
	// a thousand connections, which the race detector slows several-fold.
	requestBound = raceSlowdown * time.Second
	// spinWindow and spinBound: after the reads returned, the process may
	// use at most spinBound of CPU time in spinWindow. One goroutine
	// spinning (as a torrent.Reader over capped storage does after a
	// cancel) takes a whole core when it gets one, and still a tenth of one
	// on two cores loaded twenty-fold. The idle process is not silent: the
	// runtime's scavenger and netpoller and the race detector run in it,
	// which under -race measured up to 53 ms in the window on a loaded
	// machine (docs/stalls.md has the numbers).
	spinWindow = time.Second
	spinBound  = 90 * time.Millisecond
)

// TestCancelManyReads cancels manyReads reads of ReadPiece waiting for data
// that never comes, then drops the torrent under manyReads more: all return
// within returnBound with the context's error or ErrDropped, leave no
// goroutine behind and nothing spinning.
func TestCancelManyReads(t *testing.T) {
	e := newEnv(t, 4*mib, Options{})
	spec := testutil.Spec{Name: "never.mkv", Length: 16 * mib, PieceLength: pieceLength, Seed: 21}
	tor := e.unseeded(spec)
	before := goleak.IgnoreCurrent()
	base := runtime.NumGoroutine()

	// Each read runs in a goroutine of its own and reports its error.
	start := func(ctx context.Context, i int) <-chan error {
		done := make(chan error, 1)
		go func() {
			buf := make([]byte, 100)
			_, err := ReadPiece(ctx, tor, buf, int64(i)*spec.Length/manyReads)
			done <- err
		}()
		return done
	}
	// waiting waits until n reads are waiting: each has its goroutine and
	// that of its piece state subscription.
	waiting := func(n int) {
		testutil.WaitFor(t, transferTimeout, fmt.Sprintf("%d waiting reads", n), func() bool {
			return runtime.NumGoroutine() >= base+2*n
		})
	}
	// collect waits for every read, failing if one returns a wrong error
	// or the last later than returnBound after from.
	collect := func(from time.Time, dones []<-chan error, want error) {
		t.Helper()
		deadline := time.NewTimer(transferTimeout)
		defer deadline.Stop()
		for i, done := range dones {
			select {
			case err := <-done:
				if !errors.Is(err, want) {
					t.Fatalf("read %d: got %v; want %v", i, err, want)
				}
			case <-deadline.C:
				t.Fatalf("read %d still waiting %v after the cancel", i, transferTimeout)
			}
		}
		if d := time.Since(from); d > returnBound {
			t.Errorf("the last read returned %v after the cancel; want at most %v", d, returnBound)
		}
	}

	t.Run("cancel", func(t *testing.T) {
		cancels := make([]context.CancelFunc, manyReads)
		dones := make([]<-chan error, manyReads)
		for i := range manyReads {
			ctx, cancel := context.WithCancel(t.Context())
			cancels[i], dones[i] = cancel, start(ctx, i)
		}
		waiting(manyReads)
		from := time.Now()
		for _, cancel := range cancels {
			cancel()
		}
		collect(from, dones, context.Canceled)
	})
	if t.Failed() {
		return
	}

	t.Run("drop", func(t *testing.T) {
		dones := make([]<-chan error, manyReads)
		for i := range manyReads {
			dones[i] = start(t.Context(), i)
		}
		waiting(manyReads)
		from := time.Now()
		e.hc.Drop(tor)
		collect(from, dones, ErrDropped)
		// Reads after the drop fail at once.
		collect(time.Now(), []<-chan error{start(t.Context(), 0)}, ErrDropped)
	})

	testutil.VerifyNoLeaks(t, before)
	assertIdle(t)
}

// TestCancelManyRequests is TestCancelManyReads through the Handler: as
// many sessions as requests, each waiting for its first piece, ended by the
// players going away, then by the torrent's drop.
func TestCancelManyRequests(t *testing.T) {
	e := newEnv(t, 4*mib, Options{MaxSessions: manyReads})
	spec := testutil.Spec{Name: "never.mkv", Length: 16 * mib, PieceLength: pieceLength, Seed: 22}
	tor := e.unseeded(spec)
	before := goleak.IgnoreCurrent()

	// inflight is the number of stream requests the Handler is serving.
	inflight := func() int {
		e.h.mu.Lock()
		defer e.h.mu.Unlock()
		return len(e.h.inflight)
	}
	// served waits until no request is being served, failing if that took
	// longer than requestBound after from.
	served := func(from time.Time) {
		t.Helper()
		testutil.WaitFor(t, transferTimeout, "every request to return", func() bool { return inflight() == 0 })
		if d := time.Since(from); d > requestBound {
			t.Errorf("the last request returned %v after the cancel; want at most %v", d, requestBound)
		} else {
			t.Logf("the last request returned %v after the cancel", d)
		}
	}
	// startAll sends manyReads requests, each of its own session, and waits
	// until every one waits in a read.
	startAll := func() []*pending {
		ps := make([]*pending, manyReads)
		for i := range ps {
			off := int64(i) * spec.Length / manyReads
			ps[i] = e.startRange(fmt.Sprintf("%s?session=%d", streamPath(tor, 0), i), off)
		}
		testutil.WaitFor(t, transferTimeout, "every request to wait", func() bool {
			e.h.mu.Lock()
			defer e.h.mu.Unlock()
			return len(e.h.inflight) == manyReads && len(e.h.sessions) == manyReads
		})
		return ps
	}

	t.Run("cancel", func(t *testing.T) {
		ps := startAll()
		from := time.Now()
		for _, p := range ps {
			p.cancel()
		}
		served(from)
		for _, p := range ps {
			p.wait(t)
		}
	})
	if t.Failed() {
		return
	}
	t.Run("drop", func(t *testing.T) {
		ps := startAll()
		from := time.Now()
		e.hc.Drop(tor)
		served(from)
		for _, p := range ps {
			p.wait(t)
		}
		testutil.WaitFor(t, transferTimeout, "the dropped torrent's sessions to end", func() bool {
			e.h.mu.Lock()
			defer e.h.mu.Unlock()
			return len(e.h.sessions) == 0
		})
	})

	// The server keeps idle connections to the test client: close them.
	e.srv.CloseClientConnections()
	e.srv.Client().CloseIdleConnections()
	testutil.VerifyNoLeaks(t, before)
	assertIdle(t)
}

// assertIdle fails t if the process uses more than spinBound of CPU time
// in spinWindow.
func assertIdle(t *testing.T) {
	t.Helper()
	// Collect the garbage of the requests first: a collection in the
	// window cost 30-54 ms of CPU under -race on a loaded machine, near
	// spinBound, and says nothing about spinning.
	runtime.GC()
	used0 := testutil.CPUTime(t)
	time.Sleep(spinWindow) // a measurement interval, not a synchronisation
	if used := testutil.CPUTime(t) - used0; used > spinBound {
		t.Errorf("the process used %v of CPU in %v after the reads returned; want at most %v (something spins)", used, spinWindow, spinBound)
	} else {
		t.Logf("CPU time in %v after the reads returned: %v", spinWindow, used)
	}
}
