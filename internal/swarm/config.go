package swarm

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/anacrolix/torrent"

	"github.com/memtorrent/memtorrent/host"
)

// SetupTimeout bounds the waits of Seed and AddTorrent, which move no piece
// data and normally finish in milliseconds.
const SetupTimeout = 30 * time.Second

// Config returns a client configuration for a loopback-only swarm
// (host.Loopback: 127.0.0.1, a kernel-chosen port, plaintext, no DHT,
// trackers, PEX, uTP, IPv6, UPnP, webtorrent or webseeds) with memtorrent's
// recommended settings (host.Apply), so that every test and benchmark runs
// what users run. dataDir is where the client's default storage keeps its
// files ("" leaves the library's default, the working directory); logger
// receives the client's logs (nil discards them). The configuration
// belongs to one client; change it freely before torrent.NewClient.
func Config(dataDir string, logger *slog.Logger) *torrent.ClientConfig {
	cfg := torrent.NewDefaultClientConfig()
	host.Loopback(cfg)
	host.Apply(cfg)
	if dataDir != "" {
		cfg.DataDir = dataDir
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	// cfg.Logger stays zero: the client then routes it to Slogger's handler.
	cfg.Slogger = logger
	return cfg
}

// Wait waits until ch is closed or receives. It returns ctx's error if ctx
// ends first, and an error "timed out after <timeout> waiting for <what>"
// if timeout passes first. It suits the library's event channels, e.g.
// t.Complete().On() or t.GotInfo().
func Wait(ctx context.Context, timeout time.Duration, what string, ch <-chan struct{}) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for %s: %w", what, context.Cause(ctx))
	case <-timer.C:
		return fmt.Errorf("timed out after %v waiting for %s", timeout, what)
	}
}
