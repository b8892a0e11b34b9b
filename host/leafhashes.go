package host

import (
	"crypto/sha256"
	"encoding/binary"
	"math/bits"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/merkle"
	"github.com/anacrolix/torrent/metainfo"
	pp "github.com/anacrolix/torrent/peer_protocol"
	infohash_v2 "github.com/anacrolix/torrent/types/infohash-v2"
	"go.uber.org/atomic"

	"github.com/memtorrent/memtorrent/storage/memory"
)

// leafHashes fetches the leaf hashes of a v2 or hybrid torrent's pieces
// (BEP 52's block layer: the SHA-256 of each 16 KiB block) from peers, just
// ahead of the reads before the hash check (memory.Options.OnWantLeafHashes
// tells where they are), checks them against the torrent's piece layers
// and gives them to the storage (memory.Torrent.SetLeafHashRange), which
// then serves each 16 KiB block as soon as it arrives and matches.
//
// It asks in runs of runLeaves leaves (1 MiB of data), from the leaf a
// reader is at to leafAhead leaves after it, on every connection the host
// taps (leaftap.go) that is upgraded to v2: one hash request per run (base
// layer 0) with the proof layers that take the run's root up to its piece's
// hash in the piece layers, which the reply's uncle hashes must reach. So
// the first hashes of a piece come after about 2 KiB on a line, not after
// the 32 KiB of a 16 MiB piece's whole block layer, and the line's data
// waits for little. A run stays asked until its hashes are proven;
// maxPending newer runs push out the oldest, and a run asked leafRetry ago
// is asked again when a reader wants it; each new connection of the torrent
// is asked for the runs still asked. A v1.59.1 peer answers our v1 info
// hash with the v1 one (no upgrade), so it is never asked. libtorrent
// answers when it has hashed its data, and rejects otherwise
// (docs/verify.md); a peer's wrong hashes do not reach the piece hash and
// are dropped.
//
// A torrent added by magnet has no piece layers: for each file longer
// than a piece, the piece layer is asked of the same connections first
// (layerRequestsLocked), kept once it reaches the file's pieces root in
// the info (layerReply), and the runs readers wanted meanwhile are asked
// then. A connection we dialled for a magnet before its info, which the
// client could not ask for the v2 upgrade, is closed once the torrent
// turns out v2 or hybrid, to be dialled again with it (afterInfo).
type leafHashes struct {
	cl  atomic.Pointer[torrent.Client] // set once the client exists
	mem *memory.Client                 // set before the client exists
	// redialAfterClose, set before the client exists, has a connection
	// we dialled to addr for t, about to be closed, dialled again at once
	// after it closed (redialer.dialAfterClose).
	redialAfterClose func(t *torrent.Torrent, addr net.Addr)

	mu       sync.Mutex
	conns    map[[20]byte]map[*tapConn]struct{} // usable connections by info hash
	torrents map[[20]byte]*leafTorrent          // by truncated v2 info hash
	byIH     map[metainfo.Hash]*leafTorrent     // the same, by the storage's key
	v1       map[metainfo.Hash]*memory.Torrent  // torrents without leaf hashes (v1), by the storage's key

	requests, replies, rejects, dropped, late, unasked, set, reconnects atomic.Int64

	noTopUp bool // Options.NoTopUp; set before the client exists
	// reading is when a reader last read an incomplete piece of each
	// torrent (want), by the info hashes handshakes name; guarded by mu.
	reading map[[20]byte]time.Time
	topUps  atomic.Int64 // suggest messages handed to the client (topup.go)
	noEarly bool         // Options.NoEarlyFetch; set before the client exists
	closed  atomic.Bool  // the Client is closing: no early fetch starts
	// The early fetch's counts (early.go): chunks asked, written to the
	// storage, come after the storage had them, refused or rejected.
	earlyAsked, earlyWritten, earlyLate, earlyRejected, earlyRecalled atomic.Int64
	earlyBytes, earlyLateBytes                                        atomic.Int64
	// readers are each torrent's recent readers before the hash check,
	// by the storage's key, the latest last (early.go); guarded by mu.
	readers map[metainfo.Hash][]earlyReader
	// onEarlyChunk, set before the client exists, is told of each chunk
	// of n bytes an early request brought from the peer at addr.
	onEarlyChunk func(addr net.Addr, n int)
	// addrRates are the rates last measured of the peers, by address
	// (early.go); guarded by mu.
	addrRates map[string]float64
}

