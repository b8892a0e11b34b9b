package main

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/memtorrent/memtorrent/internal/testutil"
)

// TestServeMagnetInProcess serves a magnet URI whose x.pe names a loopback
// seeder: serve fetches the metadata, prints the URLs, streams the
// file and, when its context ends, returns nil with no goroutine left.
func TestServeMagnetInProcess(t *testing.T) {
	// Registered first, so it runs after the seeder's clean-up.
	t.Cleanup(func() { testutil.VerifyNoLeaks(t) })
	spec := testutil.Spec{Name: "clip.mp4", Length: 3<<20 + 777, PieceLength: 64 << 10, Seed: 3}
	_, magnet := seedSpec(t, spec)
	stderr := &testutil.Buffer{}
	cfg := serveConfig(magnet, 1<<20, 512<<10)
	cfg.Upload, cfg.Err = true, stderr
	p := startInProcess(t, cfg)
	urls := p.waitURLs(t)
	rctx, rcancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer rcancel()
	testutil.Equal(t, getStream(t, rctx, urls["stream"]), testutil.Content(spec))
	if pl := string(get(t, rctx, urls["playlist"])); !strings.Contains(pl, "clip.mp4") {
		t.Errorf("playlist %q; want it to name clip.mp4", pl)
	}
	state := string(get(t, rctx, urls["status"]+"/state"))
	if !strings.Contains(state, `"pieces":"`) || !strings.Contains(state, `"main":0`) {
		t.Errorf("state %s; want a piece map and main file 0", state)
	}
	p.stop(t)
	if !strings.Contains(stderr.String(), "fetching metadata of") {
		t.Errorf("stderr %q; want a line on fetching metadata", stderr.String())
	}
}

// TestServeMagnetPieceTooLarge serves a magnet URI whose info, once
// fetched, shows pieces larger than the capacity: run must fail with a
// bad-input error naming the problem instead of fetching the metadata
// forever.
func TestServeMagnetPieceTooLarge(t *testing.T) {
	t.Cleanup(func() { testutil.VerifyNoLeaks(t) })
	spec := testutil.Spec{Name: "big.mkv", Length: 2 << 20, PieceLength: 1 << 20, Seed: 4}
	_, magnet := seedSpec(t, spec)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cfg := serveConfig(magnet, 512<<10, 256<<10)
	cfg.Out, cfg.Err = io.Discard, io.Discard
	err := run(ctx, cfg)
	const want = "-capacity 512 KiB is smaller than one piece of big.mkv (1.0 MiB)"
	if !errors.Is(err, errBadInput) || err.Error() != want {
		t.Errorf("run: %v; want %q wrapping errBadInput", err, want)
	}
}

// serveConfig returns the configuration of serve for magnet on a loopback
// client with the given capacity and readahead, logging nothing.
func serveConfig(magnet string, capacity, readahead int64) config {
	return config{
		Command: "serve", Sources: []string{magnet}, Capacity: capacity, Listen: "127.0.0.1:0",
		Readahead: readahead, LogLevel: 100, loopback: true,
	}
}
