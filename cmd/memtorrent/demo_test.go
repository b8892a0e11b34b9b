package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/memtorrent/memtorrent/internal/demovideo"
	"github.com/memtorrent/memtorrent/internal/testutil"
)

// writeTestFile writes size deterministic bytes to a new file in a
// temporary directory and returns its path and content.
func writeTestFile(t *testing.T, name string, size int64) (string, []byte) {
	t.Helper()
	data := testutil.Data(7, size)
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, data
}

var streamLine = regexp.MustCompile(`^  stream: +(http://\S+)`)

// TestDemoBinary runs `memtorrent demo -file` on a free port, fetches the
// file over HTTP (whole and a range), compares the bytes with the source
// and checks that SIGINT ends the process with status 0.
func TestDemoBinary(t *testing.T) {
	// Not a multiple of the piece length, so the last piece is short.
	path, want := writeTestFile(t, "movie.mkv", 6<<20+12345)
	s, base := startServer(t, "demo", "-file", path, "-listen", "127.0.0.1:0", "-capacity", "4MiB")
	if !strings.HasPrefix(base, "http://127.0.0.1:") || strings.HasSuffix(base, ":0") {
		t.Fatalf("listening on %s; want http://127.0.0.1:<port>", base)
	}
	url := s.waitLine(t, streamLine)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	testutil.Equal(t, getStream(t, ctx, url), want)
	testutil.Equal(t, getStream(t, ctx, url, "Range", "bytes=1000000-1999999"), want[1000000:2000000])
	status := get(t, ctx, strings.Replace(url, "/stream/", "/ui/", 1)[:len(base)+len("/ui/")+40])
	if !strings.Contains(string(status), "<canvas") {
		t.Errorf("status page has no <canvas>")
	}
	s.stop(t, os.Interrupt, 10*time.Second)
}

// TestDemoInProcess runs the demo of generated data inside the test,
// streams it, cancels the context and checks that run returns nil and
// leaves no goroutine behind.
func TestDemoInProcess(t *testing.T) {
	defer testutil.VerifyNoLeaks(t)
	cfg := config{
		Command:   "demo",
		Capacity:  2 << 20,
		Listen:    "127.0.0.1:0",
		Readahead: 1 << 20,
		LogLevel:  100, // nothing
		DemoSize:  5<<20 + 1,
		Err:       io.Discard,
	}
	p := startInProcess(t, cfg)
	url := p.waitURLs(t)["stream"]
	rctx, rcancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer rcancel()
	testutil.Equal(t, getStream(t, rctx, url), demoData(t, cfg.DemoSize))
	p.stop(t)
}

// demoData returns the generated demo data of size bytes.
func demoData(t *testing.T, size int64) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "data")
	if _, err := demovideo.WriteFile(path, size); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// lineWriter sends each line written to it on lines. It is safe for
// concurrent use as long as one Write carries whole lines, which
// fmt.Fprintf does.
type lineWriter struct{ lines chan string }

func (w *lineWriter) Write(p []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimSuffix(string(p), "\n"), "\n") {
		select {
		case w.lines <- l:
		default: // nobody reads any more
		}
	}
	return len(p), nil
}
