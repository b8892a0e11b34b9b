package reliability

// BitTorrent v2 / hybrid torrents (BEP 52) against a real seeder.
// v1.59.1's metainfo builds only v1 info (Info.BuildFromFilePath), so
// hybridMetaInfo builds the v2 half here with the library's merkle package.

import (
	"bufio"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/merkle"
	"github.com/anacrolix/torrent/metainfo"
	pp "github.com/anacrolix/torrent/peer_protocol"
	infohash_v2 "github.com/anacrolix/torrent/types/infohash-v2"

	"github.com/memtorrent/memtorrent/host"
	"github.com/memtorrent/memtorrent/internal/testutil"
	"github.com/memtorrent/memtorrent/storage/memory"
	"github.com/memtorrent/memtorrent/stream"
)

// hybridMetaInfo writes spec's single file into dir (testutil.MakeTorrent)
// and returns a hybrid metainfo for it: the v1 info (SHA-1 pieces) and
// the v2 info (meta version 2, a file tree with the file's pieces root)
// in one info dictionary, and the file's piece layer. spec must describe
// one file longer than a piece (BEP 52 gives a file of at most one piece
// no piece layer; this builder does not handle that case).
func hybridMetaInfo(t *testing.T, dir string, spec testutil.Spec) *metainfo.MetaInfo {
	t.Helper()
	testutil.MakeTorrent(t, dir, spec)
	content := testutil.Content(spec)
	if spec.Files != nil || int64(len(content)) <= spec.PieceLength {
		t.Fatalf("hybridMetaInfo: want one file longer than a piece, got %+v", spec)
	}
	var pieces []byte
	var layer [][32]byte
	for off := int64(0); off < int64(len(content)); off += spec.PieceLength {
		piece := content[off:min(off+spec.PieceLength, int64(len(content)))]
		sum := sha1.Sum(piece)
		pieces = append(pieces, sum[:]...)
		layer = append(layer, pieceHashV2(piece, spec.PieceLength))
	}
	root := merkle.RootWithPadHash(layer, metainfo.HashForPiecePad(spec.PieceLength))
	var layerBytes []byte
	for _, h := range layer {
		layerBytes = append(layerBytes, h[:]...)
	}
	info := metainfo.Info{
		PieceLength: spec.PieceLength,
		Pieces:      pieces,
		Name:        spec.Name,
		Length:      int64(len(content)),
		MetaVersion: 2,
		FileTree: metainfo.FileTree{Dir: map[string]metainfo.FileTree{
			spec.Name: {File: metainfo.FileTreeFile{Length: int64(len(content)), PiecesRoot: string(root[:])}},
		}},
	}
	infoBytes, err := bencode.Marshal(&info) // a pointer: FileTree marshals itself through a pointer receiver
	if err != nil {
		t.Fatal(err)
	}
	mi := &metainfo.MetaInfo{
		InfoBytes:   infoBytes,
		PieceLayers: map[string]string{string(root[:]): string(layerBytes)},
	}
	if err := metainfo.ValidatePieceLayers(mi.PieceLayers, &info.FileTree, info.PieceLength); err != nil {
		t.Fatalf("hybridMetaInfo: %v", err)
	}
	return mi
}

// pieceHashV2 is a piece's hash in its file's piece layer: the root of
// its 16 KiB blocks' SHA-256 hashes, the leaves past the end of the file
// zero (BEP 52).
func pieceHashV2(piece []byte, pieceLength int64) (sum [32]byte) {
	h := merkle.NewHash()
	h.Write(piece)
	copy(sum[:], h.SumMinLength(nil, int(pieceLength)))
	return sum
}

// TestHybridFromQBittorrent streams a hybrid torrent (hybridMetaInfo)
// that qBittorrent (libtorrent 2.0) seeds, through a memtorrent leecher
// holding half of it, and checks every byte: a hybrid torrent is
// downloaded and verified like a v1 one (the client checks its v1 hashes).
func TestHybridFromQBittorrent(t *testing.T) {
	qbittorrentProgram.require(t)
	dataDir := t.TempDir()
	spec := testutil.Spec{Name: "hybrid.bin", PieceLength: pieceLength, Length: 8*mib + 4321, Seed: 21}
	mi := hybridMetaInfo(t, dataDir, spec)
	addr := startQBittorrent(t, dataDir, writeTorrent(t, mi))

	content := testutil.Content(spec)
	e := newEnv(t, int64(len(content))/2, stream.Options{})
	tor := e.add(mi, addr)
	if !tor.Info().HasV2() || !tor.Info().HasV1() {
		t.Fatalf("the leecher's info is not hybrid: v1 %v, v2 %v", tor.Info().HasV1(), tor.Info().HasV2())
	}
	body, err := e.fetch(t.Context(), e.url(tor, 0), "", http.StatusOK)
	if err != nil {
		t.Fatalf("streaming the whole file: %v", err)
	}
	equal(t, "whole file", body, content)
}

