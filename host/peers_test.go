package host_test

import (
	"context"
	"encoding/binary"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/anacrolix/torrent"
	pp "github.com/anacrolix/torrent/peer_protocol"

	"go.uber.org/goleak"

	"github.com/memtorrent/memtorrent/host"
	"github.com/memtorrent/memtorrent/internal/testutil"
	"github.com/memtorrent/memtorrent/storage/memory"
)

// TestMain checks that no goroutine outlives the tests (the redialer is
// one per Client). It ignores a DHT traversal that a DHT test's client
// leaves behind for a moment after Close (anacrolix/dht v2.23.0
// traversal.Operation.run): it is not started by anything here.
func TestMain(m *testing.M) {
	testutil.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/anacrolix/dht/v2/traversal.(*Operation).run"))
}

// dontHaveLog records the lt_donthave messages a seeder receives.
type dontHaveLog struct {
	mu     sync.Mutex // guards the field below
	pieces []int
}

func (l *dontHaveLog) got() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.pieces)
}

// advertiseDontHave makes an anacrolix client advertise lt_donthave in its
// extended handshakes (as libtorrent does) and record in l each message of
// it that arrives.
func advertiseDontHave(l *dontHaveLog) func(*torrent.ClientConfig) {
	return func(cfg *torrent.ClientConfig) {
		cfg.Callbacks.PeerConnAdded = append(cfg.Callbacks.PeerConnAdded, func(pc *torrent.PeerConn) {
			m := *pc.LocalLtepProtocolMap
			m.Index = slices.Clone(m.Index)
			m.AddUserProtocol(host.ExtensionDontHave)
			pc.LocalLtepProtocolMap = &m
		})
		cfg.Callbacks.PeerConnReadExtensionMessage = append(cfg.Callbacks.PeerConnReadExtensionMessage, func(ev torrent.PeerConnReadExtensionMessageEvent) {
			name, _, err := ev.PeerConn.LocalLtepProtocolMap.LookupId(ev.ExtensionNumber)
			if err != nil || name != host.ExtensionDontHave || len(ev.Payload) != 4 {
				return
			}
			l.mu.Lock()
			l.pieces = append(l.pieces, int(binary.BigEndian.Uint32(ev.Payload)))
			l.mu.Unlock()
		})
	}
}

// readAt reads len(want) bytes at off through a new reader of t and
// compares them with want, failing the test after timeout.
func readAt(t *testing.T, tor *torrent.Torrent, off int64, want []byte, timeout time.Duration) time.Duration {
	t.Helper()
	r := tor.NewReader()
	defer r.Close()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	r.SetContext(ctx)
	start := time.Now()
	if _, err := r.Seek(off, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(want))
	if n, err := io.ReadFull(r, got); err != nil {
		t.Fatalf("reading %d bytes at %d: %v after %d bytes and %v; leecher's peers: %d", len(want), off, err, n,
			time.Since(start).Round(time.Millisecond), len(tor.PeerConns()))
	}
	if !testutil.Equal(t, got, want) {
		t.Fatalf("bytes at %d differ", off)
	}
	return time.Since(start)
}

// TestDontHave streams a torrent through a cache of a quarter of it from a
// seeder that advertises lt_donthave, and checks that the seeder is told of
// evicted pieces, that the pieces it was told of are gone (but for a few
// downloaded again since), and that a seeder without the extension is told
// nothing.
func TestDontHave(t *testing.T) {
	spec := testutil.Spec{Name: "donthave.bin", Length: 8 << 20, PieceLength: 256 << 10, Seed: 54}
	for _, advertise := range []bool{true, false} {
		name := map[bool]string{true: "advertised", false: "not advertised"}[advertise]
		t.Run(name, func(t *testing.T) {
			var l dontHaveLog
			var opts []func(*torrent.ClientConfig)
			if advertise {
				opts = append(opts, advertiseDontHave(&l))
			}
			seeder := testutil.NewSeeder(t, spec, opts...)
			hc := testutil.NewMemLeecher(t, memory.Options{Capacity: spec.Length / 4})
			tor := testutil.AddTorrent(t, hc.Torrent, seeder.MetaInfo, seeder)
			readAt(t, tor, 0, testutil.Content(spec), time.Minute)
			if !advertise {
				// Evictions are reported asynchronously: wait for some
				// before checking that nothing was sent.
				testutil.WaitFor(t, 10*time.Second, "evicted pieces to be reported", func() bool {
					return !tor.Piece(0).State().Complete
				})
				if got := hc.PeerStats().DontHaveSent; got != 0 {
					t.Errorf("DontHaveSent: got %d; want 0 to a peer without the extension", got)
				}
				return
			}
			testutil.WaitFor(t, 10*time.Second, "the seeder to be told of evicted pieces", func() bool {
				return len(l.got()) > 0 && int64(len(l.got())) == hc.PeerStats().DontHaveSent
			})
			got := l.got()
			// A piece told gone may have been downloaded again since
			// (a reader window wanted it back); most must still be gone.
			back := 0
			for _, i := range got {
				if tor.Piece(i).State().Complete {
					back++
				}
			}
			if back > len(got)/4 {
				t.Errorf("%d of the %d pieces the seeder was told are gone are complete at the leecher; want at most a quarter", back, len(got))
			}
			if n := tor.NumPieces(); len(got) < n/2 {
				t.Errorf("seeder told of %d evicted pieces; want at least %d of %d (the cache holds a quarter)", len(got), n/2, n)
			}
			t.Logf("%d lt_donthave messages for %d pieces", len(got), tor.NumPieces())
		})
	}
}

