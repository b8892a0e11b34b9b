package reliability

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/memtorrent/memtorrent/internal/testutil"
)

// transmissionProgram is Transmission (tested: transmission-daemon 3.00).
// It does not advertise lt_donthave and closes the connection once the
// leecher has announced every piece; the leecher dials it again.
var transmissionProgram = seederProgram{
	name: "Transmission",
	require: func(t *testing.T) {
		requireProgram(t, "transmission-daemon", "transmission-daemon")
		requireProgram(t, "transmission-remote", "transmission-cli")
	},
	start: func(t *testing.T, dataDir string, torrents ...string) *net.TCPAddr {
		t.Helper()
		tr := startTransmission(t, requireProgram(t, "transmission-daemon", "transmission-daemon"), dataDir)
		tr.seed(t, torrents...)
		return tr.peerAddr
	},
}

// seed adds the .torrent files to the daemon, has it verify their data
// and start, and waits until it seeds every one.
func (tr *transmission) seed(t *testing.T, torrents ...string) {
	t.Helper()
	for _, f := range torrents {
		if _, err := tr.remote("-a", f); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tr.remote("-t", "all", "--verify"); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.remote("-t", "all", "--start"); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, time.Minute, "Transmission to verify and seed every torrent", func() bool { return tr.seedingAll(t, len(torrents)) })
}

// seedingAll reports whether the daemon seeds n torrents, all 100% done,
// from the list that transmission-remote -l prints:
//
//	ID   Done       Have  ETA           Up    Down  Ratio  Status       Name
//	   1   100%   25.1 MB  Done         0.0     0.0    0.0  Seeding      movie.mkv
func (tr *transmission) seedingAll(t *testing.T, n int) bool {
	out, err := tr.remote("-t", "all", "-l")
	if err != nil {
		t.Fatal(err)
	}
	seeding := 0
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 2 && f[1] == "100%" && (strings.Contains(line, "Seeding") || strings.Contains(line, "Idle")) {
			seeding++
		}
	}
	return seeding == n
}
