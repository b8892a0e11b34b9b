package server

import (
	"net/http/httptest"
	"testing"
)

// startServer runs New(cfg) behind an httptest server on loopback and
// returns its base URL; both close at the end of the test.
func startServer(tb testing.TB, cfg Config) string {
	tb.Helper()
	s, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	tb.Cleanup(func() {
		closed := make(chan error, 1)
		go func() { closed <- s.Close() }()
		hs.Close()
		if err := <-closed; err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return hs.URL
}
