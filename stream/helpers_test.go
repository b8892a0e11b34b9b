package stream

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/anacrolix/torrent"

	"github.com/memtorrent/memtorrent/host"
	"github.com/memtorrent/memtorrent/internal/testutil"
	"github.com/memtorrent/memtorrent/storage/memory"
)

func TestMain(m *testing.M) { testutil.VerifyTestMain(m) }

// transferTimeout bounds one HTTP transfer of a test file (a few MiB over
// loopback take well under a second).
const transferTimeout = time.Minute

// env is a leecher over memory storage, a Handler on it and an HTTP server.
type env struct {
	t   testing.TB
	hc  *host.Client // drop torrents with hc.Drop
	mem *memory.Client
	cl  *torrent.Client
	h   *Handler
	srv *httptest.Server
}

// newEnv starts a leecher whose pieces live in capacity bytes of memory and
// serves a Handler with opts over it (testutil.Serve), the leecher's
// host.Client its Watchdog unless opts has one. Everything is closed
// at the end of the test: the Handler first, then the server, the client
// and the storage.
func newEnv(t testing.TB, capacity int64, opts Options) *env {
	t.Helper()
	s := testutil.Serve(t, capacity, func(hc *host.Client, logger *slog.Logger) (*Handler, error) {
		if opts.Logger == nil {
			opts.Logger = logger
		}
		if opts.Watchdog == nil {
			opts.Watchdog = hc
		}
		return New(hc.Torrent, hc.Storage, opts)
	})
	return &env{t: t, hc: s.Host, mem: s.Mem, cl: s.Client, h: s.Handler, srv: s.Server}
}

// seed starts a seeder of spec and adds its torrent to the leecher.
func (e *env) seed(spec testutil.Spec) *torrent.Torrent {
	e.t.Helper()
	s := testutil.NewSeeder(e.t, spec)
	return testutil.AddTorrent(e.t, e.cl, s.MetaInfo, s)
}

// unseeded adds spec's torrent to the leecher with no peer: its info is
// known, its data never arrives, so reads block until cancelled.
func (e *env) unseeded(spec testutil.Spec) *torrent.Torrent {
	e.t.Helper()
	mi, err := spec.MetaInfo()
	if err != nil {
		e.t.Fatal(err)
	}
	return testutil.AddTorrent(e.t, e.cl, mi)
}

// do sends a request to the server with extra headers (name, value pairs)
// and returns the response with its body read, failing the test on a
// transport error.
func (e *env) do(method, path string, hdr ...string) (*http.Response, []byte) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.t.Context(), transferTimeout)
	defer cancel()
	resp, body, err := testutil.Fetch(ctx, e.srv.Client(), method, e.srv.URL+path, nil, hdr...)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp, body
}

// get is do for GET, checking the status.
func (e *env) get(path string, want int, hdr ...string) (*http.Response, []byte) {
	e.t.Helper()
	resp, body := e.do(http.MethodGet, path, hdr...)
	if resp.StatusCode != want {
		e.t.Fatalf("GET %s %q: status %d; want %d (body %.100q)", path, hdr, resp.StatusCode, want, body)
	}
	return resp, body
}

// status returns /status/{ih} decoded.
func (e *env) status(t *torrent.Torrent) TorrentStatus {
	e.t.Helper()
	_, body := e.get("/status/"+t.InfoHash().HexString(), http.StatusOK)
	var ts TorrentStatus
	if err := json.Unmarshal(body, &ts); err != nil {
		e.t.Fatalf("decoding status: %v\n%s", err, body)
	}
	return ts
}

// streamPath is the stream URL path of file i of t.
func streamPath(t *torrent.Torrent, i int) string {
	return "/stream/" + t.InfoHash().HexString() + "/" + strconv.Itoa(i)
}

// busy returns the number of busy sessions of a status.
func busy(ts TorrentStatus) (n int) {
	for _, s := range ts.Sessions {
		if s.Busy {
			n++
		}
	}
	return n
}

// pending is a request running in its own goroutine.
type pending struct {
	cancel context.CancelFunc
	done   chan error // receives the transport's error (nil with a response), once
}

// start sends GET path from a goroutine and returns at once.
func (e *env) start(path string) *pending {
	e.t.Helper()
	return e.startRange(path, -1)
}

// startRange is start with a Range from off to the end, or none if off is
// negative.
func (e *env) startRange(path string, off int64) *pending {
	e.t.Helper()
	ctx, cancel := context.WithCancel(e.t.Context())
	rng := ""
	if off >= 0 {
		rng = "bytes=" + strconv.FormatInt(off, 10) + "-"
	}
	req, err := testutil.NewRequest(ctx, http.MethodGet, e.srv.URL+path, nil, "Range", rng)
	if err != nil {
		e.t.Fatal(err)
	}
	p := &pending{cancel: cancel, done: make(chan error, 1)}
	client := e.srv.Client()
	go func() {
		resp, err := client.Do(req)
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		p.done <- err
	}()
	e.t.Cleanup(cancel)
	return p
}

// wait waits for the request's goroutine and returns its error.
func (p *pending) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-p.done:
		return err
	case <-time.After(transferTimeout):
		t.Fatalf("request still running after %v", transferTimeout)
		return nil
	}
}
