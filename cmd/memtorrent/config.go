package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/memtorrent/memtorrent/server"
	"github.com/memtorrent/memtorrent/stream"
)

// config is what the command line asks for.
type config struct {
	Command string // "serve" or "demo"

	// Both commands.
	Capacity   int64      // bytes of piece data held in memory
	Listen     string     // HTTP address
	Lookbehind int64      // lookbehind budget in bytes; 0 the stream default, < 0 off
	Readahead  int64      // one session's readahead cap in bytes
	Verify     string     // stream.Options.Verify: which bytes reach a player
	LeafHashes bool       // server.Config.LeafHashes: per-block verification of v2 torrents
	TopUps     bool       // !server.Config.NoTopUp: with LeafHashes, request queues topped up
	EarlyFetch bool       // !server.Config.NoEarlyFetch: with LeafHashes, a reader's chunks fetched first
	LogLevel   slog.Level // of the torrent client and the stream handler

	// The server (both commands): see server.Config.
	Auth        string         // "user:password" for HTTP Basic; "" none
	Allow       []netip.Prefix // client addresses allowed; nil any
	Token       string         // the stream URLs' token; "" a random one
	Idle        time.Duration  // drop a torrent added at run time after this long unused; 0 never
	InfoTimeout time.Duration  // how long a request waits for a torrent's metadata
	Offline     bool           // peers on loopback only: no DHT, trackers, PEX
	// See docs/security.md.
	Hostnames    []string      // Host names answered besides IP literals and localhost
	CORSOrigins  []string      // origins of web apps that may call the server
	MaxTorrents  int           // most torrents held; 0 no cap
	AuthBan      time.Duration // how long an address is refused after AuthFailures
	AuthFailures int           // failed authentications from an address within 10 minutes that ban it

	// serve.
	Sources  []string // .torrent files, magnet URIs or info hashes; may be empty
	PeerPort int      // BitTorrent listen port; 0 picks one
	Upload   bool     // upload to peers (cfg.Seed) or not at all (cfg.NoUpload)
	DHT      bool     // find peers through the DHT; false sets cfg.NoDHT
	// loopback makes serve's client use demo's loopback-only configuration
	// (with PeerPort and Upload): tests set it, no flag does.
	loopback bool

	// demo.
	DemoFile string // the file to seed; "" for generated data
	DemoSize int64  // bytes of generated data when DemoFile is ""

	Out      io.Writer // URLs
	Err      io.Writer // progress, logs and errors
	Terminal bool      // Err is a terminal: draw progress bars
}

// Defaults of the flags.
const (
	defaultCapacity = 256 << 20
	defaultListen   = "127.0.0.1:8080"
	defaultPeerPort = 42069
	defaultDemoSize = 64 << 20
	defaultIdle     = 5 * time.Minute
	defaultInfoWait = 30 * time.Second
)

const usage = `usage:
  memtorrent serve [flags] [.torrent file | magnet URI | info hash]...
  memtorrent demo [flags] [-file PATH] [-size N]

serve streams the torrents from memory and prints the URL of each playable
file; more are added over HTTP (the front page at /, the API at /api/torrents,
TorrServer's API for Kodi and Lampa). demo seeds a file (or generated data) from an in-process seeder on
loopback and streams it the same way, with no network. Both serve a status
page at /ui/{infohash}. Sizes take units: 512MiB, 1GB, 64M.
Run 'memtorrent serve -h' or 'memtorrent demo -h' for the flags.
`

