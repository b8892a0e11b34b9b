package reliability

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/memtorrent/memtorrent/internal/testutil"
)

// qbittorrentProgram is qBittorrent (tested: qbittorrent-nox 4.5.2, on
// libtorrent 2.0). It advertises lt_donthave, so it is told which pieces
// the leecher evicted and keeps the connection.
var qbittorrentProgram = seederProgram{
	name: "qBittorrent",
	require: func(t *testing.T) {
		requireProgram(t, "qbittorrent-nox", "qbittorrent-nox")
	},
	start: startQBittorrent,
}

// qbittorrentConfig is a qBittorrent.conf for a seeder on loopback: the
// legal notice accepted (else qbittorrent-nox waits for a key press), peer
// and WebUI ports on 127.0.0.1 only, no DHT, LSD, PEX, uTP, UPnP or
// queueing, several connections from one IP allowed (every leecher is
// 127.0.0.1), plaintext preferred, and the WebUI open to localhost
// without a login.
const qbittorrentConfig = `[LegalNotice]
Accepted=true

[BitTorrent]
Session\Port=%[1]d
Session\Interface=lo
Session\InterfaceName=lo
Session\InterfaceAddress=127.0.0.1
Session\DHTEnabled=false
Session\LSDEnabled=false
Session\PeXEnabled=false
Session\QueueingSystemEnabled=false
Session\MultiConnectionsPerIp=true
Session\BTProtocol=TCP
Session\Encryption=0
Session\DefaultSavePath=%[3]s
%[4]s
[Network]
PortForwardingEnabled=false

[Preferences]
WebUI\Address=127.0.0.1
WebUI\Port=%[2]d
WebUI\LocalHostAuth=false
WebUI\CSRFProtection=false
WebUI\HostHeaderValidation=false
WebUI\UseUPnP=false
General\Locale=en
`

// startQBittorrent starts qbittorrent-nox seeding the torrents (added on
// its command line, hash check skipped: the data in dataDir was just
// written) and waits, through its WebAPI, until it seeds them all.
func startQBittorrent(t *testing.T, dataDir string, torrents ...string) *net.TCPAddr {
	t.Helper()
	return seedQBittorrent(t, testutil.FreePort(t), dataDir, torrents...).addr
}

// seedQBittorrent is startQBittorrent on the peer port given, returning the
// running program.
func seedQBittorrent(t *testing.T, peerPort int, dataDir string, torrents ...string) *qbittorrent {
	t.Helper()
	q := runQBittorrentOn(t, peerPort, dataDir, true, "", torrents...)
	q.p.waitFor(t, testutil.SetupTimeout, "qBittorrent to seed every torrent", func() bool {
		list, err := q.torrents()
		if err != nil || len(list) != len(torrents) {
			return false
		}
		for _, tor := range list {
			if tor.Progress != 1 || (tor.State != "stalledUP" && tor.State != "uploading" && tor.State != "forcedUP") {
				return false
			}
		}
		return listening(q.addr.String())
	})
	return q
}

// qbittorrent is a running qbittorrent-nox.
type qbittorrent struct {
	p    *process
	addr *net.TCPAddr // where it takes peers
	api  string       // WebAPI base URL, ending in /api/v2/
}

// qbtTorrent is what the WebAPI's torrents/info says of a torrent.
type qbtTorrent struct {
	Hash     string  `json:"hash"`
	Progress float64 `json:"progress"`
	State    string  `json:"state"`
}

// torrents lists q's torrents.
func (q *qbittorrent) torrents() ([]qbtTorrent, error) {
	var list []qbtTorrent
	err := getJSON(q.api+"torrents/info", &list)
	return list, err
}

// runQBittorrent starts qbittorrent-nox with its own profile
// (qbittorrentConfig) and the torrents on its command line, their data in
// dataDir (checked unless skipCheck), and waits for its WebAPI. extra
// holds more lines for the [BitTorrent] section of its configuration.
func runQBittorrent(t *testing.T, dataDir string, skipCheck bool, extra string, torrents ...string) *qbittorrent {
	t.Helper()
	return runQBittorrentOn(t, testutil.FreePort(t), dataDir, skipCheck, extra, torrents...)
}

// runQBittorrentOn is runQBittorrent taking peers on peerPort.
func runQBittorrentOn(t *testing.T, peerPort int, dataDir string, skipCheck bool, extra string, torrents ...string) *qbittorrent {
	t.Helper()
	profile := t.TempDir()
	webPort := testutil.FreePort(t)
	cfgDir := filepath.Join(profile, "qBittorrent", "config")
	if err := os.MkdirAll(cfgDir, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(qbittorrentConfig, peerPort, webPort, dataDir, extra)
	if err := os.WriteFile(filepath.Join(cfgDir, "qBittorrent.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"--profile=" + profile, "--webui-port=" + itoa(webPort), "--torrenting-port=" + itoa(peerPort),
		"--save-path=" + dataDir, "--add-paused=false"}
	if skipCheck {
		args = append(args, "--skip-hash-check")
	}
	q := &qbittorrent{
		p:    startProcess(t, "qbittorrent-nox", exec.Command("qbittorrent-nox", append(args, torrents...)...)),
		addr: loopbackAddr(peerPort),
		api:  fmt.Sprintf("http://127.0.0.1:%d/api/v2/", webPort),
	}
	q.p.waitFor(t, testutil.SetupTimeout, "qBittorrent's WebAPI", func() bool {
		_, err := q.torrents()
		return err == nil
	})
	return q
}

// getJSON GETs url (on loopback) and decodes its JSON body into v.
func getJSON(url string, v any) error {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d: %.100q", url, resp.StatusCode, b)
	}
	return json.Unmarshal(b, v)
}