// LeafHashStats counts the leaf-hash traffic of a Client (see
// Options.LeafHashes).
type LeafHashStats struct {
	Requests int64 // hash requests sent
	Replies  int64 // hashes messages received
	Rejects  int64 // hash reject messages received
	Dropped  int64 // replies that proved nothing asked (wrong hashes, unknown root or layer, never asked)
	Late     int64 // replies for runs another connection had proven first
	// Unasked counts replies for a torrent the host asked nothing of
	// yet: answers to the client's own piece-layer requests at a
	// magnet's start, which the client ignores (ignoreHashMessages).
	Unasked int64
	Set     int64 // runs of leaf hashes given to the storage
	// Reconnects counts the connections closed to be dialled again with
	// the v2 upgrade (see leafHashes.afterInfo).
	Reconnects int64
	// TopUps counts the times the tap asked the client to top up a
	// connection's request queue before it ran dry (topup.go).
	TopUps int64
	// The early fetch (early.go): chunks the host asked itself for a
	// reader mid-piece, those written to the storage, those that came
	// when the storage had them already (the client's copy came first),
	// and those rejected by the peer or refused by the storage.
	EarlyAsked, EarlyWritten, EarlyLate, EarlyRejected int64
	// EarlyRecalled counts the client's requests cancelled at a peer for
	// the early fetch to go first (early.go, recall).
	EarlyRecalled int64
	// EarlyBytes counts the bytes of the chunks early requests brought,
	// EarlyLateBytes those of them the storage had already (EarlyLate).
	EarlyBytes, EarlyLateBytes int64
}

// runLeaves is how many leaves one hash request asks for: 1 MiB of data,
// a reply of 2 KiB and a few uncle hashes (at most BEP 52's 512).
const runLeaves = 64

// leafAhead is how many leaves from a reader's on have their hashes
// asked: 4 MiB, several round trips of the slowest line ahead of a player.
const leafAhead = 256

// maxPending bounds the runs asked and not yet answered of a torrent: the
// oldest is forgotten (a reader has long moved on from it, or no peer has
// its hashes).
const maxPending = 64

// leafRetry is how long after asking for a run a reader that still
// wants it has it asked again, of every connection.
const leafRetry = 2 * time.Second

// leafTorrent is what leafHashes knows of one v2 or hybrid torrent. Its
// fields never change after it is made but for those below byRoot, which
// leafHashes.mu guards, and the mutable fields of files' elements (see
// leafFile).
type leafTorrent struct {
	ih     metainfo.Hash // the storage's key
	short  [20]byte      // truncated v2 info hash: what upgraded handshakes name
	mt     *memory.Torrent
	leaves int      // leaves per piece
	pad    [32]byte // a piece-layer hash past a file's end: the root of a piece of zero leaves
	files  []leafFile
	byRoot map[[32]byte]int // index in files

	pending map[leafRun]time.Time
	order   []leafRun // the pending runs, oldest first
	proven  map[leafRun]struct{}
}

// leafRun is a run of a file's leaves: the file's index in
// leafTorrent.files and the run's index in the file.
type leafRun struct{ file, run int }

