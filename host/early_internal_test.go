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

// lendTest is a tapped connection of a client to a peer, for the early
// fetch's tests: a torrent of two pieces of lendChunks chunks in memory,
// the leafHashes that know it, and a reader waiting at chunk 4.
type lendTest struct {
	c        *tapConn
	lh       *leafHashes
	mt       *memory.Torrent
	ih       metainfo.Hash
	reader   earlyReader
	sent     chan []byte // the peer's: what it was sent, message by message
	got      chan []byte // the client's: what it read, message by message
	toClient chan []byte // the peer's: what it sends
}

const lendChunks = 8 // per piece

// lendReq is a request, cancel or reject message of a chunk of lendTest's
// torrent.
func lendReq(typ pp.MessageType, chunk int) []byte {
	return pp.Message{Type: typ, Index: pp.Integer(chunk / lendChunks), Begin: pp.Integer(chunk % lendChunks * chunkSize), Length: chunkSize}.MustMarshalBinary()
}

// lendPiece is a piece message of a chunk of lendTest's torrent.
func lendPiece(chunk int) []byte {
	return pp.Message{Type: pp.Piece, Index: pp.Integer(chunk / lendChunks), Begin: pp.Integer(chunk % lendChunks * chunkSize),
		Piece: bytes.Repeat([]byte{byte(chunk)}, chunkSize)}.MustMarshalBinary()
}

// newLendTest starts a lendTest, the handshakes exchanged and the
// connection usable, the peer's unchoke and have all (a bitfield without
// peerFast) read by the client. With reader, the reader is known.
func newLendTest(t *testing.T, peerFast, noEarly, reader bool) *lendTest {
	mem, err := memory.New(memory.Options{Capacity: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mem.Close() })
	info := &metainfo.Info{PieceLength: lendChunks * chunkSize, Length: 2 * lendChunks * chunkSize, Pieces: make([]byte, 40)}
	lt := &lendTest{ih: metainfo.Hash{7}, sent: make(chan []byte, 64), got: make(chan []byte, 64), toClient: make(chan []byte, 16)}
	if _, err := mem.OpenTorrent(context.Background(), info, lt.ih); err != nil {
		t.Fatal(err)
	}
	lt.mt, _ = mem.Torrent(lt.ih)
	lt.lh = newLeafHashes()
	lt.lh.noTopUp, lt.lh.noEarly = true, noEarly
	lt.lh.v1[lt.ih] = lt.mt
	// A reader that keeps reading: it read last an hour from now, however
	// long the test takes.
	lt.reader = earlyReader{pos: 4 * chunkSize, at: time.Now().Add(time.Hour), mt: lt.mt, plen: info.PieceLength, length: info.Length}
	if reader {
		lt.lh.noteReader(lt.ih, lt.reader)
	}

	ours, far := net.Pipe()
	lt.c = lt.lh.tap(ours, true).(*tapConn)
	t.Cleanup(func() {
		close(lt.toClient)
		lt.c.Close()
	})
	readMsgs := func(r io.Reader, to chan<- []byte) {
		defer close(to)
		hs := make([]byte, handshakeLen)
		if _, err := io.ReadFull(r, hs); err != nil {
			return
		}
		for {
			var l [4]byte
			if _, err := io.ReadFull(r, l[:]); err != nil {
				return
			}
			m := make([]byte, 4+binary.BigEndian.Uint32(l[:]))
			copy(m, l[:])
			if _, err := io.ReadFull(r, m[4:]); err != nil {
				return
			}
			to <- m
		}
	}
	go readMsgs(far, lt.sent)
	go readMsgs(lt.c, lt.got)
	go func() {
		for b := range lt.toClient {
			if _, err := far.Write(b); err != nil {
				return
			}
		}
	}()
	var fast, peerBits pp.PeerExtensionBits
	fast.SetBit(pp.ExtensionBitFast, true)
	peerBits.SetBit(pp.ExtensionBitFast, peerFast)
	lt.toClient <- slices.Concat(testHandshake(peerBits, lt.ih), pp.Message{Type: pp.Unchoke}.MustMarshalBinary())
	if peerFast {
		lt.toClient <- pp.Message{Type: pp.HaveAll}.MustMarshalBinary()
	} else {
		lt.toClient <- pp.Message{Type: pp.Bitfield, Bitfield: []bool{true, true}}.MustMarshalBinary()
	}
	for range 2 { // the unchoke and the have all or bitfield
		waitMsg(t, lt.got, "the peer's state")
	}
	if _, err := lt.c.Write(testHandshake(fast, lt.ih)); err != nil {
		t.Fatal(err)
	}
	lt.c.Write(pp.Message{Type: pp.HaveNone}.MustMarshalBinary())
	waitMsg(t, lt.sent, "the client's have none")
	waitFor(t, "the connection usable", func() bool { return len(lt.lh.connsOf(lt.ih)) == 1 })
	return lt
}

