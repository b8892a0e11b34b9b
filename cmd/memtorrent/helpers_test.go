package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/memtorrent/memtorrent/internal/swarm"
	"github.com/memtorrent/memtorrent/internal/testutil"
)

// This file holds the set-up the tests of the command share: media and
// seeders to serve, and run in process. The binary's own (build, start,
// wait for a printed line, stop) is in main_test.go.

// newClip writes a 10 s 320x240 H.264 MP4 with its index first
// (faststart), made by ffmpeg, as name in a new temporary directory, and
// returns its path. Without ffmpeg it skips the test (testutil.RequireProgram).
func newClip(t *testing.T, name string) string {
	t.Helper()
	ffmpeg := testutil.RequireProgram(t, "ffmpeg", "ffmpeg")
	path := filepath.Join(t.TempDir(), name)
	out, err := exec.Command(ffmpeg, "-loglevel", "error", "-f", "lavfi",
		"-i", "testsrc=duration=10:size=320x240:rate=25,noise=alls=10:allf=t", "-c:v", "libx264", "-b:v", "1500k",
		"-pix_fmt", "yuv420p", "-movflags", "+faststart", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	return path
}

// seedFile seeds the file at path, in a torrent of its own named name with
// 64 KiB pieces, from a loopback seeder over the file's directory, and
// returns the seeder and a magnet URI naming it in x.pe.
func seedFile(t *testing.T, path, name string) (*testutil.Seeder, string) {
	t.Helper()
	mi, err := swarm.FileMetaInfo(path, name, 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	s := testutil.SeedDir(t, filepath.Dir(path), mi, nil)
	return s, magnet(t, s)
}

// seedSpec seeds spec from a loopback seeder and returns the seeder and a
// magnet URI naming it in x.pe.
func seedSpec(t *testing.T, spec testutil.Spec) (*testutil.Seeder, string) {
	t.Helper()
	s := testutil.NewSeeder(t, spec)
	return s, magnet(t, s)
}

// magnet returns s.Magnet(), failing the test on its error.
func magnet(t *testing.T, s *testutil.Seeder) string {
	t.Helper()
	m, err := s.Magnet()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// listenLine matches the line run prints once it listens: the base URL.
var listenLine = regexp.MustCompile(`^listening on (http://\S+)$`)

// urlLine matches a URL run prints for a torrent: its kind and the URL.
var urlLine = regexp.MustCompile(`^  (status|playlist|stream): +(http://\S+)`)

// inProcess is run(ctx, cfg) in a goroutine of the test.
type inProcess struct {
	cancel context.CancelFunc
	lines  chan string // the lines run writes to cfg.Out
	done   chan error  // run's result, once
}

// startInProcess runs run(ctx, cfg) with cfg.Out set to a line writer,
// until stop or the end of the test (which waits for run to return).
func startInProcess(tb testing.TB, cfg config) *inProcess {
	ctx, cancel := context.WithCancel(context.Background())
	p := &inProcess{cancel: cancel, lines: make(chan string, 100), done: make(chan error, 1)}
	cfg.Out = &lineWriter{lines: p.lines}
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		p.done <- run(ctx, cfg)
		close(p.lines) // run has returned: nothing writes to cfg.Out any more
	}()
	tb.Cleanup(func() {
		cancel()
		<-ended
	})
	return p
}

// waitLine returns the submatches of the next line run prints that matches
// re. It fails the test if run returns first or after a minute.
func (p *inProcess) waitLine(tb testing.TB, re *regexp.Regexp) []string {
	tb.Helper()
	return testutil.WaitLine(tb, p.lines, re)
}

// waitURLs returns the URLs run printed by kind (urlLine), once it has
// printed a stream URL. It fails the test as waitLine does.
func (p *inProcess) waitURLs(tb testing.TB) map[string]string {
	tb.Helper()
	urls := map[string]string{}
	for urls["stream"] == "" {
		m := p.waitLine(tb, urlLine)
		urls[m[1]] = m[2]
	}
	return urls
}

// stop cancels run's context and fails the test unless run then returns
// nil within 10 s.
func (p *inProcess) stop(tb testing.TB) {
	tb.Helper()
	p.cancel()
	select {
	case err := <-p.done:
		if err != nil {
			tb.Errorf("run after cancel: %v; want nil", err)
		}
	case <-time.After(10 * time.Second):
		tb.Fatal("run still running 10 s after cancel")
	}
}