// leafFile is one file of a v2 torrent. The fields above layer never
// change; layer and those below it are guarded by leafHashes.mu.
type leafFile struct {
	root       [32]byte
	firstPiece int
	pieces     int  // the file's pieces
	span       int  // leaves under one hash of layer: a piece's, or the file's rounded up to a power of two
	run        int  // leaves of a run: min(runLeaves, span)
	runs       int  // runs that hold the file's leaves
	noLayer    bool // the torrent came without the file's piece layer: peers are asked for it

	// layer holds the hashes a run is proven against: one per piece, or
	// the root of a file of one piece; nil until peers sent the piece
	// layer of a file that the torrent came without (a magnet).
	layer [][32]byte
	// For a file without its piece layer: the parts of it proven so far
	// (layerPart hashes each; whole when every part is in), when they
	// were last asked for (zero: never), and the leaves of the file that
	// readers wanted meanwhile, whose runs are asked once it is in.
	partial    [][32]byte
	partsIn    []bool
	layerAsked time.Time
	waiting    []int
}

// layerPart is how many piece-layer hashes one hash request asks for:
// BEP 52's most.
const layerPart = 512

// maxWaiting bounds leafFile.waiting: the newest wants are kept.
const maxWaiting = 4

func newLeafHashes() *leafHashes {
	return &leafHashes{conns: map[[20]byte]map[*tapConn]struct{}{}, torrents: map[[20]byte]*leafTorrent{},
		byIH: map[metainfo.Hash]*leafTorrent{}, v1: map[metainfo.Hash]*memory.Torrent{}, reading: map[[20]byte]time.Time{}}
}

// tap wraps a connection of the client, which dialled it or accepted it.
func (lh *leafHashes) tap(c net.Conn, dialled bool) net.Conn {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0) // what v1.59.1 does to the TCP connections it makes
	}
	return &tapConn{Conn: c, lh: lh, dialled: dialled, done: make(chan struct{})}
}

func (lh *leafHashes) stats() LeafHashStats {
	return LeafHashStats{Requests: lh.requests.Load(), Replies: lh.replies.Load(), Rejects: lh.rejects.Load(),
		Dropped: lh.dropped.Load(), Late: lh.late.Load(), Unasked: lh.unasked.Load(), Set: lh.set.Load(), Reconnects: lh.reconnects.Load(),
		TopUps: lh.topUps.Load(), EarlyAsked: lh.earlyAsked.Load(), EarlyWritten: lh.earlyWritten.Load(),
		EarlyLate: lh.earlyLate.Load(), EarlyRejected: lh.earlyRejected.Load(),
		EarlyRecalled: lh.earlyRecalled.Load(), EarlyBytes: lh.earlyBytes.Load(), EarlyLateBytes: lh.earlyLateBytes.Load()}
}

// want is memory.Options.OnWantLeafHashes: a read before the hash check
// of piece of the torrent ih is at leaf. It asks for the runs of leaves
// from there to leafAhead after that are neither proven nor asked (nor
// asked more than leafRetry ago), or first for the piece layer of a file
// that has none yet. It runs on a reader's goroutine, once per leaf the
// reader moves to.
func (lh *leafHashes) want(ih metainfo.Hash, piece, leaf int) {
	lt := lh.lookup(ih)
	lh.mu.Lock()
	now := time.Now()
	lh.reading[[20]byte(ih)] = now
	if lt != nil {
		lh.reading[lt.short] = now
	}
	lh.mu.Unlock()
	if lt != nil {
		lh.ask(lt, piece, leaf)
	}
}

// readSince reports whether a reader read before the hash check of the
// torrent whose handshakes name ih (its v1 or truncated v2 info hash)
// within topUpReading.
func (lh *leafHashes) readSince(ih [20]byte) bool {
	lh.mu.Lock()
	defer lh.mu.Unlock()
	at, ok := lh.reading[ih]
	return ok && time.Since(at) < topUpReading
}

