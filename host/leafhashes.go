package host

import (
	"encoding/binary"
	"net"
	"slices"
	"sync"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/merkle"
	"github.com/anacrolix/torrent/metainfo"
	pp "github.com/anacrolix/torrent/peer_protocol"
	infohash_v2 "github.com/anacrolix/torrent/types/infohash-v2"
	"go.uber.org/atomic"

	"github.com/memtorrent/memtorrent/storage/memory"
)

// leafHashes fetches the leaf hashes of a v2 or hybrid torrent's pieces
// (BEP 52's block layer: the SHA-256 of each 16 KiB block) from peers, for
// the pieces that reads before the hash check want
// (memory.Options.OnWantLeafHashes) and the leafPrefetch pieces after each,
// checks them against the torrent's piece layers and gives them to the
// storage (memory.Torrent.SetLeafHashes), which then serves each 16 KiB
// block as soon as it arrives and matches.
//
// It asks on the connections the host taps (leaftap.go) that are upgraded
// to v2: on each, for each wanted piece, one hash request per
// maxHashesPerRequest leaves (base layer 0, no proof layers: the piece
// layer is the proof). A piece's hashes are kept once all of them arrived
// and combine to the piece's hash in the piece layers; a reply that does
// not is dropped. A piece stays wanted until its hashes are set or
// maxWanted newer pieces are wanted; each new connection of the torrent is
// asked for every wanted piece. A v1.59.1 peer answers our v1 info hash
// with the v1 one (no upgrade), so it is never asked. libtorrent
// answers when it has hashed its data, and rejects otherwise
// (docs/verify.md); a peer's wrong hashes do not combine to the piece
// hash and are dropped.
type leafHashes struct {
	cl  atomic.Pointer[torrent.Client] // set once the client exists
	mem *memory.Client                 // set before the client exists

	mu       sync.Mutex
	conns    map[[20]byte]map[*tapConn]struct{} // usable connections by info hash
	torrents map[[20]byte]*leafTorrent          // by truncated v2 info hash
	byIH     map[metainfo.Hash]*leafTorrent     // the same, by the storage's key

	requests, replies, rejects, dropped, set atomic.Int64
}

// LeafHashStats counts the leaf-hash traffic of a Client (see
// Options.LeafHashes).
type LeafHashStats struct {
	Requests int64 // hash requests sent
	Replies  int64 // hashes messages received
	Rejects  int64 // hash reject messages received
	Dropped  int64 // replies that did not prove a wanted piece (wrong hashes, unknown root, unwanted)
	Set      int64 // pieces whose leaf hashes were given to the storage
}

// maxHashesPerRequest is BEP 52's limit on the hashes of one request.
const maxHashesPerRequest = 512

// leafTorrent is what leafHashes knows of one v2 or hybrid torrent.
type leafTorrent struct {
	ih       metainfo.Hash // the storage's key
	short    [20]byte      // truncated v2 info hash: what upgraded handshakes name
	mt       *memory.Torrent
	leaves   int // leaves per piece
	files    []leafFile
	byRoot   map[[32]byte]int   // index in files
	wanted   map[int][][32]byte // piece -> leaf hashes received so far (nil entries: missing)
	received map[int][]bool     // piece -> which request-sized parts arrived
	order    []int              // the wanted pieces, oldest first
}

// leafPrefetch is how many pieces after a wanted one have their leaf
// hashes asked for with it.
const leafPrefetch = 2

// maxWanted bounds the pieces a torrent waits for the leaf hashes of: the
// oldest is forgotten (a read has long moved on from it, or no peer has
// its hashes), so that a new connection is asked only for recent ones.
const maxWanted = 16

// leafFile is one file of a v2 torrent: its pieces root, first piece and
// piece layer.
type leafFile struct {
	root       [32]byte
	firstPiece int
	layer      [][32]byte // one hash per piece of the file
}

