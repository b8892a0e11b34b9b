package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/memtorrent/memtorrent/internal/testutil"
	"github.com/memtorrent/memtorrent/server"
	"github.com/memtorrent/memtorrent/stream"
)

// TestAPI adds, lists and drops torrents through /api/torrents (by
// magnet, by info hash, by .torrent upload) and plays a file in one
// request through /play.
func TestAPI(t *testing.T) {
	x := startAPI(t, false, "-metadata-timeout", "2s")
	spec, ih, magnet, s, c, ctx := x.spec, x.ih, x.magnet, x.s, x.c, x.ctx
	base := c.base

	// One request: add, wait for the metadata, stream (index 1: clip.mp4).
	code, body, hdr := c.do(t, ctx, "GET", "/play?link="+url.QueryEscape(magnet)+"&index=1", nil, "Range", "bytes=100-")
	want := testutil.FileContent(spec, 1)
	if code != 206 || !bytes.Equal(body, want[100:]) || hdr.Get("Content-Type") != "video/mp4" {
		t.Errorf("play: %d, %d bytes, %q; want 206, the file from byte 100, video/mp4", code, len(body), hdr.Get("Content-Type"))
	}
	var list []server.Torrent
	code, body, _ = c.do(t, ctx, "GET", "/api/torrents", nil)
	if code != 200 || json.Unmarshal(body, &list) != nil || len(list) != 1 {
		t.Fatalf("list: %d %s; want one torrent", code, body)
	}
	at := list[0]
	if at.InfoHash != ih || !at.GotInfo || at.Length != spec.TotalLength() || len(at.Files) != 2 ||
		at.Files[1].Path != "clip.mp4" || !at.Files[1].Media || at.Files[0].Media ||
		!strings.HasPrefix(at.Files[1].Stream, base+"/stream/"+ih+"/1?token=") || at.DropInSeconds <= 0 {
		t.Errorf("torrent %+v; want %s with its 2 files and stream URLs", at, ih)
	}
	// The handed-out URL plays as it is.
	if code, body, _ := c.do(t, ctx, "GET", strings.TrimPrefix(at.Files[1].Stream, base), nil); code != 200 || !bytes.Equal(body, want) {
		t.Errorf("stream URL: %d, %d bytes; want 200 and the file", code, len(body))
	}
	if code, _, _ := c.do(t, ctx, "DELETE", "/api/torrents/"+ih, nil); code != 204 {
		t.Errorf("DELETE: %d; want 204", code)
	}
	if code, _, _ := c.do(t, ctx, "GET", "/api/torrents/"+ih, nil); code != 404 {
		t.Errorf("GET after DELETE: %d; want 404", code)
	}

	// Upload of the .torrent: the info is there at once.
	code, body = c.upload(t, ctx, "/api/torrents", spec)
	if code != 200 || json.Unmarshal(body, &at) != nil || !at.GotInfo || len(at.Files) != 2 {
		t.Errorf("upload: %d %s; want 200 and the files", code, body)
	}

	// A hash nobody seeds: 504 after -metadata-timeout, not a hang.
	const lonely = "0123456789abcdef0123456789abcdef01234567"
	start := time.Now()
	if code, _, _ := c.do(t, ctx, "GET", "/play?link="+lonely, nil); code != 504 {
		t.Errorf("play of a torrent without peers: %d; want 504", code)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("504 after %v; want about 2 s", d)
	}
	code, _, _ = c.do(t, ctx, "POST", "/api/torrents?wait", strings.NewReader(`{"link":"`+lonely+`"}`))
	if code != 504 {
		t.Errorf("add?wait of a torrent without peers: %d; want 504", code)
	}
	for _, bad := range []string{"", "http://example.com/x.torrent", "/etc/passwd", "magnet:?dn=x", "0123"} {
		if code, _, _ := c.do(t, ctx, "GET", "/play?link="+url.QueryEscape(bad), nil); code != 400 {
			t.Errorf("play of link %q: %d; want 400", bad, code)
		}
		if code, _, _ := c.do(t, ctx, "POST", "/api/torrents", strings.NewReader(`{"link":"`+bad+`"}`)); code != 400 {
			t.Errorf("add of link %q: %d; want 400", bad, code)
		}
	}
	s.stop(t, syscall.SIGTERM, 10*time.Second)
}

// TestIdleDrop plays a torrent added by a request, then leaves it: after
// -idle it is dropped and the storage holds nothing; a new request adds it
// again.
func TestIdleDrop(t *testing.T) {
	x := startAPI(t, false, "-idle", "2s") // long enough that the status right after play comes first on a loaded machine
	spec, ih, magnet, s, c, ctx := x.spec, x.ih, x.magnet, x.s, x.c, x.ctx
	status := func() stream.Status {
		t.Helper()
		var st stream.Status
		code, body, _ := c.do(t, ctx, "GET", "/status", nil)
		if code != 200 || json.Unmarshal(body, &st) != nil {
			t.Fatalf("status: %d %s", code, body)
		}
		return st
	}
	for round := range 2 {
		code, body, _ := c.do(t, ctx, "GET", "/play?link="+url.QueryEscape(magnet)+"&index=1", nil)
		if code != 200 || !bytes.Equal(body, testutil.FileContent(spec, 1)) {
			t.Fatalf("round %d: play: %d, %d bytes; want 200 and the file", round, code, len(body))
		}
		if st := status(); st.Resident == 0 || len(st.Torrents) != 1 || st.Torrents[0].InfoHash != ih {
			t.Fatalf("round %d: after play, resident %d, %d torrents; want data of %s", round, st.Resident, len(st.Torrents), ih)
		}
		testutil.WaitFor(t, time.Minute, "the idle torrent dropped and its memory back", func() bool {
			st := status()
			return st.Resident == 0 && len(st.Torrents) == 0
		})
	}
	s.stop(t, syscall.SIGTERM, 10*time.Second)
}

// TestPlayPieceTooLarge plays a magnet whose info, once fetched, shows
// pieces larger than the capacity: 507 instead of a wait until the
// metadata timeout, and the torrent goes.
func TestPlayPieceTooLarge(t *testing.T) {
	spec := testutil.Spec{Name: "big.mkv", Length: 8 << 20, PieceLength: 4 << 20, Seed: 4}
	_, magnet := seedSpec(t, spec)
	s, base := startAPIServer(t, "-metadata-timeout", "1m")
	c := apiClient{base: base}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if code, _, _ := c.do(t, ctx, "GET", "/play?link="+url.QueryEscape(magnet), nil); code != 507 {
		t.Errorf("play: %d; want 507", code)
	}
	testutil.WaitFor(t, time.Minute, "the torrent dropped", func() bool {
		code, body, _ := c.do(t, ctx, "GET", "/api/torrents", nil)
		return code == 200 && strings.TrimSpace(string(body)) == "[]"
	})
	s.stop(t, syscall.SIGTERM, 10*time.Second)
}
