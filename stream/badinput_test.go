package stream

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/memtorrent/memtorrent/internal/testutil"
)

// TestBadInput checks the status of every kind of bad request, and that
// error bodies are exactly the status text.
func TestBadInput(t *testing.T) {
	e := newEnv(t, 2*mib, Options{InfoTimeout: 50 * time.Millisecond})
	spec := testutil.Spec{Name: "show", PieceLength: pieceLength, Seed: 8, Files: []testutil.File{
		{Path: "ep1.mkv", Length: 300 << 10},
		{Path: "sub/ep2.mkv", Length: 200 << 10},
	}}
	tor := e.seed(spec)
	ih := tor.InfoHash().HexString()
	unknown := strings.Repeat("ab", 20)
	noInfo := metainfo.Hash{1, 2, 3}
	e.cl.AddTorrentInfoHash(noInfo)
	size := spec.Files[0].Length

	for _, c := range []struct {
		name, method, path string
		hdr                []string
		want               int
	}{
		{"unknown info hash", "GET", "/stream/" + unknown + "/0", nil, 404},
		{"malformed info hash", "GET", "/stream/xyz/0", nil, 404},
		{"info hash too long", "GET", "/stream/" + ih + "00/0", nil, 404},
		{"file index out of range", "GET", "/stream/" + ih + "/2", nil, 404},
		{"negative file index", "GET", "/stream/" + ih + "/-1", nil, 404},
		{"file index not a number", "GET", "/stream/" + ih + "/one", nil, 404},
		{"file index HEAD", "HEAD", "/stream/" + ih + "/9", nil, 404},
		{"unknown path", "GET", "/stream/" + ih + "/path/ep3.mkv", nil, 404},
		{"directory path", "GET", "/stream/" + ih + "/path/sub", nil, 404},
		{"empty path", "GET", "/stream/" + ih + "/path/", nil, 404},
		{"traversal", "GET", "/stream/" + ih + "/path/../../../etc/passwd", nil, 404},
		{"escaped traversal", "GET", "/stream/" + ih + "/path/..%2F..%2Fetc%2Fpasswd", nil, 404},
		{"escaped dot-dot element", "GET", "/stream/" + ih + "/path/sub/%2E%2E/ep1.mkv", nil, 404},
		{"backslash traversal", "GET", "/stream/" + ih + "/path/sub%5C..%5Cep1.mkv", nil, 404},
		{"NUL in path", "GET", "/stream/" + ih + "/path/ep1.mkv%00", nil, 404},
		{"path of unknown torrent", "GET", "/stream/" + unknown + "/path/ep1.mkv", nil, 404},
		{"status of unknown torrent", "GET", "/status/" + unknown, nil, 404},
		{"status of malformed hash", "GET", "/status/nothex", nil, 404},
		{"playlist of unknown torrent", "GET", "/playlist/" + unknown + ".m3u", nil, 404},
		{"playlist without .m3u", "GET", "/playlist/" + ih, nil, 404},
		{"unknown route", "GET", "/nothing", nil, 404},
		{"method", "POST", "/stream/" + ih + "/0", nil, 405},
		{"malformed range", "GET", "/stream/" + ih + "/0", []string{"Range", "bytes=abc"}, 416},
		{"inverted range", "GET", "/stream/" + ih + "/0", []string{"Range", "bytes=20-10"}, 416},
		{"unsatisfiable range", "GET", "/stream/" + ih + "/0", []string{"Range", fmt.Sprintf("bytes=%d-", size)}, 416},
		{"unsatisfiable, second form", "GET", "/stream/" + ih + "/0", []string{"Range", "bytes=999999999-999999999"}, 416},
		{"no info in time", "GET", "/stream/" + noInfo.HexString() + "/0", nil, 503},
		{"no info in time, playlist", "GET", "/playlist/" + noInfo.HexString() + ".m3u", nil, 503},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, body := e.do(c.method, c.path, c.hdr...)
			if resp.StatusCode != c.want {
				t.Fatalf("%s %s: status %d; want %d", c.method, c.path, resp.StatusCode, c.want)
			}
			if want := http.StatusText(c.want) + "\n"; c.method != "HEAD" && string(body) != want {
				t.Errorf("body %q; want %q", body, want)
			}
			switch c.want {
			case 416:
				if got, want := resp.Header.Get("Content-Range"), fmt.Sprintf("bytes */%d", size); got != want {
					t.Errorf("Content-Range %q; want %q", got, want)
				}
			case 503:
				if resp.Header.Get("Retry-After") == "" {
					t.Errorf("503 without Retry-After")
				}
			}
		})
	}
}

func TestDropTorrentEndsRequest(t *testing.T) {
	e := newEnv(t, 2*mib, Options{})
	tor := e.unseeded(testutil.Spec{Name: "dropped.mkv", Length: mib, PieceLength: pieceLength, Seed: 9})
	p := e.start(streamPath(tor, 0))
	testutil.WaitFor(t, transferTimeout, "a busy session", func() bool { return busy(e.status(tor)) == 1 })
	e.hc.Drop(tor)
	p.wait(t)
	testutil.WaitFor(t, transferTimeout, "the dropped torrent's session to end", func() bool {
		e.h.mu.Lock()
		defer e.h.mu.Unlock()
		return len(e.h.sessions) == 0
	})
}
