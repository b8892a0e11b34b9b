package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/memtorrent/memtorrent/internal/testutil"
)

// apiClient sends a media center's requests to a memtorrent server, with
// Basic credentials when user is set.
type apiClient struct {
	base, user, pass string
}

// do sends method to path with body (JSON when a string, multipart when
// a *multipart.Writer's buffer) and returns the status and body.
func (c apiClient) do(t *testing.T, ctx context.Context, method, path string, body io.Reader, header ...string) (int, []byte, http.Header) {
	t.Helper()
	if c.user != "" {
		header = append(header, "Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(c.user+":"+c.pass)))
	}
	resp, b, err := testutil.Fetch(ctx, httpClient, method, c.base+path, body, header...)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b, resp.Header
}

// upload posts spec's .torrent to path as the multipart form file "file",
// with form fields given as name, value pairs, and returns the status and
// body.
func (c apiClient) upload(t *testing.T, ctx context.Context, path string, spec testutil.Spec, fields ...string) (int, []byte) {
	t.Helper()
	mi, err := spec.MetaInfo()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, err := mw.CreateFormFile("file", spec.Name+".torrent")
	if err == nil {
		err = mi.Write(fw)
	}
	for i := 0; err == nil && i+1 < len(fields); i += 2 {
		err = mw.WriteField(fields[i], fields[i+1])
	}
	if err == nil {
		err = mw.Close()
	}
	if err != nil {
		t.Fatalf("writing the form: %v", err)
	}
	code, body, _ := c.do(t, ctx, http.MethodPost, path, &buf, "Content-Type", mw.FormDataContentType())
	return code, body
}

// post sends a TorrServer JSON request and decodes a 200 answer into v
// (when not nil); it returns the status.
func (c apiClient) post(t *testing.T, ctx context.Context, path string, req any, v any) int {
	t.Helper()
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	code, body, _ := c.do(t, ctx, http.MethodPost, path, bytes.NewReader(b), "Content-Type", "application/json")
	if code == http.StatusOK && v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("POST %s %s: %v; body %s", path, b, err, body)
		}
	}
	return code
}

// tsStatusJSON is the part of TorrServer's TorrentStatus the clients read.
type tsStatusJSON struct {
	Title       string `json:"title"`
	Hash        string `json:"hash"`
	Name        string `json:"name"`
	Stat        *int   `json:"stat"`
	StatString  string `json:"stat_string"`
	TorrentSize int64  `json:"torrent_size"`
	Timestamp   int64  `json:"timestamp"`
	FileStats   []struct {
		ID     int    `json:"id"`
		Path   string `json:"path"`
		Length int64  `json:"length"`
	} `json:"file_stats"`
}

// seedClip seeds a two-file torrent on loopback and returns its spec, its
// info hash and a magnet URI naming the seeder in x.pe.
func seedClip(t *testing.T) (testutil.Spec, string, string) {
	t.Helper()
	spec := testutil.Spec{Name: "show", Files: []testutil.File{{Path: "notes.txt", Length: 1000}, {Path: "clip.mp4", Length: 3<<20 + 777}}, PieceLength: 64 << 10, Seed: 7}
	seeder, magnet := seedSpec(t, spec)
	return spec, seeder.Torrent.InfoHash().HexString(), magnet
}

// startAPIServer runs `memtorrent serve` with no torrent, offline, on a
// loopback port, plus args.
func startAPIServer(t *testing.T, args ...string) (*process, string) {
	t.Helper()
	return startServer(t, append([]string{"serve", "-offline", "-peer-port", "0", "-listen", "127.0.0.1:0",
		"-capacity", "2MiB", "-readahead", "256KiB"}, args...)...)
}

// apiSetup is what the API tests start from: seedClip's torrent, a
// memtorrent serve process (startAPIServer) and a client of its API.
type apiSetup struct {
	spec       testutil.Spec
	ih, magnet string
	s          *process
	c          apiClient
	ctx        context.Context // ends 2 minutes after startAPI, or with the test
}

// startAPI seeds seedClip's torrent and runs startAPIServer with args; with
// auth, the server asks for the Basic credentials kodi:s3cret and the
// client sends them.
func startAPI(t *testing.T, auth bool, args ...string) apiSetup {
	t.Helper()
	var x apiSetup
	x.spec, x.ih, x.magnet = seedClip(t)
	if auth {
		args = append(args, "-auth", "kodi:s3cret")
		x.c.user, x.c.pass = "kodi", "s3cret"
	}
	x.s, x.c.base = startAPIServer(t, args...)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	x.ctx = ctx
	return x
}