// ask is want for lt. It sends from other goroutines: a write waits for
// the client's write on the connection, which may wait for the peer.
func (lh *leafHashes) ask(lt *leafTorrent, piece, leaf int) {
	lh.mu.Lock()
	fi, ok := lt.file(piece)
	if !ok {
		lh.mu.Unlock()
		return
	}
	f := &lt.files[fi]
	at := (piece-f.firstPiece)*lt.leaves + leaf // in the file
	now := time.Now()
	var msgs [][]byte
	switch {
	case f.layer == nil:
		msgs = lt.askLayerLocked(fi, at, now)
	case f.span == 1:
		// A leaf per hash: the layer's hash is the leaf's.
		h := f.layer[piece-f.firstPiece : piece-f.firstPiece+1]
		lh.mu.Unlock()
		if !lt.mt.HasLeafHash(piece, 0) && lt.mt.SetLeafHashRange(piece, 0, h) == nil {
			lh.set.Add(1)
		}
		return
	default:
		msgs = lt.askRunsLocked(fi, at, now)
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
		go lh.sendAll(c, msgs)
	}
}

// askRunsLocked returns the requests for the runs of file fi from its
// leaf at to leafAhead after it that are neither proven nor asked less
// than leafRetry before now, and marks them asked. lh.mu must be held.
func (lt *leafTorrent) askRunsLocked(fi, at int, now time.Time) [][]byte {
	f := &lt.files[fi]
	var msgs [][]byte
	for r := at / f.run; r < f.runs && r*f.run < at+leafAhead; r++ {
		k := leafRun{fi, r}
		if _, ok := lt.proven[k]; ok {
			continue
		}
		if asked, ok := lt.pending[k]; ok && now.Sub(asked) < leafRetry {
			continue
		} else if !ok {
			lt.order = append(lt.order, k)
		}
		lt.pending[k] = now
		msgs = append(msgs, lt.request(k))
	}
	for len(lt.order) > maxPending {
		delete(lt.pending, lt.order[0])
		lt.order = lt.order[1:]
	}
	return msgs
}

// askLayerLocked notes that a reader wants the leaf at of file fi, which
// has no piece layer yet, and returns the requests for the layer's
// missing parts unless they were asked less than leafRetry before now.
// lh.mu must be held.
func (lt *leafTorrent) askLayerLocked(fi, at int, now time.Time) [][]byte {
	f := &lt.files[fi]
	if !slices.Contains(f.waiting, at) {
		f.waiting = append(f.waiting, at)
		if len(f.waiting) > maxWaiting {
			f.waiting = f.waiting[1:]
		}
	}
	if !f.layerAsked.IsZero() && now.Sub(f.layerAsked) < leafRetry {
		return nil
	}
	f.layerAsked = now
	return lt.layerRequestsLocked(fi)
}

// layerRequestsLocked returns the hash requests for the parts of file
// fi's piece layer not proven yet: layerPart hashes each (the file's piece
// count rounded up to a power of two when that is fewer), with the uncle
// hashes that take each part up to the file's pieces root. lh.mu must be
// held.
func (lt *leafTorrent) layerRequestsLocked(fi int) [][]byte {
	f := &lt.files[fi]
	width, part := lt.layerWidth(fi)
	var msgs [][]byte
	for i, in := range f.partsIn {
		if !in {
			msgs = append(msgs, hashRequest(f.root, lt.pieceLayer(), i*part, part, width))
		}
	}
	return msgs
}

// pieceLayer is the layer of a file's tree that holds its piece layer,
// counted from the leaves.
func (lt *leafTorrent) pieceLayer() int { return bits.Len(uint(lt.leaves)) - 1 }

// layerWidth returns the hashes of file fi's tree at the piece layer (its
// piece count rounded up to a power of two) and how many of them one
// request asks for.
func (lt *leafTorrent) layerWidth(fi int) (width, part int) {
	width = int(merkle.RoundUpToPowerOfTwo(uint(lt.files[fi].pieces)))
	return width, min(width, layerPart)
}

