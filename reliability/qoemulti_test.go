package reliability

import (
	"testing"
	"time"

	"github.com/memtorrent/memtorrent/internal/testutil"
)

// qoeMultiScenario is TestQoEMulti's: issue 20's two viewers, shortened.
// One torrent of two 64 MiB files (twice the memory together) seeded by
// qBittorrent, aria2 and Transmission on lines of 800, 600 and 600 KB/s
// (2x what the viewers play together), the second viewer 15 s after the
// first, each watching 50 s of its own file.
func qoeMultiScenario() qoeScenario {
	s := qoeScenarios()["two"]
	s.name = "two-short"
	s.torrents = []testutil.Spec{{Name: "pair", PieceLength: mib, Seed: 25, Files: []testutil.File{
		{Path: "a.bin", Length: 64 * mib}, {Path: "b.bin", Length: 64 * mib}}}}
	const watch = 50 * time.Second
	s.viewers = []viewer{{file: 0, player: qoePlayer(watch)}, {file: 1, offset: 15 * time.Second, player: qoePlayer(watch)}}
	return s
}

// TestQoEMulti plays qoeMultiScenario with memtorrent, both viewers on one
// server sharing its memory and swarm: neither may stall for over 10 s,
// and every byte must be exact (play checks them).
func TestQoEMulti(t *testing.T) {
	if testing.Short() {
		t.Skip("real seeders for about a minute")
	}
	sc := qoeMultiScenario()
	const longest = 10 * time.Second
	results := runQoE(t, sc, "memtorrent")
	t.Logf("scenario %s:\n%s", sc.name, qoeTable(sc, results))
	for _, r := range results {
		for i, v := range r.viewers {
			if v.longest > longest {
				t.Errorf("%s, viewer %d: longest stall %v; want at most %v", r.name, i+1, v.longest.Round(time.Millisecond), longest)
			}
			if v.delivered == 0 {
				t.Errorf("%s, viewer %d: delivered nothing", r.name, i+1)
			}
		}
	}
}