func newLeafHashes() *leafHashes {
	return &leafHashes{conns: map[[20]byte]map[*tapConn]struct{}{}, torrents: map[[20]byte]*leafTorrent{},
		byIH: map[metainfo.Hash]*leafTorrent{}}
}

// tap wraps a connection of the client.
func (lh *leafHashes) tap(c net.Conn) net.Conn {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0) // what v1.59.1 does to the TCP connections it makes
	}
	return &tapConn{Conn: c, lh: lh}
}

func (lh *leafHashes) stats() LeafHashStats {
	return LeafHashStats{Requests: lh.requests.Load(), Replies: lh.replies.Load(), Rejects: lh.rejects.Load(),
		Dropped: lh.dropped.Load(), Set: lh.set.Load()}
}

// want is memory.Options.OnWantLeafHashes: piece of the torrent ih wants
// its leaf hashes. It runs on a reader's goroutine.
func (lh *leafHashes) want(ih metainfo.Hash, piece int) {
	cl := lh.cl.Load()
	if cl == nil {
		return
	}
	t, ok := cl.Torrent(ih)
	if !ok || t.Info() == nil || !t.Info().HasV2() {
		return
	}
	mt, ok := lh.mem.Torrent(ih)
	if !ok {
		return
	}
	lt := lh.torrent(t, mt)
	if lt == nil {
		return
	}
	f, ok := lt.file(piece)
	if !ok {
		return
	}
	if lt.leaves == 1 {
		// A piece of one leaf: its piece-layer hash is its leaf hash.
		if mt.SetLeafHashes(piece, [][32]byte{f.layer[piece-f.firstPiece]}) == nil {
			lh.set.Add(1)
		}
		return
	}
	// The next pieces too, so that a reader that gets there finds their
	// hashes (a hash request costs a round trip).
	var next []int
	for p := piece + 1; p <= piece+leafPrefetch; p++ {
		if _, ok := lt.file(p); ok && !mt.HasLeafHashes(p) {
			next = append(next, p)
		}
	}
	var msgs [][]byte
	lh.mu.Lock()
	for _, p := range append([]int{piece}, next...) {
		if _, ok := lt.wanted[p]; ok {
			continue
		}
		lt.wanted[p] = make([][32]byte, lt.leaves)
		lt.received[p] = make([]bool, (lt.leaves+maxHashesPerRequest-1)/maxHashesPerRequest)
		lt.order = append(lt.order, p)
		msgs = append(msgs, lt.requests(p)...)
	}
	for len(lt.wanted) > maxWanted {
		old := lt.order[0]
		lt.order = lt.order[1:]
		delete(lt.wanted, old)
		delete(lt.received, old)
	}
	if len(msgs) == 0 {
		lh.mu.Unlock()
		return
	}
	var conns []*tapConn
	for c := range lh.conns[lt.short] {
		conns = append(conns, c)
	}
	lh.mu.Unlock()
	for _, c := range conns {
		// Not on the reader's goroutine: a write waits for the client's
		// write on the connection, which may wait for the peer.
		go lh.sendAll(c, msgs)
	}
}

