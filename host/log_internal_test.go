package host

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// lines is a slog.Handler at level Info that keeps "LEVEL msg k=v..."
// for each record. Safe for concurrent use.
type lines struct {
	mu    *sync.Mutex // guards *out
	out   *[]string
	attrs string
}

func newLines() lines { return lines{mu: &sync.Mutex{}, out: new([]string)} }

func (l lines) Enabled(_ context.Context, level slog.Level) bool { return level >= slog.LevelInfo }

func (l lines) Handle(_ context.Context, r slog.Record) error {
	s := r.Level.String() + " " + r.Message + l.attrs
	r.Attrs(func(a slog.Attr) bool { s += " " + a.String(); return true })
	l.mu.Lock()
	*l.out = append(*l.out, s)
	l.mu.Unlock()
	return nil
}

func (l lines) WithAttrs(as []slog.Attr) slog.Handler {
	for _, a := range as {
		l.attrs += " " + a.String()
	}
	return l
}

func (l lines) WithGroup(string) slog.Handler { return l }

func (l lines) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := *l.out
	*l.out = nil
	return out
}

func TestRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		out := newLines()
		logger := slog.New(newRateLimit(out, 3, time.Minute))
		for range 1000 {
			logger.Warn("error announcing to DHT", "server", "a")
		}
		logger.Warn("error announcing to DHT", "server", "b") // other attributes: another line
		logger.Error("error announcing to DHT")               // another level: another line
		logger.Debug("error announcing to DHT")               // disabled: not counted
		want := []string{
			"WARN error announcing to DHT server=a",
			"WARN error announcing to DHT server=a",
			"WARN error announcing to DHT server=a",
			"WARN error announcing to DHT server=b",
			"ERROR error announcing to DHT",
		}
		if got := out.take(); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("first minute: got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}

		// After the interval the next record of the message brings the
		// count of what was dropped, and passes.
		time.Sleep(time.Minute)
		logger.Warn("error announcing to DHT", "server", "a")
		want = []string{
			"WARN suppressed 997 similar lines like=error announcing to DHT server=a",
			"WARN error announcing to DHT server=a",
		}
		if got := out.take(); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("second minute: got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}

		// A message dropped and never seen again is reported when anything
		// is logged after its interval, through the handler that passed it
		// first.
		sub := logger.With("torrent", "x")
		for range 5 {
			sub.Info("piece gone")
		}
		out.take()
		time.Sleep(time.Minute)
		logger.Info("something else")
		want = []string{
			"INFO suppressed 2 similar lines torrent=x like=piece gone",
			"INFO something else",
		}
		if got := out.take(); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("sweep: got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
}

// TestRateLimitConcurrent logs one message from many goroutines: exactly
// the limit passes (run with -race).
func TestRateLimitConcurrent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		out := newLines()
		logger := slog.New(newRateLimit(out, 5, time.Minute))
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 100 {
					logger.Warn("same")
				}
			})
		}
		wg.Wait()
		if got := len(out.take()); got != 5 {
			t.Errorf("lines passed: got %d; want 5", got)
		}
	})
}

// TestRateLimitBoundsKeys checks that distinct messages beyond
// maxRepeatKeys pass unlimited, and that the tracked ones are dropped
// after their interval.
func TestRateLimitBoundsKeys(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		out := newLines()
		h := newRateLimit(out, 1, time.Minute)
		logger := slog.New(h)
		for i := range maxRepeatKeys + 10 {
			logger.Info(fmt.Sprint("line ", i))
		}
		logger.Info(fmt.Sprint("line ", maxRepeatKeys+1)) // untracked: passes again
		if got := len(out.take()); got != maxRepeatKeys+11 {
			t.Errorf("lines passed: got %d; want %d", got, maxRepeatKeys+11)
		}
		time.Sleep(time.Minute)
		logger.Info("after")
		h.s.mu.Lock()
		n := len(h.s.seen)
		h.s.mu.Unlock()
		if n != 1 {
			t.Errorf("messages tracked after the interval: got %d; want 1", n)
		}
	})
}

func TestRateLimitDefaults(t *testing.T) {
	out := newLines()
	logger := slog.New(RateLimit(out))
	for range 2 * RepeatLimit {
		logger.Warn("again")
	}
	if got := len(out.take()); got != RepeatLimit {
		t.Errorf("lines passed: got %d; want RepeatLimit (%d)", got, RepeatLimit)
	}
}