// parseArgs returns the configuration that args ask for. It returns
// flag.ErrHelp after printing the usage to stderr for -h, and a one-line
// error naming the problem for bad input.
func parseArgs(args []string, stderr io.Writer) (config, error) {
	if len(args) == 0 {
		return config{}, errors.New("missing command: serve or demo (run 'memtorrent -h')")
	}
	cfg := config{
		Command:      args[0],
		Capacity:     defaultCapacity,
		Listen:       defaultListen,
		Readahead:    32 << 20,
		Verify:       stream.VerifyPlayhead,
		LeafHashes:   true,
		TopUps:       true,
		EarlyFetch:   true,
		LogLevel:     slog.LevelWarn,
		PeerPort:     defaultPeerPort,
		Upload:       true,
		DHT:          true,
		DemoSize:     defaultDemoSize,
		Idle:         defaultIdle,
		InfoTimeout:  defaultInfoWait,
		MaxTorrents:  server.DefaultMaxTorrents,
		AuthBan:      server.DefaultLoginBan,
		AuthFailures: server.DefaultLoginFailures,
	}
	switch cfg.Command {
	case "serve", "demo":
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stderr, usage)
		return config{}, flag.ErrHelp
	default:
		return config{}, fmt.Errorf("unknown command %q: want serve or demo", cfg.Command)
	}
	fs := flag.NewFlagSet("memtorrent "+cfg.Command, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Var(sizeFlag{&cfg.Capacity}, "capacity", "`size` of the memory for piece data, all torrents together")
	fs.StringVar(&cfg.Listen, "listen", cfg.Listen, "HTTP listen `address` (port 0 picks one; the address is printed)")
	fs.Var(lookbehindFlag{&cfg.Lookbehind}, "lookbehind", "lookbehind budget kept behind the playheads: a `size`, auto (a quarter of -capacity) or off")
	fs.Var(sizeFlag{&cfg.Readahead}, "readahead", "most readahead of one playback session, a `size`")
	fs.StringVar(&cfg.Verify, "verify", cfg.Verify, "which bytes reach a player: playhead (the playhead's piece chunk by chunk before its hash check; a piece that then fails is counted, logged and fetched again) or strict (only pieces that passed their hash check)")
	fs.BoolVar(&cfg.TopUps, "top-ups", cfg.TopUps, "with -leaf-hashes: keep each plaintext connection's request queue from running dry between the torrent library's request rounds (false: leave the rounds, for measuring)")
	fs.BoolVar(&cfg.EarlyFetch, "early-fetch", cfg.EarlyFetch, "with -leaf-hashes and a player reading before the hash check (-verify playhead, or v2 blocks): fetch the chunks at each player first, ahead of the rest of its piece, which the torrent library fetches in order from the piece's first (false: leave the order, for measuring)")
	fs.BoolVar(&cfg.LeafHashes, "leaf-hashes", cfg.LeafHashes, "for v2 and hybrid torrents, ask peers for the hashes of the 16 KiB blocks ahead of each player and serve each block verified as it arrives (plaintext TCP connections; the server listens and dials TCP itself and tries plaintext before encryption); the same tap keeps each plaintext connection's request queue from running dry")
	fs.TextVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "log `level`: debug, info, warn or error")
	fs.StringVar(&cfg.Auth, "auth", "", "require HTTP Basic `user:password` on every request (stream URLs may carry the token instead)")
	fs.Var(allowFlag{&cfg.Allow}, "allow", "serve only clients in these `CIDRs` (comma-separated addresses or prefixes)")
	fs.StringVar(&cfg.Token, "token", "", "the `token` stream and playlist URLs carry (default: random at each start)")
	fs.DurationVar(&cfg.Idle, "idle", cfg.Idle, "drop a torrent added over HTTP after this `duration` without a player (0 never)")
	fs.DurationVar(&cfg.InfoTimeout, "metadata-timeout", cfg.InfoTimeout, "how long a request waits for a torrent's metadata before 504 (`duration`)")
	fs.Var(listFlag{&cfg.Hostnames}, "hostnames", "answer requests to these host `names` too (comma-separated; .example.com or *.example.com for every name under it, * any), besides IP addresses and localhost")
	fs.Var(listFlag{&cfg.CORSOrigins}, "cors-origin", "let the pages of these `origins` (comma-separated scheme://host[:port]) call the server")
	fs.IntVar(&cfg.MaxTorrents, "max-torrents", cfg.MaxTorrents, "most torrents the server holds; adding more gets 507 (0 no cap)")
	fs.DurationVar(&cfg.AuthBan, "auth-ban", cfg.AuthBan, "refuse an address for this `duration` after -auth-failures failed authentications within 10 minutes")
	fs.IntVar(&cfg.AuthFailures, "auth-failures", cfg.AuthFailures, "failed authentications (wrong credentials or tokens) from one address within 10 minutes that ban it for -auth-ban")
	fs.BoolVar(&cfg.Offline, "offline", false, "no DHT, trackers or PEX; peers only on 127.0.0.1 (from a magnet's x.pe), for tests")
	if cfg.Command == "serve" {
		fs.IntVar(&cfg.PeerPort, "peer-port", cfg.PeerPort, "BitTorrent listen `port` (0 picks one)")
		fs.BoolVar(&cfg.Upload, "upload", cfg.Upload, "upload to peers; -upload=false sends nothing")
		fs.BoolVar(&cfg.DHT, "dht", cfg.DHT, "find peers through the DHT; -dht=false for trackers and magnet peers only")
	} else {
		fs.StringVar(&cfg.DemoFile, "file", "", "seed the file at `path` (an MP4 plays in the status page) instead of generated data")
		fs.Var(sizeFlag{&cfg.DemoSize}, "size", "`size` of the generated data when -file is not given")
	}
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage, "\nflags of ", fs.Name(), ":\n")
		fs.PrintDefaults()
	}
	rest := args[1:]
	for {
		// Flags may follow the positional arguments.
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.SetOutput(stderr)
				fs.Usage()
			}
			return config{}, err
		}
		if fs.NArg() == 0 {
			break
		}
		cfg.Sources = append(cfg.Sources, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case cfg.Capacity <= 0:
		return config{}, errors.New("-capacity must be more than 0")
	case cfg.Readahead <= 0:
		return config{}, errors.New("-readahead must be more than 0")
	case cfg.Verify != stream.VerifyPlayhead && cfg.Verify != stream.VerifyStrict:
		return config{}, fmt.Errorf("-verify %q: want %s or %s", cfg.Verify, stream.VerifyPlayhead, stream.VerifyStrict)
	case cfg.Listen == "":
		return config{}, errors.New("-listen must not be empty")
	case cfg.PeerPort < 0 || cfg.PeerPort > 65535:
		return config{}, fmt.Errorf("-peer-port %d is not a port", cfg.PeerPort)
	case cfg.Command == "demo" && len(cfg.Sources) > 0:
		return config{}, fmt.Errorf("demo takes no arguments, got %q (use -file PATH)", cfg.Sources[0])
	case cfg.Command == "demo" && set["file"] && set["size"]:
		return config{}, errors.New("demo: -file and -size exclude each other")
	case cfg.DemoSize <= 0:
		return config{}, errors.New("-size must be more than 0")
	case cfg.Idle < 0:
		return config{}, errors.New("-idle must not be negative")
	case cfg.InfoTimeout <= 0:
		return config{}, errors.New("-metadata-timeout must be more than 0")
	case set["auth"] && !server.ValidAuth(cfg.Auth):
		return config{}, errors.New("-auth must be user:password with a non-empty user and password")
	case set["token"] && !server.ValidToken(cfg.Token):
		return config{}, errors.New("-token must be 16 to 128 letters, digits, '-' or '_'")
	case cfg.MaxTorrents < 0:
		return config{}, errors.New("-max-torrents must not be negative")
	case cfg.AuthBan <= 0:
		return config{}, errors.New("-auth-ban must be more than 0")
	case cfg.AuthFailures <= 0:
		return config{}, errors.New("-auth-failures must be more than 0")
	}
	if _, err := server.NewGuard(guardConfig(cfg)); err != nil {
		return config{}, err
	}
	if err := server.CheckExposure(cfg.Listen, cfg.Auth, cfg.Allow); err != nil {
		return config{}, err
	}
	cfg.loopback = cfg.Offline
	return cfg, nil
}