// lookup returns the leafTorrent of the torrent ih, making it the first
// time; nil for a torrent without leaf hashes (v1, no usable piece
// layers, not open). A v1 torrent is remembered as such, so that the
// readers of one cost a map lookup.
func (lh *leafHashes) lookup(ih metainfo.Hash) *leafTorrent {
	lh.mu.Lock()
	lt, v1mt := lh.byIH[ih], lh.v1[ih]
	lh.mu.Unlock()
	mt, ok := lh.mem.Torrent(ih)
	if !ok {
		return nil
	}
	switch {
	case lt != nil && lt.mt == mt:
		return lt
	case v1mt == mt:
		return nil
	}
	cl := lh.cl.Load()
	if cl == nil {
		return nil
	}
	t, ok := cl.Torrent(ih)
	if !ok || t.Info() == nil {
		return nil
	}
	if !t.Info().HasV2() {
		lh.mu.Lock()
		lh.v1[ih] = mt
		lh.mu.Unlock()
		return nil
	}
	return lh.torrent(t, mt)
}

// torrent returns the leafTorrent of t, a v2 or hybrid torrent whose
// storage is mt, making it from t's info and piece layers unless another
// reader made it meanwhile; nil if t's pieces are not whole leaves.
func (lh *leafHashes) torrent(t *torrent.Torrent, mt *memory.Torrent) *leafTorrent {
	mi := t.Metainfo()
	v2 := infohash_v2.HashBytes(mi.InfoBytes)
	short := [20]byte(v2[:20])
	info := t.Info()
	if info.PieceLength%merkle.BlockSize != 0 {
		return nil
	}
	lt := &leafTorrent{ih: t.InfoHash(), short: short, mt: mt, leaves: int(info.PieceLength / merkle.BlockSize),
		pad: metainfo.HashForPiecePad(info.PieceLength), byRoot: map[[32]byte]int{},
		pending: map[leafRun]time.Time{}, proven: map[leafRun]struct{}{}}
	for _, fi := range info.UpvertedFiles() {
		if !fi.PiecesRoot.Ok || fi.Length == 0 {
			continue
		}
		root := [32]byte(fi.PiecesRoot.Value)
		f := leafFile{root: root, firstPiece: int(fi.TorrentOffset / info.PieceLength),
			pieces: int((fi.Length + info.PieceLength - 1) / info.PieceLength), span: lt.leaves}
		leaves := int((fi.Length + merkle.BlockSize - 1) / merkle.BlockSize)
		if fi.Length <= info.PieceLength {
			f.layer = [][32]byte{root}
			f.span = int(merkle.RoundUpToPowerOfTwo(uint(leaves)))
		} else if layer, err := merkle.CompactLayerToSliceHashes(mi.PieceLayers[string(root[:])]); err == nil && len(layer) == f.pieces {
			f.layer = layer
		} else {
			// No piece layer (a magnet): peers are asked for it.
			f.noLayer = true
			f.partial = make([][32]byte, f.pieces)
			f.partsIn = make([]bool, (f.pieces+layerPart-1)/layerPart)
		}
		f.run = min(runLeaves, f.span)
		f.runs = (leaves + f.run - 1) / f.run
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
	delete(lh.v1, ih)
	delete(lh.reading, [20]byte(ih))
	delete(lh.readers, ih)
	if lt, ok := lh.byIH[ih]; ok {
		delete(lh.reading, lt.short)
		delete(lh.byIH, ih)
		if lh.torrents[lt.short] == lt {
			delete(lh.torrents, lt.short)
		}
	}
}

// file returns the index in lt.files of the file that holds piece.
func (lt *leafTorrent) file(piece int) (int, bool) {
	for i, f := range lt.files {
		if piece >= f.firstPiece && piece < f.firstPiece+f.pieces {
			return i, true
		}
	}
	return 0, false
}

// request returns the hash request for run k: its leaves, with the uncle
// hashes that take them up to their hash in the layer.
func (lt *leafTorrent) request(k leafRun) []byte {
	f := lt.files[k.file]
	return hashRequest(f.root, 0, k.run*f.run, f.run, f.span)
}

// hashRequest returns a hash request for length hashes of the tree whose
// root is root, at layer base from index, with the proof layers whose
// uncle hashes take them up to the node over span hashes of that layer.
// libtorrent counts proof layers from the base layer and sends an uncle
// for each layer from the requested hashes' root up
// (merkle_tree::get_hashes), so log2(span)-1 of them bring
// uncles(length, span).
func hashRequest(root [32]byte, base, index, length, span int) []byte {
	m := pp.Message{Type: pp.HashRequest, PiecesRoot: root, BaseLayer: pp.Integer(base),
		Index: pp.Integer(index), Length: pp.Integer(length)}
	if length < span {
		m.ProofLayers = pp.Integer(bits.Len(uint(span)) - 2)
	}
	return m.MustMarshalBinary()
}

// uncles is how many uncle hashes a reply to hashRequest brings:
// log2(span/length).
func uncles(length, span int) int { return bits.Len(uint(span/length)) - 1 }

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
// it for the runs still pending of the torrent ih names, and for the
// piece layers asked of other connections and still missing. The first
// connection of a torrent, and one that was not upgraded although it
// could have been (tapConn.checkUsableLocked), then wait for the
// torrent's info (afterInfo).
func (lh *leafHashes) connReady(c *tapConn, ih [20]byte, notUpgraded bool) {
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
		for fi, f := range lt.files {
			if f.layer == nil && !f.layerAsked.IsZero() {
				msgs = append(msgs, lt.layerRequestsLocked(fi)...)
			}
		}
		for _, k := range lt.order {
			msgs = append(msgs, lt.request(k))
		}
	}
	lh.mu.Unlock()
	lh.sendAll(c, msgs)
	if !ok || notUpgraded {
		lh.afterInfo(c, ih, notUpgraded)
	}
}

