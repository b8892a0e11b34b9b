package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/memtorrent/memtorrent/internal/testutil"
)

// TestStatusPageChromium opens the status page of `memtorrent demo -file
// demo.mp4` in headless Chromium, driven over the Chrome DevTools
// Protocol: the piece map must render, and the <video> element must play
// the MP4 from the stream URL, seek, fire seeked and play on from there.
// The screenshot goes to the test's temporary directory, and also to
// $MEMTORRENT_SCREENSHOT when set (docs/status.png is made that way).
// SIGTERM must then end the server with status 0.
func TestStatusPageChromium(t *testing.T) {
	chromium := testutil.RequireProgram(t, "chromium", "chromium")
	mp4 := newClip(t, "demo.mp4")
	dir := filepath.Dir(mp4)
	s, _ := startServer(t, "demo", "-file", mp4, "-listen", "127.0.0.1:0", "-capacity", "1MiB")
	page := s.waitLine(t, statusLine)

	c, ctx := openPage(t, chromium, page)

	c.play(t, ctx, "the status page", dir)
	// Let the page draw the sessions and windows the playback made.
	if err := c.evaluate(ctx, `new Promise(r => setTimeout(() => r(1), 1200))`, nil); err != nil {
		t.Fatal(err)
	}
	png := filepath.Join(dir, "status.png")
	c.screenshot(t, ctx, png)
	if dst := os.Getenv("MEMTORRENT_SCREENSHOT"); dst != "" {
		b, err := os.ReadFile(png)
		if err == nil {
			err = os.WriteFile(dst, b, 0o644)
		}
		if err != nil {
			t.Errorf("copying the screenshot: %v", err)
		}
	}
	s.stop(t, syscall.SIGTERM, 10*time.Second)
}

// playAndSeek waits for the piece map, plays the video, seeks it to 7 s and
// resolves to the times it saw.
const playAndSeek = `(async () => {
  const wait = (what, cond, ms) => new Promise((resolve, reject) => {
    const t0 = Date.now();
    const poll = () => {
      let v = false;
      try { v = cond(); } catch (e) {}
      if (v) resolve(v);
      else if (Date.now() - t0 > ms) reject(new Error("timed out waiting for " + what));
      else setTimeout(poll, 50);
    };
    poll();
  });
  const v = document.getElementById("video");
  const state = () => " (readyState " + v.readyState + ", error " + (v.error && v.error.message) + ", src " + v.src + ")";
  await wait("the piece map", () => Number(document.body.dataset.pieces) > 0, 20000);
  await wait("the video's metadata" + state(), () => v.readyState >= 1, 20000);
  v.muted = true;
  await v.play();
  await wait("playback" + state(), () => v.currentTime > 0.5, 20000);
  const before = v.currentTime;
  const target = 7;
  const seeked = new Promise((resolve) => v.addEventListener("seeked", () => resolve(v.currentTime), { once: true }));
  v.currentTime = target;
  const at = await Promise.race([seeked, new Promise((_, reject) => setTimeout(() => reject(new Error("no seeked event" + state())), 20000))]);
  await wait("playback after the seek" + state(), () => v.currentTime > at + 0.3, 20000);
  return { pieces: Number(document.body.dataset.pieces), before, target, seeked: at, after: v.currentTime, duration: v.duration };
})()`

// played is what playAndSeek resolves to: the pieces the piece map drew
// and the video's times, in seconds.
type played struct {
	Pieces   int     `json:"pieces"`
	Before   float64 `json:"before"`
	Target   float64 `json:"target"`
	Seeked   float64 `json:"seeked"`
	After    float64 `json:"after"`
	Duration float64 `json:"duration"`
}

// play runs playAndSeek in the page (what names it in messages) and checks
// that the piece map drew and that the video played, seeked to about the
// target and played on. If the script fails it saves a screenshot as
// dir/failed.png and fails the test.
func (c *cdp) play(t *testing.T, ctx context.Context, what, dir string) played {
	t.Helper()
	var res played
	if err := c.evaluate(ctx, playAndSeek, &res); err != nil {
		c.screenshot(t, ctx, filepath.Join(dir, "failed.png"))
		t.Fatalf("playing in %s: %v", what, err)
	}
	t.Logf("%s: %+v", what, res)
	if res.Pieces == 0 {
		t.Errorf("piece map drew %d pieces; want more than 0", res.Pieces)
	}
	if res.Before <= 0 {
		t.Errorf("currentTime before the seek %v; want > 0", res.Before)
	}
	if res.Seeked < res.Target-0.5 {
		t.Errorf("currentTime at seeked %v; want about %v", res.Seeked, res.Target)
	}
	if res.After <= res.Seeked {
		t.Errorf("currentTime %v after playing on from %v; want more", res.After, res.Seeked)
	}
	return res
}

var statusLine = regexp.MustCompile(`^  status: +(http://\S+)$`)

// browser is a headless Chromium the test started.
type browser struct {
	port int // DevTools HTTP port
}

