package server

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/memtorrent/memtorrent/internal/testutil"
)

// FuzzLink sends fuzzed link parameters to every route that takes one,
// on a server on loopback, offline: no request may crash it, and a link
// parseLink refuses must never add a torrent.
func FuzzLink(f *testing.F) {
	for _, s := range []string{
		"", "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567",
		"magnet:?xt=urn:btih:zz", "magnet:?dn=x&tr=udp://x", "0123456789abcdef0123456789abcdef01234567",
		"CIRVKZGSBHQ5D3KFLGVOENPUTQX2JTTG", "http://127.0.0.1/x.torrent", "../../etc/passwd",
		"magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&x.pe=127.0.0.1:1",
		"magnet:?xt=urn:btmh:1220" + strings.Repeat("ab", 32), "\x00", "magnet:%zz",
	} {
		f.Add(s)
	}
	base := startServer(f, Config{
		Client: testutil.Config(f), Capacity: 1 << 20, Readahead: 256 << 10,
		Idle: time.Minute, InfoTimeout: time.Millisecond,
	})
	send := func(t *testing.T, method, path, body string) []byte {
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		if _, err := copyBody(&b, resp); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		if resp.StatusCode >= 500 && resp.StatusCode != 504 && resp.StatusCode != 503 {
			t.Errorf("%s %s: status %d", method, path, resp.StatusCode)
		}
		return []byte(b.String())
	}
	f.Fuzz(func(t *testing.T, link string) {
		js, _ := json.Marshal(map[string]string{"action": "add", "link": link})
		q := url.QueryEscape(link)
		send(t, "POST", "/torrents", string(js))
		send(t, "POST", "/api/torrents", string(js))
		send(t, "GET", "/stream?link="+q+"&stat", "")
		send(t, "GET", "/stream/x?link="+q+"&index=1&play", "")
		send(t, "GET", "/play?link="+q, "")
		var list []Torrent
		if err := json.Unmarshal(send(t, "GET", "/api/torrents", ""), &list); err != nil {
			t.Fatal(err)
		}
		if _, err := parseLink(link); err != nil && len(list) > 0 {
			t.Errorf("link %q refused, yet %d torrents were added", link, len(list))
		}
		send(t, "POST", "/torrents", `{"action":"wipe"}`)
	})
}

// copyBody copies resp's body to b.
func copyBody(b *strings.Builder, resp *http.Response) (int64, error) {
	return io.Copy(b, resp.Body)
}