// afterInfo waits for the info of the torrent ih names (a magnet's comes
// after its first connections), until c or the torrent closes; if the
// torrent is v2 or hybrid, it then wants the head of its largest file
// (wantHead), or, for a connection that was not upgraded although it
// could have been, closes c: the client did not know the v2 info hash
// when it dialled (a magnet with the v1 info hash alone), so its
// handshake asked for no upgrade, and a libtorrent peer answers hash
// requests only on an upgraded connection (docs/verify.md). The redialer
// dials the peer again at its next check, and the client, which knows the
// v2 info hash by then, asks for the upgrade.
func (lh *leafHashes) afterInfo(c *tapConn, ih [20]byte, notUpgraded bool) {
	cl := lh.cl.Load()
	if cl == nil {
		return
	}
	t, ok := cl.Torrent(ih)
	if !ok {
		return
	}
	select {
	case <-t.GotInfo():
	case <-t.Closed():
		return
	case <-c.done:
		return
	}
	if info := t.Info(); info == nil || !info.HasV2() {
		return
	}
	if notUpgraded {
		lh.reconnects.Add(1)
		if lh.redialAfterClose != nil {
			lh.redialAfterClose(t, c.RemoteAddr())
		}
		c.Close()
		return
	}
	lh.wantHead(ih)
}

