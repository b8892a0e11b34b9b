package host

import (
	"bytes"
	"context"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"
	pp "github.com/anacrolix/torrent/peer_protocol"

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
