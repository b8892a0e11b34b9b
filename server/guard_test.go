package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
)

// guardTestConfig admits media.lan, everything under .home.arpa, and the
// web app at https://app.example.
var guardTestConfig = GuardConfig{
	Hostnames:   []string{"Media.LAN.", "*.home.arpa"},
	CORSOrigins: []string{"https://App.Example/"},
	Credentials: true,
}

// guardServe sends r through guardTestConfig's Wrap around a handler that
// records CrossSite, and returns the answer and whether the handler ran.
func guardServe(t testing.TB, g *Guard, r *http.Request) (rec *httptest.ResponseRecorder, ran, crossSite bool) {
	rec = httptest.NewRecorder()
	g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ran, crossSite = true, CrossSite(r)
		w.WriteHeader(http.StatusOK)
	})).ServeHTTP(rec, r)
	return rec, ran, crossSite
}

func newTestGuard(t testing.TB) *Guard {
	t.Helper()
	g, err := NewGuard(guardTestConfig)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestHostAllowed(t *testing.T) {
	g := newTestGuard(t)
	for _, tc := range []struct {
		host string
		want bool
	}{
		{"127.0.0.1:8080", true},
		{"127.0.0.1", true},
		{"[::1]:8080", true},
		{"[::1]", true},
		{"192.168.1.20:8090", true},
		{"localhost:8080", true},
		{"LOCALHOST.:8080", true},
		{"tv.localhost:8080", true},
		{"media.lan:8080", true},
		{"box.home.arpa", true},
		{"", true},
		{"rebind.example:8080", false},
		{"localhost.evil.example", false},
		{"media.lan.evil.example", false},
		{"home.arpa", false}, // only names under it
		{"127.0.0.1.nip.io", false},
		{"evil.example:80@127.0.0.1", false},
	} {
		if got := g.HostAllowed(tc.host); got != tc.want {
			t.Errorf("HostAllowed(%q) = %v; want %v", tc.host, got, tc.want)
		}
	}
	any, err := NewGuard(GuardConfig{Hostnames: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	if !any.HostAllowed("rebind.example") {
		t.Error("-hostnames '*' refuses rebind.example; want any host admitted")
	}
}

func TestNewGuardBadConfig(t *testing.T) {
	for _, cfg := range []GuardConfig{
		{Hostnames: []string{"http://media.lan"}},
		{Hostnames: []string{""}},
		{CORSOrigins: []string{"app.example"}},
		{CORSOrigins: []string{"https://app.example/path"}},
		{CORSOrigins: []string{"ftp://app.example"}},
		{CORSOrigins: []string{"*"}},
	} {
		if _, err := NewGuard(cfg); err == nil {
			t.Errorf("NewGuard(%+v): nil error; want one", cfg)
		} else if !strings.Contains(err.Error(), "-hostnames") && !strings.Contains(err.Error(), "-cors-origin") {
			t.Errorf("NewGuard(%+v): %v; want the flag named", cfg, err)
		}
	}
}

func TestWrapRebindingHost(t *testing.T) {
	g := newTestGuard(t)
	r := httptest.NewRequest("GET", "http://rebind.example:8080/api/torrents", nil)
	rec, ran, _ := guardServe(t, g, r)
	if ran || rec.Code != http.StatusForbidden {
		t.Fatalf("Host rebind.example: %d, handler ran %v; want 403, not run", rec.Code, ran)
	}
	if body := rec.Body.String(); !strings.Contains(body, "-hostnames rebind.example") {
		t.Errorf("body %q; want it to name -hostnames rebind.example", body)
	}
}

func TestWrapCrossSite(t *testing.T) {
	g := newTestGuard(t)
	const host = "127.0.0.1:8080"
	for _, tc := range []struct {
		name      string
		method    string
		header    []string
		wantCode  int
		crossSite bool
	}{
		{"no browser headers (a media center)", "POST", nil, 200, false},
		{"same-origin fetch", "POST", []string{"Sec-Fetch-Site", "same-origin", "Origin", "http://" + host}, 200, false},
		{"typed URL", "GET", []string{"Sec-Fetch-Site", "none"}, 200, false},
		{"cross-site form POST", "POST", []string{"Sec-Fetch-Site", "cross-site", "Origin", "http://evil.example"}, 403, true},
		{"same-site POST (another port)", "POST", []string{"Sec-Fetch-Site", "same-site", "Origin", "http://127.0.0.1:3000"}, 403, true},
		{"cross-site DELETE", "DELETE", []string{"Sec-Fetch-Site", "cross-site", "Origin", "http://evil.example"}, 403, true},
		{"old browser cross-site POST", "POST", []string{"Origin", "http://evil.example"}, 403, true},
		{"old browser null origin", "POST", []string{"Origin", "null"}, 403, true},
		{"old browser same-origin POST", "POST", []string{"Origin", "http://" + host}, 200, false},
		{"cross-site video GET", "GET", []string{"Sec-Fetch-Site", "cross-site", "Sec-Fetch-Dest", "video", "Referer", "http://evil.example/"}, 200, true},
		{"old browser cross-site GET by Referer", "GET", []string{"Referer", "http://evil.example/page"}, 200, true},
		{"same-origin GET by Referer", "GET", []string{"Referer", "http://" + host + "/"}, 200, false},
		{"allowed origin POST", "POST", []string{"Sec-Fetch-Site", "cross-site", "Origin", "https://app.example"}, 200, false},
		{"allowed origin video GET", "GET", []string{"Sec-Fetch-Site", "cross-site", "Referer", "https://app.example/"}, 200, false},
		{"allowed origin, old browser", "POST", []string{"Origin", "https://app.example"}, 200, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, "http://"+host+"/api/torrents", nil)
			for i := 0; i+1 < len(tc.header); i += 2 {
				r.Header.Set(tc.header[i], tc.header[i+1])
			}
			rec, ran, cs := guardServe(t, g, r)
			if rec.Code != tc.wantCode {
				t.Errorf("status %d; want %d (%s)", rec.Code, tc.wantCode, rec.Body)
			}
			if ran != (tc.wantCode == 200) {
				t.Errorf("handler ran %v; want %v", ran, tc.wantCode == 200)
			}
			if ran && cs != tc.crossSite {
				t.Errorf("CrossSite %v; want %v", cs, tc.crossSite)
			}
			if ran && (CheckAdd(r.WithContext(context.WithValue(r.Context(), guardKey{}, guardVerdict{cs}))) != nil) != tc.crossSite {
				t.Errorf("CheckAdd refuses %v; want %v", !tc.crossSite, tc.crossSite)
			}
			if rec.Code == 403 && !strings.Contains(rec.Body.String(), "-cors-origin") {
				t.Errorf("refusal %q; want it to name -cors-origin", rec.Body)
			}
		})
	}
}

func TestWrapCORS(t *testing.T) {
	g := newTestGuard(t)
	pre := httptest.NewRequest("OPTIONS", "http://127.0.0.1:8080/torrents", nil)
	pre.Header.Set("Origin", "https://app.example")
	pre.Header.Set("Access-Control-Request-Method", "POST")
	pre.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
	pre.Header.Set("Access-Control-Request-Private-Network", "true")
	rec, ran, _ := guardServe(t, g, pre)
	h := rec.Header()
	if rec.Code != http.StatusNoContent || ran {
		t.Fatalf("preflight: %d, handler ran %v; want 204, not run", rec.Code, ran)
	}
	for k, want := range map[string]string{
		"Access-Control-Allow-Origin":          "https://app.example",
		"Access-Control-Allow-Credentials":     "true",
		"Access-Control-Allow-Private-Network": "true",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("preflight %s %q; want %q", k, got, want)
		}
	}
	if m := h.Get("Access-Control-Allow-Methods"); !strings.Contains(m, "POST") || !strings.Contains(m, "DELETE") {
		t.Errorf("Access-Control-Allow-Methods %q; want POST and DELETE", m)
	}
	if m := strings.ToLower(h.Get("Access-Control-Allow-Headers")); !strings.Contains(m, "authorization") || !strings.Contains(m, "content-type") {
		t.Errorf("Access-Control-Allow-Headers %q; want Authorization and Content-Type", m)
	}
	if v := h.Values("Vary"); len(v) == 0 || v[0] != "Origin" {
		t.Errorf("Vary %q; want Origin first", v)
	}

	get := httptest.NewRequest("GET", "http://127.0.0.1:8080/api/torrents", nil)
	get.Header.Set("Origin", "https://app.example")
	get.Header.Set("Sec-Fetch-Site", "cross-site")
	rec, ran, _ = guardServe(t, g, get)
	if !ran || rec.Header().Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Errorf("allowed GET: ran %v, Allow-Origin %q; want run, https://app.example", ran, rec.Header().Get("Access-Control-Allow-Origin"))
	}

	evil := httptest.NewRequest("OPTIONS", "http://127.0.0.1:8080/torrents", nil)
	evil.Header.Set("Origin", "http://evil.example")
	evil.Header.Set("Access-Control-Request-Method", "POST")
	rec, ran, _ = guardServe(t, g, evil)
	if rec.Code != http.StatusForbidden || ran || rec.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight of another origin: %d, ran %v, Allow-Origin %q; want 403, not run, none",
			rec.Code, ran, rec.Header().Get("Access-Control-Allow-Origin"))
	}
	if !strings.Contains(rec.Body.String(), "-cors-origin http://evil.example") {
		t.Errorf("refusal %q; want it to name -cors-origin http://evil.example", rec.Body)
	}

	noCred, err := NewGuard(GuardConfig{CORSOrigins: []string{"https://app.example"}})
	if err != nil {
		t.Fatal(err)
	}
	rec, _, _ = guardServe(t, noCred, pre)
	if got := rec.Header().Get("Access-Control-Allow-Credentials"); got != "" {
		t.Errorf("without -auth, Allow-Credentials %q; want none", got)
	}
}