// torrent returns the leafTorrent of t, making it from t's piece layers
// the first time; nil if t has none usable.
func (lh *leafHashes) torrent(t *torrent.Torrent, mt *memory.Torrent) *leafTorrent {
	lh.mu.Lock()
	if lt, ok := lh.byIH[t.InfoHash()]; ok && lt.mt == mt {
		lh.mu.Unlock()
		return lt
	}
	lh.mu.Unlock()
	mi := t.Metainfo()
	v2 := infohash_v2.HashBytes(mi.InfoBytes)
	short := [20]byte(v2[:20])
	lh.mu.Lock()
	if lt, ok := lh.torrents[short]; ok && lt.mt == mt {
		lh.mu.Unlock()
		return lt
	}
	lh.mu.Unlock()
	info := t.Info()
	if info.PieceLength%merkle.BlockSize != 0 {
		return nil
	}
	lt := &leafTorrent{ih: t.InfoHash(), short: short, mt: mt, leaves: int(info.PieceLength / merkle.BlockSize),
		byRoot: map[[32]byte]int{}, wanted: map[int][][32]byte{}, received: map[int][]bool{}}
	for _, fi := range info.UpvertedFiles() {
		if !fi.PiecesRoot.Ok || fi.Length == 0 {
			continue
		}
		root := [32]byte(fi.PiecesRoot.Value)
		f := leafFile{root: root, firstPiece: int(fi.TorrentOffset / info.PieceLength)}
		if fi.Length <= info.PieceLength {
			f.layer = [][32]byte{root}
		} else {
			layer, err := merkle.CompactLayerToSliceHashes(mi.PieceLayers[string(root[:])])
			if err != nil || len(layer) == 0 {
				continue
			}
			f.layer = layer
		}
		lt.byRoot[root] = len(lt.files)
		lt.files = append(lt.files, f)
	}
	lh.mu.Lock()
	defer lh.mu.Unlock()
	if old, ok := lh.torrents[short]; ok && old.mt == mt {
		return old
	}
	lh.torrents[short] = lt
	lh.byIH[lt.ih] = lt
	return lt
}

// forget drops what lh knows of the torrent ih (Client.Drop).
func (lh *leafHashes) forget(ih metainfo.Hash) {
	lh.mu.Lock()
	defer lh.mu.Unlock()
	if lt, ok := lh.byIH[ih]; ok {
		delete(lh.byIH, ih)
		if lh.torrents[lt.short] == lt {
			delete(lh.torrents, lt.short)
		}
	}
}

// file returns the file that holds piece.
func (lt *leafTorrent) file(piece int) (leafFile, bool) {
	for _, f := range lt.files {
		if piece >= f.firstPiece && piece < f.firstPiece+len(f.layer) {
			return f, true
		}
	}
	return leafFile{}, false
}

// requests returns the hash requests that ask for piece's leaf hashes.
func (lt *leafTorrent) requests(piece int) [][]byte {
	f, ok := lt.file(piece)
	if !ok {
		return nil
	}
	n := min(lt.leaves, maxHashesPerRequest)
	var msgs [][]byte
	for first := 0; first < lt.leaves; first += n {
		m := pp.Message{Type: pp.HashRequest, PiecesRoot: f.root, BaseLayer: 0,
			Index: pp.Integer((piece-f.firstPiece)*lt.leaves + first), Length: pp.Integer(n)}
		msgs = append(msgs, m.MustMarshalBinary())
	}
	return msgs
}

// sendAll sends msgs on c, counting them.
func (lh *leafHashes) sendAll(c *tapConn, msgs [][]byte) {
	for _, m := range msgs {
		if !c.send(m) {
			return
		}
		lh.requests.Add(1)
	}
}

// connReady registers c, a connection whose handshakes named ih, and asks
// it for the leaf hashes of the wanted pieces of the torrent ih names.
func (lh *leafHashes) connReady(c *tapConn, ih [20]byte) {
	lh.mu.Lock()
	if !c.usable.Load() {
		// Closed before it got here: Close cleared usable before its
		// connClosed, which has run or waits for lh.mu.
		lh.mu.Unlock()
		return
	}
	set := lh.conns[ih]
	if set == nil {
		set = map[*tapConn]struct{}{}
		lh.conns[ih] = set
	}
	set[c] = struct{}{}
	var msgs [][]byte
	lt, ok := lh.torrents[ih]
	if ok {
		for piece := range lt.wanted {
			msgs = append(msgs, lt.requests(piece)...)
		}
	}
	lh.mu.Unlock()
	lh.sendAll(c, msgs)
	if !ok {
		lh.wantHead(ih)
	}
}

