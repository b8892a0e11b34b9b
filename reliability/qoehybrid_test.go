package reliability

// The QoE harness with hybrid v1+v2 torrents (-qoe.hybrid, issue 22): the
// scenario's torrents are built by hybridMetaInfo from the same data, and
// memtorrent fetches leaf hashes (host.Options.LeafHashes, -leaf-hashes)
// so that it can serve 16 KiB blocks proven before their piece's hash
// check. Only qBittorrent seeds that .torrent, as v2, answering
// block-hash requests once it has hashed its copy: aria2 1.36 and
// Transmission 3.00, v1-only clients, cannot (hybridUnseeded,
// TestQoEHybridSeeders), so another qBittorrent seeds on each of their
// lines: the same lines (latency, jitter, rate, stalls), other clients.

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"testing"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/memtorrent/memtorrent/internal/testutil"
	"github.com/memtorrent/memtorrent/stream"
)

// hybridScenario is sc with hybrid torrents of the same data, seeded on
// every line by a qBittorrent that hashed its copy first (a libtorrent
// that skipped its check rejects block-hash requests, docs/verify.md); a
// line whose seeder cannot seed a hybrid torrent gets a qBittorrent of its
// own. It fails the test for a scenario with a multi-file torrent, which
// hybridMetaInfo does not build.
func hybridScenario(t *testing.T, sc qoeScenario) qoeScenario {
	t.Helper()
	for _, spec := range sc.torrents {
		if spec.Files != nil {
			t.Fatalf("-qoe.hybrid: scenario %s has a multi-file torrent; hybrid torrents are built for single files only", sc.name)
		}
	}
	sc.hybrid = true
	var seeders []qoeSeeder
	for _, s := range sc.seeders {
		if why, ok := hybridUnseeded[s.program.name]; ok {
			t.Logf("-qoe.hybrid: qBittorrent seeds on %s's line (%v): %s", s.name, s.line, why)
			s.name = "qBittorrent on " + s.name + "'s line"
		}
		s.program = qbittorrentHashedProgram
		seeders = append(seeders, s)
	}
	sc.seeders = seeders
	t.Logf("scenario %s: hybrid v1+v2 torrents, memtorrent with leaf hashes; qBittorrent hashes its copy before seeding", sc.name)
	return sc
}

// hybridUnseeded says why a seeder program cannot seed a hybrid torrent
// (TestQoEHybridSeeders), by program name.
var hybridUnseeded = map[string]string{
	aria2Program.name: "aria2 1.36 drops the info's empty-string key (the file entry of the v2 file tree) when it hashes the info, " +
		"so its v1 info hash is not the torrent's and it answers no leecher of it",
	transmissionProgram.name: "Transmission 3.00 refuses the hybrid .torrent (transmission-remote -a: invalid or corrupt torrent file)",
}

// qbittorrentHashedProgram is qBittorrent seeding after its hash check of
// the data (startQBittorrent skips it).
var qbittorrentHashedProgram = seederProgram{
	name:    qbittorrentProgram.name,
	require: qbittorrentProgram.require,
	start: func(t *testing.T, dataDir string, torrents ...string) *net.TCPAddr {
		t.Helper()
		var ihs [][20]byte
		for _, f := range torrents {
			mi, err := metainfo.LoadFromFile(f)
			if err != nil {
				t.Fatal(err)
			}
			ihs = append(ihs, [20]byte(mi.HashInfoBytes()))
		}
		return seedQBittorrentHashed(t, dataDir, torrents, ihs)
	},
}

// TestQoEHybridSeeders checks which seeders of the QoE swarm seed a hybrid
// torrent (hybridMetaInfo). qBittorrent does: each in-process contestant,
// as -qoe.hybrid starts it, streams the file from it alone, every byte
// exact, and memtorrent in strict mode serves no byte unverified (the
// anacrolix baseline's file storage handles the torrent). aria2 1.36 and
// Transmission 3.00 do not (hybridUnseeded); the test fails when that
// changes, so that -qoe.hybrid can seed with them again.
func TestQoEHybridSeeders(t *testing.T) {
	spec := testutil.Spec{Name: "hybrid.bin", PieceLength: pieceLength, Length: 8*mib + 4321, Seed: 26}
	content := testutil.Content(spec)
	t.Run(qbittorrentHashedProgram.name, func(t *testing.T) {
		qbittorrentHashedProgram.require(t)
		dataDir := t.TempDir()
		mi := hybridMetaInfo(t, dataDir, spec)
		addr := qbittorrentHashedProgram.start(t, dataDir, writeTorrent(t, mi))
		for _, name := range []string{"memtorrent", "anacrolix"} {
			t.Run(name, func(t *testing.T) {
				l := contestants[name].start(t, []*metainfo.MetaInfo{mi}, []net.Addr{addr},
					leecherOptions{verify: stream.VerifyStrict, leafHashes: true})
				body, err := getAll(t, l.client(), l.url(0, 0, 1))
				if err != nil {
					t.Fatalf("streaming the file: %v", err)
				}
				equal(t, "streamed file", body, content)
				if l.served != nil {
					leaf, unverified := l.served()
					t.Logf("served before the piece's hash: %d bytes leaf-verified, %d unverified", leaf, unverified)
					if unverified != 0 {
						t.Errorf("unverified bytes served in strict mode: %d; want 0", unverified)
					}
				}
			})
		}
	})
	t.Run(aria2Program.name, func(t *testing.T) {
		aria2Program.require(t)
		mi := hybridMetaInfo(t, t.TempDir(), spec)
		out, err := exec.Command("aria2c", "-S", writeTorrent(t, mi)).CombinedOutput()
		if err != nil {
			t.Fatalf("aria2c -S: %v\n%s", err, out)
		}
		m := regexp.MustCompile(`(?m)^Info Hash: ([0-9a-f]{40})$`).FindSubmatch(out)
		if m == nil {
			t.Fatalf("aria2c -S printed no info hash:\n%s", out)
		}
		if got := string(m[1]); got == mi.HashInfoBytes().HexString() {
			t.Errorf("aria2 now hashes the hybrid info as the torrent does (%s): seed with it in -qoe.hybrid (hybridUnseeded)", got)
		} else {
			t.Logf("aria2's info hash %s, the torrent's %s", got, mi.HashInfoBytes().HexString())
		}
	})
	t.Run(transmissionProgram.name, func(t *testing.T) {
		transmissionProgram.require(t)
		dataDir := t.TempDir()
		mi := hybridMetaInfo(t, dataDir, spec)
		tr := startTransmission(t, requireProgram(t, "transmission-daemon", "transmission-daemon"), dataDir)
		out, err := tr.remote("-a", writeTorrent(t, mi))
		if err == nil {
			t.Errorf("Transmission now adds a hybrid torrent (%q): seed with it in -qoe.hybrid (hybridUnseeded)", out)
		} else {
			t.Logf("transmission-remote -a: %v", err)
		}
	})
}

// getAll GETs url with client and returns the body of a 200 response.
func getAll(t *testing.T, client *http.Client, url string) ([]byte, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d; want 200", resp.StatusCode)
	}
	return io.ReadAll(resp.Body)
}
