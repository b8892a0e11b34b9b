package testutil_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/memtorrent/memtorrent/internal/testutil"
)

func TestNewRequest(t *testing.T) {
	for _, tt := range []struct {
		name    string
		header  []string
		want    http.Header
		wantErr bool
	}{
		{"none", nil, http.Header{}, false},
		{"pairs", []string{"Range", "bytes=1-", "X-A", "b"}, http.Header{"Range": {"bytes=1-"}, "X-A": {"b"}}, false},
		{"empty value left out", []string{"Range", ""}, http.Header{}, false},
		{"odd", []string{"Range"}, nil, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, err := testutil.NewRequest(t.Context(), http.MethodGet, "http://127.0.0.1/x", nil, tt.header...)
			if tt.wantErr {
				if err == nil {
					t.Errorf("NewRequest(%q): no error", tt.header)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := req.Header; len(got) != len(tt.want) || got.Get("Range") != tt.want.Get("Range") || got.Get("X-A") != tt.want.Get("X-A") {
				t.Errorf("header: got %v; want %v", got, tt.want)
			}
		})
	}
}

// TestFetch reads a body and leaves the status to the caller.
func TestFetch(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
		w.Write([]byte(r.Header.Get("Range")))
	}))
	defer srv.Close()
	resp, body, err := testutil.Fetch(t.Context(), srv.Client(), http.MethodGet, srv.URL, nil, "Range", "bytes=3-")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusTeapot || string(body) != "bytes=3-" {
		t.Errorf("got %d %q; want 418 %q", resp.StatusCode, body, "bytes=3-")
	}
	if _, _, err := testutil.Fetch(t.Context(), nil, http.MethodGet, "http://127.0.0.1:1/", nil); err == nil {
		t.Error("Fetch from a closed port: no error")
	}
}
