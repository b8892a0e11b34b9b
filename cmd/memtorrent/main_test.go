package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/memtorrent/memtorrent/internal/testutil"
)

// binDir holds the memtorrent binary the tests build, once, and is removed
// after the tests.
var binDir string

var (
	buildOnce sync.Once
	buildErr  error
	buildOut  []byte
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "memtorrent-test-bin-")
	if err != nil {
		panic(err)
	}
	binDir = dir
	testutil.VerifyTestMain(m, goleak.Cleanup(func(int) { os.RemoveAll(dir) }))
}

// binary returns the path of the memtorrent binary, building it on first
// use. It builds without -race: the in-process tests cover the races.
func binary(t *testing.T) string {
	t.Helper()
	path := filepath.Join(binDir, "memtorrent")
	buildOnce.Do(func() {
		cmd := exec.Command("go", "build", "-o", path, ".")
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("go build: %v\n%s", buildErr, buildOut)
	}
	return path
}

// process is a memtorrent process the test started.
type process struct {
	*testutil.Child
	stderr *testutil.Buffer
}

// startServer runs the binary with args and returns once it printed
// its listening address.
func startServer(t *testing.T, args ...string) (*process, string) {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	s := &process{stderr: &testutil.Buffer{}}
	cmd.Stderr = s.stderr
	t.Cleanup(func() { // runs after the child's: the process has exited
		if t.Failed() {
			t.Logf("memtorrent stderr:\n%s", s.stderr.String())
		}
	})
	s.Child = testutil.StartChild(t, cmd, nil)
	base := s.waitLine(t, listenLine)
	return s, base
}

// waitLine returns the first submatch of the next stdout line matching re.
func (s *process) waitLine(t *testing.T, re *regexp.Regexp) string {
	t.Helper()
	return s.WaitLine(t, re)[1]
}

// stop sends sig and checks that the process exits with status 0 within
// timeout.
func (s *process) stop(t *testing.T, sig os.Signal, timeout time.Duration) {
	t.Helper()
	s.Stop(t, sig, timeout)
}

// httpClient keeps no connection between tests, so that no client
// goroutine outlives a test.
var httpClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// get fetches url and returns the body, failing the test on error or a
// status other than 200 or 206.
func get(t *testing.T, ctx context.Context, url string, header ...string) []byte {
	t.Helper()
	b, err := getErr(ctx, url, header...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// getErr fetches url and returns the body, or an error for a status other
// than 200 or 206.
func getErr(ctx context.Context, url string, header ...string) ([]byte, error) {
	resp, b, err := testutil.Fetch(ctx, httpClient, http.MethodGet, url, nil, header...)
	if err == nil && resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusPartialContent {
		err = fmt.Errorf("GET %s: status %d; want 200 or 206", url, resp.StatusCode)
	}
	return b, err
}

// getStream fetches the stream url like get, and on failure logs the
// torrent's /status and /ui state JSON before failing the test.
func getStream(t *testing.T, ctx context.Context, streamURL string, header ...string) []byte {
	t.Helper()
	b, err := getErr(ctx, streamURL, header...)
	if err == nil {
		return b
	}
	dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if i := strings.Index(streamURL, "/stream/"); i >= 0 && len(streamURL) >= i+len("/stream/")+40 {
		base, ih := streamURL[:i], streamURL[i+len("/stream/"):i+len("/stream/")+40]
		st, _ := getErr(dctx, base+"/status/"+ih)
		ui, _ := getErr(dctx, base+"/ui/"+ih+"/state")
		t.Logf("status:\n%s\nstate:\n%s", st, ui)
	}
	t.Fatal(err)
	return nil
}