func TestWrapFraming(t *testing.T) {
	g := newTestGuard(t)
	rec, _, _ := guardServe(t, g, httptest.NewRequest("GET", "http://127.0.0.1:8080/", nil))
	if got := rec.Header().Get("X-Frame-Options"); got != "SAMEORIGIN" {
		t.Errorf("X-Frame-Options %q; want SAMEORIGIN", got)
	}
	if got := rec.Header().Get("Content-Security-Policy"); got != "frame-ancestors 'self'" {
		t.Errorf("Content-Security-Policy %q; want frame-ancestors 'self'", got)
	}
}

func TestCrossSiteWithoutGuard(t *testing.T) {
	r := httptest.NewRequest("GET", "http://127.0.0.1:8080/play", nil)
	r.Header.Set("Sec-Fetch-Site", "cross-site")
	if !CrossSite(r) || !errors.Is(CheckAdd(r), ErrCrossSiteAdd) {
		t.Error("cross-site GET outside Wrap: not cross-site; want cross-site, CheckAdd refusing")
	}
	rec := httptest.NewRecorder()
	if !WriteRefusal(rec, CheckAdd(r)) || rec.Code != http.StatusForbidden {
		t.Errorf("WriteRefusal: %d; want 403", rec.Code)
	}
}

// guardCountHandler is a slog.Handler that counts the records it gets.
type guardCountHandler struct{ n *atomic.Int32 }