// TestLampa replays Lampa's calls (src/interaction/torserver.js): settings
// get (CacheSize), torrents add, torrents get polled until file_stats,
// cache get, the stream URL with a Range, drop; with and without Basic
// auth.
func TestLampa(t *testing.T) {
	for _, auth := range []bool{false, true} {
		t.Run(fmt.Sprintf("auth=%v", auth), func(t *testing.T) {
			x := startAPI(t, auth)
			spec, ih, magnet, s, c, ctx := x.spec, x.ih, x.magnet, x.s, x.c, x.ctx
			if auth {
				if code := (apiClient{base: c.base}).post(t, ctx, "/settings", map[string]string{"action": "get"}, nil); code != http.StatusUnauthorized {
					t.Errorf("settings without credentials: status %d; want 401", code)
				}
			}

			var set map[string]any
			if code := c.post(t, ctx, "/settings", map[string]string{"action": "get"}, &set); code != 200 {
				t.Fatalf("settings get: status %d; want 200", code)
			}
			if set["CacheSize"] != float64(2<<20) {
				t.Errorf("settings CacheSize %v; want %d", set["CacheSize"], 2<<20)
			}

			var added tsStatusJSON
			if code := c.post(t, ctx, "/torrents", map[string]any{"action": "add", "link": magnet,
				"title": "[LAMPA] Show", "poster": "http://img/p.jpg", "data": "{}", "save_to_db": true}, &added); code != 200 {
				t.Fatalf("torrents add: status %d; want 200", code)
			}
			if added.Hash != ih || added.Title != "[LAMPA] Show" || added.Stat == nil {
				t.Errorf("add answered %+v; want hash %s, title [LAMPA] Show and a stat", added, ih)
			}

			var got tsStatusJSON
			testutil.WaitFor(t, time.Minute, "file_stats in torrents get", func() bool {
				got = tsStatusJSON{}
				return c.post(t, ctx, "/torrents", map[string]string{"action": "get", "hash": ih}, &got) == 200 &&
					len(got.FileStats) > 0
			})
			if *got.Stat != 3 || got.StatString != "Torrent working" || got.TorrentSize != spec.TotalLength() || got.Name != "show" {
				t.Errorf("get answered stat %d %q size %d name %q; want 3 \"Torrent working\" %d \"show\"",
					*got.Stat, got.StatString, got.TorrentSize, got.Name, spec.TotalLength())
			}
			if len(got.FileStats) != 2 || got.FileStats[1].ID != 2 || got.FileStats[1].Path != "show/clip.mp4" ||
				got.FileStats[1].Length != 3<<20+777 {
				t.Errorf("file_stats %+v; want 2 files, the second id 2 show/clip.mp4 of %d bytes", got.FileStats, 3<<20+777)
			}

			var cache struct {
				Hash         string
				Capacity     int64
				PiecesLength int64
				PiecesCount  int
				Pieces       map[string]any
				Torrent      tsStatusJSON
			}
			if code := c.post(t, ctx, "/cache", map[string]string{"action": "get", "hash": ih}, &cache); code != 200 {
				t.Fatalf("cache get: status %d; want 200", code)
			}
			if cache.Hash != ih || cache.Capacity != 2<<20 || cache.PiecesLength != 64<<10 || cache.PiecesCount == 0 || cache.Torrent.Hash != ih {
				t.Errorf("cache %+v; want hash %s, capacity 2 MiB, pieces of 64 KiB", cache, ih)
			}

			// Lampa's stream URL: the file's base name, the hash, a 1-based index.
			want := testutil.FileContent(spec, 1)
			code, body, hdr := c.do(t, ctx, http.MethodGet, "/stream/clip.mp4?link="+ih+"&index=2&play", nil, "Range", "bytes=1000000-1099999")
			if code != http.StatusPartialContent || !bytes.Equal(body, want[1000000:1100000]) {
				t.Errorf("stream with Range: status %d, %d bytes (equal %v); want 206 and the range",
					code, len(body), bytes.Equal(body, want[1000000:1100000]))
			}
			if ct := hdr.Get("Content-Type"); ct != "video/mp4" {
				t.Errorf("stream Content-Type %q; want video/mp4", ct)
			}

			if code := c.post(t, ctx, "/torrents", map[string]string{"action": "drop", "hash": ih}, nil); code != 200 {
				t.Errorf("drop: status %d; want 200", code)
			}
			var list []tsStatusJSON
			if code := c.post(t, ctx, "/torrents", map[string]string{"action": "list"}, &list); code != 200 || len(list) != 0 {
				t.Errorf("list after drop: status %d, %d torrents; want 200 and none", code, len(list))
			}
			s.stop(t, syscall.SIGTERM, 10*time.Second)
		})
	}
}

