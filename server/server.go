package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"

	"github.com/memtorrent/memtorrent/host"
	"github.com/memtorrent/memtorrent/storage/memory"
	"github.com/memtorrent/memtorrent/stream"
)

// DefaultCapacity is the Capacity of a zero Config: 256 MiB.
const DefaultCapacity = 256 << 20

// Config configures a Server. The zero value of every field selects its
// default.
type Config struct {
	// Client is the torrent client's configuration; New sets its
	// DefaultStorage and hooks (host.NewWith) and uses the rest as it
	// is. Default: torrent.NewDefaultClientConfig with host.Apply.
	Client *torrent.ClientConfig
	// Capacity is the bytes of piece data held in memory, all torrents
	// together. Default 256 MiB.
	Capacity int64
	// Lookbehind is the stream handler's lookbehind budget
	// (stream.Options.LookbehindBytes): 0 its default, negative none.
	Lookbehind int64
	// Readahead bounds one playback session's readahead. Default
	// stream.DefaultReadaheadCap.
	Readahead int64
	// Verify says which bytes reach a player (stream.Options.Verify).
	// Default stream.VerifyStrict.
	Verify string
	// LeafHashes asks peers of v2 and hybrid torrents for the hashes of
	// the playhead piece's 16 KiB blocks, so that each block is served
	// verified as it arrives (host.Options.LeafHashes; the host then
	// listens and dials TCP itself). Default off; the memtorrent binary
	// turns it on (-leaf-hashes).
	LeafHashes bool
	// NoTopUp, with LeafHashes, leaves the torrent client's request
	// rounds alone (host.Options.NoTopUp).
	NoTopUp bool
	// NoEarlyFetch, with LeafHashes, leaves the order in which the
	// torrent client fetches a piece's chunks alone
	// (host.Options.NoEarlyFetch).
	NoEarlyFetch bool
	// Idle drops a torrent added over HTTP after this long without a
	// request or a playback session; 0 never.
	Idle time.Duration
	// InfoTimeout bounds how long a request waits for a torrent's
	// metadata. Default stream.DefaultInfoTimeout.
	InfoTimeout time.Duration
	// Auth, "user:password", makes every request need HTTP Basic
	// credentials, except the URLs handed to players, which may carry the
	// token instead. "" asks for none.
	Auth string
	// Allow lists the client addresses served; nil serves any.
	Allow []netip.Prefix
	// Token is what stream and playlist URLs carry (?token=); "" a random
	// one. See ValidToken.
	Token string
	// Hostnames are the names besides IP literals and localhost that the
	// server answers to in Host (GuardConfig.Hostnames); other names get 403.
	Hostnames []string
	// CORSOrigins are the origins of web apps whose pages may call the
	// server (GuardConfig.CORSOrigins).
	CORSOrigins []string
	// MaxTorrents is the most torrents the server holds; adding more over
	// HTTP gets 507 (Server.Add is never refused). Default
	// DefaultMaxTorrents; negative, no cap.
	MaxTorrents int
	// AuthFailures and AuthBan brake guessing: after AuthFailures wrong
	// credentials or tokens from an address within 10 minutes, it gets 429
	// for AuthBan. Defaults DefaultLoginFailures and DefaultLoginBan.
	AuthFailures int
	AuthBan      time.Duration
	// OnReject, if not nil, is told of each torrent whose info shows pieces
	// larger than the capacity (an error wrapping ErrPieceTooLarge). It is
	// called under the torrent client's lock: it must not block nor call
	// the client.
	OnReject func(metainfo.Hash, error)
	// Logger receives what went wrong inside. Default slog.Default().
	Logger *slog.Logger
}

