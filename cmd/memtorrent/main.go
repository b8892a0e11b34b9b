// Command memtorrent streams torrents from memory over HTTP: a player
// fetches a file while it downloads, and no piece byte is ever written to
// disk. Storage is github.com/memtorrent/memtorrent/storage/memory under
// one capacity, served through github.com/memtorrent/memtorrent/stream.
//
// Usage:
//
//	memtorrent serve [flags] [.torrent file | magnet URI | info hash]...
//	memtorrent demo [flags] [--file PATH] [--size N]
//
// serve adds the torrents, prints the URL of each playable file and
// serves them until interrupted, with the media server of package
// github.com/memtorrent/memtorrent/server: more torrents are added at run
// time over HTTP (its API, and TorrServer's for Kodi and Lampa) and
// dropped when idle; a front page at / and a status page per torrent at
// /ui/{infohash}. demo needs no network: it makes a torrent of a file (or
// of a video it generates), seeds it from an in-process seeder on loopback
// and serves it like serve does. Listening beyond loopback needs -auth or
// -allow.
//
// SIGINT or SIGTERM shuts down in order: the HTTP server stops accepting,
// the media server ends its streams, then closes its torrent client and
// memory storage. Bad input (an unknown flag, an unreadable .torrent,
// an invalid magnet URI, a capacity smaller than one piece, a port in use)
// exits with status 2 after a one-line message; other failures with 1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := runMain(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// runMain runs the command with args and returns its exit status: 0, 1 when
// serving failed, 2 for bad input.
func runMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseArgs(args, stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "memtorrent: %v\n", err)
		return 2
	}
	cfg.Out, cfg.Err = stdout, stderr
	cfg.Terminal = isTerminal(stderr)
	limitMemory(cfg, os.Getenv)
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintf(stderr, "memtorrent: %v\n", err)
		if errors.Is(err, errBadInput) {
			return 2
		}
		return 1
	}
	return 0
}
