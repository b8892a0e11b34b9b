package stream

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/memtorrent/memtorrent/internal/testutil"
)

// TestShortfall checks the admission figure with made-up rates: a download
// below the playing sessions' rates is a shortfall of the difference while
// one of them is short of media; sessions with plenty buffered (played
// from memory) need no download.
func TestShortfall(t *testing.T) {
	short, plenty := 2*time.Second, 20*time.Second
	for _, c := range []struct {
		name    string
		rate    float64
		playing []demand
		want    float64
	}{
		{"nothing plays", 0, nil, 0},
		{"one short, download below its rate", 300_000, []demand{{500_000, short}}, 200_000},
		{"one short, download above its rate", 600_000, []demand{{500_000, short}}, 0},
		{"two with plenty buffered, no download", 0, []demand{{500_000, plenty}, {500_000, plenty}}, 0},
		{"two, one short, download below their sum", 800_000, []demand{{500_000, plenty}, {500_000, short}}, 200_000},
		{"two, one short, download at their sum", 1_000_000, []demand{{500_000, plenty}, {500_000, short}}, 0},
		{"at lowWater is not short", 0, []demand{{500_000, lowWater}}, 0},
	} {
		if got := shortfall(c.rate, c.playing); got != c.want {
			t.Errorf("%s: got %v; want %v", c.name, got, c.want)
		}
	}
}

// TestStatusShortfall checks admission end to end: sessions playing a
// torrent with no peer (download rate 0) show as a shortfall of their
// rates in /status, the server overloaded, and a new session is still
// served, on that torrent and on another, with exact bytes.
func TestStatusShortfall(t *testing.T) {
	e := newEnv(t, 8*mib, Options{IdleTimeout: time.Hour})
	stuck := e.unseeded(testutil.Spec{Name: "stuck.mkv", Length: 4 * mib, PieceLength: pieceLength, Seed: 30})
	status := func() Status {
		t.Helper()
		_, body := e.get("/status", http.StatusOK)
		var st Status
		if err := json.Unmarshal(body, &st); err != nil {
			t.Fatalf("decoding /status: %v\n%s", err, body)
		}
		return st
	}
	// playing returns the busy sessions of stuck that have read (or
	// waited to read) past their first move.
	playing := func() (n int) {
		for _, s := range e.status(stuck).Sessions {
			if s.Busy && s.BufferedSeconds >= 0 {
				n++
			}
		}
		return n
	}
	a := e.start(streamPath(stuck, 0) + "?session=a")
	testutil.WaitFor(t, transferTimeout, "session a waiting for data", func() bool { return playing() == 1 })
	st := status()
	if !st.Overloaded || st.Demand != defaultRate || st.Shortfall != defaultRate || len(st.Torrents) != 1 ||
		st.Torrents[0].Shortfall != defaultRate || st.Torrents[0].DownloadRate != 0 {
		t.Errorf("one starving session: %+v; want overloaded with a shortfall of %v", st, float64(defaultRate))
	}
	if s := st.Torrents[0].Sessions[0]; s.Share != ShareNeedy || s.BufferedSeconds != 0 {
		t.Errorf("starving session: share %q, buffered %vs; want %q, 0", s.Share, s.BufferedSeconds, ShareNeedy)
	}

	// A new session on the same torrent is admitted: it waits for data
	// like the first, and the shortfall is both sessions' rates.
	b := e.start(streamPath(stuck, 0) + "?session=b")
	testutil.WaitFor(t, transferTimeout, "session b admitted", func() bool { return playing() == 2 })
	if st := status(); !st.Overloaded || st.Shortfall != 2*defaultRate || st.Torrents[0].Demand != 2*defaultRate {
		t.Errorf("two starving sessions: shortfall %v, demand %v; want %v", st.Shortfall, st.Torrents[0].Demand, float64(2*defaultRate))
	}

	// A new session on a torrent with a seeder is served in full meanwhile.
	spec := testutil.Spec{Name: "ok.mkv", Length: 2 * mib, PieceLength: pieceLength, Seed: 31}
	ok := e.seed(spec)
	_, body := e.get(streamPath(ok, 0), http.StatusOK)
	testutil.Equal(t, body, testutil.FileContent(spec, 0))
	if st := status(); !st.Overloaded || st.Sessions != 3 {
		t.Errorf("after serving another torrent: overloaded %v, %d sessions; want still overloaded, 3 sessions", st.Overloaded, st.Sessions)
	}

	// Once the players go, nothing plays: no shortfall.
	a.cancel()
	b.cancel()
	a.wait(t)
	b.wait(t)
	testutil.WaitFor(t, transferTimeout, "the sessions to go idle", func() bool { return busy(e.status(stuck)) == 0 })
	if st := status(); st.Overloaded || st.Shortfall != 0 || st.Demand != 0 {
		t.Errorf("idle: overloaded %v, shortfall %v, demand %v; want none", st.Overloaded, st.Shortfall, st.Demand)
	}
}
