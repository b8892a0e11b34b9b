package host_test

import (
	"fmt"
	"net"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"

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

// TestRedialIdle adds torrents that want nothing, each with a known
// address where no peer listens, and checks that the redialer leaves them
// alone: after a first look at each, it does not test them again while
// nothing changes, and dials none (each test walks a torrent's pieces:
// polling them cost an idle host a share of a core, docs/stalls.md). Then
// a piece of one becomes wanted, and that torrent is starved and
// redialled.
func TestRedialIdle(t *testing.T) {
	const torrents, pieces = 8, 1024
	hc := testutil.NewMemLeecher(t, memory.Options{Capacity: 16 << 20})
	dead := torrent.PeerInfo{Addr: torrent.StringAddr(net.JoinHostPort("127.0.0.1", strconv.Itoa(testutil.FreePort(t))))}
	var tors []*torrent.Torrent
	for i := range torrents {
		info := metainfo.Info{Name: fmt.Sprintf("idle%d.bin", i), PieceLength: 1 << 20, Length: pieces << 20, Pieces: make([]byte, 20*pieces)}
		info.Pieces[0] = byte(i)
		b, err := bencode.Marshal(info)
		if err != nil {
			t.Fatal(err)
		}
		tor, err := hc.Torrent.AddTorrent(&metainfo.MetaInfo{InfoBytes: b})
		if err != nil {
			t.Fatal(err)
		}
		hc.AddPeers(tor, []torrent.PeerInfo{dead})
		tors = append(tors, tor)
	}
	testutil.WaitFor(t, 10*time.Second, "a first test of each torrent", func() bool {
		return hc.StarvationTests() >= torrents
	})
	runtime.GC()
	tests, cpu := hc.StarvationTests(), testutil.CPUTime(t)
	time.Sleep(time.Second) // a measurement interval, not a synchronisation
	t.Logf("CPU time in 1s with %d idle torrents of %d pieces: %v", torrents, pieces, testutil.CPUTime(t)-cpu)
	// A first look may come late; polling tests each torrent every
	// RedialCheckInterval.
	if got := hc.StarvationTests() - tests; got > torrents {
		t.Errorf("%d starvation tests in 1s of %d idle torrents; want at most %d (a late first look at each)", got, torrents, torrents)
	}
	for _, tor := range tors {
		if st := hc.RedialState(tor.InfoHash()); st.Starved || st.Redials != 0 {
			t.Errorf("torrent wanting nothing: %+v; want not starved, no redial", st)
		}
	}

	tors[0].Piece(3).SetPriority(torrent.PiecePriorityNow)
	testutil.WaitFor(t, 10*time.Second, "the torrent wanting a piece to be redialled", func() bool {
		st := hc.RedialState(tors[0].InfoHash())
		return st.Starved && st.Redials >= 2
	})
}
