package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"

	"github.com/memtorrent/memtorrent/internal/testutil"
	"github.com/memtorrent/memtorrent/server"
)

// These tests attack the real binary the way web pages, DNS-rebinding
// pages, LAN neighbours and hostile .torrent files do (docs/security.md).

// lonelyHash is an info hash nobody seeds: adding it only registers it.
const lonelyHash = "0123456789abcdef0123456789abcdef01234567"

// rawDo sends method to base+path with body and header pairs, a Host header
// of host when not empty, and returns the status, body and header.
func rawDo(t *testing.T, ctx context.Context, host, method, url string, body io.Reader, header ...string) (int, string, http.Header) {
	t.Helper()
	req, err := testutil.NewRequest(ctx, method, url, body, header...)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Header
}

// listHashes returns the info hashes the server at base holds, asking as
// the client c does.
func listHashes(t *testing.T, ctx context.Context, c apiClient) []string {
	t.Helper()
	code, body, _ := c.do(t, ctx, http.MethodGet, "/api/torrents", nil)
	var list []server.Torrent
	if code != http.StatusOK || json.Unmarshal(body, &list) != nil {
		t.Fatalf("list: %d %s; want 200 and JSON", code, body)
	}
	var ihs []string
	for _, at := range list {
		ihs = append(ihs, at.InfoHash)
	}
	return ihs
}

// TestRebindingHost sends what a DNS-rebinding page sends, a Host of its
// own name: 403 naming -hostnames, nothing listed or added; the same name
// given with -hostnames is answered.
func TestRebindingHost(t *testing.T) {
	_, base := startAPIServer(t, "-hostnames", "media.lan")
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	port := base[strings.LastIndex(base, ":")+1:]
	c := apiClient{base: base}

	code, body, _ := rawDo(t, ctx, "rebind.example:"+port, "GET", base+"/api/torrents", nil)
	if code != http.StatusForbidden || !strings.Contains(body, "-hostnames rebind.example") {
		t.Errorf("GET /api/torrents with Host rebind.example: %d %q; want 403 naming -hostnames rebind.example", code, body)
	}
	code, body, _ = rawDo(t, ctx, "rebind.example:"+port, "POST", base+"/api/torrents",
		strings.NewReader(`{"link":"`+lonelyHash+`"}`), "Content-Type", "application/json")
	if code != http.StatusForbidden {
		t.Errorf("POST /api/torrents with Host rebind.example: %d %q; want 403", code, body)
	}
	if ihs := listHashes(t, ctx, c); len(ihs) != 0 {
		t.Errorf("torrents after the rebinding POST: %v; want none", ihs)
	}
	for _, host := range []string{"media.lan:" + port, "localhost:" + port, "[::1]:" + port} {
		if code, body, _ := rawDo(t, ctx, host, "GET", base+"/api/torrents", nil); code != http.StatusOK {
			t.Errorf("GET with Host %s: %d %q; want 200", host, code, body)
		}
	}
}

