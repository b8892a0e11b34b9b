package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/dustin/go-humanize"

	"github.com/memtorrent/memtorrent/host"
	"github.com/memtorrent/memtorrent/internal/swarm"
	"github.com/memtorrent/memtorrent/server"
	"github.com/memtorrent/memtorrent/storage/memory"
)

// shutdownTimeout bounds how long the HTTP server waits for responses at
// shutdown once the media server has ended the streaming ones.
const shutdownTimeout = 5 * time.Second

// run runs the command cfg asks for until ctx ends.
func run(ctx context.Context, cfg config) error {
	if cfg.Command == "demo" {
		return runDemo(ctx, cfg)
	}
	return runServe(ctx, cfg)
}

// runServe streams the torrents of cfg.Sources until ctx ends.
func runServe(ctx context.Context, cfg config) error {
	specs := make([]*torrent.TorrentSpec, 0, len(cfg.Sources))
	for _, s := range cfg.Sources {
		spec, info, err := parseSource(s)
		if err != nil {
			return err
		}
		if info != nil {
			if err := checkPieceFits(s, info, cfg.Capacity); err != nil {
				return err
			}
		}
		specs = append(specs, spec)
	}
	ln, err := listen(cfg)
	if err != nil {
		return err
	}
	logger := newLogger(cfg)
	return serve(ctx, cfg, ln, logger, serveClientConfig(cfg, logger), specs, nil)
}

// newLogger returns the logger of the clients and the handler; the torrent
// reader's expected retry errors over memory storage go to Debug, and a
// message repeated is rate-limited (host.RateLimit).
func newLogger(cfg config) *slog.Logger {
	return slog.New(host.RateLimit(host.QuietRetries(slog.NewTextHandler(cfg.Err, &slog.HandlerOptions{Level: cfg.LogLevel}))))
}

// listen listens on cfg.Listen.
func listen(cfg config) (net.Listener, error) {
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, badInput("listening on %s: %v", cfg.Listen, unwrapSyscall(err))
	}
	return ln, nil
}

// serveClientConfig returns the configuration of serve's client: the
// library defaults (DHT unless cfg.DHT is false, trackers, PEX, uTP) on
// cfg.PeerPort, uploading as cfg.Upload says, logging to logger at its
// level.
func serveClientConfig(cfg config, logger *slog.Logger) *torrent.ClientConfig {
	c := torrent.NewDefaultClientConfig()
	if cfg.loopback {
		host.Loopback(c)
	}
	c.ListenPort = cfg.PeerPort
	c.Seed = cfg.Upload
	c.NoUpload = !cfg.Upload
	if !cfg.DHT {
		c.NoDHT = true
	}
	host.UseLogger(c, logger)
	host.Apply(c)
	return c
}

// loopbackClientConfig returns the configuration of demo's clients:
// swarm.Config's loopback-only client (127.0.0.1 on a kernel-chosen port, no
// DHT, trackers, PEX, uTP, IPv6, UPnP, webtorrent or webseeds, plaintext,
// host.Apply), logging to logger as serve's client does.
func loopbackClientConfig(logger *slog.Logger) *torrent.ClientConfig {
	c := swarm.Config("", logger)
	host.UseLogger(c, logger)
	return c
}

// checkPieceFits returns server.CheckPieceFits's error as bad input.
func checkPieceFits(name string, info *metainfo.Info, capacity int64) error {
	if err := server.CheckPieceFits(name, info, capacity); err != nil {
		return badInput("-%v", err) // "-capacity N is smaller than..."
	}
	return nil
}