// Server is memtorrent's media server: a torrent client over memory
// storage, its stream handler, the registry of torrents and the HTTP APIs.
// It is safe for concurrent use. Create it with New and Close it when done.
type Server struct {
	// These never change after New.
	hc      *host.Client
	h       *stream.Handler
	app     *app
	handler http.Handler
	ctx     context.Context // cancelled by Close: ends the waits of requests
	cancel  context.CancelFunc

	closeOnce sync.Once
	closeErr  error

	mu       sync.Mutex // guards the fields below
	closed   bool
	requests sync.WaitGroup // requests being served; Add under mu
}

// New returns a Server configured by cfg and starts its goroutines (the
// stream handler's, the idle reaper), which Close stops. It fails on a
// bad Config (wrapping memory.ErrInvalidOptions for a capacity the
// storage refuses) or when the torrent client cannot start (a peer port in
// use: syscall.EADDRINUSE).
func New(cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	sg, err := NewGuard(GuardConfig{Hostnames: cfg.Hostnames, CORSOrigins: cfg.CORSOrigins, Credentials: cfg.Auth != ""})
	if err != nil {
		return nil, err
	}
	s := &Server{}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	memOpts := memory.Options{Capacity: cfg.Capacity, NoLookbehind: cfg.Lookbehind < 0}
	// The storage tells the registry of rejections from the moment the
	// client exists; the registry gets the client and handler below.
	a := newApp(cfg)
	hc, err := host.NewWith(cfg.Client, memOpts, host.Options{LeafHashes: cfg.LeafHashes, NoTopUp: cfg.NoTopUp, NoEarlyFetch: cfg.NoEarlyFetch, Wrap: func(mem *memory.Client) storage.ClientImpl {
		return checkedStorage{Client: mem, capacity: cfg.Capacity, reject: func(ih metainfo.Hash, err error) {
			a.rejectInfo(ih, err)
			if cfg.OnReject != nil {
				cfg.OnReject(ih, err)
			}
		}}
	}})
	if err != nil {
		s.cancel()
		return nil, err // host.NewWith says what failed
	}
	h, err := stream.New(hc.Torrent, hc.Storage, stream.Options{
		LookbehindBytes: cfg.Lookbehind,
		ReadaheadCap:    cfg.Readahead,
		IdleTimeout:     sessionIdle(cfg.Idle),
		InfoTimeout:     cfg.InfoTimeout,
		Logger:          cfg.Logger,
		Watchdog:        hc, // explains and acts on reads that wait
		Verify:          cfg.Verify,
	})
	if err != nil {
		s.cancel()
		hc.Close()
		return nil, fmt.Errorf("server: creating the stream handler: %w", err)
	}
	s.hc, s.h, s.app = hc, h, a
	a.start(hc, h)
	mux := http.NewServeMux()
	(&ui{cl: hc.Torrent, mem: hc.Storage, log: cfg.Logger, app: a}).register(mux)
	a.register(mux)
	logins := NewLoginLimiter(LoginLimits{Failures: cfg.AuthFailures, Ban: cfg.AuthBan, Logger: cfg.Logger})
	s.handler = sg.Wrap(newGuard(mux, cfg.Auth, cfg.Allow, a.token, logins))
	return s, nil
}