func (h guardCountHandler) Enabled(context.Context, slog.Level) bool  { return true }
func (h guardCountHandler) Handle(context.Context, slog.Record) error { h.n.Add(1); return nil }
func (h guardCountHandler) WithAttrs([]slog.Attr) slog.Handler        { return h }
func (h guardCountHandler) WithGroup(string) slog.Handler             { return h }

func TestLoginLimiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logged atomic.Int32
		l := NewLoginLimiter(LoginLimits{Failures: 5, Window: time.Minute, Ban: 10 * time.Minute,
			Logger: slog.New(guardCountHandler{&logged})})
		const addr = "192.0.2.7:50000"
		for i := range 4 {
			if left := l.Fail(addr); left != 0 {
				t.Fatalf("failure %d banned for %v; want no ban before 5", i+1, left)
			}
		}
		if l.Banned(addr) != 0 {
			t.Fatal("banned after 4 failures; want not")
		}
		// Failures older than the window no longer count.
		time.Sleep(time.Minute + time.Second)
		for range 4 {
			l.Fail(addr)
		}
		if l.Banned(addr) != 0 {
			t.Fatal("banned after 4 failures in a new window; want not")
		}
		if left := l.Fail(addr); left != 10*time.Minute {
			t.Fatalf("5th failure: ban %v; want 10m", left)
		}
		l.Succeed(addr) // the right password does not lift a ban
		for range 20 {
			l.Fail(addr)
		}
		if left := l.Banned("192.0.2.7:1"); left != 10*time.Minute {
			t.Errorf("Banned from another port: %v; want 10m", left)
		}
		if l.Banned("192.0.2.8:50000") != 0 {
			t.Error("a neighbour is banned; want only the guessing address")
		}
		if n := logged.Load(); n != 1 {
			t.Errorf("%d log records; want the ban logged once", n)
		}
		time.Sleep(10*time.Minute - time.Second)
		if l.Banned(addr) == 0 {
			t.Error("ban lifted a second early")
		}
		time.Sleep(time.Second)
		if left := l.Banned(addr); left != 0 {
			t.Errorf("banned %v after the ban; want lifted", left)
		}
		if l.Fail(addr) != 0 {
			t.Error("one failure after the ban bans again; want a fresh count")
		}

		rec := httptest.NewRecorder()
		l.Refuse(rec, 1500*time.Millisecond)
		if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "2" {
			t.Errorf("Refuse: %d, Retry-After %q; want 429, 2", rec.Code, rec.Header().Get("Retry-After"))
		}
	})
}

