package host

import (
	"bytes"
	"errors"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	pp "github.com/anacrolix/torrent/peer_protocol"
)

// TestTopUpCounts checks when topUp asks for a top-up: once the pieces
// leave a third or less of the most requests outstanding, once until the
// client requests again; never on a reject, a cancelled or unknown chunk,
// or the last answer (the client plans by itself then); and a choke forgets
// everything.
func TestTopUpCounts(t *testing.T) {
	var q topUp
	k := func(i int) chunkKey { return chunkKey{0, pp.Integer(i * chunkSize)} }
	for i := range 6 {
		q.requested(k(i))
	}
	q.forget(k(5)) // cancelled: 5 outstanding of a high of 6
	var asks []int
	for i := range 6 {
		if q.answered(k(i)) {
			asks = append(asks, i)
		}
	}
	// Pieces 0-2 leave 4, 3, 2 (> 6/3 for 4 and 3); piece 2 leaves 2: a
	// top-up; 3 leaves 1 but one is asked already; 4 leaves none; 5 was
	// cancelled.
	if want := []int{2}; !slices.Equal(asks, want) {
		t.Fatalf("top-ups after pieces %v; want %v", asks, want)
	}
	for i := 10; i < 19; i++ {
		q.requested(k(i))
	}
	q.forget(k(10)) // a reject
	asks = asks[:0]
	for i := 11; i < 19; i++ {
		if q.answered(k(i)) {
			asks = append(asks, i)
		}
	}
	// A high of 9: pieces 11-16 leave 7..2; 3 (after 15) is the first at
	// or under 9/3.
	if want := []int{15}; !slices.Equal(asks, want) {
		t.Fatalf("second round: top-ups after pieces %v; want %v", asks, want)
	}
	q.requested(k(30))
	q.requested(k(31))
	q.choked()
	if q.answered(k(30)) || q.n != 0 {
		t.Fatalf("after a choke: %d outstanding, answered a forgotten request", q.n)
	}
}

// TestTapConnTopUp plays a peer answering six requests and checks that the
// client reads exactly the peer's messages, with one suggest message
// inserted between two of them where topUp asked for it, whatever the
// sizes of the client's reads, and the peer's end of stream after them;
// none when a side lacks the fast extension (v1.59.1 would close the
// connection), with NoTopUp, or while no reader reads the torrent.
func TestTapConnTopUp(t *testing.T) {
	for _, tc := range []struct {
		name                          string
		ourFast, peerFast             bool
		noTopUp, reading, wantSuggest bool
	}{
		{"fast", true, true, false, true, true},
		{"NoTopUp", true, true, true, true, false},
		{"we lack fast", false, true, false, true, false},
		{"peer lacks fast", true, false, false, true, false},
		{"no reader", true, true, false, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testTapConnTopUp(t, tc.ourFast, tc.peerFast, tc.noTopUp, tc.reading, tc.wantSuggest)
		})
	}
}

func testTapConnTopUp(t *testing.T, ourFast, peerFast, noTopUp, reading, wantSuggest bool) {
	var ih [20]byte
	handshake := func(fast bool) []byte {
		var bits pp.PeerExtensionBits
		bits.SetBit(pp.ExtensionBitFast, fast)
		return testHandshake(bits, ih)
	}
	hs, peerHS := handshake(ourFast), handshake(peerFast)
	var peer []byte
	peer = append(peer, peerHS...)
	peer = append(peer, pp.Message{Type: pp.Unchoke}.MustMarshalBinary()...)
	for i := range 6 {
		peer = append(peer, pp.Message{Type: pp.Piece, Index: 1, Begin: pp.Integer(i * chunkSize), Piece: bytes.Repeat([]byte{byte(i)}, 100)}.MustMarshalBinary()...)
	}
	for _, size := range []int{1, 7, 13, 100, 1 << 16} {
		{
			ours, theirs := net.Pipe()
			lh := newLeafHashes()
			lh.noTopUp = noTopUp
			if reading {
				lh.reading[ih] = time.Now() // as want does
			}
			c := lh.tap(ours, true).(*tapConn)
			go io.Copy(io.Discard, theirs)
			go func() {
				theirs.Write(peer)
				theirs.Close()
			}()
			if _, err := c.Write(hs); err != nil {
				t.Fatal(err)
			}
			for i := range 6 {
				if _, err := c.Write(pp.Message{Type: pp.Request, Index: 1, Begin: pp.Integer(i * chunkSize), Length: 100}.MustMarshalBinary()); err != nil {
					t.Fatal(err)
				}
			}
			var got []byte
			buf := make([]byte, size)
			var err error
			for err == nil {
				var n int
				n, err = c.Read(buf)
				got = append(got, buf[:n]...)
			}
			c.Close()
			if !errors.Is(err, io.EOF) {
				t.Fatalf("read size %d: ended with %v; want EOF", size, err)
			}
			// Pieces 0-3 leave 5, 4, 3, 2 of 6: the top-up goes after piece 3.
			want := slices.Clone(peer)
			if wantSuggest {
				at := len(peerHS) + 5 + 4*(13+100)
				want = slices.Concat(peer[:at], suggestMessage(1), peer[at:])
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("read size %d: the client read %d bytes, not the %d expected:\n%x\nwant\n%x", size, len(got), len(want), got, want)
			}
		}
	}
}

// eofConn is a connection whose reads return reads, the last one with
// io.EOF, as a net.Conn may; writes are discarded.
type eofConn struct {
	net.Conn
	reads [][]byte
}

func (c *eofConn) Read(b []byte) (int, error) {
	if len(c.reads) == 0 {
		return 0, io.EOF
	}
	n := copy(b, c.reads[0])
	if c.reads[0] = c.reads[0][n:]; len(c.reads[0]) == 0 {
		c.reads = c.reads[1:]
	}
	if len(c.reads) == 0 {
		return n, io.EOF
	}
	return n, nil
}

func (c *eofConn) Write(b []byte) (int, error) { return len(b), nil }
func (c *eofConn) Close() error                { return nil }

// TestTapConnTopUpEOF checks that a read that returns the peer's last
// bytes with io.EOF, cut by a top-up, hands over every byte and the
// suggest before the EOF.
func TestTapConnTopUpEOF(t *testing.T) {
	var bits pp.PeerExtensionBits
	bits.SetBit(pp.ExtensionBitFast, true)
	hs := testHandshake(bits, [20]byte{})
	var peer []byte
	peer = append(peer, hs...)
	for i := range 3 {
		peer = append(peer, pp.Message{Type: pp.Piece, Index: 2, Begin: pp.Integer(i * chunkSize), Piece: []byte{1, 2, 3}}.MustMarshalBinary()...)
	}
	lh := newLeafHashes()
	lh.reading[[20]byte{}] = time.Now() // as want does
	c := lh.tap(&eofConn{reads: [][]byte{peer[:len(hs)], peer[len(hs):]}}, true).(*tapConn)
	c.Write(hs)
	for i := range 3 {
		c.Write(pp.Message{Type: pp.Request, Index: 2, Begin: pp.Integer(i * chunkSize), Length: 3}.MustMarshalBinary())
	}
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	// Pieces 0 and 1 leave 2 and 1 of 3: the top-up goes after piece 1.
	at := len(hs) + 2*(13+3)
	if want := slices.Concat(peer[:at], suggestMessage(2), peer[at:]); !bytes.Equal(got, want) {
		t.Fatalf("the client read\n%x\nwant\n%x", got, want)
	}
}
