package swarm

import (
	"crypto/sha1"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
)

// DefaultPieceLength is the piece length of a Spec that leaves it zero.
const DefaultPieceLength = 256 << 10

// File is one file of a multi-file torrent.
type File struct {
	Path   string // slash-separated, relative to the torrent's directory
	Length int64
}

// Spec describes a test torrent. The torrent's content, its files
// concatenated in order, is the Source stream of Seed; so equal Specs give
// equal info hashes.
type Spec struct {
	Name        string // the file (single-file) or directory (multi-file) name; "" means "data"
	PieceLength int64  // 0 means DefaultPieceLength
	Files       []File // nil means a single-file torrent of Length bytes
	Length      int64  // ignored when Files is not nil
	Seed        int64
}

// withDefaults returns s with its zero fields defaulted.
func (s Spec) withDefaults() Spec {
	if s.Name == "" {
		s.Name = "data"
	}
	if s.PieceLength == 0 {
		s.PieceLength = DefaultPieceLength
	}
	return s
}

// TotalLength returns the length of the torrent's content.
func (s Spec) TotalLength() int64 {
	if s.Files == nil {
		return s.Length
	}
	var n int64
	for _, f := range s.Files {
		n += f.Length
	}
	return n
}

// Info returns the torrent's info dictionary, hashing the content (in
// parallel, about 1.5 GB/s per core). It returns an error for a negative
// length or piece length, or an empty file path.
func (s Spec) Info() (*metainfo.Info, error) {
	s = s.withDefaults()
	if s.PieceLength < 0 {
		return nil, fmt.Errorf("spec %q: negative piece length %d", s.Name, s.PieceLength)
	}
	info := &metainfo.Info{Name: s.Name, PieceLength: s.PieceLength}
	if s.Files == nil {
		if s.Length < 0 {
			return nil, fmt.Errorf("spec %q: negative length %d", s.Name, s.Length)
		}
		info.Length = s.Length
	}
	for _, f := range s.Files {
		if f.Length < 0 || f.Path == "" {
			return nil, fmt.Errorf("spec %q: bad file %q of length %d", s.Name, f.Path, f.Length)
		}
		info.Files = append(info.Files, metainfo.FileInfo{
			Path:   strings.Split(f.Path, "/"),
			Length: f.Length,
		})
	}
	info.Pieces = pieceHashes(s.Source(), s.PieceLength)
	return info, nil
}

// pieceHashes returns the concatenated SHA-1 hashes of src's pieces.
func pieceHashes(src *Source, pieceLength int64) []byte {
	n := int((src.Size() + pieceLength - 1) / pieceLength)
	hashes := make([]byte, n*sha1.Size)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), n) {
		wg.Go(func() {
			buf := make([]byte, pieceLength)
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				m, _ := src.ReadAt(buf, i*pieceLength) // io.EOF on the last piece
				sum := sha1.Sum(buf[:m])
				copy(hashes[i*sha1.Size:], sum[:])
			}
		})
	}
	wg.Wait()
	return hashes
}

// MetaInfo returns the torrent's metainfo (no announce URLs). Errors are
// those of Info.
func (s Spec) MetaInfo() (*metainfo.MetaInfo, error) {
	info, err := s.Info()
	if err != nil {
		return nil, err
	}
	b, err := bencode.Marshal(info)
	if err != nil {
		return nil, fmt.Errorf("encoding info of %q: %w", info.Name, err)
	}
	return &metainfo.MetaInfo{InfoBytes: b}, nil
}

// Source returns the torrent's content as a stream. It is cheap: nothing is
// generated until read.
func (s Spec) Source() *Source {
	return NewSource(s.Seed, s.TotalLength())
}

// WriteFiles writes the torrent's files into dir (a single-file torrent to
// dir/Name, a multi-file one to dir/Name/Path for each file, creating
// directories), so that a seeder over dir (SeedDir) has them complete. It
// returns an error naming the file that could not be created or written.
func WriteFiles(dir string, spec Spec) error {
	return writeFiles(dir, spec.withDefaults())
}

// writeFiles writes the content of spec (defaults applied) under dir.
func writeFiles(dir string, spec Spec) error {
	src := spec.Source()
	if spec.Files == nil {
		return writeFile(filepath.Join(dir, spec.Name), src, 0, spec.Length)
	}
	var off int64
	for _, f := range spec.Files {
		name := filepath.Join(dir, spec.Name, filepath.FromSlash(f.Path))
		if err := writeFile(name, src, off, f.Length); err != nil {
			return err
		}
		off += f.Length
	}
	return nil
}

// writeFile writes length bytes of src from off to a new file name.
func writeFile(name string, src *Source, off, length int64) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return fmt.Errorf("creating directory for %s: %w", name, err)
	}
	f, err := os.Create(name)
	if err != nil {
		return fmt.Errorf("creating %s: %w", name, err)
	}
	buf := make([]byte, min(length, 1<<20))
	for done := int64(0); done < length; {
		b := buf[:min(int64(len(buf)), length-done)]
		src.fill(b, off+done)
		if _, err := f.Write(b); err != nil {
			f.Close()
			return fmt.Errorf("writing %s: %w", name, err)
		}
		done += int64(len(b))
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", name, err)
	}
	return nil
}

// FileMetaInfo returns the metainfo of a single-file torrent of the file at
// path, named name, in pieces of pieceLength bytes (hashing the whole
// file). It returns an error if the file cannot be read or pieceLength is
// not positive.
func FileMetaInfo(path, name string, pieceLength int64) (*metainfo.MetaInfo, error) {
	if pieceLength <= 0 {
		return nil, fmt.Errorf("torrent of %s: piece length %d: want a positive length", path, pieceLength)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("making a torrent: %w", err)
	}
	info := metainfo.Info{Name: name, Length: fi.Size(), PieceLength: pieceLength}
	if err := info.GeneratePieces(func(metainfo.FileInfo) (io.ReadCloser, error) {
		return os.Open(path)
	}); err != nil {
		return nil, fmt.Errorf("hashing %s: %w", path, err)
	}
	b, err := bencode.Marshal(info)
	if err != nil {
		return nil, fmt.Errorf("encoding the info of %s: %w", path, err)
	}
	return &metainfo.MetaInfo{InfoBytes: b}, nil
}
