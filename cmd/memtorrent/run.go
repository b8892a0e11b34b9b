package main

import (
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
	"github.com/anacrolix/torrent/storage"
	"github.com/dustin/go-humanize"
	"go.uber.org/atomic"

	"github.com/memtorrent/memtorrent/host"
	"github.com/memtorrent/memtorrent/storage/memory"
	"github.com/memtorrent/memtorrent/stream"
)

// shutdownTimeout bounds how long the HTTP server waits for responses at
// shutdown once the stream handler has ended its sessions.
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
	return serve(ctx, cfg, ln, logger, func(st storage.ClientImpl) *torrent.ClientConfig {
		return serveClientConfig(cfg, st, logger)
	}, specs, nil)
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

// serve serves HTTP on ln, which it closes: it creates the memory storage,
// a torrent client configured by clientConfig and the stream handler, adds specs
// (calling added, if not nil, for each new torrent), prints their URLs and
// serves until ctx ends. Then it shuts down in order: the HTTP server stops
// accepting while the stream handler ends its sessions, the server finishes,
// the torrent client closes, and the storage last.
func serve(ctx context.Context, cfg config, ln net.Listener, logger *slog.Logger,
	clientConfig func(storage.ClientImpl) *torrent.ClientConfig,
	specs []*torrent.TorrentSpec, added func(*torrent.Torrent)) (err error) {
	defer func() {
		if ln != nil {
			ln.Close()
		}
	}()
	memOpts := memory.Options{
		Capacity:     cfg.Capacity,
		NoLookbehind: cfg.Lookbehind < 0,
		Logger:       logger,
	}
	var theApp atomic.Pointer[app] // set once the app exists; storage rejections go to it
	var checked checkedStorage
	hc, err := host.NewWrapped(clientConfig(nil), memOpts, func(mem *memory.Client) storage.ClientImpl {
		checked = checkedStorage{Client: mem, capacity: cfg.Capacity, failed: make(chan error, 1),
			reject: func(ih metainfo.Hash, err error) {
				if a := theApp.Load(); a != nil {
					a.rejectInfo(ih, err)
				}
			}}
		return checked
	})
	if err != nil {
		if errors.Is(err, memory.ErrInvalidOptions) { // a bad capacity is the user's error
			return badInput("-capacity %s: %v", humanize.IBytes(uint64(cfg.Capacity)), err)
		}
		if errors.Is(err, syscall.EADDRINUSE) {
			return badInput("peer port %d: %v", cfg.PeerPort, unwrapSyscall(err))
		}
		return fmt.Errorf("creating the torrent client: %w", err)
	}
	defer hc.Close()
	cl, mem := hc.Torrent, hc.Storage
	h, err := stream.New(cl, mem, stream.Options{
		LookbehindBytes: cfg.Lookbehind,
		ReadaheadCap:    cfg.Readahead,
		IdleTimeout:     sessionIdle(cfg.Idle),
		InfoTimeout:     cfg.InfoTimeout,
		Logger:          logger,
		Watchdog:        hc, // explains and acts on reads that wait
	})
	if err != nil {
		return fmt.Errorf("creating the stream handler: %w", err)
	}
	defer h.Close()

	base := baseURL(ln.Addr())
	token := cfg.Token
	if token == "" {
		token = newToken()
	}
	a := newApp(cfg, hc, h, logger, token)
	defer a.close()
	theApp.Store(a)
	mux := http.NewServeMux()
	mux.Handle("/", h)
	ui := &ui{cl: cl, mem: mem, log: logger, app: a}
	ui.register(mux)
	a.register(mux)
	srv := &http.Server{
		Handler:           newGuard(mux, cfg, token),
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
		// The server stops accepting and waits for its responses while the
		// handler ends the streaming ones, which only it can end.
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		shut := make(chan error, 1)
		go func() { shut <- srv.Shutdown(sctx) }()
		h.Close()
		if e := <-shut; e != nil {
			srv.Close()
			err = errors.Join(err, fmt.Errorf("shutting the HTTP server down: %w", e))
		}
		<-serveErr
	}()
	fmt.Fprintf(cfg.Out, "listening on %s\n", base)
	if cfg.Auth != "" {
		fmt.Fprintln(cfg.Out, "stream URLs need the -auth credentials, or the token that the API's and playlists' URLs carry")
	}

	ts := make([]*torrent.Torrent, 0, len(specs))
	for _, spec := range specs {
		t, err := a.open(spec, nil, meta{}, true)
		if err != nil {
			return err
		}
		a.release(t)
		if added != nil {
			added(t)
		}
		ts = append(ts, t)
	}
	p := newProgress(cfg)
	for _, t := range ts {
		if err := p.waitInfo(ctx, t, checked.failed); err != nil {
			return ignoreCanceled(ctx, err)
		}
		printURLs(cfg.Out, base, t)
	}
	for _, t := range ts {
		if err := p.buffer(ctx, t, prebufferBytes(cfg)); err != nil {
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

// sessionIdle returns the stream handler's session idle timeout: its
// default, or less when torrents go idle sooner.
func sessionIdle(idle time.Duration) time.Duration {
	if idle > 0 {
		return min(stream.DefaultIdleTimeout, idle)
	}
	return 0
}

// ignoreCanceled returns nil for an error caused by the end of ctx.
func ignoreCanceled(ctx context.Context, err error) error {
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return nil
	}
	return err
}

// prebufferBytes is how much of the head of each torrent's main file is
// fetched before a player asks: a readahead, at most a quarter of the
// capacity.
func prebufferBytes(cfg config) int64 {
	return min(cfg.Readahead, cfg.Capacity/4)
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
