package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/memtorrent/memtorrent/server"
)

// TestAuthWildcard binds every address with -auth and connects over
// 127.0.0.1 only: without credentials (or with wrong ones) every endpoint
// answers 401 and its status text only; the stream and playlist URLs the
// API hands out open with their token alone; a wrong token is 403, even
// with credentials; the token opens nothing else.
func TestAuthWildcard(t *testing.T) {
	_, ih, magnet := seedClip(t)
	s, base := startServer(t, "serve", "-offline", "-peer-port", "0", "-listen", "0.0.0.0:0",
		"-capacity", "2MiB", "-readahead", "256KiB", "-auth", "kodi:s3cret",
		"-auth-failures", "1000") // it tries many wrong credentials; TestLoginBan tests the ban
	if !strings.HasPrefix(base, "http://127.0.0.1:") {
		t.Fatalf("base URL %s; want 127.0.0.1", base)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	good := apiClient{base: base, user: "kodi", pass: "s3cret"}
	code, body, _ := good.do(t, ctx, http.MethodPost, "/api/torrents?wait", strings.NewReader(`{"link":"`+magnet+`"}`),
		"Content-Type", "application/json")
	var at server.Torrent
	if code != 200 || json.Unmarshal(body, &at) != nil || len(at.Files) != 2 {
		t.Fatalf("add with credentials: %d %s; want 200 and 2 files", code, body)
	}
	streamURL, err := url.Parse(at.Files[1].Stream)
	if err != nil {
		t.Fatal(err)
	}
	token := streamURL.Query().Get("token")
	if len(token) < 16 {
		t.Fatalf("stream URL %s: token %q; want a token", at.Files[1].Stream, token)
	}
	if strings.Contains(s.stderr.String(), token) {
		t.Errorf("the token appears on stderr")
	}

	paths := []struct{ method, path, body string }{
		{"GET", "/", ""},
		{"GET", "/api/torrents", ""},
		{"GET", "/api/torrents/" + ih, ""},
		{"DELETE", "/api/torrents/" + ih, ""},
		{"POST", "/api/torrents", `{"link":"` + magnet + `"}`},
		{"GET", "/status", ""},
		{"GET", "/status/" + ih, ""},
		{"GET", "/metrics", ""},
		{"GET", "/ui/" + ih, ""},
		{"GET", "/ui/" + ih + "/state", ""},
		{"GET", "/stream/" + ih + "/1", ""},
		{"GET", "/playlist/" + ih + ".m3u", ""},
		{"GET", "/play?link=" + ih, ""},
		{"GET", "/stream?link=" + ih + "&stat", ""},
		{"GET", "/echo", ""},
		{"GET", "/playlist?hash=" + ih, ""},
		{"POST", "/torrents", `{"action":"list"}`},
		{"POST", "/torrents", `{"action":"drop","hash":"` + ih + `"}`},
		{"POST", "/cache", `{"action":"get","hash":"` + ih + `"}`},
		{"POST", "/settings", `{"action":"get"}`},
		{"POST", "/torrent/upload", ""},
	}
	for _, c := range []apiClient{{base: base}, {base: base, user: "kodi", pass: "wrong"}, {base: base, user: "x", pass: "s3cret"}} {
		for _, p := range paths {
			code, body, _ := c.do(t, ctx, p.method, p.path, strings.NewReader(p.body))
			if code != 401 || string(body) != "Unauthorized\n" {
				t.Errorf("%s %s as %q: %d %q; want 401 Unauthorized", p.method, p.path, c.user, code, body)
			}
		}
	}
	// The token opens what a player is handed, and nothing else.
	anon := apiClient{base: base}
	if code, _, _ := anon.do(t, ctx, "GET", "/api/torrents?token="+token, nil); code != 401 {
		t.Errorf("API with the token: %d; want 401", code)
	}
	if code, _, _ := anon.do(t, ctx, "GET", streamURL.RequestURI(), nil, "Range", "bytes=0-99"); code != 206 {
		t.Errorf("stream URL with its token: %d; want 206", code)
	}
	code, body, _ = anon.do(t, ctx, "GET", "/playlist/"+ih+".m3u?token="+token, nil)
	if code != 200 || !strings.Contains(string(body), "token="+token) {
		t.Errorf("playlist with the token: %d %q; want 200 and URLs with the token", code, body)
	}
	code, body, _ = anon.do(t, ctx, "GET", "/playlist?hash="+ih+"&token="+token, nil)
	if code != 200 || !regexp.MustCompile(`/stream/clip.mp4\?link=`+ih+`&index=2&play&token=`+token).Match(body) {
		t.Errorf("TorrServer playlist with the token: %d %q; want 200 and the stream URL", code, body)
	}
	for _, c := range []apiClient{anon, good} {
		for _, p := range []string{"/stream/" + ih + "/1?token=x" + token, "/playlist/" + ih + ".m3u?token=", "/api/torrents?token=bad"} {
			if code, body, _ := c.do(t, ctx, "GET", p, nil); code != 403 || string(body) != "Forbidden\n" {
				t.Errorf("GET %s (user %q): %d %q; want 403 Forbidden", p, c.user, code, body)
			}
		}
	}
	s.stop(t, syscall.SIGTERM, 10*time.Second)
}

// TestAllow binds every address with -allow: a client outside the
// prefixes gets 403 everywhere, one inside is served.
func TestAllow(t *testing.T) {
	for _, tc := range []struct {
		allow string
		want  int
	}{
		{"10.0.0.0/8,192.168.1.7", 403},
		{"10.0.0.0/8, 127.0.0.0/8", 200},
		{"::1,127.0.0.1", 200},
	} {
		t.Run(tc.allow, func(t *testing.T) {
			s, base := startServer(t, "serve", "-offline", "-peer-port", "0", "-listen", ":0", "-allow", tc.allow)
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			for _, p := range []string{"/", "/api/torrents", "/echo", "/status"} {
				code, body, _ := (apiClient{base: base}).do(t, ctx, "GET", p, nil)
				if code != tc.want || (code == 403 && string(body) != "Forbidden\n") {
					t.Errorf("GET %s: %d %q; want %d", p, code, body, tc.want)
				}
			}
			s.stop(t, syscall.SIGTERM, 10*time.Second)
		})
	}
}