// TestQBittorrentBlockHashes speaks the peer protocol to qBittorrent
// (libtorrent 2.0.8) seeding a hybrid torrent and records what it answers
// to BEP 52 hash requests (message 21) for the block layer (base layer 0:
// the SHA-256 of each 16 KiB block), which per-block verification needs
// and which a .torrent does not carry. docs/verify.md has the findings.
//
// checked: the seeder hashed its data when it added the torrent (what a
// seeder that made or downloaded the torrent has done). A handshake with
// the v1 info hash and the v2 reserved bit is upgraded to v2 (the reply
// carries the truncated v2 info hash); a request for a piece's blocks
// (index = first block, length = blocks per piece, no proof layers) is
// answered with their hashes, which match the data and combine to the
// piece-layer hash; a request for 512 hashes is answered whole. Without
// the v2 bit the connection stays v1 and a hash request closes it.
//
// unchecked: the seeder added the torrent with --skip-hash-check, so it
// holds only the piece layers of the .torrent: it rejects a block-layer
// request (message 23) and answers a piece-layer one.
func TestQBittorrentBlockHashes(t *testing.T) {
	qbittorrentProgram.require(t)
	dataDir := t.TempDir()
	const blocksPerPiece = pieceLength / merkle.BlockSize
	spec := testutil.Spec{Name: "hybrid.bin", PieceLength: pieceLength, Length: 8*mib + 4321, Seed: 21}
	mi := hybridMetaInfo(t, dataDir, spec)
	content := testutil.Content(spec)
	torrentFile := writeTorrent(t, mi)
	info, err := mi.UnmarshalInfo()
	if err != nil {
		t.Fatal(err)
	}
	root := [32]byte([]byte(info.FileTree.Dir[spec.Name].File.PiecesRoot))
	layer, err := merkle.CompactLayerToSliceHashes(mi.PieceLayers[string(root[:])])
	if err != nil {
		t.Fatal(err)
	}
	v1 := [20]byte(mi.HashInfoBytes())
	v2 := infohash_v2.HashBytes(mi.InfoBytes)
	v2short := [20]byte(v2[:20])
	blockRequest := func(piece int, length int) pp.Message {
		return pp.Message{Type: pp.HashRequest, PiecesRoot: root, BaseLayer: 0,
			Index: pp.Integer(piece * blocksPerPiece), Length: pp.Integer(length)}
	}

	t.Run("checked", func(t *testing.T) {
		addr := seedQBittorrentChecked(t, dataDir, torrentFile, v1)
		for _, piece := range []int{0, 1, len(layer) - 1} {
			ih, reply := hashExchange(t, addr, v1, true, blockRequest(piece, blocksPerPiece))
			if ih != v2short {
				t.Errorf("handshake with the v1 info hash and the v2 bit: reply's info hash %x, want the truncated v2 %x", ih, v2short)
			}
			if reply.Type != pp.Hashes || len(reply.Hashes) != blocksPerPiece {
				t.Fatalf("piece %d's block hashes: got %v with %d hashes, want %v with %d", piece, reply.Type, len(reply.Hashes), pp.Hashes, blocksPerPiece)
			}
			checkBlockHashes(t, content, piece, reply.Hashes)
			if got := merkle.RootWithPadHash(reply.Hashes, [32]byte{}); got != layer[piece] {
				t.Errorf("piece %d: its block hashes combine to %x, its piece-layer hash is %x", piece, got, layer[piece])
			}
		}
		_, reply := hashExchange(t, addr, v1, true, blockRequest(0, 512))
		if reply.Type != pp.Hashes || len(reply.Hashes) != 512 {
			t.Errorf("512 block hashes: got %v with %d hashes", reply.Type, len(reply.Hashes))
		} else {
			checkBlockHashes(t, content, 0, reply.Hashes)
		}
		// A run of 4 of a piece's 16 blocks with the proof layers
		// host.leafHashes asks for: log2(16)-1 = 3 (libtorrent counts them
		// from the base layer) bring the 2 uncle hashes that take the
		// run's root up to the piece-layer hash.
		for _, run := range []int{0, 1, 3} {
			piece := 1
			req := blockRequest(piece, 4)
			req.Index += pp.Integer(4 * run)
			req.ProofLayers = pp.Integer(bits.Len(blocksPerPiece) - 2)
			_, reply := hashExchange(t, addr, v1, true, req)
			if reply.Type != pp.Hashes || len(reply.Hashes) != 4+2 {
				t.Fatalf("run %d of piece %d with proof layers %d: got %v with %d hashes, want %v with 4 and 2 uncles",
					run, piece, req.ProofLayers, reply.Type, len(reply.Hashes), pp.Hashes)
			}
			checkBlockHashes(t, content[4*run*merkle.BlockSize:], piece, reply.Hashes[:4])
			node, pos := merkle.Root(reply.Hashes[:4]), run
			for _, uncle := range reply.Hashes[4:] {
				if pos&1 == 0 {
					node = sha256.Sum256(append(node[:], uncle[:]...))
				} else {
					node = sha256.Sum256(append(uncle[:], node[:]...))
				}
				pos >>= 1
			}
			if node != layer[piece] {
				t.Errorf("run %d of piece %d: its hashes and uncles combine to %x, the piece-layer hash is %x", run, piece, node, layer[piece])
			}
		}
		// The piece layer, as host.leafHashes asks for it when the torrent
		// came without it (a magnet): base layer log2(16) = 4, the 33
		// pieces rounded up to 64; past the file's end libtorrent sends
		// the pad hash (the root of a piece of zero blocks), and the whole
		// layer combines to the file's pieces root. Then each half, with
		// the proof layers (counted from the base layer) that bring the
		// uncle taking it to the root, as for a file of more than 512
		// pieces.
		layerBase := pp.Integer(bits.Len(blocksPerPiece) - 1)
		pad := metainfo.HashForPiecePad(pieceLength)
		_, reply = hashExchange(t, addr, v1, true, pp.Message{Type: pp.HashRequest, PiecesRoot: root, BaseLayer: layerBase, Length: 64})
		if reply.Type != pp.Hashes || len(reply.Hashes) != 64 {
			t.Fatalf("the piece layer: got %v with %d hashes, want %v with 64", reply.Type, len(reply.Hashes), pp.Hashes)
		}
		for i, h := range reply.Hashes {
			want := pad
			if i < len(layer) {
				want = layer[i]
			}
			if h != want {
				t.Errorf("piece-layer hash %d: %x, want %x", i, h, want)
			}
		}
		if got := merkle.Root(reply.Hashes); got != root {
			t.Errorf("the piece layer combines to %x, the pieces root is %x", got, root)
		}
		for half := range 2 {
			req := pp.Message{Type: pp.HashRequest, PiecesRoot: root, BaseLayer: layerBase, Index: pp.Integer(32 * half), Length: 32,
				ProofLayers: pp.Integer(bits.Len(64) - 2)}
			_, reply := hashExchange(t, addr, v1, true, req)
			if reply.Type != pp.Hashes || len(reply.Hashes) != 32+1 {
				t.Fatalf("half %d of the piece layer with proof layers %d: got %v with %d hashes, want %v with 32 and an uncle",
					half, req.ProofLayers, reply.Type, len(reply.Hashes), pp.Hashes)
			}
			node, uncle := merkle.Root(reply.Hashes[:32]), reply.Hashes[32]
			if half == 0 {
				node = sha256.Sum256(append(node[:], uncle[:]...))
			} else {
				node = sha256.Sum256(append(uncle[:], node[:]...))
			}
			if node != root {
				t.Errorf("half %d of the piece layer and its uncle combine to %x, the pieces root is %x", half, node, root)
			}
		}
		ih, reply := hashExchange(t, addr, v1, false, blockRequest(0, blocksPerPiece))
		if ih != v1 || !reply.Keepalive {
			t.Errorf("without the v2 bit: reply's info hash %x (v1 %x), answer %v; want v1 and the connection closed", ih, v1, reply.Type)
		}
	})

	t.Run("unchecked", func(t *testing.T) {
		addr := startQBittorrent(t, dataDir, torrentFile)
		_, reply := hashExchange(t, addr, v1, true, blockRequest(0, blocksPerPiece))
		if reply.Type != pp.HashReject {
			t.Errorf("block hashes from a seeder that skipped its hash check: got %v, want %v", reply.Type, pp.HashReject)
		}
		req := blockRequest(0, blocksPerPiece)
		req.BaseLayer, req.Length = pp.Integer(bits.Len(blocksPerPiece)-1), 32
		_, reply = hashExchange(t, addr, v1, true, req)
		if reply.Type != pp.Hashes || len(reply.Hashes) != 32 || reply.Hashes[0] != layer[0] {
			t.Errorf("piece-layer hashes from a seeder that skipped its hash check: got %v with %d hashes", reply.Type, len(reply.Hashes))
		}
	})
}

