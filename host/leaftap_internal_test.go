package host

import (
	"bytes"
	"io"
	"net"
	"slices"
	"testing"

	pp "github.com/anacrolix/torrent/peer_protocol"
)

// TestStreamParser feeds a handshake and messages to a streamParser cut
// at every offset into two writes and checks that it finds the hash
// messages and the boundaries, and that it gives up on a stream that is
// not a plaintext handshake (MSE).
func TestStreamParser(t *testing.T) {
	var ih [20]byte
	ih[0] = 7
	var stream []byte
	stream = append(stream, pp.Protocol...)
	stream = append(stream, make([]byte, 8)...)
	stream = append(stream, ih[:]...)
	stream = append(stream, "-XX0000-012345678901"...)
	hashes := pp.Message{Type: pp.Hashes, Index: 16, Length: 2, Hashes: [][32]byte{{1}, {2}}}
	for _, m := range []pp.Message{{Type: pp.Bitfield, Bitfield: make([]bool, 9)}, {Keepalive: true}, hashes, {Type: pp.Have, Index: 3}, {Type: pp.HashReject, Length: 4}} {
		stream = append(stream, m.MustMarshalBinary()...)
	}
	wantHashes := hashes.MustMarshalBinary()[4:]
	for cut := range len(stream) + 1 {
		var p streamParser
		var kept [][]byte
		msgs := 0
		var types []int
		done := func(m tapped) bool {
			msgs++
			types = append(types, m.typ())
			if m.body != nil {
				kept = append(kept, bytes.Clone(m.body))
			}
			return false
		}
		n1, ok1 := p.feed(stream[:cut], isHashMessage, done)
		n2, ok2 := p.feed(stream[cut:], isHashMessage, done)
		if !ok1 || !ok2 || n1 != cut || n2 != len(stream)-cut {
			t.Fatalf("cut at %d: the parser gave up on a plaintext stream", cut)
		}
		if !p.handshakeDone() || p.infoHash() != ih || !p.atBoundary() || msgs != 5 {
			t.Fatalf("cut at %d: handshake %v, info hash %x, at a boundary %v, %d messages; want true, %x, true, 5", cut, p.handshakeDone(), p.infoHash(), p.atBoundary(), msgs, ih)
		}
		if len(kept) != 2 || !bytes.Equal(kept[0], wantHashes) || kept[1][0] != byte(pp.HashReject) {
			t.Fatalf("cut at %d: kept %d messages (%x); want the hashes and the hash reject", cut, len(kept), kept)
		}
		if want := []int{int(pp.Bitfield), -1, int(pp.Hashes), int(pp.Have), int(pp.HashReject)}; !slices.Equal(types, want) {
			t.Fatalf("cut at %d: types %v; want %v", cut, types, want)
		}
	}
	var p streamParser
	if _, ok := p.feed(stream[:70], isHashMessage, func(tapped) bool { return false }); !ok || p.atBoundary() {
		t.Error("mid-message: atBoundary true")
	}
	var mse streamParser
	if _, ok := mse.feed([]byte{0x13, 'B', 'x'}, isHashMessage, func(tapped) bool { return false }); ok {
		t.Error("the parser followed a stream that is not a BitTorrent handshake")
	}
}

// TestTapConnInjects checks that a tapConn becomes usable only once both
// handshakes and a message of the client went by, and that a message sent
// while the client is in the middle of one of its own goes after it,
// never inside it.
func TestTapConnInjects(t *testing.T) {
	ours, theirs := net.Pipe()
	defer theirs.Close()
	lh := newLeafHashes()
	c := lh.tap(ours, true).(*tapConn)
	defer c.Close()
	var ih [20]byte
	ih[0] = 3
	hs := testHandshake(pp.PeerExtensionBits{}, ih)

	// What the peer receives, in order.
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(theirs)
		got <- b
	}()
	// The peer's handshake, as Read takes it (the pipe's other end is
	// busy with ReadAll).
	c.filter(hs)

	ours1 := pp.Message{Type: pp.Bitfield, Bitfield: make([]bool, 8)}.MustMarshalBinary()
	ours2 := pp.Message{Type: pp.Request, Index: 1, Begin: 2, Length: 3}.MustMarshalBinary()
	inject := pp.Message{Type: pp.HashRequest, Index: 16, Length: 16}.MustMarshalBinary()
	write := func(b []byte) {
		t.Helper()
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	write(hs[:30])
	write(hs[30:])
	if c.send(inject) {
		t.Fatal("send before the client's first message: accepted")
	}
	write(ours1)
	if !c.usable.Load() {
		t.Fatal("not usable after both handshakes and a message")
	}
	write(ours2[:5])
	if !c.send(inject) {
		t.Fatal("send on a usable connection: refused")
	}
	write(ours2[5:])
	c.Conn.Close()
	want := append(append(append(append([]byte(nil), hs...), ours1...), ours2...), inject...)
	if b := <-got; !bytes.Equal(b, want) {
		t.Errorf("the peer got %x;\nwant %x", b, want)
	}
}

// TestTapConnNotUpgraded checks which connections leafHashes closes to have
// them dialled again with the v2 upgrade (afterInfo): only one we dialled,
// whose client handshake lacked the v2 bit, to a peer whose handshake has
// it and that answered with our info hash.
func TestTapConnNotUpgraded(t *testing.T) {
	ih, other := [20]byte{1}, [20]byte{2}
	for _, tc := range []struct {
		name                string
		dialled, ours, peer bool
		peerIH              [20]byte
		want                bool
	}{
		{"dialled, no v2 bit, peer's v2 bit", true, false, true, ih, true},
		{"accepted", false, false, true, ih, false},
		{"our v2 bit", true, true, true, ih, false},
		{"peer without the v2 bit", true, false, false, ih, false},
		{"upgraded", true, true, true, other, false},
		{"another info hash", true, false, true, other, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			handshake := func(v2 bool, ih [20]byte) []byte {
				var bits pp.PeerExtensionBits
				bits.SetBit(pp.ExtensionBitV2Upgrade, v2)
				return testHandshake(bits, ih)
			}
			c := &tapConn{dialled: tc.dialled}
			c.out.feed(handshake(tc.ours, ih), isHashMessage, func(tapped) bool { return false })
			c.in.feed(handshake(tc.peer, tc.peerIH), isHashMessage, func(tapped) bool { return false })
			c.peerIH, c.peerBits = c.in.infoHash(), c.in.reserved()
			if got := c.notUpgradedLocked(); got != tc.want {
				t.Errorf("notUpgradedLocked %v; want %v", got, tc.want)
			}
		})
	}
}

// testHandshake is a BitTorrent handshake with bits and ih.
func testHandshake(bits pp.PeerExtensionBits, ih [20]byte) []byte {
	return append(append(append([]byte(pp.Protocol), bits[:]...), ih[:]...), "-XX0000-012345678901"...)
}
