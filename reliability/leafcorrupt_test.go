package reliability

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/anacrolix/torrent"
	pp "github.com/anacrolix/torrent/peer_protocol"

	"github.com/memtorrent/memtorrent/host"
	"github.com/memtorrent/memtorrent/internal/testutil"
	"github.com/memtorrent/memtorrent/stream"
)

// TestLeafHashesCorruptingPeer streams a hybrid torrent (1 MiB pieces) from
// qBittorrent, first through a proxy that corrupts every block of piece 0
// the first time it passes, with host.Options.LeafHashes, in both verify
// modes. The leaf hashes (from qBittorrent, through the same proxy) refuse
// each corrupted block before it reaches the player
// (memory.Torrent.RefusedLeaves); once the leecher has banned the proxy
// (the piece failed its hash) it gets qBittorrent's own address, and the
// stream ends exact, with no byte served unverified and the bytes served
// before their piece's hash check all proven by their leaf hashes. The
// torrent is added as a .torrent, and in strict mode also as a magnet
// naming the v1 info hash alone: the piece layer then comes from
// qBittorrent, through the proxy, and must reach the file's pieces root.
func TestLeafHashesCorruptingPeer(t *testing.T) {
	qbittorrentProgram.require(t)
	for _, tc := range []struct {
		verify, badHost, leecher string
		magnet                   bool
	}{
		{stream.VerifyStrict, "127.0.0.61", "127.0.0.62", false},
		{stream.VerifyPlayhead, "127.0.0.63", "127.0.0.64", false},
		{stream.VerifyStrict, "127.0.0.65", "127.0.0.66", true},
	} {
		name := tc.verify
		if tc.magnet {
			name += " magnet"
		}
		t.Run(name, func(t *testing.T) { leafHashesCorruptingPeer(t, tc.verify, tc.badHost, tc.leecher, tc.magnet) })
	}
}

