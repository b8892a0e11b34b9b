package reliability

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/memtorrent/memtorrent/internal/testutil"
	"github.com/memtorrent/memtorrent/stream"
)

// fuzzTarget is what FuzzHandlerRequest runs against: a Handler whose
// client has one complete torrent (seeded over loopback and read whole
// into memory) and one with no peers, whose data never arrives.
type fuzzTarget struct {
	e        *env
	complete string // info hash, hex
	noPeers  string // info hash, hex
	// files maps a file length to its content; every file of both
	// torrents has a length of its own, so a Content-Range's size names
	// the file.
	files map[int64][]byte
}

// fuzzRequestTimeout bounds one request: long enough to serve a file of
// the complete torrent from memory, short enough that requests for the
// torrent with no peers (which wait for data until their context ends) do
// not slow fuzzing down much.
const fuzzRequestTimeout = 300 * time.Millisecond

// fuzzCancelSlack is how long after its context ends a request may take to
// return: generous, for two shared cores running two fuzz workers.
const fuzzCancelSlack = 3 * time.Second

func newFuzzTarget(f *testing.F) *fuzzTarget {
	f.Helper()
	e := newEnv(f, 16*mib, stream.Options{InfoTimeout: 50 * time.Millisecond})
	completeSpec := testutil.Spec{Name: "show", PieceLength: pieceLength, Seed: 106, Files: []testutil.File{
		{Path: "ep1.mkv", Length: 600*kib + 1},
		{Path: "sub/ep2.mp4", Length: 300*kib + 2},
		{Path: "empty.srt", Length: 0},
		{Path: "tiny.txt", Length: 3},
	}}
	noPeersSpec := testutil.Spec{Name: "waiting.mkv", PieceLength: pieceLength, Length: 700*kib + 5, Seed: 107}
	s := newSeeder(f, completeSpec, nil)
	complete := e.add(s.mi, s.addr())
	ft := &fuzzTarget{e: e, complete: complete.InfoHash().HexString(), files: map[int64][]byte{}}
	for i := range completeSpec.Files {
		content := testutil.FileContent(completeSpec, i)
		ft.files[int64(len(content))] = content
		body, err := e.fetch(f.Context(), e.url(complete, i), "", http.StatusOK)
		if err != nil {
			f.Fatal(err)
		}
		equal(f, completeSpec.Files[i].Path, body, content)
	}
	mi, err := noPeersSpec.MetaInfo()
	if err != nil {
		f.Fatal(err)
	}
	ft.noPeers = e.add(mi).InfoHash().HexString()
	ft.files[noPeersSpec.Length] = testutil.FileContent(noPeersSpec, 0)
	return ft
}

// FuzzHandlerRequest sends a GET with an arbitrary path and Range header
// to the Handler. In the path, "$IH" stands for the complete torrent's info
// hash and "$NP" for the one with no peers. The Handler must never panic,
// never answer a 5xx other than 503, never put anything but the status text
// in an error body, and every byte it serves must be the file's.
func FuzzHandlerRequest(f *testing.F) {
	ft := newFuzzTarget(f)
	f.Fuzz(func(t *testing.T, path, rng string) {
		if !validHeaderValue(rng) {
			t.Skip("not a header value a server can receive")
		}
		path = strings.ReplaceAll(path, "$IH", ft.complete)
		path = strings.ReplaceAll(path, "$NP", ft.noPeers)
		ctx, cancel := context.WithTimeout(t.Context(), fuzzRequestTimeout)
		defer cancel()
		req := (&http.Request{
			Method:     http.MethodGet,
			URL:        &url.URL{Path: "/" + path},
			Proto:      "HTTP/1.1",
			ProtoMajor: 1,
			ProtoMinor: 1,
			Header:     http.Header{},
			Body:       http.NoBody,
			Host:       "memtorrent.test",
			RemoteAddr: "127.0.0.1:40000",
		}).WithContext(ctx)
		req.RequestURI = req.URL.RequestURI()
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		rec := httptest.NewRecorder()
		begin := time.Now()
		ft.e.h.ServeHTTP(rec, req)
		// The Handler promises that a read waiting for data returns at once
		// when the request's context ends.
		if d := time.Since(begin); d > fuzzRequestTimeout+fuzzCancelSlack {
			t.Fatalf("GET %q Range %q: the Handler returned %v after the request began; its context ended after %v",
				path, rng, d.Round(time.Millisecond), fuzzRequestTimeout)
		}
		ft.check(t, req, rec.Result(), ctx.Err() != nil)
	})
}