func TestLoginLimiterIPv6AndSuccess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewLoginLimiter(LoginLimits{Failures: 3})
		l.Fail("[2001:db8:1:2::1]:1")
		l.Fail("[2001:db8:1:2::ffff]:1")
		if l.Fail("[2001:db8:1:2:aaaa::5]:1") == 0 {
			t.Error("3 failures from one /64: no ban; want one")
		}
		if l.Banned("[2001:db8:1:3::1]:1") != 0 {
			t.Error("another /64 banned; want not")
		}
		l.Fail("10.0.0.1:1")
		l.Fail("10.0.0.1:1")
		l.Succeed("10.0.0.1:1")
		if l.Fail("10.0.0.1:1") != 0 {
			t.Error("banned after a success reset the count; want not")
		}
		if l.Fail("not an address") != 0 || l.Banned("not an address") != 0 {
			t.Error("an unparsable address is banned; want ignored")
		}
	})
}

func TestLoginLimiterBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewLoginLimiter(LoginLimits{Failures: 2, Window: time.Minute})
		for i := range guardMaxAddrs + 100 {
			l.Fail(fmt.Sprintf("[2001:db8:%x::1]:1", i))
		}
		if n := len(l.addrs); n > guardMaxAddrs {
			t.Errorf("%d addresses remembered; want at most %d", n, guardMaxAddrs)
		}
		time.Sleep(2 * time.Minute)
		l.Fail("192.0.2.1:1")
		if n := len(l.addrs); n != 1 {
			t.Errorf("%d addresses after the window; want the old forgotten, 1 left", n)
		}
	})
}

// guardInfo returns a single-file info of length bytes in pieces of
// pieceLength with hashes piece hashes.
func guardInfo(length, pieceLength int64, hashes int) *metainfo.Info {
	return &metainfo.Info{Name: "film.mkv", Length: length, PieceLength: pieceLength, Pieces: make([]byte, 20*hashes)}
}