// TestCrossSiteRequests sends what pages of another site can make a
// browser send: a form POST, a text/plain POST (with and without
// Sec-Fetch-Site, as old browsers), a <video> GET of a new link: all
// refused, nothing added. A same-origin request adds; a cross-site <video>
// then plays the torrent already added; a page of an origin allowed by
// -cors-origin gets its preflight answered and adds. Every answer forbids
// framing by another origin.
func TestCrossSiteRequests(t *testing.T) {
	for _, auth := range []bool{false, true} {
		t.Run(fmt.Sprintf("auth=%v", auth), func(t *testing.T) {
			x := startAPI(t, auth, "-cors-origin", "http://app.example", "-metadata-timeout", "5s")
			c, ctx, base := x.c, x.ctx, x.c.base
			evil := []string{"Origin", "http://evil.example", "Sec-Fetch-Site", "cross-site"}
			if auth {
				// A browser sends the credentials the user gave the server.
				evil = append(evil, "Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("kodi:s3cret")))
			}
			for _, tc := range []struct {
				name, method, path, ctype, body string
				header                          []string
			}{
				{"form POST", "POST", "/api/torrents", "application/x-www-form-urlencoded", "link=" + lonelyHash, evil},
				{"text/plain POST", "POST", "/torrents", "text/plain", `{"action":"add","link":"` + lonelyHash + `"}`, evil},
				{"text/plain POST, old browser", "POST", "/torrents", "text/plain", `{"action":"add","link":"` + lonelyHash + `"}`, evil[:2]},
				{"multipart POST", "POST", "/torrent/upload", "multipart/form-data; boundary=x", "--x--", evil},
				{"video GET /play", "GET", "/play?link=" + url.QueryEscape(x.magnet), "", "",
					append([]string{"Sec-Fetch-Dest", "video", "Referer", "http://evil.example/"}, evil[2:]...)},
				{"video GET /stream", "GET", "/stream/clip.mp4?link=" + x.ih + "&index=2&play", "", "",
					append([]string{"Sec-Fetch-Dest", "video", "Referer", "http://evil.example/"}, evil[2:]...)},
			} {
				h := tc.header
				if tc.ctype != "" {
					h = append(append([]string{}, h...), "Content-Type", tc.ctype)
				}
				code, body, _ := rawDo(t, ctx, "", tc.method, base+tc.path, strings.NewReader(tc.body), h...)
				if code != http.StatusForbidden {
					t.Errorf("cross-site %s: %d %q; want 403", tc.name, code, body)
				}
			}
			if ihs := listHashes(t, ctx, c); len(ihs) != 0 {
				t.Fatalf("torrents after the cross-site requests: %v; want none", ihs)
			}

			// Same origin: the server's own front page adds.
			code, body, _ := c.do(t, ctx, "POST", "/api/torrents", strings.NewReader(`{"link":"`+x.magnet+`"}`),
				"Content-Type", "application/json", "Origin", base, "Sec-Fetch-Site", "same-origin")
			if code != http.StatusOK {
				t.Fatalf("same-origin add: %d %s; want 200", code, body)
			}
			// A page of another site may play what was added.
			want := testutil.FileContent(x.spec, 1)
			code, body, hdr := c.do(t, ctx, "GET", "/play?link="+url.QueryEscape(x.magnet)+"&index=1", nil,
				"Sec-Fetch-Site", "cross-site", "Sec-Fetch-Dest", "video", "Referer", "http://evil.example/", "Range", "bytes=0-999")
			if code != http.StatusPartialContent || !bytes.Equal(body, want[:1000]) {
				t.Errorf("cross-site video GET of the added torrent: %d, %d bytes; want 206 and the first 1000 bytes", code, len(body))
			}
			if hdr.Get("X-Frame-Options") != "SAMEORIGIN" {
				t.Errorf("stream X-Frame-Options %q; want SAMEORIGIN", hdr.Get("X-Frame-Options"))
			}

			// The allowed origin: preflight, then add and list.
			code, _, hdr = rawDo(t, ctx, "", "OPTIONS", base+"/torrents", nil, "Origin", "http://app.example",
				"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization,content-type")
			if code != http.StatusNoContent || hdr.Get("Access-Control-Allow-Origin") != "http://app.example" ||
				!strings.Contains(hdr.Get("Access-Control-Allow-Methods"), "POST") ||
				!strings.Contains(hdr.Get("Access-Control-Allow-Headers"), "Content-Type") ||
				(hdr.Get("Access-Control-Allow-Credentials") == "true") != auth {
				t.Errorf("preflight: %d %v; want 204 allowing http://app.example to POST JSON, credentials %v", code, hdr, auth)
			}
			var added tsStatusJSON
			b, _ := json.Marshal(map[string]string{"action": "add", "link": lonelyHash})
			code, body, hdr = c.do(t, ctx, "POST", "/torrents", bytes.NewReader(b), "Content-Type", "application/json",
				"Origin", "http://app.example", "Sec-Fetch-Site", "cross-site")
			if code != http.StatusOK || json.Unmarshal(body, &added) != nil || added.Hash != lonelyHash ||
				hdr.Get("Access-Control-Allow-Origin") != "http://app.example" {
				t.Errorf("add from the allowed origin: %d %s, Allow-Origin %q; want 200, %s, http://app.example",
					code, body, hdr.Get("Access-Control-Allow-Origin"), lonelyHash)
			}
			if ihs := listHashes(t, ctx, c); len(ihs) != 2 {
				t.Errorf("torrents: %v; want the same-origin one and the allowed origin's", ihs)
			}

			// Framing.
			code, _, hdr = c.do(t, ctx, "GET", "/", nil)
			if code != http.StatusOK || hdr.Get("X-Frame-Options") != "SAMEORIGIN" ||
				!strings.Contains(hdr.Get("Content-Security-Policy"), "frame-ancestors 'self'") {
				t.Errorf("front page: %d, X-Frame-Options %q, CSP %q; want 200, SAMEORIGIN, frame-ancestors 'self'",
					code, hdr.Get("X-Frame-Options"), hdr.Get("Content-Security-Policy"))
			}
		})
	}
}

// TestLoginBan guesses the password: after 10 wrong ones the address gets
// 429 even with the right one, the ban is logged once, and it ends after
// -auth-ban.
func TestLoginBan(t *testing.T) {
	const ban = 3 * time.Second
	s, base := startAPIServer(t, "-auth", "kodi:s3cret", "-auth-ban", ban.String())
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	right, wrong := apiClient{base: base, user: "kodi", pass: "s3cret"}, apiClient{base: base, user: "kodi", pass: "guess"}
	if code, _, _ := (apiClient{base: base}).do(t, ctx, "GET", "/echo", nil); code != http.StatusUnauthorized {
		t.Errorf("no credentials: %d; want 401 (and not counted)", code)
	}
	for i := 1; i <= 9; i++ {
		if code, _, _ := wrong.do(t, ctx, "GET", "/echo", nil); code != http.StatusUnauthorized {
			t.Fatalf("wrong password %d: %d; want 401", i, code)
		}
	}
	banned := time.Now() // no later than the ban begins
	code, _, _ := wrong.do(t, ctx, "GET", "/echo", nil)
	if code != http.StatusTooManyRequests {
		t.Fatalf("wrong password 10: %d; want 429", code)
	}
	code, _, hdr := right.do(t, ctx, "GET", "/echo", nil)
	if code != http.StatusTooManyRequests || hdr.Get("Retry-After") == "" {
		t.Fatalf("right password while banned: %d, Retry-After %q; want 429 with Retry-After", code, hdr.Get("Retry-After"))
	}
	testutil.WaitFor(t, 30*time.Second, "the ban to end", func() bool {
		code, _, _ := right.do(t, ctx, "GET", "/echo", nil)
		return code == http.StatusOK
	})
	if d := time.Since(banned); d < ban-100*time.Millisecond {
		t.Errorf("ban ended after %v; want %v", d, ban)
	}
	if n := strings.Count(s.stderr.String(), "refusing an address after failed authentications"); n != 1 {
		t.Errorf("the ban logged %d times; want once\n%s", n, s.stderr.String())
	}
}

// hostileTorrent returns a .torrent whose info says 1 TiB in 16 KiB
// pieces but carries one piece hash.
func hostileTorrent(t *testing.T) []byte {
	t.Helper()
	info := metainfo.Info{Name: "huge.mkv", Length: 1 << 40, PieceLength: 16 << 10, Pieces: make([]byte, 20)}
	ib, err := bencode.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := (&metainfo.MetaInfo{InfoBytes: ib}).Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// multipartFile returns a multipart body with data as the file "file" and
// its Content-Type.
func multipartFile(t *testing.T, data []byte) (*bytes.Buffer, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, err := mw.CreateFormFile("file", "x.torrent")
	if err == nil {
		_, err = fw.Write(data)
	}
	if err == nil {
		err = mw.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	return &buf, mw.FormDataContentType()
}

// TestHostileInput uploads a .torrent whose info is inconsistent to both
// upload routes (400 naming the problem, the server alive, nothing added)
// and bodies beyond the limits (413).
func TestHostileInput(t *testing.T) {
	_, base := startAPIServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	c := apiClient{base: base}
	for _, path := range []string{"/api/torrents", "/torrent/upload"} {
		body, ct := multipartFile(t, hostileTorrent(t))
		code, b, _ := c.do(t, ctx, "POST", path, body, "Content-Type", ct)
		if code != http.StatusBadRequest || !strings.Contains(string(b), "1 piece hashes, but 1.0 TiB in pieces of 16 KiB needs 67108864") {
			t.Errorf("POST %s of 1 TiB with one piece hash: %d %q; want 400 naming the piece count", path, code, b)
		}
	}
	big, ct := multipartFile(t, make([]byte, 17<<20))
	if code, b, _ := c.do(t, ctx, "POST", "/api/torrents", big, "Content-Type", ct); code != http.StatusRequestEntityTooLarge {
		t.Errorf("POST /api/torrents of 17 MiB: %d %q; want 413", code, b)
	}
	huge := `{"action":"add","link":"` + strings.Repeat("x", 2<<20) + `"}`
	if code, b, _ := c.do(t, ctx, "POST", "/torrents", strings.NewReader(huge), "Content-Type", "application/json"); code != http.StatusRequestEntityTooLarge {
		t.Errorf("POST /torrents of 2 MiB of JSON: %d %.100q; want 413", code, b)
	}
	if code, b, _ := c.do(t, ctx, "GET", "/echo", nil); code != http.StatusOK {
		t.Fatalf("echo after the hostile uploads: %d %q; want the server alive", code, b)
	}
	if ihs := listHashes(t, ctx, c); len(ihs) != 0 {
		t.Errorf("torrents: %v; want none", ihs)
	}
}

// TestTorrentCap adds torrents up to -max-torrents 2: the third gets 507
// naming the flag, a torrent already held is still answered, and a drop
// makes room.
func TestTorrentCap(t *testing.T) {
	_, base := startAPIServer(t, "-max-torrents", "2")
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	c := apiClient{base: base}
	add := func(ih string) (int, string) {
		code, b, _ := c.do(t, ctx, "POST", "/api/torrents", strings.NewReader(`{"link":"`+ih+`"}`), "Content-Type", "application/json")
		return code, string(b)
	}
	hashes := []string{strings.Repeat("1", 40), strings.Repeat("2", 40), strings.Repeat("3", 40)}
	for _, ih := range hashes[:2] {
		if code, b := add(ih); code != http.StatusOK {
			t.Fatalf("add %s: %d %q; want 200", ih, code, b)
		}
	}
	if code, b := add(hashes[2]); code != http.StatusInsufficientStorage || !strings.Contains(b, "-max-torrents 2") {
		t.Errorf("third add: %d %q; want 507 naming -max-torrents 2", code, b)
	}
	var st tsStatusJSON
	if code := c.post(t, ctx, "/torrents", map[string]string{"action": "add", "link": hashes[2]}, &st); code != http.StatusInsufficientStorage {
		t.Errorf("third add through TorrServer's API: %d; want 507", code)
	}
	if code, b := add(hashes[0]); code != http.StatusOK {
		t.Errorf("adding a torrent already held: %d %q; want 200", code, b)
	}
	if code, _, _ := c.do(t, ctx, "DELETE", "/api/torrents/"+hashes[0], nil); code != http.StatusNoContent {
		t.Fatalf("DELETE: %d; want 204", code)
	}
	if code, b := add(hashes[2]); code != http.StatusOK {
		t.Errorf("add after a drop: %d %q; want 200", code, b)
	}
}

// crossSitePage is the page of another site in TestCrossSiteChromium: with
// window.server, a new info hash per attack and a magnet set by the test,
// attack() submits a form, POSTs text/plain and plays a <video> of a new
// link against the server; allowed() adds through a JSON fetch (preflight)
// and lists the server's torrents.
const crossSitePage = `<!doctype html><html><body>
<iframe name="sink"></iframe>
<form id="f" method="POST" target="sink"><input name="link"></form>
<script>
const cfg = CONFIG;
const within = (ms, p) => Promise.race([p, new Promise(r => setTimeout(() => r("timeout"), ms))]);
async function attack() {
  const out = {};
  const form = document.getElementById("f");
  form.action = cfg.server + "/api/torrents";
  form.link.value = cfg.formHash;
  const loaded = new Promise(r => document.querySelector("iframe").addEventListener("load", () => r("load"), {once: true}));
  form.submit();
  out.form = await within(10000, loaded);
  try {
    const r = await fetch(cfg.server + "/torrents", {method: "POST", mode: "no-cors",
      headers: {"Content-Type": "text/plain"}, body: JSON.stringify({action: "add", link: cfg.fetchHash})});
    out.fetch = r.type;
  } catch (e) { out.fetch = "error " + e.message; }
  try { await fetch(cfg.server + "/api/torrents"); out.read = "read"; } catch (e) { out.read = "blocked"; }
  const v = document.createElement("video");
  out.video = await within(10000, new Promise(r => {
    v.addEventListener("error", () => r("error " + (v.error && v.error.code)));
    v.addEventListener("loadedmetadata", () => r("loaded"));
    v.src = cfg.server + "/play?link=" + encodeURIComponent(cfg.videoMagnet);
    document.body.appendChild(v);
  }));
  return out;
}
async function allowed() {
  const add = await fetch(cfg.server + "/api/torrents", {method: "POST",
    headers: {"Content-Type": "application/json"}, body: JSON.stringify({link: cfg.allowedHash})});
  const list = await (await fetch(cfg.server + "/api/torrents")).json();
  return {add: add.status, hashes: list.map(t => t.infoHash)};
}
</script></body></html>`

// TestCrossSiteChromium opens, in headless Chromium, a page served from
// another loopback origin (127.0.0.2) that tries a form POST, a text/plain
// fetch and a <video> with a new link against the server: nothing is
// added, and the page cannot read the API. The same page from an origin
// given with -cors-origin (127.0.0.3) adds through a JSON fetch (its
// preflight answered) and lists the torrents.
func TestCrossSiteChromium(t *testing.T) {
	chromium := testutil.RequireProgram(t, "chromium", "chromium")
	var (
		mu   sync.Mutex
		page []byte // set once the server's URL is known
	)
	pages := func(addr string) *httptest.Server {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("listening on %s: %v", addr, err)
		}
		srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			defer mu.Unlock()
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Write(page)
		})}}
		srv.Start()
		t.Cleanup(srv.Close)
		return srv
	}
	evil, friend := pages("127.0.0.2:0"), pages("127.0.0.3:0")
	_, base := startAPIServer(t, "-cors-origin", friend.URL, "-metadata-timeout", "3s")
	c := apiClient{base: base}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	const held = "1111111111111111111111111111111111111111"
	if code, b, _ := c.do(t, ctx, "POST", "/api/torrents", strings.NewReader(`{"link":"`+held+`"}`), "Content-Type", "application/json"); code != http.StatusOK {
		t.Fatalf("adding %s: %d %s", held, code, b)
	}
	cfg, _ := json.Marshal(map[string]string{
		"server": base, "formHash": strings.Repeat("2", 40), "fetchHash": strings.Repeat("3", 40),
		"videoMagnet": "magnet:?xt=urn:btih:" + strings.Repeat("4", 40), "allowedHash": strings.Repeat("5", 40),
	})
	mu.Lock()
	page = []byte(strings.Replace(crossSitePage, "CONFIG", string(cfg), 1))
	mu.Unlock()

	b := startChromium(t, ctx, chromium)
	p := b.newPage(t, ctx, evil.URL+"/")
	t.Cleanup(p.close)
	var out map[string]string
	if err := p.evaluate(ctx, "attack()", &out); err != nil {
		t.Fatalf("the attacks: %v", err)
	}
	t.Logf("attacks from %s: %v", evil.URL, out)
	if out["read"] != "blocked" {
		t.Errorf("the page of another site read /api/torrents (%q); want blocked", out["read"])
	}
	if ihs := listHashes(t, ctx, c); len(ihs) != 1 || ihs[0] != held {
		t.Errorf("torrents after the attacks: %v; want only %s", ihs, held)
	}

	p = b.newPage(t, ctx, friend.URL+"/")
	t.Cleanup(p.close)
	var res struct {
		Add    int      `json:"add"`
		Hashes []string `json:"hashes"`
	}
	if err := p.evaluate(ctx, "allowed()", &res); err != nil {
		t.Fatalf("the allowed origin's fetches: %v", err)
	}
	if res.Add != http.StatusOK || !slices.Contains(res.Hashes, held) || !slices.Contains(res.Hashes, strings.Repeat("5", 40)) {
		t.Errorf("the allowed origin: add %d, listed %v; want 200 and both %s and the one it added", res.Add, res.Hashes, held)
	}
}