// validHeaderValue reports whether v could arrive as a header value:
// no control characters but tab.
func validHeaderValue(v string) bool {
	for _, c := range []byte(v) {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// check applies FuzzHandlerRequest's rules to resp. cut says the request's
// context ended, so a body may be short (it must still be a prefix of
// the right bytes).
func (ft *fuzzTarget) check(t *testing.T, req *http.Request, resp *http.Response, cut bool) {
	t.Helper()
	body, _ := io.ReadAll(resp.Body)
	code := resp.StatusCode
	what := fmt.Sprintf("GET %q Range %q: status %d", req.URL.Path, req.Header.Get("Range"), code)
	if code >= 500 && code != http.StatusServiceUnavailable {
		t.Fatalf("%s; want no 5xx but 503 (body %.200q)", what, body)
	}
	if code >= 400 {
		if want := http.StatusText(code) + "\n"; string(body) != want {
			t.Fatalf("%s: body %.200q; want %q", what, body, want)
		}
		return
	}
	if !strings.HasPrefix(req.URL.Path, "/stream/") {
		return
	}
	switch code {
	case http.StatusOK:
		n, err := strconv.ParseInt(resp.Header.Get("Content-Length"), 10, 64)
		if err != nil {
			t.Fatalf("%s: Content-Length %q", what, resp.Header.Get("Content-Length"))
		}
		ft.checkBytes(t, what, body, n, 0, n-1, cut)
	case http.StatusPartialContent:
		mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
		if err == nil && mt == "multipart/byteranges" {
			mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
			for {
				part, err := mr.NextPart()
				if err != nil {
					if err != io.EOF && !cut {
						t.Fatalf("%s: reading multipart body: %v", what, err)
					}
					return
				}
				pb, err := io.ReadAll(part)
				if err != nil && !cut {
					t.Fatalf("%s: reading part: %v", what, err)
				}
				ft.checkRange(t, what, part.Header.Get("Content-Range"), pb, cut)
			}
		}
		ft.checkRange(t, what, resp.Header.Get("Content-Range"), body, cut)
	}
}

// checkRange checks body against a Content-Range "bytes a-b/size".
func (ft *fuzzTarget) checkRange(t *testing.T, what, cr string, body []byte, cut bool) {
	t.Helper()
	var a, b, size int64
	if _, err := fmt.Sscanf(cr, "bytes %d-%d/%d", &a, &b, &size); err != nil {
		t.Fatalf("%s: Content-Range %q: %v", what, cr, err)
	}
	ft.checkBytes(t, what+" "+cr, body, size, a, b, cut)
}

// checkBytes checks that body is bytes [a, b] of the file of the given
// size, or a prefix of them when cut.
func (ft *fuzzTarget) checkBytes(t *testing.T, what string, body []byte, size, a, b int64, cut bool) {
	t.Helper()
	content, ok := ft.files[size]
	if !ok {
		t.Fatalf("%s: no file of %d bytes", what, size)
	}
	if a < 0 || b < a-1 || b >= size {
		t.Fatalf("%s: range %d-%d outside a file of %d bytes", what, a, b, size)
	}
	want := content[a : b+1]
	if cut && len(body) < len(want) {
		want = want[:len(body)]
	}
	if !bytes.Equal(body, want) {
		equal(t, what, body, want)
	}
}
