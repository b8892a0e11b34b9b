package host

import (
	"context"
	"crypto/sha256"
	"testing"

	"github.com/anacrolix/torrent/merkle"
	"github.com/anacrolix/torrent/metainfo"
	pp "github.com/anacrolix/torrent/peer_protocol"

	"github.com/memtorrent/memtorrent/storage/memory"
)

// TestLeafHashReplies feeds leafHashes.peerReply the replies peers may
// send for a wanted piece and checks that only hashes that combine to the
// piece-layer hash reach the storage: wrong ones (a lying peer, or
// v1.59.1's piece-layer answer), another layer's, an unknown root's and a
// reject are counted and dropped; a piece of 1024 leaves takes two replies
// of 512.
func TestLeafHashReplies(t *testing.T) {
	for _, leaves := range []int{4, 1024} {
		pieceLength := int64(leaves) * merkle.BlockSize
		mem, err := memory.New(memory.Options{Capacity: 2 * pieceLength})
		if err != nil {
			t.Fatal(err)
		}
		defer mem.Close()
		info := &metainfo.Info{Name: "x", PieceLength: pieceLength, Length: 2 * pieceLength, Pieces: make([]byte, 40)}
		ih := metainfo.Hash{byte(leaves)}
		if _, err := mem.OpenTorrent(context.Background(), info, ih); err != nil {
			t.Fatal(err)
		}
		mt, _ := mem.Torrent(ih)
		var hashes [][32]byte // piece 1's leaf hashes
		for j := range leaves {
			hashes = append(hashes, sha256.Sum256([]byte{byte(j), byte(j >> 8)}))
		}
		root := [32]byte{1, 2, 3}
		short := [20]byte{9}
		layer := [][32]byte{{7}, merkle.RootWithPadHash(hashes, [32]byte{})}
		lh := newLeafHashes()
		lh.torrents[short] = &leafTorrent{ih: ih, short: short, mt: mt, leaves: leaves,
			files: []leafFile{{root: root, layer: layer}}, byRoot: map[[32]byte]int{root: 0},
			wanted: map[int][][32]byte{1: make([][32]byte, leaves)}, received: map[int][]bool{1: make([]bool, (leaves+511)/512)}}
		reply := func(typ pp.MessageType, root [32]byte, base, index int, hs [][32]byte) {
			m := pp.Message{Type: typ, PiecesRoot: root, BaseLayer: pp.Integer(base), Index: pp.Integer(index), Length: pp.Integer(len(hs)), Hashes: hs}
			lh.peerReply(short, m.MustMarshalBinary()[4:])
		}
		part := min(leaves, 512)
		wrong := append([][32]byte(nil), hashes...)
		wrong[0][0] ^= 1
		for first := 0; first < leaves; first += part {
			reply(pp.Hashes, root, 0, leaves+first, wrong[first:first+part])
		}
		reply(pp.Hashes, root, 2, leaves, hashes[:part])        // another layer
		reply(pp.Hashes, [32]byte{4}, 0, leaves, hashes[:part]) // another file
		reply(pp.HashReject, root, 0, leaves, nil)
		if mt.HasLeafHashes(1) {
			t.Fatalf("%d leaves: wrong hashes reached the storage", leaves)
		}
		for first := 0; first < leaves; first += part {
			reply(pp.Hashes, root, 0, leaves+first, hashes[first:first+part])
		}
		if !mt.HasLeafHashes(1) {
			t.Fatalf("%d leaves: right hashes did not reach the storage (stats %+v)", leaves, lh.stats())
		}
		st := lh.stats()
		if st.Set != 1 || st.Dropped != 3 || st.Rejects != 1 {
			t.Errorf("%d leaves: stats %+v; want 1 set, 3 dropped (wrong, other layer, other file), 1 reject", leaves, st)
		}
		reply(pp.Hashes, root, 0, leaves, hashes[:part]) // no longer wanted
		if got := lh.stats().Dropped; got != 4 {
			t.Errorf("%d leaves: a reply for a piece no longer wanted: dropped %d; want 4", leaves, got)
		}
	}
}