// windowDone writes the reader's window but chunk 4 (its first) and
// chunks up to upTo, so that only those are wanted.
func (lt *lendTest) windowFrom(t *testing.T, from int) {
	for i := from; i < 2*lendChunks; i++ {
		if _, err := lt.mt.WriteEarly(i/lendChunks, int64(i%lendChunks*chunkSize), bytes.Repeat([]byte{byte(i)}, chunkSize)); err != nil {
			t.Fatal(err)
		}
	}
}

// idle checks that the client has nothing more to read and that no
// request is held or asked by the host.
func (lt *lendTest) idle(t *testing.T) {
	t.Helper()
	select {
	case m := <-lt.got:
		t.Fatalf("the client read %d more bytes (type %d); want none", len(m), m[4])
	default:
	}
	lt.c.fetch.mu.Lock()
	defer lt.c.fetch.mu.Unlock()
	if len(lt.c.fetch.held) != 0 || len(lt.c.fetch.ours) != 0 || len(lt.c.fetch.recalled) != 0 {
		t.Errorf("%d requests held, %d of ours outstanding, %d recalled; want none", len(lt.c.fetch.held), len(lt.c.fetch.ours), len(lt.c.fetch.recalled))
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
	for _, tc := range []struct {
		name          string
		peerFast, off bool
	}{{"lends", true, false}, {"peer without fast", false, false}, {"early fetch off", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Cleanup(func() { goleak.VerifyNone(t) }) // after newLendTest's cleanups
			lt := newLendTest(t, tc.peerFast, tc.off, true)
			lt.c.Write(slices.Concat(lendReq(pp.Request, 0), lendReq(pp.Request, 1)))
			if !tc.peerFast || tc.off {
				expectMsg(t, lt.sent, lendReq(pp.Request, 0), "the client's request of chunk 0, as it is")
				expectMsg(t, lt.sent, lendReq(pp.Request, 1), "the client's request of chunk 1, as it is")
				return
			}
			expectMsg(t, lt.sent, lendReq(pp.Request, 4), "the reader's chunk 4 in place of chunk 0")
			expectMsg(t, lt.sent, lendReq(pp.Request, 5), "the reader's chunk 5 in place of chunk 1")
			lt.toClient <- lendPiece(4)
			expectMsg(t, lt.sent, lendReq(pp.Request, 6), "the reader's chunk 6 in the place chunk 4 left")
			waitFor(t, "chunk 4 in the storage", func() bool { return lt.mt.Has(0, 4*chunkSize, chunkSize) })
			lt.c.Write(lendReq(pp.Cancel, 1))
			expectMsg(t, lt.sent, lendReq(pp.Request, 1), "the held request of chunk 1, before its cancel")
			expectMsg(t, lt.sent, lendReq(pp.Cancel, 1), "the client's cancel of chunk 1")
			lt.windowFrom(t, 7) // the reader has the rest of its window
			lt.toClient <- lendPiece(5)
			expectMsg(t, lt.sent, lendReq(pp.Request, 0), "the held request of chunk 0, once the reader wants nothing")
			lt.toClient <- slices.Concat(lendPiece(6), lendPiece(0))
			expectMsg(t, lt.got, lendPiece(0), "the answer to the client's request")
			if st := lt.lh.stats(); st.EarlyAsked != 3 || st.EarlyWritten != 3 {
				t.Errorf("%d chunks asked early, %d written; want 3, 3", st.EarlyAsked, st.EarlyWritten)
			}
			lt.idle(t)
		})
	}
}