// checkBlockHashes checks hashes, the block-layer hashes from piece's
// first block on, against the SHA-256 of content's blocks; past the end
// of content a hash must be zero (BEP 52's padding).
func checkBlockHashes(t *testing.T, content []byte, piece int, hashes [][32]byte) {
	t.Helper()
	first := piece * pieceLength / merkle.BlockSize
	for i, h := range hashes {
		off := (first + i) * merkle.BlockSize
		var want [32]byte
		if off < len(content) {
			want = sha256.Sum256(content[off:min(off+merkle.BlockSize, len(content))])
		}
		if h != want {
			t.Errorf("block %d: hash %x, want %x", first+i, h, want)
			return
		}
	}
}

// seedQBittorrentChecked starts qBittorrent seeding torrentFile after
// hashing its data in dataDir, and returns its address once it completes a
// handshake for the torrent (ih): libtorrent resets connections for a
// moment after the check, while the WebAPI already says it seeds. extra
// holds more lines for its configuration's [BitTorrent] section.
func seedQBittorrentChecked(t *testing.T, dataDir, torrentFile string, ih [20]byte, extra ...string) *net.TCPAddr {
	t.Helper()
	return seedQBittorrentHashed(t, dataDir, []string{torrentFile}, [][20]byte{ih}, extra...)
}

