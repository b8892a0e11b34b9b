package host_test

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
	pp "github.com/anacrolix/torrent/peer_protocol"

	"github.com/memtorrent/memtorrent/host"
	"github.com/memtorrent/memtorrent/internal/testutil"
	"github.com/memtorrent/memtorrent/storage/memory"
)

// fakePeer is a BitTorrent peer for one torrent that holds the pieces
// have says, unchokes us when unchoke is set, and answers no request. It
// serves one connection at a time until the test ends.
func fakePeer(t *testing.T, ih metainfo.Hash, pieces int, have, unchoke bool) net.Addr {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu     sync.Mutex // guards the fields below
		cur    net.Conn   // the connection being served
		closed bool
	)
	done := make(chan struct{})
	// The connection being served is closed too: a dial the leecher made
	// as it closed may never send its handshake.
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		closed = true
		if cur != nil {
			cur.Close()
		}
		mu.Unlock()
		<-done
	})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			if closed {
				mu.Unlock()
				c.Close()
				return
			}
			cur = c
			mu.Unlock()
			servePeer(c, ih, pieces, have, unchoke)
		}
	}()
	return l.Addr()
}

// servePeer runs fakePeer's side of connection c until c closes.
func servePeer(c net.Conn, ih metainfo.Hash, pieces int, have, unchoke bool) {
	defer c.Close()
	id := [20]byte{'-', 'F', 'K', '0', '0', '0', '1', '-'}
	if _, err := pp.Handshake(context.Background(), c, &ih, id, pp.PeerExtensionBits{}); err != nil {
		return
	}
	bf := make([]bool, pieces)
	for i := range bf {
		bf[i] = have
	}
	msgs := []pp.Message{{Type: pp.Bitfield, Bitfield: bf}}
	if unchoke {
		msgs = append(msgs, pp.Message{Type: pp.Unchoke})
	}
	for _, m := range msgs {
		if _, err := c.Write(m.MustMarshalBinary()); err != nil {
			return
		}
	}
	io.Copy(io.Discard, c) // requests are read and never answered
}

// TestDiagnose checks the reason Client.Diagnose gives for a wanted piece
// with one peer of each kind (fakePeer): one that has it and chokes us, one
// without it, and one that has it, unchokes us and never answers (silent:
// Diagnose with act closes the connection).
func TestDiagnose(t *testing.T) {
	spec := testutil.Spec{Name: "diagnose.bin", Length: 2 << 20, PieceLength: 256 << 10, Seed: 58}
	mi, err := spec.MetaInfo()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name          string
		want          host.Reason
		have, unchoke bool
	}{
		{"choking", host.ReasonChoked, true, false},
		{"without the piece", host.ReasonNoSource, false, true},
		{"silent", host.ReasonSilent, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := fakePeer(t, mi.HashInfoBytes(), 8, tc.have, tc.unchoke)
			hc := testutil.NewMemLeecher(t, memory.Options{Capacity: spec.Length})
			tor, err := hc.Torrent.AddTorrent(mi)
			if err != nil {
				t.Fatal(err)
			}
			// Normal, not Now: the request bookkeeping (request.go) closes a
			// connection silent on a piece at Next or above after
			// SilentPeerTimeout, before the watchdog's SilentTimeout.
			tor.Piece(0).SetPriority(torrent.PiecePriorityNormal)
			hc.AddPeers(tor, []torrent.PeerInfo{{Addr: addr}})
			var d host.Diagnosis
			testutil.WaitFor(t, host.SilentTimeout+20*time.Second, "the reason "+string(tc.want), func() bool {
				d = hc.Diagnose(tor, 0, false)
				return d.Reason == tc.want
			})
			if len(d.Peers) != 1 {
				t.Fatalf("peers %+v; want 1", d.Peers)
			}
			p := d.Peers[0]
			t.Logf("peer %+v", p)
			switch tc.want {
			case host.ReasonChoked:
				if !p.PeerChoking || !p.HasPiece {
					t.Errorf("peer %+v: want choking, with the piece", p)
				}
			case host.ReasonNoSource:
				if p.HasPiece || p.Interesting {
					t.Errorf("peer %+v: want without the piece, not interesting", p)
				}
			case host.ReasonSilent:
				if p.PeerChoking || !p.HasPiece || p.Requests == 0 {
					t.Errorf("peer %+v: want unchoking, with the piece and requests outstanding", p)
				}
				if d := hc.Diagnose(tor, 0, true); d.Action == "" {
					t.Errorf("Diagnose with act: no action for %s", d.Reason)
				}
				testutil.WaitFor(t, 10*time.Second, "the silent connection to close", func() bool {
					for _, ps := range hc.Peers(tor, 0) {
						if ps.Addr == p.Addr && ps.SilentSeconds > host.SilentTimeout.Seconds() {
							return false
						}
					}
					return true
				})
			}
		})
	}
}