func TestValidateInfo(t *testing.T) {
	multi := func(paths ...[]string) *metainfo.Info {
		info := &metainfo.Info{Name: "show", PieceLength: 16 << 10, Pieces: make([]byte, 20*len(paths))}
		for _, p := range paths {
			info.Files = append(info.Files, metainfo.FileInfo{Path: p, Length: 16 << 10})
		}
		return info
	}
	for _, tc := range []struct {
		name   string
		info   *metainfo.Info
		status int    // 0 valid
		reason string // part of the reason
	}{
		{"single file", guardInfo(100<<10, 16<<10, 7), 0, ""},
		{"multi file", multi([]string{"a.mkv"}, []string{"extras", "b.srt"}), 0, ""},
		{"1 TiB in 16 KiB pieces, one hash", guardInfo(1<<40, 16<<10, 1), 400, "1 piece hashes, but 1.0 TiB in pieces of 16 KiB needs 67108864"},
		{"too many hashes", guardInfo(16<<10, 16<<10, 2), 400, "needs 1"},
		{"zero piece length", guardInfo(1, 0, 1), 400, "piece length 0"},
		{"negative piece length", guardInfo(1, -1, 1), 400, "piece length -1"},
		{"huge piece length", guardInfo(1<<30, 1<<30, 1), 413, "piece length 1.0 GiB"},
		{"pieces not whole hashes", &metainfo.Info{Name: "x", Length: 1, PieceLength: 1, Pieces: make([]byte, 21)}, 400, "multiple of 20"},
		{"empty", guardInfo(0, 16<<10, 0), 400, "no data"},
		{"negative length", guardInfo(-5, 16<<10, 0), 400, "length -5"},
		{"too long", guardInfo(1<<50, 1<<29, 1<<21), 413, "more than 64 TiB"},
		{"parent path", multi([]string{"..", "etc", "passwd"}), 400, `".."`},
		{"slash in a component", multi([]string{"a/../../b"}), 400, "slash"},
		{"dot name", &metainfo.Info{Name: "..", Length: 1, PieceLength: 1, Pieces: make([]byte, 20)}, 400, "name"},
		{"no path", multi([]string{}), 400, "no path"},
		{"v2 only", &metainfo.Info{Name: "x", MetaVersion: 2, PieceLength: 16 << 10}, 400, "v2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateInfo(tc.info, DefaultInfoLimits)
			if tc.status == 0 {
				if err != nil {
					t.Errorf("ValidateInfo: %v; want nil", err)
				}
				return
			}
			var ref *Refusal
			if !errors.As(err, &ref) || ref.Status != tc.status || !strings.Contains(ref.Reason, tc.reason) {
				t.Errorf("ValidateInfo: %#v; want a %d Refusal saying %q", err, tc.status, tc.reason)
			}
		})
	}
	many := &metainfo.Info{Name: "many", PieceLength: 16 << 10}
	for range 11 {
		many.Files = append(many.Files, metainfo.FileInfo{Path: []string{"f"}, Length: 1})
	}
	many.Pieces = make([]byte, 20)
	var ref *Refusal
	if err := ValidateInfo(many, InfoLimits{MaxPieceLength: 1 << 20, MaxLength: 1 << 30, MaxFiles: 10}); !errors.As(err, &ref) || ref.Status != 413 {
		t.Errorf("11 files with MaxFiles 10: %v; want 413", err)
	}
}

func TestCheckTorrentCount(t *testing.T) {
	if err := CheckTorrentCount(99, 100); err != nil {
		t.Errorf("99 of 100: %v; want nil", err)
	}
	if err := CheckTorrentCount(5, 0); err != nil {
		t.Errorf("no cap: %v; want nil", err)
	}
	rec := httptest.NewRecorder()
	if err := CheckTorrentCount(100, 100); !WriteRefusal(rec, err) || rec.Code != http.StatusInsufficientStorage ||
		!strings.Contains(rec.Body.String(), "-max-torrents 100") {
		t.Errorf("100 of 100: %v, %d %q; want 507 naming -max-torrents 100", err, rec.Code, rec.Body)
	}
}

func TestBodyError(t *testing.T) {
	otherwise := errors.New("bad")
	rec := httptest.NewRecorder()
	body := http.MaxBytesReader(rec, io.NopCloser(bytes.NewReader(make([]byte, 100))), 10)
	_, err := io.ReadAll(body)
	var ref *Refusal
	if got := BodyError(err, otherwise); !errors.As(got, &ref) || ref.Status != 413 {
		t.Errorf("BodyError(%v): %v; want a 413 Refusal", err, got)
	}
	if got := BodyError(io.ErrUnexpectedEOF, otherwise); got != otherwise {
		t.Errorf("BodyError(EOF): %v; want otherwise", got)
	}
}