// seedQBittorrentHashed is seedQBittorrentChecked for several torrents,
// their info hashes ihs in the order of torrentFiles.
func seedQBittorrentHashed(t *testing.T, dataDir string, torrentFiles []string, ihs [][20]byte, extra ...string) *net.TCPAddr {
	t.Helper()
	q := runQBittorrent(t, dataDir, false, strings.Join(extra, ""), torrentFiles...)
	// Hashing a QoE scenario's hundreds of MiB takes longer than a setup.
	q.p.waitFor(t, testutil.SetupTimeout+time.Minute, "qBittorrent to seed after its hash check", func() bool {
		list, err := q.torrents()
		if err != nil || len(list) != len(torrentFiles) {
			return false
		}
		for _, tor := range list {
			if tor.Progress != 1 {
				return false
			}
		}
		for _, ih := range ihs {
			c, err := net.DialTimeout("tcp", q.addr.String(), time.Second)
			if err != nil {
				return false
			}
			c.SetDeadline(time.Now().Add(5 * time.Second))
			_, err = handshake(c, ih, true)
			c.Close()
			if err != nil {
				return false
			}
		}
		return true
	})
	return q.addr
}

// handshake sends a BitTorrent handshake for ih on c (the fast extension
// bit set, and the v2 bit if v2) and returns the info hash of the reply.
func handshake(c net.Conn, ih [20]byte, v2 bool) (reply [20]byte, err error) {
	var ext pp.PeerExtensionBits
	ext.SetBit(pp.ExtensionBitFast, true)
	ext.SetBit(pp.ExtensionBitV2Upgrade, v2)
	hs := append([]byte(pp.Protocol), ext[:]...)
	hs = append(hs, ih[:]...)
	hs = append(hs, "-MT0000-blockhashes0"...)
	if _, err := c.Write(hs); err != nil {
		return reply, err
	}
	var got [68]byte
	if _, err := io.ReadFull(c, got[:]); err != nil {
		return reply, err
	}
	return [20]byte(got[28:48]), nil
}

// hashExchange connects to addr, handshakes for ih (with the v2 bit if
// v2), sends have-none, interested and req, and returns the reply's info
// hash and the first hashes or hash-reject message the peer sends; a
// keep-alive message if the peer closes the connection first.
func hashExchange(t *testing.T, addr net.Addr, ih [20]byte, v2 bool, req pp.Message) (replyIH [20]byte, reply pp.Message) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr.String(), testutil.SetupTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(testutil.SetupTimeout))
	if replyIH, err = handshake(c, ih, v2); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	for _, m := range []pp.Message{{Type: pp.HaveNone}, {Type: pp.Interested}, req} {
		if _, err := c.Write(m.MustMarshalBinary()); err != nil {
			t.Fatalf("sending %v: %v", m.Type, err)
		}
	}
	d := pp.Decoder{R: bufio.NewReader(c), MaxLength: 1 << 20}
	for {
		var m pp.Message
		switch err := d.Decode(&m); {
		case errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET):
			return replyIH, pp.Message{Keepalive: true}
		case err != nil:
			t.Fatalf("reading the reply to %v: %v", req.Type, err)
		case !m.Keepalive && (m.Type == pp.Hashes || m.Type == pp.HashReject):
			return replyIH, m
		}
	}
}

