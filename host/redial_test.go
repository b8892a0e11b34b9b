package host_test

import (
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/anacrolix/torrent"

	"github.com/memtorrent/memtorrent/host"
	"github.com/memtorrent/memtorrent/internal/testutil"
	"github.com/memtorrent/memtorrent/storage/memory"
)

// redialBound is how soon a peer that comes up must be dialled: the
// longest backoff, a check, and the dial and handshakes on a loaded machine.
const redialBound = host.RedialMaxBackoff + 6*time.Second

// TestRedialMagnetPeerDownWhenAdded adds a magnet whose only peer (x.pe)
// is down, and starts the peer on that address afterwards: the leecher must
// get the info and the data without any other source telling it of the
// peer (no DHT, trackers or PEX).
func TestRedialMagnetPeerDownWhenAdded(t *testing.T) {
	spec := testutil.Spec{Name: "magnet.bin", Length: 2 << 20, PieceLength: 256 << 10, Seed: 57}
	port := testutil.FreePort(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	hc := testutil.NewMemLeecher(t, memory.Options{Capacity: spec.Length})
	mi, err := spec.MetaInfo()
	if err != nil {
		t.Fatal(err)
	}
	tor, _, err := hc.AddTorrentSpec(&torrent.TorrentSpec{AddTorrentOpts: torrent.AddTorrentOpts{InfoHash: mi.HashInfoBytes()}, PeerAddrs: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	// The first dial is refused; the leecher keeps trying.
	testutil.WaitFor(t, 10*time.Second, "a redial of the magnet's peer", func() bool {
		return hc.RedialState(tor.InfoHash()).Redials >= 2
	})
	if tor.Info() != nil {
		t.Fatal("the torrent has its info with its only peer down")
	}
	up := time.Now()
	testutil.NewSeeder(t, spec, func(cfg *torrent.ClientConfig) { cfg.ListenPort = port })
	testutil.WaitChan(t, redialBound, "the info from the peer that came up", tor.GotInfo())
	t.Logf("info %v after the peer came up", time.Since(up).Round(time.Millisecond))
	readAt(t, tor, 0, testutil.Content(spec), time.Minute)
}