// TestTapConnRecalls checks the recall of the client's requests sent
// before a reader appeared: they are cancelled at the peer in order; a
// reject of one does not reach the client and lends its place to the
// reader's chunk; a chunk the peer sent before the cancel reaches the
// client; the client's own cancel of a recalled request is answered by
// the peer's reject; and without the fast extension on the peer's side
// nothing is recalled.
func TestTapConnRecalls(t *testing.T) {
	t.Run("recalls", func(t *testing.T) {
		t.Cleanup(func() { goleak.VerifyNone(t) }) // after newLendTest's cleanups
		lt := newLendTest(t, true, false, false)
		lt.c.Write(slices.Concat(lendReq(pp.Request, 0), lendReq(pp.Request, 1), lendReq(pp.Request, 2)))
		for i := range 3 {
			expectMsg(t, lt.sent, lendReq(pp.Request, i), "the client's request, as it is (no reader yet)")
		}
		lt.windowFrom(t, 5) // the reader wants chunk 4 alone
		lt.lh.noteReader(lt.ih, lt.reader)
		lt.lh.recall(lt.ih, lt.reader)
		for i := range 3 {
			expectMsg(t, lt.sent, lendReq(pp.Cancel, i), "the recall of the client's request")
		}
		lt.toClient <- lendReq(pp.Reject, 0)
		expectMsg(t, lt.sent, lendReq(pp.Request, 4), "the reader's chunk 4 in the place chunk 0 left")
		lt.toClient <- lendPiece(1) // sent before the cancel came
		expectMsg(t, lt.got, lendPiece(1), "the chunk the peer sent before the recall")
		lt.c.Write(lendReq(pp.Cancel, 2))
		lt.toClient <- lendReq(pp.Reject, 2)
		expectMsg(t, lt.got, lendReq(pp.Reject, 2), "the reject of the client's cancelled request")
		lt.toClient <- lendPiece(4)
		expectMsg(t, lt.sent, lendReq(pp.Request, 0), "the held request of chunk 0, once the reader wants nothing")
		lt.toClient <- lendPiece(0)
		expectMsg(t, lt.got, lendPiece(0), "the answer to the client's request")
		if st := lt.lh.stats(); st.EarlyRecalled != 3 || st.EarlyWritten != 1 {
			t.Errorf("%d requests recalled, %d chunks written early; want 3, 1", st.EarlyRecalled, st.EarlyWritten)
		}
		lt.idle(t)
	})
	t.Run("peer without fast", func(t *testing.T) {
		t.Cleanup(func() { goleak.VerifyNone(t) }) // after newLendTest's cleanups
		lt := newLendTest(t, false, false, false)
		lt.c.Write(lendReq(pp.Request, 0))
		expectMsg(t, lt.sent, lendReq(pp.Request, 0), "the client's request, as it is")
		lt.lh.noteReader(lt.ih, lt.reader)
		lt.lh.recall(lt.ih, lt.reader)
		lt.c.Write(lendReq(pp.Request, 1))
		expectMsg(t, lt.sent, lendReq(pp.Request, 1), "the client's next request, as it is")
		if st := lt.lh.stats(); st.EarlyRecalled != 0 {
			t.Errorf("%d requests recalled; want 0", st.EarlyRecalled)
		}
	})
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

// TestTapConnReleasesInWindow checks that requests held for a reader at
// chunk 4 go to the peer as soon as a reader comes to them (here a second
// reader at chunk 1: chunk 0 stays held), and that once no reader wants
// anything the answers to the readers' chunks release the rest and bring
// no more requests.
func TestTapConnReleasesInWindow(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // after newLendTest's cleanups
	lt := newLendTest(t, true, false, true)
	lt.windowFrom(t, 6) // the reader at 4 wants chunks 4 and 5
	lt.c.Write(slices.Concat(lendReq(pp.Request, 0), lendReq(pp.Request, 1)))
	expectMsg(t, lt.sent, lendReq(pp.Request, 4), "the reader's chunk 4 in place of chunk 0")
	expectMsg(t, lt.sent, lendReq(pp.Request, 5), "the reader's chunk 5 in place of chunk 1")
	r := lt.reader
	r.pos = 1 * chunkSize
	lt.lh.noteReader(lt.ih, r)
	lt.lh.releaseInWindow(lt.ih)
	expectMsg(t, lt.sent, lendReq(pp.Request, 1), "the held request of chunk 1, in the new reader's window")
	for _, i := range []int{2, 3} { // the new reader wants chunk 1 alone, which the client asked
		if _, err := lt.mt.WriteEarly(0, int64(i*chunkSize), bytes.Repeat([]byte{byte(i)}, chunkSize)); err != nil {
			t.Fatal(err)
		}
	}
	lt.toClient <- slices.Concat(lendPiece(4), lendPiece(5))
	expectMsg(t, lt.sent, lendReq(pp.Request, 0), "the held request of chunk 0, once no reader wants anything")
	lt.toClient <- slices.Concat(lendPiece(1), lendPiece(0))
	expectMsg(t, lt.got, lendPiece(1), "the answer to the client's request of chunk 1")
	expectMsg(t, lt.got, lendPiece(0), "the answer to the client's request of chunk 0")
	lt.idle(t)
}

// TestOwnAnswerHandsBack checks what happens to an answer the tap kept
// from the client when the chunk became the client's while it came: a
// piece of a chunk no longer asked by the host (the client asked for it
// meanwhile, and its request stood for the host's) and a reject of a
// recalled request the client cancelled meanwhile go to the client, whole;
// a reject of a recalled request the client still has is held.
func TestOwnAnswerHandsBack(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // after newLendTest's cleanups
	lt := newLendTest(t, true, false, true)
	tap := func(msg []byte) tapped {
		return tapped{head: msg[4:min(len(msg), 4+tappedHead)], body: msg[4:], length: len(msg) - 4}
	}
	if got := lt.lh.ownAnswer(lt.c, tap(lendPiece(6))); !bytes.Equal(got, lendPiece(6)) {
		t.Errorf("a piece the host no longer asked for: handed back %d bytes; want the whole message (%d)", len(got), len(lendPiece(6)))
	}
	lt.c.fetch.mu.Lock()
	lt.c.fetch.recalled = map[chunkKey]recall{{0, 1 * chunkSize}: {chunkSize, true}, {0, 2 * chunkSize}: {chunkSize, false}}
	lt.c.fetch.mu.Unlock()
	if got := lt.lh.ownAnswer(lt.c, tap(lendReq(pp.Reject, 1))); !bytes.Equal(got, lendReq(pp.Reject, 1)) {
		t.Errorf("the reject of a recalled request the client cancelled: handed back % x; want the reject", got)
	}
	lt.windowFrom(t, 4) // the reader wants nothing: the held request goes back to the peer
	if got := lt.lh.ownAnswer(lt.c, tap(lendReq(pp.Reject, 2))); got != nil {
		t.Errorf("the reject of a recalled request: handed back % x; want nothing (held)", got)
	}
	expectMsg(t, lt.sent, lendReq(pp.Request, 2), "the recalled request, sent again")
	lt.idle(t)
}

// TestTapConnEmptyWrite checks that an empty write on a usable tapped
// connection with a reader writes nothing and fails nothing.
func TestTapConnEmptyWrite(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // after newLendTest's cleanups
	lt := newLendTest(t, true, false, true)
	if n, err := lt.c.Write(nil); n != 0 || err != nil {
		t.Fatalf("empty write: %d, %v; want 0, nil", n, err)
	}
	lt.c.Write(lendReq(pp.Request, 0))
	expectMsg(t, lt.sent, lendReq(pp.Request, 4), "the reader's chunk 4 in place of chunk 0, after the empty write")
}
