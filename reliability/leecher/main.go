// Command leecher is the child process of reliability's RSS test: the
// media server of package server, as memtorrent serve runs it, but
// confined to loopback
// (host.Loopback: no DHT, trackers or other traffic off the machine),
// so that a test can measure the RSS of a process that streams and does
// nothing else.
//
// It adds the torrent of -torrent, connects to the peers -peer, serves HTTP
// on 127.0.0.1 and prints one line, "stream <url of file 0> peer <its
// BitTorrent address>". It runs until
// its standard input closes; then, with -heap-profile, it writes a heap
// profile after a collection. It sets no memory limit unless -memlimit
// says so (serve sets one; importers of the library decide for
// themselves).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"

	"github.com/memtorrent/memtorrent/host"
	"github.com/memtorrent/memtorrent/server"
	"github.com/memtorrent/memtorrent/stream"
)

func main() {
	var opts options
	flag.Int64Var(&opts.capacity, "capacity", 32<<20, "capacity of the memory storage in `bytes`")
	flag.StringVar(&opts.torrent, "torrent", "", "`path` of the .torrent file")
	flag.StringVar(&opts.peer, "peer", "", "comma-separated `addresses` (host:port) of the seeders")
	flag.Int64Var(&opts.memLimit, "memlimit", 0, "soft memory limit in `bytes` (debug.SetMemoryLimit); 0 sets none")
	flag.StringVar(&opts.heapProfile, "heap-profile", "", "write a heap profile to `path` at exit")
	flag.Parse()
	if err := run(opts, os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "leecher: %v\n", err)
		os.Exit(1)
	}
}

type options struct {
	capacity    int64
	torrent     string
	peer        string
	memLimit    int64
	heapProfile string
}

// run streams until stdin closes.
func run(opts options, stdin io.Reader, stdout, stderr io.Writer) (err error) {
	if opts.torrent == "" || opts.peer == "" {
		return errors.New("-torrent and -peer are required")
	}
	if opts.memLimit > 0 {
		debug.SetMemoryLimit(opts.memLimit)
	}
	mi, err := metainfo.LoadFromFile(opts.torrent)
	if err != nil {
		return fmt.Errorf("loading %s: %w", opts.torrent, err)
	}
	var peers []torrent.PeerInfo
	for _, p := range strings.Split(opts.peer, ",") {
		addr, err := net.ResolveTCPAddr("tcp", p)
		if err != nil {
			return fmt.Errorf("-peer %s: %w", p, err)
		}
		peers = append(peers, torrent.PeerInfo{Addr: addr, Trusted: true})
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	dir, err := os.MkdirTemp("", "leecher-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg := torrent.NewDefaultClientConfig()
	host.Loopback(cfg)
	host.Apply(cfg)
	cfg.Seed = true // uploads, as memtorrent serve does by default
	cfg.DataDir = dir
	cfg.Slogger = logger
	s, err := server.New(server.Config{Client: cfg, Capacity: opts.capacity, Logger: logger})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.Close()
		return err
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err = errors.Join(err, s.Shutdown(ctx, srv))
	}()

	cl := s.Host().Torrent
	t, err := cl.AddTorrent(mi)
	if err != nil {
		return fmt.Errorf("adding the torrent: %w", err)
	}
	t.AddPeers(peers)
	select {
	case <-t.GotInfo():
	case <-time.After(30 * time.Second):
		return errors.New("no info after 30 s")
	}
	fmt.Fprintf(stdout, "stream http://%s%s peer %s\n", ln.Addr(), stream.FilePath(t.InfoHash(), 0), cl.ListenAddrs()[0])
	if _, err := io.Copy(io.Discard, stdin); err != nil {
		return fmt.Errorf("reading stdin: %w", err)
	}
	if opts.heapProfile != "" {
		runtime.GC()
		f, err := os.Create(opts.heapProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.WriteHeapProfile(f); err != nil {
			return fmt.Errorf("writing the heap profile: %w", err)
		}
	}
	return nil
}
