package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/memtorrent/memtorrent/internal/testutil"
)

// TestFrontPageChromium uses the front page in headless Chromium: a
// .torrent dropped on it opens the torrent's page; a magnet URI pasted
// and submitted opens it too, and its player plays the MP4 from a
// loopback seeder and seeks.
func TestFrontPageChromium(t *testing.T) {
	chromium := testutil.RequireProgram(t, "chromium", "chromium")
	mp4 := newClip(t, "clip.mp4")
	dir := filepath.Dir(mp4)
	seeder, magnet := seedFile(t, mp4, "clip.mp4")
	mi := seeder.MetaInfo
	ih := mi.HashInfoBytes().HexString()
	var torrentFile strings.Builder
	if err := mi.Write(&torrentFile); err != nil {
		t.Fatal(err)
	}
	s, base := startAPIServer(t)

	c, ctx := openPage(t, chromium, base+"/")
	waitPage := func(what string) {
		t.Helper()
		if err := c.waitLoaded(ctx, base+"/ui/"+ih); err != nil {
			c.screenshot(t, context.Background(), filepath.Join(dir, "failed.png"))
			t.Fatalf("%s: %v", what, err)
		}
	}

	// Drop the .torrent file on the drop zone.
	drop := fmt.Sprintf(`(() => {
  const bin = atob(%q);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  const dt = new DataTransfer();
  dt.items.add(new File([bytes], "clip.torrent", { type: "application/x-bittorrent" }));
  document.getElementById("drop").dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
  return 1;
})()`, base64.StdEncoding.EncodeToString([]byte(torrentFile.String())))
	if err := c.evaluate(ctx, drop, nil); err != nil {
		t.Fatalf("dropping the .torrent: %v", err)
	}
	waitPage("after the drop")

	// Back to the front page, which lists the torrent; paste the magnet.
	if err := c.call(ctx, "Page.navigate", map[string]any{"url": base + "/"}, nil); err != nil {
		t.Fatal(err)
	}
	paste := fmt.Sprintf(`new Promise((resolve, reject) => {
  const t0 = Date.now();
  const poll = () => {
    if (document.readyState === "complete" && location.pathname === "/" && document.getElementById("torrents").textContent.includes("clip.mp4")) {
      document.getElementById("link").value = %q;
      document.getElementById("add").requestSubmit();
      resolve(1);
    } else if (Date.now() - t0 > 20000) reject(new Error("the front page does not list clip.mp4"));
    else setTimeout(poll, 50);
  };
  poll();
})`, magnet)
	for {
		err := c.evaluate(ctx, paste, nil)
		if err == nil {
			break
		}
		if !strings.Contains(err.Error(), "context") || ctx.Err() != nil {
			t.Fatalf("pasting the magnet: %v", err)
		}
	}
	waitPage("after pasting the magnet")
	c.play(t, ctx, "the page the front page opened", dir)
	png := filepath.Join(dir, "front.png")
	c.screenshot(t, ctx, png)
	if dst := os.Getenv("MEMTORRENT_FRONT_SCREENSHOT"); dst != "" {
		if b, err := os.ReadFile(png); err == nil {
			os.WriteFile(dst, b, 0o644)
		}
	}
	s.stop(t, syscall.SIGTERM, 10*time.Second)
}

// TestDemoPlaysChromium runs `memtorrent demo` without -file: the status
// page's player plays the generated video and seeks in it.
func TestDemoPlaysChromium(t *testing.T) {
	chromium := testutil.RequireProgram(t, "chromium", "chromium")
	s, _ := startServer(t, "demo", "-listen", "127.0.0.1:0", "-capacity", "4MiB", "-size", "24MiB")
	page := s.waitLine(t, statusLine)
	c, ctx := openPage(t, chromium, page)
	if res := c.play(t, ctx, "the demo's status page", t.TempDir()); res.Duration < 10 {
		t.Errorf("video duration %v s; want over 10 s", res.Duration)
	}
	s.stop(t, syscall.SIGTERM, 10*time.Second)
}
