package testutil

import (
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/anacrolix/torrent"

	"github.com/memtorrent/memtorrent/internal/swarm"
)

// Config returns swarm.Config, a client configuration for a loopback-only
// swarm with memtorrent's recommended settings (host.Loopback and
// host.Apply), that keeps its default storage in a fresh tb.TempDir() and
// logs at Warn level and above to the test log (and nowhere once the
// test's clean-up has begun). opts, applied in order after that, may
// override anything (the stall reproducer sets the library's own
// KeepAliveTimeout back, for example).
//
// Config calls tb.TempDir and tb.Cleanup, so call it from the test
// goroutine. The returned configuration belongs to one client.
func Config(tb testing.TB, opts ...func(*torrent.ClientConfig)) *torrent.ClientConfig {
	tb.Helper()
	cfg := swarm.Config(tb.TempDir(), Logger(tb, slog.LevelWarn))
	for _, opt := range opts {
		opt(cfg)
	}
	return cfg
}

// Logger returns a logger writing records at level and above to tb's log
// until tb's clean-up begins, and discarding them after that (a client's
// goroutines may still log after the test has returned, which would make
// tb.Log panic). It is safe for concurrent use; call Logger itself from the
// test goroutine (it registers a tb.Cleanup).
func Logger(tb testing.TB, level slog.Level) *slog.Logger {
	w := &testWriter{tb: tb}
	tb.Cleanup(w.stop)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// testWriter writes lines to a test's log until stopped. It is safe for
// concurrent use.
type testWriter struct {
	tb testing.TB // never changes

	mu      sync.Mutex // guards the field below
	stopped bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.tb.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testWriter) stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
}