// FuzzRequest sends fuzzed requests (method, path and query, body,
// Content-Type, Host, Origin, Sec-Fetch-Site) to a server running
// in-process, offline: no request may crash it or get a 500 (503 and 504
// are a torrent's metadata not coming), a Host the guard refuses gets 403,
// and a state-changing request marked cross-site adds nothing.
func FuzzRequest(f *testing.F) {
	add := `{"action":"add","link":"` + lonelyHash + `"}`
	for _, s := range [][7]string{
		{"POST", "/torrents", add, "application/json", "127.0.0.1", "", ""},
		{"POST", "/api/torrents", "link=" + lonelyHash, "application/x-www-form-urlencoded", "127.0.0.1", "http://evil.example", "cross-site"},
		{"POST", "/torrents", add, "text/plain", "rebind.example", "", ""},
		{"GET", "/play?link=" + lonelyHash, "", "", "localhost", "", "cross-site"},
		{"OPTIONS", "/torrents", "", "", "127.0.0.1", "http://evil.example", ""},
		{"POST", "/torrent/upload", "--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nd4:infod6:lengthi1e4:name1:x12:piece lengthi0e6:pieces0:ee\r\n--x--", "multipart/form-data; boundary=x", "127.0.0.1", "", ""},
		{"POST", "/cache", `{"action":"get","hash":"zz"}`, "", "[::1]", "null", "same-site"},
		{"DELETE", "/api/torrents/" + lonelyHash, "", "", "127.0.0.1", "", "same-origin"},
		{"GET", "/stream?link=" + lonelyHash + "&index=-1&m3u", "", "", "127.0.0.1", "", ""},
	} {
		f.Add(s[0], s[1], s[2], s[3], s[4], s[5], s[6])
	}
	p := startInProcess(f, config{
		Command: "serve", Capacity: 1 << 20, Listen: "127.0.0.1:0", Readahead: 256 << 10,
		LogLevel: 100, PeerPort: 0, loopback: true, Idle: time.Minute, InfoTimeout: time.Millisecond,
		MaxTorrents: 5, Err: &testutil.Buffer{},
	})
	base := p.waitLine(f, listenLine)[1]
	g, err := server.NewGuard(server.GuardConfig{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, method, path, body, ctype, host, origin, fetchSite string) {
		if !strings.HasPrefix(path, "/") {
			return
		}
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		if err != nil {
			return // not a request a client can send
		}
		req.Host = host
		for k, v := range map[string]string{"Content-Type": ctype, "Origin": origin, "Sec-Fetch-Site": fetchSite} {
			if v != "" {
				req.Header.Set(k, v)
			}
		}
		resp, err := httpClient.Do(req)
		if err != nil {
			return // refused by the client (a malformed header or host)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 500 && resp.StatusCode != 503 && resp.StatusCode != 504 && resp.StatusCode != 507 {
			t.Fatalf("%s %s (Host %q): status %d", method, path, host, resp.StatusCode)
		}
		// The client sends an invalid Host as empty: judge plain ones.
		plain := strings.IndexFunc(host, func(c rune) bool {
			return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(".-_:[]", c))
		}) < 0
		if plain && !g.HostAllowed(host) && resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("%s %s with Host %q: status %d; want 403", method, path, host, resp.StatusCode)
		}
		list := func() []server.Torrent {
			lr, err := httpClient.Get(base + "/api/torrents")
			if err != nil {
				t.Fatal(err)
			}
			defer lr.Body.Close()
			var list []server.Torrent
			if err := json.NewDecoder(lr.Body).Decode(&list); err != nil {
				t.Fatalf("listing after %s %s: status %d, %v", method, path, lr.StatusCode, err)
			}
			return list
		}
		added := list()
		if (fetchSite == "cross-site" || fetchSite == "same-site") && len(added) > 0 {
			t.Fatalf("%s %s from a %s page added %d torrents", method, path, fetchSite, len(added))
		}
		for _, at := range added {
			rr, err := http.NewRequest("DELETE", base+"/api/torrents/"+at.InfoHash, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := httpClient.Do(rr)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
		if left := list(); len(left) > 0 {
			t.Fatalf("after %s %s, DELETE left %+v", method, path, left)
		}
	})
}