// withDefaults returns cfg with its zero fields defaulted, or an error
// naming a bad field.
func (cfg Config) withDefaults() (Config, error) {
	switch {
	case cfg.Capacity < 0:
		return cfg, fmt.Errorf("server: negative Capacity %d", cfg.Capacity)
	case cfg.Readahead < 0:
		return cfg, fmt.Errorf("server: negative Readahead %d", cfg.Readahead)
	case cfg.Idle < 0:
		return cfg, fmt.Errorf("server: negative Idle %v", cfg.Idle)
	case cfg.InfoTimeout < 0:
		return cfg, fmt.Errorf("server: negative InfoTimeout %v", cfg.InfoTimeout)
	case cfg.Auth != "" && !ValidAuth(cfg.Auth):
		return cfg, fmt.Errorf("server: Auth must be user:password with a non-empty user and password")
	case cfg.AuthFailures < 0 || cfg.AuthBan < 0:
		return cfg, fmt.Errorf("server: negative AuthFailures %d or AuthBan %v", cfg.AuthFailures, cfg.AuthBan)
	case cfg.Token != "" && !ValidToken(cfg.Token):
		return cfg, fmt.Errorf("server: Token must be 16 to 128 letters, digits, '-' or '_'")
	}
	if cfg.Client == nil {
		cfg.Client = torrent.NewDefaultClientConfig()
		host.Apply(cfg.Client)
	}
	if cfg.Capacity == 0 {
		cfg.Capacity = DefaultCapacity
	}
	if cfg.Readahead == 0 {
		cfg.Readahead = stream.DefaultReadaheadCap
	}
	if cfg.InfoTimeout == 0 {
		cfg.InfoTimeout = stream.DefaultInfoTimeout
	}
	if cfg.MaxTorrents == 0 {
		cfg.MaxTorrents = DefaultMaxTorrents
	}
	if cfg.Token == "" {
		cfg.Token = newToken()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return cfg, nil
}

// sessionIdle returns the stream handler's session idle timeout: its
// default, or less when torrents go idle sooner.
func sessionIdle(idle time.Duration) time.Duration {
	if idle > 0 {
		return min(stream.DefaultIdleTimeout, idle)
	}
	return 0
}

// Handler returns the http.Handler of the server's routes (see the
// package doc). After Close it answers 503.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(s.serveHTTP)
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		w.Header().Set("Retry-After", "5")
		httpStatus(w, http.StatusServiceUnavailable)
		return
	}
	s.requests.Add(1)
	s.mu.Unlock()
	defer s.requests.Done()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()
	s.handler.ServeHTTP(w, r.WithContext(ctx))
}

// Host returns the torrent client and its storage, to add torrents and
// peers directly: a torrent added there is served, and kept until dropped.
func (s *Server) Host() *host.Client { return s.hc }

// Add adds the torrent of spec, unless the client has it, and keeps it
// until Close: it is never dropped as idle. A torrent whose info is known
// (spec.InfoBytes) and whose pieces do not fit in the capacity is refused
// with an error wrapping ErrPieceTooLarge.
func (s *Server) Add(spec *torrent.TorrentSpec) (*torrent.Torrent, error) {
	var info *metainfo.Info
	if len(spec.InfoBytes) > 0 {
		var i metainfo.Info
		if err := bencode.Unmarshal(spec.InfoBytes, &i); err != nil {
			return nil, fmt.Errorf("server: reading the info of %s: %w", spec.InfoHash.HexString(), err)
		}
		info = &i
	}
	t, err := s.app.open(spec, info, meta{}, true)
	if err != nil {
		return nil, err
	}
	s.app.release(t)
	return t, nil
}

// Close ends the streaming responses and the playback sessions, makes
// later requests answer 503, ends the waits of requests in flight and
// waits for them, stops the idle reaper, and closes the torrent client and
// the storage. It returns what closing the client and the storage
// returned. It is idempotent.
//
// When the Handler is served by an http.Server, call Close concurrently
// with its Shutdown: Shutdown waits for the streaming responses, which
// only Close ends.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.h.Close()
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.cancel()
		s.requests.Wait()
		s.app.close()
		s.closeErr = s.hc.Close()
	})
	return s.closeErr
}

// Shutdown shuts hs, the http.Server serving s.Handler, down and closes s,
// concurrently: hs stops accepting and waits for its responses while s
// ends the streaming ones. When ctx ends first, hs's connections are
// closed. It returns the errors of both, joined; http.Server.Serve has
// returned http.ErrServerClosed by then.
func (s *Server) Shutdown(ctx context.Context, hs *http.Server) error {
	shut := make(chan error, 1)
	go func() { shut <- hs.Shutdown(ctx) }()
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	var err error
	if e := <-shut; e != nil {
		hs.Close()
		err = fmt.Errorf("shutting the HTTP server down: %w", e)
	}
	return errors.Join(err, <-closed)
}