// TestLeafHashesFromQBittorrent checks host.Options.LeafHashes against
// qBittorrent seeding a hybrid torrent it has hashed: a read before the
// hash check of a piece (memory.Torrent.ReadVerified) makes the host ask
// the seeder, over the client's own connection, for the piece's 16 KiB
// block hashes; they reach the storage, and the piece's bytes are then
// served verified and exact. The torrent is added as a .torrent (its piece
// layer in it) and as magnets, which bring no piece layer: the host asks
// qBittorrent for it first and proves it against the file's pieces root.
// The magnets: both info hashes, as qBittorrent writes a hybrid's
// (metainfo.MagnetV2), and the v1 info hash alone (MetaInfo.Magnet).
func TestLeafHashesFromQBittorrent(t *testing.T) {
	qbittorrentProgram.require(t)
	dataDir := t.TempDir()
	spec := testutil.Spec{Name: "hybrid.bin", PieceLength: pieceLength, Length: 8*mib + 4321, Seed: 21}
	mi := hybridMetaInfo(t, dataDir, spec)
	content := testutil.Content(spec)
	addr := seedQBittorrentChecked(t, dataDir, writeTorrent(t, mi), [20]byte(mi.HashInfoBytes()))
	info, err := mi.UnmarshalInfo()
	if err != nil {
		t.Fatal(err)
	}
	magnetV2, err := mi.MagnetV2()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, leecher, magnet string }{
		{"torrent", "127.0.0.51", ""},
		{"magnet", "127.0.0.52", magnetV2.String()},
		{"magnet v1", "127.0.0.53", mi.Magnet(nil, &info).String()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hc, err := host.NewWith(testutil.Config(t, listenOn(tc.leecher)), memory.Options{Capacity: 4 * mib}, host.Options{LeafHashes: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { hc.Close() })
			var tor *torrent.Torrent
			if tc.magnet == "" {
				tor, err = hc.Torrent.AddTorrent(mi)
			} else {
				tor, err = hc.Torrent.AddMagnet(tc.magnet)
			}
			if err != nil {
				t.Fatal(err)
			}
			hc.AddPeers(tor, []torrent.PeerInfo{{Addr: addr}})
			testutil.WaitChan(t, testutil.SetupTimeout, "the torrent's info", tor.GotInfo())
			if got := len(tor.Metainfo().PieceLayers); (got == 0) != (tc.magnet != "") {
				t.Fatalf("the client holds %d piece layers; want them from a .torrent only", got)
			}
			mt, ok := hc.Storage.Torrent(tor.InfoHash())
			if !ok {
				t.Fatal("no storage for the torrent")
			}
			// Wanting piece 0 makes the client connect; the pieces below are
			// wanted only once their hashes are there, so that the test sees the
			// hashes come first.
			tor.Piece(0).SetPriority(torrent.PiecePriorityNormal)
			for _, piece := range []int{5, tor.NumPieces() - 1} {
				want := content[piece*pieceLength : min((piece+1)*pieceLength, len(content))]
				buf := make([]byte, len(want))
				if n, err := mt.ReadVerified(piece, 0, buf); n != 0 || err != nil {
					t.Fatalf("piece %d: ReadVerified before any data: (%d, %v)", piece, n, err)
				}
				testutil.WaitFor(t, testutil.SetupTimeout, "the piece's leaf hashes", func() bool { return mt.HasLeafHashes(piece) })
				tor.Piece(piece).SetPriority(torrent.PiecePriorityNow)
				testutil.WaitFor(t, transferTimeout, "the piece's bytes, verified", func() bool {
					n, err := mt.ReadVerified(piece, 0, buf)
					return err == nil && n == len(buf)
				})
				equal(t, fmt.Sprintf("piece %d", piece), buf, want)
			}
			st := hc.LeafHashStats()
			t.Logf("leaf hashes: %+v", st)
			if st.Set < 2 || st.Dropped != 0 || st.Rejects != 0 {
				t.Errorf("leaf hash stats %+v: want the 2 pieces (and those after them, asked for ahead) set, nothing dropped or rejected", st)
			}
		})
	}
}
