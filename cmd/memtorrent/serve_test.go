package main

import (
	"context"
	"errors"
	"io"
	"net/url"
	"regexp"
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
	seeder := testutil.NewSeeder(t, spec)
	info, err := seeder.MetaInfo.UnmarshalInfo()
	if err != nil {
		t.Fatal(err)
	}
	magnet := seeder.MetaInfo.Magnet(nil, &info).String() + "&x.pe=" +
		url.QueryEscape(seeder.Client.ListenAddrs()[0].String())

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out := &lineWriter{lines: make(chan string, 100)}
	stderr := &syncBuffer{}
	cfg := config{
		Command:   "serve",
		Sources:   []string{magnet},
		Capacity:  1 << 20,
		Listen:    "127.0.0.1:0",
		Readahead: 512 << 10,
		LogLevel:  100, // nothing
		Upload:    true,
		loopback:  true,
		Out:       out,
		Err:       stderr,
	}
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg) }()
	urls := map[string]string{}
	re := regexp.MustCompile(`^  (status|playlist|stream): +(http://\S+)`)
	for urls["stream"] == "" {
		select {
		case line := <-out.lines:
			if m := re.FindStringSubmatch(line); m != nil {
				urls[m[1]] = m[2]
			}
		case err := <-done:
			t.Fatalf("run returned before printing a stream URL: %v", err)
		case <-time.After(time.Minute):
			t.Fatal("timed out waiting for the stream URL")
		}
	}
	rctx, rcancel := context.WithTimeout(ctx, 20*time.Second)
	defer rcancel()
	testutil.Equal(t, getStream(t, rctx, urls["stream"]), testutil.Content(spec))
	if pl := string(get(t, rctx, urls["playlist"])); !strings.Contains(pl, "clip.mp4") {
		t.Errorf("playlist %q; want it to name clip.mp4", pl)
	}
	state := string(get(t, rctx, urls["status"]+"/state"))
	if !strings.Contains(state, `"pieces":"`) || !strings.Contains(state, `"main":0`) {
		t.Errorf("state %s; want a piece map and main file 0", state)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run after cancel: %v; want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run still running 10 s after cancel")
	}
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
	seeder := testutil.NewSeeder(t, spec)
	info, err := seeder.MetaInfo.UnmarshalInfo()
	if err != nil {
		t.Fatal(err)
	}
	magnet := seeder.MetaInfo.Magnet(nil, &info).String() + "&x.pe=" +
		url.QueryEscape(seeder.Client.ListenAddrs()[0].String())
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	err = run(ctx, config{
		Command:   "serve",
		Sources:   []string{magnet},
		Capacity:  512 << 10,
		Listen:    "127.0.0.1:0",
		Readahead: 256 << 10,
		LogLevel:  100,
		loopback:  true,
		Out:       io.Discard,
		Err:       io.Discard,
	})
	const want = "-capacity 512 KiB is smaller than one piece of big.mkv (1.0 MiB)"
	if !errors.Is(err, errBadInput) || err.Error() != want {
		t.Errorf("run: %v; want %q wrapping errBadInput", err, want)
	}
}