// TestSecurityFlags checks the flags of docs/security.md: a malformed
// host name or origin is bad input naming its flag, and good ones reach
// the configuration.
func TestSecurityFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-hostnames", "http://nas.lan"},
		{"-cors-origin", "lampa.mx"},
		{"-cors-origin", "https://lampa.mx/app"},
		{"-max-torrents", "-1"},
		{"-auth-failures", "0"},
		{"-auth-ban", "0s"},
	} {
		_, err := parseArgs(append([]string{"serve"}, args...), io.Discard)
		if err == nil || !strings.Contains(err.Error(), args[0]) {
			t.Errorf("%v: %v; want an error naming %s", args, err, args[0])
		}
	}
	cfg, err := parseArgs([]string{"serve", "-hostnames", "nas.lan, .home.arpa", "-cors-origin", "http://lampa.mx",
		"-max-torrents", "7", "-auth-failures", "3", "-auth-ban", "1m"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.Hostnames, []string{"nas.lan", ".home.arpa"}) || !slices.Equal(cfg.CORSOrigins, []string{"http://lampa.mx"}) ||
		cfg.MaxTorrents != 7 || cfg.AuthFailures != 3 || cfg.AuthBan != time.Minute {
		t.Errorf("config %+v; want the flags' values", cfg)
	}
	if cfg, _ := parseArgs([]string{"serve"}, io.Discard); cfg.MaxTorrents != 100 || cfg.AuthFailures != 10 || cfg.AuthBan != 15*time.Minute {
		t.Errorf("defaults: -max-torrents %d, -auth-failures %d, -auth-ban %v; want 100, 10, 15m", cfg.MaxTorrents, cfg.AuthFailures, cfg.AuthBan)
	}
}
