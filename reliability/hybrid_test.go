package reliability

// BitTorrent v2 / hybrid torrents (BEP 52) against a real seeder.
// v1.59.1's metainfo builds only v1 info (Info.BuildFromFilePath), so
// hybridMetaInfo builds the v2 half here with the library's merkle package.

import (
	"crypto/sha1"
	"net/http"
	"testing"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/merkle"
	"github.com/anacrolix/torrent/metainfo"

	"github.com/memtorrent/memtorrent/internal/testutil"
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
