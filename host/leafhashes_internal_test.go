package host

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"math/bits"
	"slices"
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

// TestLeafHashLayerReplies feeds leafHashes.peerReply the replies peers
// may send for the piece layer of a file that the torrent came without
// (a magnet), asked by a reader's want, and checks that only hashes that,
// with their uncle hashes, reach the file's pieces root become its layer:
// a wrong hash, a wrong uncle, an unknown root's, another base layer's
// and a part of the wrong length are dropped; then the runs the reader
// wanted are asked, and a second connection's answer is counted late.
// Pieces of 4 leaves; a file of 5 pieces (one request of 8 hashes, the 3
// past the file's end the pad hash, which the peer may send as anything)
// and one of 600 (two requests of 512 with one uncle each).
func TestLeafHashLayerReplies(t *testing.T) {
	const leaves = 4
	pieceLength := int64(leaves) * merkle.BlockSize
	pad := metainfo.HashForPiecePad(pieceLength)
	for _, pieces := range []int{5, 600} {
		t.Run(fmt.Sprintf("%d pieces", pieces), func(t *testing.T) {
			width := int(merkle.RoundUpToPowerOfTwo(uint(pieces)))
			part := min(width, layerPart)
			tree := [][][32]byte{nil} // the piece layer, padded, then each layer above
			for j := range width {
				h := pad
				if j < pieces {
					h = sha256.Sum256([]byte{byte(j), byte(j >> 8)})
				}
				tree[0] = append(tree[0], h)
			}
			for l := tree[0]; len(l) > 1; l = tree[len(tree)-1] {
				var up [][32]byte
				for j := 0; j < len(l); j += 2 {
					up = append(up, sha256.Sum256(append(l[j][:], l[j+1][:]...)))
				}
				tree = append(tree, up)
			}
			root := tree[len(tree)-1][0]
			if got := merkle.RootWithPadHash(tree[0][:pieces], pad); got != root {
				t.Fatalf("merkle.RootWithPadHash %x; want %x", got, root)
			}
			short := [20]byte{9}
			f := leafFile{root: root, pieces: pieces, span: leaves, run: leaves, runs: pieces, noLayer: true,
				partial: make([][32]byte, pieces), partsIn: make([]bool, (pieces+layerPart-1)/layerPart)}
			lh := newLeafHashes()
			lt := &leafTorrent{ih: metainfo.Hash{1}, short: short, leaves: leaves, pad: pad, files: []leafFile{f},
				byRoot: map[[32]byte]int{root: 0}, pending: map[leafRun]time.Time{}, proven: map[leafRun]struct{}{}}
			lh.torrents[short] = lt
			at := pieces - 2 // a reader at the second leaf of the piece before the last
			lh.ask(lt, at, 1)
			if len(lt.pending) != 0 || lt.files[0].layerAsked.IsZero() || !slices.Equal(lt.files[0].waiting, []int{at*leaves + 1}) {
				t.Fatalf("after a want: %d runs pending, layer asked at %v, waiting %v; want the layer asked, leaf %d waiting",
					len(lt.pending), lt.files[0].layerAsked, lt.files[0].waiting, at*leaves+1)
			}
			reqs := lt.layerRequestsLocked(0)
			if len(reqs) != len(f.partsIn) {
				t.Fatalf("%d layer requests; want %d", len(reqs), len(f.partsIn))
			}
			wantProof := 0
			if part < width {
				wantProof = bits.Len(uint(width)) - 2
			}
			for i, r := range reqs {
				var m pp.Message
				d := pp.Decoder{R: bufio.NewReader(bytes.NewReader(r)), MaxLength: 1 << 10}
				if err := d.Decode(&m); err != nil {
					t.Fatal(err)
				}
				if m.Type != pp.HashRequest || m.PiecesRoot != root || m.BaseLayer != 2 || int(m.Index) != i*part || int(m.Length) != part || int(m.ProofLayers) != wantProof {
					t.Errorf("request %d: %+v; want base layer 2, index %d, length %d, proof layers %d", i, m, i*part, part, wantProof)
				}
			}
			// uncles returns the uncle hashes of part i, lowest first.
			uncles := func(i int) (us [][32]byte) {
				for l := bits.Len(uint(part)) - 1; l < len(tree)-1; l++ {
					us = append(us, tree[l][(i*part>>l)^1])
				}
				return us
			}
			reply := func(root [32]byte, base, index, length int, hs ...[][32]byte) {
				var all [][32]byte
				for _, h := range hs {
					all = append(all, h...)
				}
				m := pp.Message{Type: pp.Hashes, PiecesRoot: root, BaseLayer: pp.Integer(base), Index: pp.Integer(index), Length: pp.Integer(length), Hashes: all}
				lh.peerReply(short, m.MustMarshalBinary()[4:])
			}
			// nodes returns part i as a peer may send it: zeros past the file's end.
			nodes := func(i int) [][32]byte {
				ns := append([][32]byte(nil), tree[0][i*part:(i+1)*part]...)
				for j := range ns {
					if i*part+j >= pieces {
						ns[j] = [32]byte{}
					}
				}
				return ns
			}
			last := len(f.partsIn) - 1
			wrong := nodes(last)
			wrong[0][0] ^= 1
			reply(root, 2, last*part, part, wrong, uncles(last))
			wantDropped := int64(1)
			if us := uncles(last); len(us) > 0 {
				us[0][5] ^= 1
				reply(root, 2, last*part, part, nodes(last), us)
				wantDropped++
			}
			reply([32]byte{4}, 2, last*part, part, nodes(last), uncles(last))     // another file
			reply(root, 0, last*part, part, nodes(last), uncles(last))            // the leaf layer
			reply(root, 3, last*part, part, nodes(last), uncles(last))            // the layer above
			reply(root, 2, last*part, part/2, nodes(last)[:part/2], uncles(last)) // half a part
			wantDropped += 4
			for i := range f.partsIn {
				if lt.files[0].layer != nil {
					t.Fatalf("layer set after %d of %d parts", i, len(f.partsIn))
				}
				reply(root, 2, i*part, part, nodes(i), uncles(i))
			}
			if got := lt.files[0].layer; !slices.Equal(got, tree[0][:pieces]) {
				t.Fatalf("layer of %d hashes, %v; want the file's %d", len(got), got[:min(len(got), 2)], pieces)
			}
			if _, ok := lt.pending[leafRun{0, at}]; !ok || len(lt.pending) != 2 || len(lt.files[0].waiting) != 0 {
				t.Errorf("pending runs %v, waiting %v; want runs %d and %d (the reader's and the next) asked once the layer is in",
					lt.pending, lt.files[0].waiting, at, at+1)
			}
			reply(root, 2, 0, part, nodes(0), uncles(0)) // another connection's answer
			if st := lh.stats(); st.Dropped != wantDropped || st.Late != 1 || st.Replies != wantDropped+int64(len(f.partsIn))+1 {
				t.Errorf("stats %+v; want %d dropped, 1 late", st, wantDropped)
			}
		})
	}
}
