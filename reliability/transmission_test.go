package reliability

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/anacrolix/torrent"
	pp "github.com/anacrolix/torrent/peer_protocol"
	"go.uber.org/atomic"

	"github.com/memtorrent/memtorrent/host"
	"github.com/memtorrent/memtorrent/internal/testutil"
	"github.com/memtorrent/memtorrent/stream"
)

// transmission is a transmission-daemon seeding on loopback.
type transmission struct {
	rpc      string // host:port of its RPC
	peerAddr *net.TCPAddr
}

// requireProgram is testutil.RequireProgram.
func requireProgram(t *testing.T, name, pkg string) string {
	t.Helper()
	return testutil.RequireProgram(t, name, pkg)
}

// startTransmission starts transmission-daemon in the foreground with its
// own configuration directory, RPC and peer port on 127.0.0.1 only, and no
// DHT, LPD, PEX, uTP or port mapping; its downloads go to dataDir. It is
// killed at the end of the test.
func startTransmission(t *testing.T, daemon, dataDir string) *transmission {
	t.Helper()
	cfgDir := t.TempDir()
	rpcPort, peerPort := testutil.FreePort(t), testutil.FreePort(t)
	settings := map[string]any{
		"bind-address-ipv4":           "127.0.0.1",
		"bind-address-ipv6":           "::1",
		"rpc-bind-address":            "127.0.0.1",
		"rpc-port":                    rpcPort,
		"rpc-authentication-required": false,
		"rpc-whitelist-enabled":       true,
		"rpc-whitelist":               "127.0.0.1",
		"rpc-host-whitelist-enabled":  false,
		"peer-port":                   peerPort,
		"peer-port-random-on-start":   false,
		"port-forwarding-enabled":     false,
		"dht-enabled":                 false,
		"lpd-enabled":                 false,
		"pex-enabled":                 false,
		"utp-enabled":                 false,
		"blocklist-enabled":           false,
		"download-dir":                dataDir,
		"incomplete-dir-enabled":      false,
		"watch-dir-enabled":           false,
		"start-added-torrents":        true,
		"speed-limit-up-enabled":      false,
		"alt-speed-enabled":           false,
		"ratio-limit-enabled":         false,
		"idle-seeding-limit-enabled":  false,
		"encryption":                  0, // prefer plaintext, as the leecher does
		"message-level":               1, // errors
	}
	b, err := json.MarshalIndent(settings, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfgDir, "settings.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(daemon, "--foreground", "--config-dir", cfgDir,
		"--allowed", "127.0.0.1", "--rpc-bind-address", "127.0.0.1", "--port", strconv.Itoa(rpcPort),
		"--peerport", strconv.Itoa(peerPort), "--bind-address-ipv4", "127.0.0.1",
		"--no-dht", "--no-lpd", "--no-utp", "--no-portmap", "--no-auth", "--encryption-tolerated")
	out := &testutil.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting transmission-daemon: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("transmission-daemon output:\n%s", out.String())
		}
	})
	tr := &transmission{
		rpc:      "127.0.0.1:" + strconv.Itoa(rpcPort),
		peerAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: peerPort},
	}
	testutil.WaitFor(t, testutil.SetupTimeout, "transmission-daemon's RPC", func() bool {
		select {
		case err := <-exited:
			t.Fatalf("transmission-daemon exited: %v\n%s", err, out.String())
		default:
		}
		_, err := tr.remote("-l")
		return err == nil
	})
	return tr
}

// remote runs transmission-remote against the daemon.
func (tr *transmission) remote(args ...string) (string, error) {
	out, err := exec.Command("transmission-remote", append([]string{tr.rpc}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("transmission-remote %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// TestTransmissionInterop streams, through the Handler, a 24 MiB file that
// a real Transmission 3.00 daemon seeds on loopback. The file is large
// enough, and the storage large enough for the readahead, that the leecher
// would keep more than 512 requests outstanding: Transmission advertises a
// queue of 512 but rejects the 512th request, after which a v1.59.1
// leecher waits for an unchoke that never comes. memtorrent's recommended
// configuration (host.Apply) caps the advertised queue to
// host.MaxPeerRequests; the test checks both the bytes and that the cap
// was applied to Transmission's handshake.
//
// Measured here: the leecher is connected and interested for about 11 s
// before the first byte (Transmission unchokes new peers at its periodic
// rechoke, every 10 s), then the transfer doubles every half second or so
// as the leecher's request window grows (nominalMaxRequests doubles the
// peak) and ends at full speed.
func TestTransmissionInterop(t *testing.T) {
	daemon := requireProgram(t, "transmission-daemon", "transmission-daemon")
	requireProgram(t, "transmission-remote", "transmission-cli")

	spec := testutil.Spec{Name: "movie.mkv", PieceLength: pieceLength, Length: 24*mib + 4321, Seed: 109}
	dataDir := t.TempDir()
	mi := testutil.MakeTorrent(t, dataDir, spec)
	torrentFile := filepath.Join(t.TempDir(), "movie.torrent")
	testutil.WriteTorrentFile(t, torrentFile, mi)

	tr := startTransmission(t, daemon, dataDir)
	tr.seed(t, torrentFile)

	var advertised, applied atomic.Int64
	e := newEnv(t, 64*mib, stream.Options{}, func(cfg *torrent.ClientConfig) {
		capReqq := cfg.Callbacks.ReadExtendedHandshake
		cfg.Callbacks.ReadExtendedHandshake = func(pc *torrent.PeerConn, d *pp.ExtendedHandshakeMessage) {
			advertised.Store(int64(d.Reqq))
			capReqq(pc, d)
			applied.Store(int64(d.Reqq))
		}
	})
	tor := e.add(mi, tr.peerAddr)
	start := time.Now()
	body, err := e.fetch(t.Context(), e.url(tor, 0), "", http.StatusOK)
	if err != nil {
		out, _ := tr.remote("-t", "all", "-i")
		t.Fatalf("streaming from Transmission: %v\nTransmission's view:\n%s", err, out)
	}
	d := time.Since(start)
	equal(t, "streamed file", body, testutil.Content(spec))
	if got := applied.Load(); got == 0 || got > host.MaxPeerRequests {
		t.Errorf("Transmission's request queue after the cap: %d; want 1..%d (advertised %d)", got, host.MaxPeerRequests, advertised.Load())
	}
	t.Logf("%d bytes from Transmission in %v (%.0f MB/s); it advertised reqq %d, the leecher used %d",
		len(body), d.Round(time.Millisecond), float64(len(body))/d.Seconds()/1e6, advertised.Load(), applied.Load())
}