// wantHead wants the leaf hashes of the head of the largest file of the
// torrent whose truncated v2 info hash is short (want), before any
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
			off := largest.Offset()
			lh.want(t.InfoHash(), int(off/info.PieceLength), int(off%info.PieceLength/merkle.BlockSize))
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
	lh.mu.Lock()
	lt, known := lh.torrents[ih]
	ok := known
	var fi int
	if ok {
		fi, ok = lt.byRoot[root]
	}
	if ok && lt.files[fi].noLayer && int(base) == lt.pieceLayer() {
		lh.layerReply(lt, fi, index, length, hashes) // unlocks lh.mu
		return
	}
	if !ok || base != 0 {
		lh.mu.Unlock()
		if known {
			lh.dropped.Add(1)
		} else {
			lh.unasked.Add(1)
		}
		return
	}
	f := lt.files[fi]
	k := leafRun{fi, index / f.run}
	if _, done := lt.proven[k]; done && index%f.run == 0 {
		lh.mu.Unlock()
		lh.late.Add(1)
		return
	}
	_, asked := lt.pending[k]
	nu := uncles(f.run, f.span)
	if !asked || index%f.run != 0 || length != f.run || len(hashes)/32 < f.run+nu {
		lh.mu.Unlock()
		lh.dropped.Add(1)
		return
	}
	leaves := make([][32]byte, f.run)
	for j := range leaves {
		leaves[j] = [32]byte(hashes[32*j:])
	}
	if provenRun(leaves, hashes[32*f.run:32*(f.run+nu)], index%f.span/f.run) != f.layer[index/f.span] {
		// Wrong hashes: wait for another reply.
		lh.mu.Unlock()
		lh.dropped.Add(1)
		return
	}
	delete(lt.pending, k)
	lt.order = slices.DeleteFunc(lt.order, func(o leafRun) bool { return o == k })
	lt.proven[k] = struct{}{}
	mt := lt.mt
	lh.mu.Unlock()
	at := f.firstPiece*lt.leaves + index // the run's first leaf in the torrent
	if mt.SetLeafHashRange(at/lt.leaves, at%lt.leaves, leaves) == nil {
		lh.set.Add(1)
	}
}

// layerReply handles a hashes message at the piece layer of file fi of
// lt, a file that came without its piece layer: hashes from index, length
// of them, then uncle hashes. A part of the layer that the uncles take up
// to the file's pieces root is kept (the hashes past the file's last piece
// are the pad hash, whatever the peer sent), and once every part is in
// the layer is the file's and the runs readers wanted meanwhile are asked.
// Anything else is dropped, or late if the layer was in already. lh.mu
// must be held; layerReply unlocks it.
func (lh *leafHashes) layerReply(lt *leafTorrent, fi, index, length int, hashes []byte) {
	f := &lt.files[fi]
	width, part := lt.layerWidth(fi)
	nu := uncles(part, width)
	if index%part != 0 || index >= f.pieces || length != part || len(hashes)/32 < part+nu {
		lh.mu.Unlock()
		lh.dropped.Add(1)
		return
	}
	if f.layer != nil || f.partsIn[index/part] {
		// Another connection's answer came first.
		lh.mu.Unlock()
		lh.late.Add(1)
		return
	}
	nodes := make([][32]byte, part)
	for j := range nodes {
		if index+j < f.pieces {
			nodes[j] = [32]byte(hashes[32*j:])
		} else {
			nodes[j] = lt.pad
		}
	}
	if provenRun(nodes, hashes[32*part:32*(part+nu)], index/part) != f.root {
		lh.mu.Unlock()
		lh.dropped.Add(1)
		return
	}
	copy(f.partial[index:], nodes[:min(part, f.pieces-index)])
	f.partsIn[index/part] = true
	if slices.Contains(f.partsIn, false) {
		lh.mu.Unlock()
		return
	}
	f.layer, f.partial, f.partsIn = f.partial, nil, nil
	waiting := f.waiting
	f.waiting = nil
	lh.mu.Unlock()
	for _, at := range waiting {
		lh.ask(lt, f.firstPiece+at/lt.leaves, at%lt.leaves)
	}
}

// provenRun returns the hash that a run's leaves and its uncle hashes,
// proof (packed, the lowest layer's first), prove: the run's root (BEP
// 52's zero hashes pad past a file's end), combined with each uncle in
// turn, on the side that the run's index, pos, at that layer says. A part of a piece
// layer, its length a power of two, is proven the same way.
func provenRun(leaves [][32]byte, proof []byte, pos int) [32]byte {
	node := merkle.RootWithPadHash(leaves, [32]byte{})
	var pair [64]byte
	for u := 0; u+32 <= len(proof); u += 32 {
		if pos&1 == 0 {
			copy(pair[:32], node[:])
			copy(pair[32:], proof[u:u+32])
		} else {
			copy(pair[:32], proof[u:u+32])
			copy(pair[32:], node[:])
		}
		node = sha256.Sum256(pair[:])
		pos >>= 1
	}
	return node
}