// wantHead wants the leaf hashes of the first pieces of the largest file
// of the torrent whose truncated v2 info hash is short (want), before any
// read did: a player starts there, so the hashes are in before its first
// read needs them, instead of a round trip (behind the data already asked
// of the line) after it.
func (lh *leafHashes) wantHead(short [20]byte) {
	cl := lh.cl.Load()
	if cl == nil {
		return
	}
	for _, t := range cl.Torrents() {
		info := t.Info()
		if info == nil || !info.HasV2() {
			continue
		}
		if v2 := infohash_v2.HashBytes(t.Metainfo().InfoBytes); [20]byte(v2[:20]) != short {
			continue
		}
		var largest *torrent.File
		for _, f := range t.Files() {
			if largest == nil || f.Length() > largest.Length() {
				largest = f
			}
		}
		if largest != nil && largest.Length() > 0 {
			lh.want(t.InfoHash(), int(largest.Offset()/info.PieceLength))
		}
		return
	}
}

// connClosed forgets c.
func (lh *leafHashes) connClosed(c *tapConn, ih [20]byte) {
	lh.mu.Lock()
	defer lh.mu.Unlock()
	delete(lh.conns[ih], c)
	if len(lh.conns[ih]) == 0 {
		delete(lh.conns, ih)
	}
}

// peerReply handles body, a hashes or hash reject message (type byte
// first) from a connection whose handshakes named ih.
func (lh *leafHashes) peerReply(ih [20]byte, body []byte) {
	if len(body) < 1+48 {
		lh.dropped.Add(1)
		return
	}
	if body[0] == byte(pp.HashReject) {
		lh.rejects.Add(1)
		return
	}
	lh.replies.Add(1)
	root := [32]byte(body[1:33])
	base := binary.BigEndian.Uint32(body[33:])
	index := int(binary.BigEndian.Uint32(body[37:]))
	length := int(binary.BigEndian.Uint32(body[41:]))
	hashes := body[49:]
	if base != 0 || length <= 0 || len(hashes) < 32*length {
		lh.dropped.Add(1)
		return
	}
	lh.mu.Lock()
	lt, ok := lh.torrents[ih]
	var fi int
	if ok {
		fi, ok = lt.byRoot[root]
	}
	if !ok {
		lh.mu.Unlock()
		lh.dropped.Add(1)
		return
	}
	f := lt.files[fi]
	part := min(lt.leaves, maxHashesPerRequest)
	if index%part != 0 || length%part != 0 {
		lh.mu.Unlock()
		lh.dropped.Add(1)
		return
	}
	type done struct {
		piece  int
		leaves [][32]byte
	}
	var ready []done
	used := false
	for k := 0; k+part <= length; k += part {
		leaf := index + k // the part's first leaf in the file
		piece := f.firstPiece + leaf/lt.leaves
		got, wanted := lt.wanted[piece]
		if !wanted {
			continue
		}
		p := (leaf % lt.leaves) / part
		for j := range part {
			got[p*part+j] = [32]byte(hashes[32*(k+j):])
		}
		lt.received[piece][p] = true
		used = true
		all := true
		for _, r := range lt.received[piece] {
			all = all && r
		}
		if !all {
			continue
		}
		if piece-f.firstPiece >= len(f.layer) || merkle.RootWithPadHash(got, [32]byte{}) != f.layer[piece-f.firstPiece] {
			// Wrong hashes: forget them all, and wait for another reply.
			clear(lt.received[piece])
			lh.dropped.Add(1)
			continue
		}
		delete(lt.wanted, piece)
		delete(lt.received, piece)
		lt.order = slices.DeleteFunc(lt.order, func(p int) bool { return p == piece })
		ready = append(ready, done{piece, got})
	}
	mt := lt.mt
	lh.mu.Unlock()
	if !used {
		lh.dropped.Add(1)
	}
	for _, d := range ready {
		if mt.SetLeafHashes(d.piece, d.leaves) == nil {
			lh.set.Add(1)
		}
	}
}