// FuzzGuard sends requests with arbitrary Host, Origin, Referer,
// Sec-Fetch-Site and method through Wrap. It must not panic, must never
// run the handler for a Host it refuses or for a state-changing request a
// browser marks cross-site from an origin not allowed, and must answer
// CORS only to the allowed origin.
func FuzzGuard(f *testing.F) {
	f.Add("127.0.0.1:8080", "POST", "", "", "")
	f.Add("rebind.example:8080", "GET", "", "", "")
	f.Add("127.0.0.1:8080", "POST", "http://evil.example", "cross-site", "")
	f.Add("127.0.0.1:8080", "POST", "https://app.example", "cross-site", "")
	f.Add("127.0.0.1:8080", "OPTIONS", "https://app.example", "", "")
	f.Add("127.0.0.1:8080", "GET", "", "cross-site", "http://evil.example/x")
	f.Add("[::1]:80", "DELETE", "null", "", "")
	f.Add("media.lan", "PUT", "http://media.lan", "same-site", "::")
	f.Add("localhost.", "POST", "http://127.0.0.1:8080", "", "http://127.0.0.1:8080/")
	g := newTestGuard(f)
	f.Fuzz(func(t *testing.T, host, method, origin, fetchSite, referer string) {
		if !guardValidMethod(method) {
			return
		}
		r := httptest.NewRequest("GET", "http://127.0.0.1/", nil)
		r.Method, r.Host = method, host
		r.Header.Set("Origin", origin)
		r.Header.Set("Sec-Fetch-Site", fetchSite)
		r.Header.Set("Referer", referer)
		if method == "OPTIONS" {
			r.Header.Set("Access-Control-Request-Method", "POST")
		}
		rec, ran, crossSite := guardServe(t, g, r)
		if ran && !g.HostAllowed(host) {
			t.Fatalf("Host %q refused, yet the handler ran", host)
		}
		safe := method == "GET" || method == "HEAD" || method == "OPTIONS"
		allowedOrigin := origin == "https://app.example"
		if ran && !safe && (fetchSite == "cross-site" || fetchSite == "same-site") && !allowedOrigin {
			t.Fatalf("%s from a %s page of %q ran the handler", method, fetchSite, origin)
		}
		if ran && crossSite && !CrossSite(r) {
			t.Fatalf("CrossSite inside Wrap, not outside: outside knows no allowed origin, so sees more")
		}
		if ran && fetchSite == "cross-site" && !allowedOrigin && guardRefererOrigin(referer) != "https://app.example" && !crossSite {
			t.Fatalf("Sec-Fetch-Site cross-site from %q (Referer %q) not CrossSite", origin, referer)
		}
		if acao := rec.Header().Get("Access-Control-Allow-Origin"); acao != "" && acao != "https://app.example" {
			t.Fatalf("Access-Control-Allow-Origin %q; want only the allowed origin", acao)
		}
		if rec.Code == http.StatusInternalServerError {
			t.Fatalf("500 for %s Host %q Origin %q", method, host, origin)
		}
	})
}

// guardValidMethod reports whether m is an HTTP token, as a server reads it.
func guardValidMethod(m string) bool {
	if m == "" {
		return false
	}
	for _, c := range []byte(m) {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}`, c) >= 0 {
			return false
		}
	}
	return true
}

// FuzzValidateInfo decodes arbitrary bencoded infos: ValidateInfo must not
// panic, and an info it accepts must be one the torrent client accepts
// (its piece count matches the files' length).
func FuzzValidateInfo(f *testing.F) {
	for _, info := range []*metainfo.Info{
		guardInfo(100<<10, 16<<10, 7),
		guardInfo(1<<40, 16<<10, 1),
		{Name: "show", PieceLength: 16 << 10, Pieces: make([]byte, 40),
			Files: []metainfo.FileInfo{{Path: []string{"a"}, Length: 20000}, {Path: []string{"..", "b"}, Length: 1}}},
	} {
		b, err := bencode.Marshal(info)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var info metainfo.Info
		if bencode.Unmarshal(b, &info) != nil {
			return
		}
		if err := ValidateInfo(&info, DefaultInfoLimits); err != nil {
			var ref *Refusal
			if !errors.As(err, &ref) || ref.Status < 400 || ref.Status == 500 {
				t.Fatalf("ValidateInfo: %v; want a 4xx Refusal", err)
			}
			return
		}
		if info.HasV2() {
			return // its v2 file tree is the client's business; the v1 fields passed
		}
		total := info.TotalLength()
		if total <= 0 || int64(info.NumPieces()) != (total+info.PieceLength-1)/info.PieceLength {
			t.Fatalf("accepted %d pieces of %d for %d bytes", info.NumPieces(), info.PieceLength, total)
		}
	})
}

// BenchmarkWrap measures what the guard adds to a request that passes it
// (a same-origin POST with Sec-Fetch-Site and Origin).
func BenchmarkWrap(b *testing.B) {
	g := newTestGuard(b)
	h := g.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	r := httptest.NewRequest("POST", "http://127.0.0.1:8080/torrents", nil)
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	r.Header.Set("Origin", "http://127.0.0.1:8080")
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		clear(w.Header())
		h.ServeHTTP(w, r)
	}
}
