package host_test

import (
	"bytes"
	"errors"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anacrolix/dht/v2"
	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
	"go.uber.org/goleak"

	"github.com/memtorrent/memtorrent/host"
	"github.com/memtorrent/memtorrent/internal/testutil"
)

// These tests run a client with a DHT server on 127.0.0.1 whose starting
// nodes cannot be found, as on a machine with no network: the lookup fails
// locally, the routing table stays empty, and no packet is sent.

// lookups records the calls of a starting-nodes lookup that fails.
type lookups struct {
	mu    sync.Mutex // guards the field below
	times []time.Time
}

func (l *lookups) getter(string) dht.StartingNodesGetter {
	return func() ([]dht.Addr, error) {
		l.mu.Lock()
		l.times = append(l.times, time.Now())
		l.mu.Unlock()
		return nil, errors.New("nothing resolved")
	}
}

func (l *lookups) calls() []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]time.Time(nil), l.times...)
}

// lineCounter is an io.Writer that counts the lines containing each of
// its patterns, keeping nothing else. Safe for concurrent use.
type lineCounter struct {
	mu     sync.Mutex // guards the fields below
	counts map[string]int
	lines  int
}

func newLineCounter(patterns ...string) *lineCounter {
	c := &lineCounter{counts: map[string]int{}}
	for _, p := range patterns {
		c.counts[p] = 0
	}
	return c
}

func (c *lineCounter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for line := range bytes.Lines(p) {
		c.lines++
		for pat := range c.counts {
			if bytes.Contains(line, []byte(pat)) {
				c.counts[pat]++
			}
		}
	}
	return len(p), nil
}

func (c *lineCounter) count(pattern string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[pattern]
}

// offlineClient starts a loopback client with a DHT server whose starting
// nodes lookup is l's, configured further by opt, adds a torrent by info
// hash alone (so that it wants peers and announces), and closes the client
// at the end of the test, checking that no goroutine is left but those
// leaks ignores.
func offlineClient(t *testing.T, l *lookups, opt func(*torrent.ClientConfig), leaks ...goleak.Option) *torrent.Client {
	t.Helper()
	// Goroutines of earlier tests (TestV1591RetriesDHTAnnounceAtOnce
	// leaves one for good) are not this test's.
	leaks = append(leaks, goleak.IgnoreCurrent())
	// Registered first, so that it runs after the client's Close.
	t.Cleanup(func() { testutil.VerifyNoLeaks(t, leaks...) })
	cfg := testutil.Config(t, func(c *torrent.ClientConfig) {
		c.NoDHT = false
		c.PeriodicallyAnnounceTorrentsToDht = true
		c.DhtStartingNodes = l.getter
	}, opt)
	cl, err := torrent.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	if n := len(cl.DhtServers()); n != 1 {
		t.Fatalf("DHT servers: got %d; want 1 (on 127.0.0.1)", n)
	}
	cl.AddTorrentInfoHash(metainfo.NewHashFromHex("0123456789abcdef0123456789abcdef01234567"))
	return cl
}

// TestV1591RetriesDHTAnnounceAtOnce shows the two defects that the DHT
// backoff of Apply and UseLogger work around: without them, a client whose
// DHT starting nodes cannot be found announces again as soon as an
// announce fails, in a busy loop, and each failure's Warning line is
// written by a handler set to Error. If this test fails, upstream has
// changed (v1.61.0 waits after a failed announce: anacrolix/torrent issue
// 1029): check whether backoffDHT and UseLogger are still needed.
func TestV1591RetriesDHTAnnounceAtOnce(t *testing.T) {
	var l lookups
	logged := newLineCounter("level=WARN", "error announcing")
	offlineClient(t, &l, func(c *torrent.ClientConfig) {
		c.ConfigureAnacrolixDhtServer = nil // the library's own behaviour
		c.Slogger = slog.New(slog.NewTextHandler(logged, &slog.HandlerOptions{Level: slog.LevelError}))
	},
		// anacrolix/dht v2.23.0's Bootstrap does not stop its traversal
		// when the starting nodes lookup fails: one goroutine left for
		// good per failed bootstrap (once a minute per DHT server).
		goleak.IgnoreTopFunction("github.com/anacrolix/dht/v2/traversal.(*Operation).run"))
	testutil.WaitFor(t, 30*time.Second, "1000 lookups of DHT starting nodes (v1.59.1 busy loop)", func() bool {
		return len(l.calls()) >= 1000
	})
	if n := logged.count("error announcing"); n == 0 {
		t.Errorf("lines about failed announces: got 0; want them written at Warning level though the handler's level is Error (v1.59.1's log bridge ignores it)")
	}
	if w, n := logged.count("level=WARN"), logged.count("error announcing"); w < n {
		t.Errorf("WARN lines %d, announce failures %d; want the announce failures at WARN", w, n)
	}
}

// TestApplyStopsDHTAnnounceLoop runs the same client with Apply's
// workaround and UseLogger at level Warn: the starting nodes are looked up
// once (the retry period has not passed), the announcer waits its five
// minutes after an announce that contacted no one, the failure is logged
// once, and the library logs no failed announce or bootstrap.
func TestApplyStopsDHTAnnounceLoop(t *testing.T) {
	var l lookups
	logged := newLineCounter("error announcing", "error bootstrapping", "no DHT starting nodes")
	cl := offlineClient(t, &l, func(c *torrent.ClientConfig) {
		host.UseLogger(c, slog.New(slog.NewTextHandler(logged, &slog.HandlerOptions{Level: slog.LevelWarn})))
	})
	testutil.WaitFor(t, 30*time.Second, "the DHT announcer waiting after an announce", announcerWaiting)
	if n := len(l.calls()); n == 0 || n > 2 {
		t.Errorf("lookups of starting nodes: got %d; want 1 (2 if the bootstrap and the announce raced)", n)
	}
	for _, c := range []struct {
		pattern string
		want    int
	}{
		{"error announcing", 0},
		{"error bootstrapping", 0},
		{"no DHT starting nodes", 1},
	} {
		if got := logged.count(c.pattern); got != c.want {
			t.Errorf("lines with %q: got %d; want %d", c.pattern, got, c.want)
		}
	}
	if n := cl.DhtServers()[0].Stats().(dht.ServerStats).OutboundQueriesAttempted; n != 0 {
		t.Errorf("DHT queries sent: got %d; want 0", n)
	}
}

// announcerWaiting reports whether a goroutine is waiting in
// Torrent.timeboxedAnnounceToDht, where v1.59.1's announcer waits five
// minutes after an announce that did not fail.
func announcerWaiting() bool {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		// "goroutine N [select]:", then the top frame (runtime.Stack
		// leaves out the runtime's own frames).
		lines := strings.SplitN(g, "\n", 3)
		if len(lines) == 3 && strings.Contains(lines[0], "[select") &&
			strings.Contains(lines[1], "(*Torrent).timeboxedAnnounceToDht(") {
			return true
		}
	}
	return false
}