// listFlag is a flag.Value of comma-separated strings; each use adds to
// the list.
type listFlag struct{ p *[]string }

func (f listFlag) String() string {
	if f.p == nil {
		return ""
	}
	return strings.Join(*f.p, ",")
}

func (f listFlag) Set(v string) error {
	for part := range strings.SplitSeq(v, ",") {
		if part = strings.TrimSpace(part); part != "" {
			*f.p = append(*f.p, part)
		}
	}
	return nil
}

// guardConfig returns the server.GuardConfig of cfg.
func guardConfig(cfg config) server.GuardConfig {
	return server.GuardConfig{Hostnames: cfg.Hostnames, CORSOrigins: cfg.CORSOrigins, Credentials: cfg.Auth != ""}
}

// sizeFlag is a flag.Value of a byte count with units (humanize.ParseBytes).
type sizeFlag struct{ p *int64 }

func (f sizeFlag) String() string {
	if f.p == nil {
		return ""
	}
	return humanize.IBytes(uint64(*f.p))
}

func (f sizeFlag) Set(s string) error {
	n, err := humanize.ParseBytes(s)
	if err != nil {
		return errors.New("not a size")
	}
	if n > 1<<62 {
		return errors.New("too large")
	}
	*f.p = int64(n)
	return nil
}

// lookbehindFlag is a sizeFlag that also takes auto (0) and off (-1).
type lookbehindFlag struct{ p *int64 }

func (f lookbehindFlag) String() string {
	switch {
	case f.p == nil:
		return ""
	case *f.p == 0:
		return "auto"
	case *f.p < 0:
		return "off"
	}
	return humanize.IBytes(uint64(*f.p))
}

func (f lookbehindFlag) Set(s string) error {
	switch strings.ToLower(s) {
	case "auto":
		*f.p = 0
		return nil
	case "off", "0":
		*f.p = -1
		return nil
	}
	return sizeFlag(f).Set(s)
}

// allowFlag is a flag.Value of comma-separated CIDR prefixes or addresses.
type allowFlag struct{ p *[]netip.Prefix }

func (f allowFlag) String() string {
	if f.p == nil {
		return ""
	}
	s := make([]string, len(*f.p))
	for i, p := range *f.p {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

func (f allowFlag) Set(v string) error {
	ps, err := server.ParseAllow(v)
	*f.p = append(*f.p, ps...)
	return err
}
