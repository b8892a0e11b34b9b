package testutil

import (
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/anacrolix/torrent"

	"github.com/memtorrent/memtorrent/host"
)

// Config returns a client configuration for a loopback-only swarm: it
// listens on 127.0.0.1 on a kernel-chosen port, uses no DHT, trackers, PEX,
// uTP, IPv6, UPnP, webtorrent or webseeds, skips header obfuscation
// (host.Loopback), keeps its default storage in a fresh
// tb.TempDir(), and logs at Warn level and above to the test log (and
// nowhere once the test's clean-up has begun).
//
// On top of that it applies host.Apply, memtorrent's recommended
// configuration (the stall, upload-deadlock and Transmission fixes), so
// every test runs what users run; opts, applied in order after that, may
// override anything (the stall reproducer sets the library's own
// KeepAliveTimeout back, for example).
//
// Config calls tb.TempDir and tb.Cleanup, so call it from the test
// goroutine. The returned configuration belongs to one client.
func Config(tb testing.TB, opts ...func(*torrent.ClientConfig)) *torrent.ClientConfig {
	tb.Helper()
	cfg := torrent.NewDefaultClientConfig()
	host.Loopback(cfg)
	host.Apply(cfg)
	cfg.DataDir = tb.TempDir()
	// cfg.Logger stays zero: the client then routes it to Slogger's handler.
	cfg.Slogger = Logger(tb, slog.LevelWarn)
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
