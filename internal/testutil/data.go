package testutil

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/memtorrent/memtorrent/internal/swarm"
)

// The data and torrents are package swarm's; these names keep the tests'
// spelling.
type (
	// Source is swarm.Source, a deterministic pseudo-random byte stream.
	Source = swarm.Source
	// Spec is swarm.Spec, a test torrent.
	Spec = swarm.Spec
	// File is swarm.File, one file of a multi-file Spec.
	File = swarm.File
)

// DefaultPieceLength is the piece length of a Spec that leaves it zero.
const DefaultPieceLength = swarm.DefaultPieceLength

// NewSource is swarm.NewSource: the stream of size bytes for seed. It
// panics if size is negative.
func NewSource(seed, size int64) *Source { return swarm.NewSource(seed, size) }

// Data is swarm.Data: the first size bytes of the stream for seed. It
// panics if size is negative.
func Data(seed, size int64) []byte { return swarm.Data(seed, size) }

// Content returns the torrent's whole content, its files concatenated in
// order. It allocates spec.TotalLength() bytes.
func Content(spec Spec) []byte {
	return Data(spec.Seed, spec.TotalLength())
}

// FileContent returns the content of file i of a multi-file spec, or the
// whole content of a single-file spec when i is 0. It panics if i is out of
// range.
func FileContent(spec Spec, i int) []byte {
	off, length := fileExtent(spec, i)
	b := make([]byte, length)
	spec.Source().ReadAt(b, off) // io.EOF for the last file
	return b
}

// fileExtent returns the torrent offset and length of file i.
func fileExtent(spec Spec, i int) (off, length int64) {
	if spec.Files == nil {
		if i != 0 {
			panic(fmt.Sprintf("testutil: file %d of a single-file spec", i))
		}
		return 0, spec.Length
	}
	for _, f := range spec.Files[:i] {
		off += f.Length
	}
	return off, spec.Files[i].Length
}

// MakeTorrent writes the torrent's files into dir with swarm.WriteFiles and
// returns its metainfo. It fails the test if the spec is invalid or a file
// cannot be written. Call it from the test goroutine.
func MakeTorrent(tb testing.TB, dir string, spec Spec) *metainfo.MetaInfo {
	tb.Helper()
	mi, err := spec.MetaInfo()
	if err != nil {
		tb.Fatalf("making torrent: %v", err)
	}
	if err := swarm.WriteFiles(dir, spec); err != nil {
		tb.Fatalf("making torrent: %v", err)
	}
	return mi
}

// WriteTorrentFile writes mi to a new .torrent file at path. It fails the
// test if the file cannot be written. Call it from the test goroutine.
func WriteTorrentFile(tb testing.TB, path string, mi *metainfo.MetaInfo) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatalf("writing the torrent file: %v", err)
	}
	err = mi.Write(f)
	if e := f.Close(); err == nil {
		err = e
	}
	if err != nil {
		tb.Fatalf("writing the torrent file %s: %v", path, err)
	}
}

// Equal reports through tb.Errorf whether got and want differ, naming the
// first differing offset and both lengths instead of dumping the bytes. It
// returns true if they are equal. Like tb.Errorf it may be called from any
// goroutine while the test runs.
func Equal(tb testing.TB, got, want []byte) bool {
	tb.Helper()
	n := min(len(got), len(want))
	i := 0
	// Compare in blocks first: byte-by-byte over hundreds of MiB is slow.
	const block = 64 << 10
	for i+block <= n && string(got[i:i+block]) == string(want[i:i+block]) {
		i += block
	}
	for i < n && got[i] == want[i] {
		i++
	}
	switch {
	case i < n:
		tb.Errorf("data differs at offset %d: got byte %#02x; want %#02x (len got %d; want %d)",
			i, got[i], want[i], len(got), len(want))
	case len(got) != len(want):
		tb.Errorf("data length: got %d; want %d (the first %d bytes are equal)", len(got), len(want), n)
	default:
		return true
	}
	return false
}

// FileMetaInfo returns a metainfo of a single-file torrent of the file at
// path, named after the file, in pieces of pieceLength (swarm.FileMetaInfo),
// failing tb on an error.
func FileMetaInfo(tb testing.TB, path string, pieceLength int64) *metainfo.MetaInfo {
	tb.Helper()
	mi, err := swarm.FileMetaInfo(path, filepath.Base(path), pieceLength)
	if err != nil {
		tb.Fatal(err)
	}
	return mi
}
