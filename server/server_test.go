package server

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/memtorrent/memtorrent/internal/testutil"
)

// TestMain checks that no goroutine outlives the tests: a Server's
// goroutines (the reaper, the stream handler's, the client's) end at Close.
func TestMain(m *testing.M) {
	testutil.VerifyTestMain(m)
}

// TestRoutes checks that the server serves the stream handler's status
// routes itself (no path rewriting) and answers unknown paths and bad
// input with 4xx and the status text.
func TestRoutes(t *testing.T) {
	base := startServer(t, Config{Client: testutil.Config(t), Capacity: 1 << 20, InfoTimeout: time.Millisecond})
	for _, tc := range []struct {
		path string
		code int
		body string // prefix
	}{
		{"/status", 200, "{"},
		{"/metrics", 200, "# HELP"},
		{"/api/torrents", 200, "[]"},
		{"/echo", 200, "MatriX.memtorrent"},
		{"/stream/0123456789abcdef0123456789abcdef01234567/0", 404, "Not Found\n"},
		{"/stream/x", 404, "Not Found\n"},
		{"/playlist/0123456789abcdef0123456789abcdef01234567.m3u", 404, "Not Found\n"},
		{"/nowhere", 404, "Not Found\n"},
		{"/play?link=nonsense", 400, "Bad Request\n"},
	} {
		resp, err := http.Get(base + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code || !strings.HasPrefix(string(b), tc.body) {
			t.Errorf("GET %s: %d %.40q; want %d %q...", tc.path, resp.StatusCode, b, tc.code, tc.body)
		}
	}
}

// TestShutdown serves the Handler, shuts it down with Shutdown (which
// closes the Server), and checks that the Handler then answers 503.
func TestShutdown(t *testing.T) {
	s, err := New(Config{Client: testutil.Config(t), Capacity: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: s.Handler()}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/api/torrents")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx, hs); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-served; err != http.ErrServerClosed {
		t.Errorf("Serve: %v; want http.ErrServerClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close after Shutdown: %v; want nil", err)
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/api/torrents", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("after Close: %d; want 503", rec.Code)
	}
}