// serve serves HTTP on ln, which it closes: it creates the media server
// (server.New) with the torrent client configuration clientConfig, adds
// specs (calling added, if not nil, for each new torrent), prints their
// URLs and serves until ctx ends. Then it shuts down in order: the HTTP
// server stops accepting while the media server ends its streaming
// responses, and the media server closes once the HTTP server is done.
func serve(ctx context.Context, cfg config, ln net.Listener, logger *slog.Logger,
	clientConfig *torrent.ClientConfig, specs []*torrent.TorrentSpec, added func(*torrent.Torrent)) (err error) {
	defer func() {
		if ln != nil {
			ln.Close()
		}
	}()
	failed := make(chan error, 1) // the first torrent the storage refused
	s, err := server.New(server.Config{
		Client:       clientConfig,
		Capacity:     cfg.Capacity,
		Lookbehind:   cfg.Lookbehind,
		Readahead:    cfg.Readahead,
		Verify:       cfg.Verify,
		LeafHashes:   cfg.LeafHashes,
		NoTopUp:      !cfg.TopUps,
		NoEarlyFetch: !cfg.EarlyFetch,
		Idle:         cfg.Idle,
		InfoTimeout:  cfg.InfoTimeout,
		Auth:         cfg.Auth,
		Allow:        cfg.Allow,
		Token:        cfg.Token,
		Hostnames:    cfg.Hostnames,
		CORSOrigins:  cfg.CORSOrigins,
		MaxTorrents:  cmp.Or(cfg.MaxTorrents, -1), // -max-torrents 0: no cap
		AuthFailures: cfg.AuthFailures,
		AuthBan:      cfg.AuthBan,
		Logger:       logger,
		OnReject: func(_ metainfo.Hash, err error) {
			select {
			case failed <- badInput("-%v", err):
			default:
			}
		},
	})
	switch {
	case errors.Is(err, memory.ErrInvalidOptions): // a bad capacity is the user's error
		return badInput("-capacity %s: %v", humanize.IBytes(uint64(cfg.Capacity)), err)
	case errors.Is(err, syscall.EADDRINUSE):
		return badInput("peer port %d: %v", cfg.PeerPort, unwrapSyscall(err))
	case err != nil:
		return err
	}
	base := baseURL(ln.Addr())
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
	serveErr := make(chan error, 1)
	go func(ln net.Listener) { serveErr <- srv.Serve(ln) }(ln)
	ln = nil // the server closes it
	defer func() {
		if ctx.Err() != nil {
			fmt.Fprintln(cfg.Err, "shutting down")
		}
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		err = errors.Join(err, s.Shutdown(sctx, srv))
		<-serveErr
	}()
	fmt.Fprintf(cfg.Out, "listening on %s\n", base)
	if cfg.Auth != "" {
		fmt.Fprintln(cfg.Out, "stream URLs need the -auth credentials, or the token that the API's and playlists' URLs carry")
	}

	ts := make([]*torrent.Torrent, 0, len(specs))
	for _, spec := range specs {
		t, err := s.Add(spec)
		if err != nil {
			return err
		}
		if added != nil {
			added(t)
		}
		ts = append(ts, t)
	}
	p := newProgress(cfg)
	for _, t := range ts {
		if err := p.waitInfo(ctx, t, failed); err != nil {
			return ignoreCanceled(ctx, err)
		}
		server.WriteURLs(cfg.Out, base, t)
	}
	for _, t := range ts {
		if err := p.buffer(ctx, s, t, server.PrebufferBytes(cfg.Capacity, cfg.Readahead)); err != nil {
			return ignoreCanceled(ctx, err)
		}
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-serveErr:
		serveErr <- err // for the deferred shutdown
		return fmt.Errorf("serving HTTP: %w", err)
	}
}

// ignoreCanceled returns nil for an error caused by the end of ctx.
func ignoreCanceled(ctx context.Context, err error) error {
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return nil
	}
	return err
}

// unwrapSyscall returns the innermost error of a net.OpError chain, which
// says what went wrong without repeating the address.
func unwrapSyscall(err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return err
}

// baseURL returns the URL of the server listening on addr, naming
// 127.0.0.1 when it listens on every address.
func baseURL(addr net.Addr) string {
	ta, ok := addr.(*net.TCPAddr)
	if !ok {
		return "http://" + addr.String()
	}
	host := ta.IP.String()
	if ta.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(ta.Port))
}
