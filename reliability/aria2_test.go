package reliability

import (
	"net"
	"os/exec"
	"testing"

	"github.com/memtorrent/memtorrent/internal/testutil"
)

// aria2Program is aria2 (tested: aria2c 1.36.0). It does not advertise
// lt_donthave and closes the connection once the leecher has announced
// every piece; the leecher dials it again.
var aria2Program = seederProgram{
	name: "aria2",
	require: func(t *testing.T) {
		requireProgram(t, "aria2c", "aria2")
	},
	start: startAria2,
}

// startAria2 starts aria2c seeding the torrents with their data in dataDir:
// seeding forever (--seed-ratio=0.0), the data taken as complete without a
// hash check (--bt-seed-unverified: it was just written), listening on
// 127.0.0.1 only, no DHT, LPD or PEX, plaintext, and no limit on peers.
// It returns once the peer port accepts connections.
func startAria2(t *testing.T, dataDir string, torrents ...string) *net.TCPAddr {
	t.Helper()
	port := testutil.FreePort(t)
	args := append([]string{
		"--seed-ratio=0.0", "--bt-seed-unverified=true", "--dir=" + dataDir,
		"--listen-port=" + itoa(port), "--interface=127.0.0.1", "--disable-ipv6=true",
		"--enable-dht=false", "--enable-dht6=false", "--bt-enable-lpd=false", "--enable-peer-exchange=false",
		"--bt-require-crypto=false", "--bt-max-peers=0", "--max-concurrent-downloads=16",
		"--check-integrity=false", "--file-allocation=none", "--auto-save-interval=0",
		"--console-log-level=warn", "--summary-interval=0", "--quiet=true",
	}, torrents...)
	p := startProcess(t, "aria2c", exec.Command("aria2c", args...))
	addr := loopbackAddr(port)
	p.waitFor(t, testutil.SetupTimeout, "aria2c's peer port", func() bool { return listening(addr.String()) })
	return addr
}