func leafHashesCorruptingPeer(t *testing.T, verify, badHost, leecher string, magnet bool) {
	dataDir := t.TempDir()
	spec := testutil.Spec{Name: "film.mkv", PieceLength: mib, Length: 8 * mib, Seed: 23}
	mi := hybridMetaInfo(t, dataDir, spec)
	content := testutil.Content(spec)
	qb := seedQBittorrentChecked(t, dataDir, writeTorrent(t, mi), [20]byte(mi.HashInfoBytes()))
	bad := corruptingProxy(t, badHost, qb, 0)

	e := newEnvWith(t, 16*mib, host.Options{LeafHashes: true}, stream.Options{Verify: verify}, listenOn(leecher))
	hc, h := e.hc, e.h

	var tor *torrent.Torrent
	if magnet {
		tor = e.addMagnet(mi.HashInfoBytes(), bad)
	} else {
		tor = e.add(mi, bad)
	}
	mt, _ := hc.Storage.Torrent(tor.InfoHash())
	res := e.fetchAsync(e.url(tor, 0), "", http.StatusOK)
	testutil.WaitFor(t, transferTimeout, "a corrupted block refused and the proxy banned", func() bool {
		return mt.RefusedLeaves() > 0 && slices.Contains(bannedIPs(e.cl), badHost)
	})
	addPeers(tor, qb)
	r := waitResult(t, res)
	if r.err != nil {
		t.Fatalf("streaming: %v", r.err)
	}
	equal(t, "streamed file", r.body, content)
	st := h.Status()
	ls := hc.LeafHashStats()
	t.Logf("refused leaves %d; leaf-verified bytes %d, unverified %d; leaf hashes %+v", mt.RefusedLeaves(), st.LeafVerifiedBytes, st.UnverifiedBytes, ls)
	if st.UnverifiedBytes != 0 || st.UnverifiedFailed != 0 || st.LeafVerifiedBytes == 0 || ls.Set == 0 || ls.Dropped != 0 {
		t.Errorf("unverified bytes %d, failed %d, leaf-verified bytes %d, pieces with leaf hashes %d, replies dropped %d; want 0, 0, > 0, > 0, 0",
			st.UnverifiedBytes, st.UnverifiedFailed, st.LeafVerifiedBytes, ls.Set, ls.Dropped)
	}
	// The refusals are reported: /status and /metrics.
	if st.RefusedLeaves < mt.RefusedLeaves() || mt.RefusedLeaves() == 0 {
		t.Errorf("/status refusedLeaves %d, the torrent's %d; want at least the torrent's, above 0", st.RefusedLeaves, mt.RefusedLeaves())
	}
	metrics, err := e.fetch(t.Context(), e.srv.URL+"/metrics", "", http.StatusOK)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^memtorrent_storage_refused_leaves_total [1-9]`).Match(metrics) {
		t.Errorf("/metrics has no memtorrent_storage_refused_leaves_total above 0")
	}
}

// corruptingProxy listens on host and forwards each connection to target,
// flipping a byte in every block of piece the first time it passes from
// target; everything else, hash messages included, passes unchanged. It
// returns its address; it stops at the end of the test.
func corruptingProxy(t *testing.T, host string, target net.Addr, piece int) net.Addr {
	t.Helper()
	l, err := net.Listen("tcp4", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	corrupted := map[uint32]bool{} // block offsets in the piece
	var conns []net.Conn
	var wg sync.WaitGroup
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			down, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp4", target.String())
			if err != nil {
				down.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, down, up)
			mu.Unlock()
			wg.Add(2)
			go func() {
				defer wg.Done()
				io.Copy(up, down)
				up.Close()
			}()
			go func() {
				defer wg.Done()
				defer down.Close()
				var hs [handshakeLen]byte
				if _, err := io.ReadFull(up, hs[:]); err != nil {
					return
				}
				if _, err := down.Write(hs[:]); err != nil {
					return
				}
				for {
					var lenBuf [4]byte
					if _, err := io.ReadFull(up, lenBuf[:]); err != nil {
						return
					}
					msg := make([]byte, 4+binary.BigEndian.Uint32(lenBuf[:]))
					copy(msg, lenBuf[:])
					if _, err := io.ReadFull(up, msg[4:]); err != nil {
						return
					}
					if len(msg) > 13 && msg[4] == byte(pp.Piece) && binary.BigEndian.Uint32(msg[5:]) == uint32(piece) {
						begin := binary.BigEndian.Uint32(msg[9:])
						mu.Lock()
						if !corrupted[begin] {
							corrupted[begin] = true
							msg[13] ^= 0xff
						}
						mu.Unlock()
					}
					if _, err := down.Write(msg); err != nil {
						return
					}
				}
			}()
		}
	}()
	return l.Addr()
}

// handshakeLen is the length of a BitTorrent handshake.
const handshakeLen = 68

// TestLeafHashesAnacrolixSeeder streams a hybrid torrent with
// host.Options.LeafHashes, in strict mode, from an anacrolix v1.59.1
// seeder, which never sends block hashes (it answers our v1 info hash with
// the v1 one, so the connection is not upgraded and the host asks nothing;
// with host.Apply it would ignore hash requests anyway): the stream falls
// back to whole verified pieces and ends exact, nothing served unverified,
// no leaf hashes set.
func TestLeafHashesAnacrolixSeeder(t *testing.T) {
	dataDir := t.TempDir()
	spec := testutil.Spec{Name: "film.mkv", PieceLength: mib, Length: 4*mib + 777, Seed: 29}
	// v1.59.1 lays out a hybrid torrent by its v2 file tree, in which a
	// single file is a directory entry: its file storage looks for
	// name/name.
	mi := hybridMetaInfo(t, filepath.Join(dataDir, spec.Name), spec)
	seeder := testutil.SeedDir(t, dataDir, mi, nil)

	e := newEnvWith(t, 16*mib, host.Options{LeafHashes: true}, stream.Options{Verify: stream.VerifyStrict})
	hc, h := e.hc, e.h

	tor := e.add(mi, seeder.Client.ListenAddrs()[0])
	body, err := e.fetch(t.Context(), e.url(tor, 0), "", http.StatusOK)
	if err != nil {
		t.Fatalf("streaming: %v", err)
	}
	equal(t, "streamed file", body, testutil.Content(spec))
	st, ls := h.Status(), hc.LeafHashStats()
	t.Logf("leaf hashes %+v; leaf-verified bytes %d", ls, st.LeafVerifiedBytes)
	if st.UnverifiedBytes != 0 || st.LeafVerifiedBytes != 0 || ls.Set != 0 {
		t.Errorf("unverified bytes %d, leaf-verified %d, leaf hash stats %+v; want 0, 0, nothing set", st.UnverifiedBytes, st.LeafVerifiedBytes, ls)
	}
}

// TestLeafHashesFirstByte streams the first MiB of a hybrid film of three
// 16 MiB pieces from qBittorrent limited to -firstbyte.rate (4 MiB/s: 4 s
// a piece), in strict mode, without and with host.Options.LeafHashes, and
// logs the time to the first byte. Without: the first byte waits for the
// whole piece. With: it comes while the piece is incomplete, proven by its
// block hash, and nothing is served unverified; also with the torrent
// added by a magnet with the v1 info hash alone (the clock starts once it
// has its info, as for the others: the reconnect for the v2 upgrade and
// the piece layer come after). Run with -firstbyte.rate=1000000 -v to
// measure at 1 MB/s.
func TestLeafHashesFirstByte(t *testing.T) {
	qbittorrentProgram.require(t)
	dataDir := t.TempDir()
	spec := testutil.Spec{Name: "film.mkv", PieceLength: 16 * mib, Length: 48 * mib, Seed: 31}
	mi := hybridMetaInfo(t, dataDir, spec)
	want := testutil.Content(spec)[:mib]
	limit := fmt.Sprintf("Session\\IgnoreLimitsOnLAN=false\nSession\\GlobalUPSpeedLimit=%d\n", *firstByteRate/1024)
	qb := seedQBittorrentChecked(t, dataDir, writeTorrent(t, mi), [20]byte(mi.HashInfoBytes()), limit)
	for i, tc := range []struct{ leaves, magnet bool }{{false, false}, {true, false}, {true, true}} {
		leaves := tc.leaves
		name := fmt.Sprintf("leafhashes=%v", leaves)
		if tc.magnet {
			name += " magnet"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnvWith(t, 64*mib, host.Options{LeafHashes: leaves}, stream.Options{Verify: stream.VerifyStrict}, listenOn(fmt.Sprintf("127.0.0.%d", 71+i)))
			h := e.h
			var tor *torrent.Torrent
			if tc.magnet {
				tor = e.addMagnet(mi.HashInfoBytes(), qb)
			} else {
				tor = e.add(mi, qb)
			}

			ctx, cancel := context.WithTimeout(t.Context(), transferTimeout)
			defer cancel()
			start := time.Now()
			resp, err := e.get(ctx, e.url(tor, 0), "bytes=0-1048575")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body := make([]byte, mib)
			if _, err := io.ReadFull(resp.Body, body[:1]); err != nil {
				t.Fatalf("reading the first byte: %v", err)
			}
			ttfb := time.Since(start)
			complete := tor.Piece(0).State().Complete
			if _, err := io.ReadFull(resp.Body, body[1:]); err != nil {
				t.Fatalf("reading the body: %v", err)
			}
			equal(t, "first MiB", body, want)
			st := h.Status()
			t.Logf("leaf hashes %v: first byte after %v at %d B/s, piece complete then: %v; leaf-verified bytes %d, unverified %d",
				leaves, ttfb.Round(time.Millisecond), *firstByteRate, complete, st.LeafVerifiedBytes, st.UnverifiedBytes)
			switch {
			case st.UnverifiedBytes != 0:
				t.Errorf("strict: %d bytes served unverified", st.UnverifiedBytes)
			case !leaves && !complete:
				t.Errorf("without leaf hashes: the first byte came before the piece was complete")
			case leaves && (complete || st.LeafVerifiedBytes == 0):
				t.Errorf("with leaf hashes: piece complete at the first byte %v, leaf-verified bytes %d; want false, > 0", complete, st.LeafVerifiedBytes)
			}
		})
	}
}
