package host

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"math/bits"
	"testing"
	"time"

	"github.com/anacrolix/torrent/merkle"
	"github.com/anacrolix/torrent/metainfo"
	pp "github.com/anacrolix/torrent/peer_protocol"

	"github.com/memtorrent/memtorrent/storage/memory"
)

// TestLeafHashReplies feeds leafHashes.peerReply the replies peers may
// send for an asked run of a piece's leaves and checks that only hashes
// that, with their uncle hashes, reach the piece-layer hash get to the
// storage: wrong leaves (a lying peer, or v1.59.1's piece-layer answer),
// a wrong uncle, another layer's, an unknown root's, a run never asked and
// a reject are counted and dropped, and a second connection's answer to a
// proven run is counted late. Pieces of 4 leaves (one run, no uncles) and
// of 1,024 (runs of 64 leaves, four uncles).
func TestLeafHashReplies(t *testing.T) {
	for _, leaves := range []int{4, 1024} {
		t.Run(fmt.Sprintf("%d leaves", leaves), func(t *testing.T) {
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
			tree := [][][32]byte{nil} // piece 1's: leaves, then each layer above
			for j := range leaves {
				tree[0] = append(tree[0], sha256.Sum256([]byte{byte(j), byte(j >> 8)}))
			}
			for l := tree[0]; len(l) > 1; l = tree[len(tree)-1] {
				var up [][32]byte
				for j := 0; j < len(l); j += 2 {
					up = append(up, sha256.Sum256(append(l[j][:], l[j+1][:]...)))
				}
				tree = append(tree, up)
			}
			root := [32]byte{1, 2, 3}
			short := [20]byte{9}
			f := leafFile{root: root, layer: [][32]byte{{7}, tree[len(tree)-1][0]}, span: leaves, run: min(leaves, runLeaves), runs: 2 * leaves / min(leaves, runLeaves)}
			lh := newLeafHashes()
			lt := &leafTorrent{ih: ih, short: short, mt: mt, leaves: leaves, files: []leafFile{f}, byRoot: map[[32]byte]int{root: 0},
				pending: map[leafRun]time.Time{}, proven: map[leafRun]struct{}{}}
			lh.torrents[short] = lt
			first := leaves - f.run // the last run of piece 1, in the piece
			asked := leafRun{0, (leaves + first) / f.run}
			lt.pending[asked], lt.order = time.Now(), []leafRun{asked}
			run := tree[0][first : first+f.run]
			var uncles [][32]byte
			for l := bits.Len(uint(f.run)) - 1; l < len(tree)-1; l++ {
				uncles = append(uncles, tree[l][(first>>l)^1])
			}
			if want := bits.Len(uint(leaves/f.run)) - 1; len(uncles) != want {
				t.Fatalf("%d uncles; want %d", len(uncles), want)
			}
			var m pp.Message
			d := pp.Decoder{R: bufio.NewReader(bytes.NewReader(lt.request(asked))), MaxLength: 1 << 10}
			if err := d.Decode(&m); err != nil {
				t.Fatal(err)
			}
			wantProof := 0
			if f.run < leaves {
				wantProof = bits.Len(uint(leaves)) - 2
			}
			if m.Type != pp.HashRequest || int(m.Index) != leaves+first || int(m.Length) != f.run || int(m.ProofLayers) != wantProof {
				t.Errorf("request %+v; want index %d, length %d, proof layers %d", m, leaves+first, f.run, wantProof)
			}
			reply := func(typ pp.MessageType, root [32]byte, base, index int, hs ...[][32]byte) {
				var all [][32]byte
				for _, h := range hs {
					all = append(all, h...)
				}
				m := pp.Message{Type: typ, PiecesRoot: root, BaseLayer: pp.Integer(base), Index: pp.Integer(index), Length: pp.Integer(f.run), Hashes: all}
				lh.peerReply(short, m.MustMarshalBinary()[4:])
			}
			wrong := append([][32]byte(nil), run...)
			wrong[0][0] ^= 1
			reply(pp.Hashes, root, 0, leaves+first, wrong, uncles)
			if len(uncles) > 0 {
				badUncle := append([][32]byte(nil), uncles...)
				badUncle[len(badUncle)-1][3] ^= 1
				reply(pp.Hashes, root, 0, leaves+first, run, badUncle)
			}
			reply(pp.Hashes, root, 2, leaves+first, run, uncles)        // another layer
			reply(pp.Hashes, [32]byte{4}, 0, leaves+first, run, uncles) // another file
			reply(pp.Hashes, root, 0, 0, tree[0][:f.run], uncles)       // a run never asked
			reply(pp.HashReject, root, 0, leaves+first)
			if mt.HasLeafHash(1, int64(first)*merkle.BlockSize) {
				t.Fatal("wrong hashes reached the storage")
			}
			reply(pp.Hashes, root, 0, leaves+first, run, uncles)
			if !mt.HasLeafHash(1, int64(first)*merkle.BlockSize) || !mt.HasLeafHash(1, pieceLength-1) {
				t.Fatalf("right hashes did not reach the storage (stats %+v)", lh.stats())
			}
			if got, want := mt.HasLeafHashes(1), f.run == leaves; got != want {
				t.Errorf("HasLeafHashes %v; want %v (the piece's every leaf)", got, want)
			}
			reply(pp.Hashes, root, 0, leaves+first, run, uncles) // another connection's answer
			st := lh.stats()
			wantDropped := int64(4)
			if len(uncles) > 0 {
				wantDropped++
			}
			if st.Set != 1 || st.Dropped != wantDropped || st.Rejects != 1 || st.Late != 1 || len(lt.pending) != 0 {
				t.Errorf("stats %+v, %d runs pending; want 1 set, %d dropped, 1 reject, 1 late, none pending", st, len(lt.pending), wantDropped)
			}
		})
	}
}