// TestJacktorr replays Kodi's Jacktorr (lib/torrserver/api.py): echo, add
// by .torrent upload and by magnet, stream?link&stat, the stream URL with
// &play, drop; with and without Basic auth.
func TestJacktorr(t *testing.T) {
	for _, auth := range []bool{false, true} {
		t.Run(fmt.Sprintf("auth=%v", auth), func(t *testing.T) {
			x := startAPI(t, auth)
			spec, ih, magnet, s, c, ctx := x.spec, x.ih, x.magnet, x.s, x.c, x.ctx

			code, body, _ := c.do(t, ctx, http.MethodGet, "/echo", nil)
			if code != 200 || !strings.HasPrefix(string(body), "MatriX") {
				t.Errorf("echo: %d %q; want 200 MatriX...", code, body)
			}
			if auth {
				if code, _, hdr := (apiClient{base: c.base}).do(t, ctx, http.MethodGet, "/echo", nil); code != 401 || hdr.Get("WWW-Authenticate") == "" {
					t.Errorf("echo without credentials: %d; want 401 with WWW-Authenticate", code)
				}
			}

			var added tsStatusJSON
			if code := c.post(t, ctx, "/torrents", map[string]any{"action": "add", "link": magnet, "title": "Show",
				"poster": "", "data": "", "save_to_db": true}, &added); code != 200 || added.Hash != ih {
				t.Fatalf("add: status %d, hash %q; want 200 and %s", code, added.Hash, ih)
			}

			var stat tsStatusJSON
			code, body, _ = c.do(t, ctx, http.MethodGet, "/stream?link="+url.QueryEscape(magnet)+"&stat=true", nil)
			if code != 200 || json.Unmarshal(body, &stat) != nil {
				t.Fatalf("stream stat: %d %s; want 200 and JSON", code, body)
			}
			if stat.Hash != ih || stat.Title != "Show" || len(stat.FileStats) != 2 || stat.FileStats[0].ID != 1 {
				t.Errorf("stat %+v; want hash %s, title Show, 2 files from id 1", stat, ih)
			}

			// get_stream_url: /stream/{quote(path)}?link={link}&index={id}&play
			code, body, _ = c.do(t, ctx, http.MethodGet, "/stream/"+url.PathEscape("show/clip.mp4")+"?link="+ih+"&index=2&play", nil)
			testutil.Equal(t, body, testutil.FileContent(spec, 1))
			if code != 200 {
				t.Errorf("play: status %d; want 200", code)
			}

			if code := c.post(t, ctx, "/torrents", map[string]any{"action": "drop", "hash": ih}, nil); code != 200 {
				t.Errorf("drop: status %d; want 200", code)
			}
			if code := c.post(t, ctx, "/torrents", map[string]any{"action": "get", "hash": ih}, nil); code != 404 {
				t.Errorf("get after drop: status %d; want 404", code)
			}

			// add_torrent: multipart upload of the .torrent file.
			code, body = c.upload(t, ctx, "/torrent/upload", spec, "save", "true", "title", "Uploaded")
			var up tsStatusJSON
			if code != 200 || json.Unmarshal(body, &up) != nil || up.Hash != ih || up.Title != "Uploaded" || len(up.FileStats) != 2 {
				t.Errorf("upload: %d %s; want 200, hash %s, title Uploaded, 2 files", code, body, ih)
			}
			if code := c.post(t, ctx, "/torrents", map[string]any{"action": "rem", "hash": ih}, nil); code != 200 {
				t.Errorf("rem: status %d; want 200", code)
			}
			s.stop(t, syscall.SIGTERM, 10*time.Second)
		})
	}
}