// TestRedialAfterPeerCloses reads a whole torrent through a cache of a
// quarter of it, has the only seeder close its connection (as real seeders
// do once the leecher has announced every piece), and checks that reads of
// evicted pieces get their bytes: the client dials the seeder again.
func TestRedialAfterPeerCloses(t *testing.T) {
	spec := testutil.Spec{Name: "redial.bin", Length: 8 << 20, PieceLength: 256 << 10, Seed: 55}
	seeder := testutil.NewSeeder(t, spec)
	hc := testutil.NewMemLeecher(t, memory.Options{Capacity: spec.Length / 4})
	tor := testutil.AddTorrent(t, hc.Torrent, seeder.MetaInfo, seeder)
	content := testutil.Content(spec)
	readAt(t, tor, 0, content, time.Minute)

	// An anacrolix seeder drops a peer that announced every piece
	// (DropMutuallyCompletePeers); close what is left, to be sure.
	for _, pc := range seeder.Torrent.PeerConns() {
		pc.Close()
	}
	testutil.WaitFor(t, 10*time.Second, "the leecher to have no peer", func() bool { return len(tor.PeerConns()) == 0 })
	testutil.WaitFor(t, 10*time.Second, "piece 1 to be evicted", func() bool { return !tor.Piece(1).State().Complete })

	for _, off := range []int64{int64(spec.PieceLength), spec.Length / 4, spec.Length / 2} {
		d := readAt(t, tor, off, content[off:off+int64(spec.PieceLength)], 30*time.Second)
		t.Logf("read at %d after the seeder closed: %v", off, d.Round(time.Millisecond))
	}
}

func TestCloseTwice(t *testing.T) {
	hc, err := host.New(testutil.Config(t), memory.Options{Capacity: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if err := hc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := hc.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestSeedGuard streams a torrent through a cache of a quarter of it from
// an anacrolix seeder, which does not advertise lt_donthave, and checks
// from the seeder's side that the leecher never looked like a seed on any
// connection (the seeder would drop it: DropMutuallyCompletePeers), and
// that an evicted piece can be read after the full pass.
func TestSeedGuard(t *testing.T) {
	for _, tc := range []struct {
		name, bep20 string
		guarded     bool
		magnet      bool
	}{
		// A seeder of another client (the peer ID of Transmission 3.00):
		// the guard closes the connection before it would see a seed.
		{"other client", "-TR3000-", true, false},
		// The same through a magnet: the first connection is made
		// before the info, and so before the storage opens the torrent.
		{"other client magnet", "-TR3000-", true, true},
		// An anacrolix seeder never drops a seed: left alone.
		{"anacrolix", "", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) { testSeedGuard(t, tc.bep20, tc.guarded, tc.magnet) })
	}
}

func testSeedGuard(t *testing.T, bep20 string, guarded, magnet bool) {
	spec := testutil.Spec{Name: "guard.bin", Length: 8 << 20, PieceLength: 256 << 10, Seed: 56}
	var mu sync.Mutex
	views := make(map[*torrent.PeerConn]map[int]bool) // what the seeder saw announced, per connection
	most := 0
	seeder := testutil.NewSeeder(t, spec, func(cfg *torrent.ClientConfig) {
		if bep20 != "" {
			cfg.Bep20 = bep20
		}
		cfg.Callbacks.ReadMessage = func(pc *torrent.PeerConn, msg *pp.Message) {
			mu.Lock()
			defer mu.Unlock()
			v := views[pc]
			if v == nil {
				v = make(map[int]bool)
				views[pc] = v
			}
			switch msg.Type {
			case pp.Bitfield:
				for i, b := range msg.Bitfield {
					if b {
						v[i] = true
					}
				}
			case pp.Have:
				v[int(msg.Index)] = true
			case pp.HaveAll:
				v[-1] = true
				most = 1 << 30
			}
			most = max(most, len(v))
		}
	})
	hc := testutil.NewMemLeecher(t, memory.Options{Capacity: spec.Length / 4})
	var tor *torrent.Torrent
	if magnet {
		var err error
		tor, _, err = hc.AddTorrentSpec(&torrent.TorrentSpec{
			AddTorrentOpts: torrent.AddTorrentOpts{InfoHash: seeder.MetaInfo.HashInfoBytes()},
			PeerAddrs:      []string{seeder.Client.ListenAddrs()[0].String()},
		})
		if err != nil {
			t.Fatal(err)
		}
		testutil.WaitChan(t, 10*time.Second, "the magnet's info", tor.GotInfo())
	} else {
		tor = testutil.AddTorrent(t, hc.Torrent, seeder.MetaInfo, seeder)
	}
	content := testutil.Content(spec)
	readAt(t, tor, 0, content, time.Minute)
	// A read of an evicted piece dials the seeder again if need be.
	off := int64(spec.PieceLength)
	readAt(t, tor, off, content[off:off+int64(spec.PieceLength)], 30*time.Second)
	mu.Lock()
	got, conns := most, len(views)
	mu.Unlock()
	switch n := tor.NumPieces(); {
	case guarded && got >= n:
		t.Errorf("the seeder saw %d pieces announced on one connection; want fewer than %d", got, n)
	case guarded && conns < 2:
		t.Errorf("the seeder saw %d connections; want at least 2 (the guard closes one before it looks like a seed)", conns)
	case !guarded && conns != 1:
		t.Errorf("the anacrolix seeder saw %d connections; want 1 (never guarded)", conns)
	}
	t.Logf("most pieces announced on one connection: %d of %d; connections: %d", got, tor.NumPieces(), conns)
}
