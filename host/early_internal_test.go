package host

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"
	pp "github.com/anacrolix/torrent/peer_protocol"
	"go.uber.org/goleak"

	"github.com/memtorrent/memtorrent/storage/memory"
)

// TestTapConnStripsOwnAnswers plays a peer that answers the client's
// requests and the early fetch's, and checks that the client reads only
// the answers to its own (one chunk asked by both included), whatever the
// sizes of its reads, while the early fetch's chunk reaches the storage
// and its rejected request is forgotten.
func TestTapConnStripsOwnAnswers(t *testing.T) {
	for _, size := range []int{1, 7, 100, 1 << 16} {
		mem, err := memory.New(memory.Options{Capacity: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		info := &metainfo.Info{PieceLength: 4 * chunkSize, Length: 8 * chunkSize, Pieces: make([]byte, 40)}
		ih := metainfo.Hash{9}
		if _, err := mem.OpenTorrent(context.Background(), info, ih); err != nil {
			t.Fatal(err)
		}
		mt, _ := mem.Torrent(ih)

		var bits pp.PeerExtensionBits
		bits.SetBit(pp.ExtensionBitFast, true)
		hs := append(append(append([]byte(pp.Protocol), bits[:]...), ih[:]...), "-XX0000-012345678901"...)
		data := func(b byte) []byte { return bytes.Repeat([]byte{b}, chunkSize) }
		piece := func(begin int, b byte) []byte {
			return pp.Message{Type: pp.Piece, Index: 1, Begin: pp.Integer(begin * chunkSize), Piece: data(b)}.MustMarshalBinary()
		}
		unchoke := pp.Message{Type: pp.Unchoke}.MustMarshalBinary()
		mine, both, theirs := piece(0, 1), piece(2, 3), piece(1, 2)
		reject := pp.Message{Type: pp.Reject, Index: 1, Begin: 3 * chunkSize, Length: chunkSize}.MustMarshalBinary()
		peer := slices.Concat(hs, unchoke, mine, theirs, reject, both)

		ours, far := net.Pipe()
		lh := newLeafHashes()
		lh.noTopUp = true
		c := lh.tap(ours, true).(*tapConn)
		go io.Copy(io.Discard, far)
		go func() {
			far.Write(peer)
			far.Close()
		}()
		c.Write(hs)
		for _, begin := range []int{0, 2} { // the client's requests
			c.Write(pp.Message{Type: pp.Request, Index: 1, Begin: pp.Integer(begin * chunkSize), Length: chunkSize}.MustMarshalBinary())
		}
		now := time.Now()
		c.fetch.ours = map[chunkKey]ownRequest{ // the early fetch's
			{1, 1 * chunkSize}: {at: now, mt: mt}, {1, 2 * chunkSize}: {at: now, mt: mt}, {1, 3 * chunkSize}: {at: now, mt: mt},
		}
		var got []byte
		buf := make([]byte, size)
		for {
			n, err := c.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				break
			}
		}
		c.Close()
		if want := slices.Concat(hs, unchoke, mine, both); !bytes.Equal(got, want) {
			t.Fatalf("read size %d: the client read %d bytes; want %d: the handshake, the unchoke and its two chunks", size, len(got), len(want))
		}
		b := make([]byte, chunkSize)
		if n, _ := mt.ReadUnverified(1, chunkSize, b); n != chunkSize || !bytes.Equal(b, data(2)) {
			t.Fatalf("read size %d: the early chunk is not in the storage (%d bytes)", size, n)
		}
		st := lh.stats()
		if st.EarlyWritten != 1 || st.EarlyRejected != 1 || len(c.fetch.ours) != 1 {
			t.Fatalf("read size %d: %d written, %d rejected, %d still asked; want 1, 1, 1 (the chunk the client had too)", size, st.EarlyWritten, st.EarlyRejected, len(c.fetch.ours))
		}
		mem.Close()
	}
}

// TestTapConnLendsPlaces plays a peer with the fast extension behind a
// tapped connection while a reader waits at chunk 4 of a piece, and checks
// what the peer is sent: the client's requests of the piece's first chunks
// go as requests of the reader's chunks, in reading order; an answered one
// lends its place to the next chunk the reader wants; a cancel of a held
// request goes with the request before it; once the reader wants nothing
// more, the place goes back to the oldest request held; the answers to
// the host's requests reach the storage and not the client, which reads
// the answer to its own request. Without the fast extension on the peer's
// side, or with the early fetch off, the client's requests go as they are.
func TestTapConnLendsPlaces(t *testing.T) {
	const chunks = 8 // per piece
	req := func(typ pp.MessageType, chunk int) []byte {
		return pp.Message{Type: typ, Index: pp.Integer(chunk / chunks), Begin: pp.Integer(chunk % chunks * chunkSize), Length: chunkSize}.MustMarshalBinary()
	}
	piece := func(chunk int) []byte {
		return pp.Message{Type: pp.Piece, Index: pp.Integer(chunk / chunks), Begin: pp.Integer(chunk % chunks * chunkSize),
			Piece: bytes.Repeat([]byte{byte(chunk)}, chunkSize)}.MustMarshalBinary()
	}
	for _, tc := range []struct {
		name          string
		peerFast, off bool
	}{{"lends", true, false}, {"peer without fast", false, false}, {"early fetch off", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			defer goleak.VerifyNone(t)
			mem, err := memory.New(memory.Options{Capacity: 4 << 20})
			if err != nil {
				t.Fatal(err)
			}
			defer mem.Close()
			info := &metainfo.Info{PieceLength: chunks * chunkSize, Length: 2 * chunks * chunkSize, Pieces: make([]byte, 40)}
			ih := metainfo.Hash{7}
			if _, err := mem.OpenTorrent(context.Background(), info, ih); err != nil {
				t.Fatal(err)
			}
			mt, _ := mem.Torrent(ih)
			lh := newLeafHashes()
			lh.noTopUp, lh.noEarly = true, tc.off
			lh.v1[ih] = mt
			// A reader waits at chunk 4 of piece 0: its window is chunks 4-15.
			lh.noteReader(ih, earlyReader{pos: 4 * chunkSize, at: time.Now(), mt: mt, plen: info.PieceLength, length: info.Length})

			ours, far := net.Pipe()
			c := lh.tap(ours, true).(*tapConn)
			defer c.Close()
			var fast, peerBits pp.PeerExtensionBits
			fast.SetBit(pp.ExtensionBitFast, true)
			peerBits.SetBit(pp.ExtensionBitFast, tc.peerFast)

			// The peer: its messages go out in order; what it is sent
			// comes back message by message.
			sent := make(chan []byte, 64)
			go func() {
				defer close(sent)
				hs := make([]byte, handshakeLen)
				if _, err := io.ReadFull(far, hs); err != nil {
					return
				}
				for {
					var l [4]byte
					if _, err := io.ReadFull(far, l[:]); err != nil {
						return
					}
					m := make([]byte, 4+binary.BigEndian.Uint32(l[:]))
					copy(m, l[:])
					if _, err := io.ReadFull(far, m[4:]); err != nil {
						return
					}
					sent <- m
				}
			}()
			toClient := make(chan []byte, 16)
			go func() {
				for b := range toClient {
					if _, err := far.Write(b); err != nil {
						return
					}
				}
			}()
			defer close(toClient)
			// The client reads what reaches it.
			got := make(chan []byte, 64)
			go func() {
				defer close(got)
				var l [4]byte
				hs := make([]byte, handshakeLen)
				if _, err := io.ReadFull(c, hs); err != nil {
					return
				}
				for {
					if _, err := io.ReadFull(c, l[:]); err != nil {
						return
					}
					m := make([]byte, 4+binary.BigEndian.Uint32(l[:]))
					copy(m, l[:])
					if _, err := io.ReadFull(c, m[4:]); err != nil {
						return
					}
					got <- m
				}
			}()
			toClient <- slices.Concat(testHandshake(peerBits, ih), pp.Message{Type: pp.Unchoke}.MustMarshalBinary())
			if tc.peerFast {
				toClient <- pp.Message{Type: pp.HaveAll}.MustMarshalBinary()
			} else {
				toClient <- pp.Message{Type: pp.Bitfield, Bitfield: []bool{true, true}}.MustMarshalBinary()
			}
			for range 2 { // the unchoke and the have all or bitfield
				waitMsg(t, got, "the peer's state")
			}
			if _, err := c.Write(testHandshake(fast, ih)); err != nil {
				t.Fatal(err)
			}
			c.Write(pp.Message{Type: pp.HaveNone}.MustMarshalBinary())
			waitMsg(t, sent, "the client's have none")
			waitFor(t, "the connection usable", func() bool { return len(lh.connsOf(ih)) == 1 })

			c.Write(slices.Concat(req(pp.Request, 0), req(pp.Request, 1)))
			if !tc.peerFast || tc.off {
				expectMsg(t, sent, req(pp.Request, 0), "the client's request of chunk 0, as it is")
				expectMsg(t, sent, req(pp.Request, 1), "the client's request of chunk 1, as it is")
				return
			}
			expectMsg(t, sent, req(pp.Request, 4), "the reader's chunk 4 in place of chunk 0")
			expectMsg(t, sent, req(pp.Request, 5), "the reader's chunk 5 in place of chunk 1")
			toClient <- piece(4)
			expectMsg(t, sent, req(pp.Request, 6), "the reader's chunk 6 in the place chunk 4 left")
			waitFor(t, "chunk 4 in the storage", func() bool { return mt.Has(0, 4*chunkSize, chunkSize) })
			c.Write(req(pp.Cancel, 1))
			expectMsg(t, sent, req(pp.Request, 1), "the held request of chunk 1, before its cancel")
			expectMsg(t, sent, req(pp.Cancel, 1), "the client's cancel of chunk 1")
			// The reader has the rest of its window.
			for i := 7; i < 2*chunks; i++ {
				if _, err := mt.WriteEarly(i/chunks, int64(i%chunks*chunkSize), bytes.Repeat([]byte{byte(i)}, chunkSize)); err != nil {
					t.Fatal(err)
				}
			}
			toClient <- piece(5)
			expectMsg(t, sent, req(pp.Request, 0), "the held request of chunk 0, once the reader wants nothing")
			toClient <- slices.Concat(piece(6), piece(0))
			expectMsg(t, got, piece(0), "the answer to the client's request")
			select {
			case m := <-got:
				t.Fatalf("the client read %d more bytes (type %d); want none", len(m), m[4])
			default:
			}
			if st := lh.stats(); st.EarlyAsked != 3 || st.EarlyWritten != 3 {
				t.Errorf("%d chunks asked early, %d written; want 3, 3", st.EarlyAsked, st.EarlyWritten)
			}
			if c.fetch.mu.Lock(); len(c.fetch.held) != 0 || len(c.fetch.ours) != 0 {
				t.Errorf("%d requests held, %d of ours outstanding; want none", len(c.fetch.held), len(c.fetch.ours))
			}
			c.fetch.mu.Unlock()
		})
	}
}

// waitMsg returns the next message from ch, failing t after a timeout.
func waitMsg(t *testing.T, ch <-chan []byte, what string) []byte {
	t.Helper()
	select {
	case m, ok := <-ch:
		if !ok {
			t.Fatalf("waiting for %s: the connection ended", what)
		}
		return m
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s within 10 s", what)
	}
	return nil
}

// expectMsg checks that the next message from ch is want.
func expectMsg(t *testing.T, ch <-chan []byte, want []byte, what string) {
	t.Helper()
	if m := waitMsg(t, ch, what); !bytes.Equal(m, want) {
		t.Fatalf("got message % x; want %s: % x", m[:min(len(m), 17)], what, want[:min(len(want), 17)])
	}
}

// waitFor waits until cond holds, failing t after a timeout.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 10 s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
