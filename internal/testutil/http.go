package testutil

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/anacrolix/torrent"

	"github.com/memtorrent/memtorrent/host"
	"github.com/memtorrent/memtorrent/storage/memory"
)

// NewRequest returns a request of method for url, bound to ctx, with body
// (nil for none) and the header fields given as name, value pairs; a field
// whose value is "" is not set. It returns an error for an odd number of
// header arguments or a URL that does not parse. It is safe for concurrent
// use.
func NewRequest(ctx context.Context, method, url string, body io.Reader, header ...string) (*http.Request, error) {
	if len(header)%2 != 0 {
		return nil, fmt.Errorf("%s %s: header fields %q: want name, value pairs", method, url, header)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return nil, err
	}
	for i := 0; i < len(header); i += 2 {
		if header[i+1] != "" {
			req.Header.Set(header[i], header[i+1])
		}
	}
	return req, nil
}

// Fetch sends NewRequest(ctx, method, url, body, header...) through client
// (http.DefaultClient when nil), reads the whole response body and closes
// it. The status is the caller's to check. It returns an error naming the
// request if the request cannot be made or sent, or if reading the body
// fails; with a read error it returns the response and the bytes read so
// far. It is safe for concurrent use when client is.
func Fetch(ctx context.Context, client *http.Client, method, url string, body io.Reader, header ...string) (*http.Response, []byte, error) {
	req, err := NewRequest(ctx, method, url, body, header...)
	if err != nil {
		return nil, nil, err
	}
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp, b, fmt.Errorf("%s %s: reading the body after %d bytes: %w", method, url, len(b), err)
	}
	return resp, b, nil
}

// Served is a leecher over memory storage, an HTTP handler on it and a
// loopback httptest server of that handler, made by Serve. Its fields
// never change.
type Served[H http.Handler] struct {
	Host    *host.Client // Mem and Client; drop torrents with Host.Drop
	Mem     *memory.Client
	Client  *torrent.Client
	Handler H
	Server  *httptest.Server
}

// Serve starts NewMemLeecher with capacity bytes of memory (its
// configuration Config(tb, cfgOpts...)) and serves, on an httptest server,
// the handler that newHandler makes from the leecher (its host.Client:
// torrent client and storage) and a logger writing Warn and above to the
// test log. It fails the test
// if newHandler returns an error. Everything is closed when the test
// ends: the handler first (its Close error fails the test), then the
// server, the client and the storage. Call it from the test goroutine.
//
// The handler is a type parameter so that tests of package stream, which
// this package cannot import, serve a stream.Handler through it too.
func Serve[H interface {
	http.Handler
	Close() error
}](tb testing.TB, capacity int64, newHandler func(*host.Client, *slog.Logger) (H, error), cfgOpts ...func(*torrent.ClientConfig)) *Served[H] {
	tb.Helper()
	hc := NewMemLeecher(tb, memory.Options{Capacity: capacity}, cfgOpts...)
	h, err := newHandler(hc, Logger(tb, slog.LevelWarn))
	if err != nil {
		tb.Fatalf("creating the handler: %v", err)
	}
	srv := httptest.NewServer(h)
	tb.Cleanup(srv.Close)
	tb.Cleanup(func() {
		if err := h.Close(); err != nil {
			tb.Errorf("closing the handler: %v", err)
		}
	})
	return &Served[H]{Host: hc, Mem: hc.Storage, Client: hc.Torrent, Handler: h, Server: srv}
}