// startChromium starts headless Chromium with a fresh profile and remote
// debugging on a kernel-chosen port, and stops it (its whole process
// group) when the test ends.
func startChromium(t *testing.T, ctx context.Context, path string) *browser {
	t.Helper()
	profile := t.TempDir()
	cmd := exec.Command(path, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-extensions", "--mute-audio", "--autoplay-policy=no-user-gesture-required",
		"--window-size=1200,1000", "--user-data-dir="+profile, "--remote-debugging-port=0", "about:blank")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr := &testutil.Buffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		if t.Failed() {
			t.Logf("chromium stderr:\n%s", stderr.String())
		}
	})
	// Chromium writes its DevTools port into the profile.
	for {
		b, err := os.ReadFile(filepath.Join(profile, "DevToolsActivePort"))
		if err == nil {
			if line, _, _ := strings.Cut(string(b), "\n"); line != "" {
				port, err := strconv.Atoi(strings.TrimSpace(line))
				if err != nil {
					t.Fatalf("chromium's DevToolsActivePort: %q", b)
				}
				return &browser{port: port}
			}
		}
		select {
		case <-done:
			t.Fatalf("chromium exited; stderr:\n%s", stderr.String())
		case <-ctx.Done():
			t.Fatalf("waiting for chromium's DevTools port: %v", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// newPage opens url in a new tab and connects to it.
func (b *browser) newPage(t *testing.T, ctx context.Context, url string) *cdp {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut,
		fmt.Sprintf("http://127.0.0.1:%d/json/new?%s", b.port, url), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("opening a tab: %v", err)
	}
	defer resp.Body.Close()
	var target struct {
		WebSocketDebuggerURL string `json:"webSocketDebuggerUrl"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&target); err != nil || target.WebSocketDebuggerURL == "" {
		t.Fatalf("opening a tab: status %d, %v", resp.StatusCode, err)
	}
	conn, _, err := websocket.DefaultDialer.DialContext(ctx, target.WebSocketDebuggerURL, nil)
	if err != nil {
		t.Fatalf("connecting to the tab: %v", err)
	}
	c := &cdp{conn: conn}
	// The tab starts on about:blank; an expression evaluated before the
	// page has loaded would see its context destroyed.
	if err := c.waitLoaded(ctx, url); err != nil {
		c.close()
		t.Fatal(err)
	}
	return c
}

// openPage starts Chromium at path and opens url in it, both closed at
// the end of the test; the context, which ends 2 minutes later, bounds
// what the test asks of the page.
func openPage(t *testing.T, path, url string) (*cdp, context.Context) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	c := startChromium(t, ctx, path).newPage(t, ctx, url)
	t.Cleanup(c.close)
	return c, ctx
}

// waitLoaded waits until the page has loaded url. If ctx ends first it
// returns an error with the page's last location and evaluation error.
func (c *cdp) waitLoaded(ctx context.Context, url string) error {
	for {
		var href string
		err := c.evaluate(ctx, `document.readyState === "complete" ? location.href : ""`, &href)
		if err == nil && href == url {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s to load: %w (at %q, last error %v)", url, ctx.Err(), href, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// cdp is a connection to one page over the Chrome DevTools Protocol. It is
// used by one goroutine.
type cdp struct {
	conn *websocket.Conn
	id   int
}

func (c *cdp) close() { c.conn.Close() }

// call sends a command and decodes its result into result (if not nil),
// skipping the events that arrive meanwhile.
func (c *cdp) call(ctx context.Context, method string, params, result any) error {
	c.id++
	if dl, ok := ctx.Deadline(); ok {
		c.conn.SetReadDeadline(dl)
	}
	msg := map[string]any{"id": c.id, "method": method, "params": params}
	if err := c.conn.WriteJSON(msg); err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	for {
		var reply struct {
			ID     int             `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  *struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := c.conn.ReadJSON(&reply); err != nil {
			return fmt.Errorf("%s: %w", method, err)
		}
		if reply.ID != c.id {
			continue
		}
		if reply.Error != nil {
			return fmt.Errorf("%s: %s", method, reply.Error.Message)
		}
		if result == nil {
			return nil
		}
		return json.Unmarshal(reply.Result, result)
	}
}

// evaluate runs the expression expr in the page, awaits it if it is a
// promise and decodes its value into v (if not nil).
func (c *cdp) evaluate(ctx context.Context, expr string, v any) error {
	var res struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception *struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	err := c.call(ctx, "Runtime.evaluate", map[string]any{
		"expression": expr, "awaitPromise": true, "returnByValue": true,
	}, &res)
	if err != nil {
		return err
	}
	if d := res.ExceptionDetails; d != nil {
		if d.Exception != nil {
			return errors.New(d.Exception.Description)
		}
		return errors.New(d.Text)
	}
	if v == nil {
		return nil
	}
	return json.Unmarshal(res.Result.Value, v)
}

// screenshot saves a PNG of the page to path.
func (c *cdp) screenshot(t *testing.T, ctx context.Context, path string) {
	t.Helper()
	var res struct {
		Data string `json:"data"`
	}
	if err := c.call(ctx, "Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": true}, &res); err != nil {
		t.Errorf("screenshot: %v", err)
		return
	}
	b, err := base64.StdEncoding.DecodeString(res.Data)
	if err == nil {
		err = os.WriteFile(path, b, 0o644)
	}
	if err != nil {
		t.Errorf("screenshot: %v", err)
		return
	}
	t.Logf("screenshot: %s", path)
}
