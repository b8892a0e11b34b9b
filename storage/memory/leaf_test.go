package memory

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"
)

// TestLeafHashes checks that once a piece has leaf hashes, reads before
// its hash check return only whole leaves that match them, stopping at a
// corrupted one, and that without them ReadVerified returns nothing; that
// OnWantLeafHashes is told once of the leaf two reads are at; with storage
// blocks smaller than, equal to and larger than a leaf.
func TestLeafHashes(t *testing.T) {
	for _, bs := range []int{4 << 10, 16 << 10, 64 << 10} {
		t.Run(fmt.Sprintf("block %d KiB", bs>>10), func(t *testing.T) {
			const pl = 4 * LeafSize
			c, told := newLeafTestClient(t, bs)
			tt, info := openTest(t, c, 1, pl, 2)
			mt, _ := c.Torrent(ihOf(1))
			p := tt.Piece(info.Piece(1))
			hashes := writeLeaves(t, p, pl, 4, func(j int, leaf []byte) bool {
				switch j {
				case 1:
					leaf[100] ^= 0xff // what a corrupting peer sends
				case 3:
					return false // not arrived
				}
				return true
			})
			buf := make([]byte, pl)
			read := func(f func(int, int64, []byte) (int, error), off int64) int {
				t.Helper()
				n, err := f(1, off, buf)
				if err != nil {
					t.Fatalf("reading at %d: %v", off, err)
				}
				return n
			}
			if n := read(mt.ReadVerified, 0); n != 0 {
				t.Errorf("ReadVerified without leaf hashes: %d bytes; want 0", n)
			}
			if n := read(mt.ReadUnverified, 0); n != 3*LeafSize {
				t.Errorf("ReadUnverified without leaf hashes: %d bytes; want every written byte, %d", n, 3*LeafSize)
			}
			if wanted := told(); len(wanted) != 1 || wanted[0] != [2]int{1, 0} {
				t.Errorf("OnWantLeafHashes told %v; want [[1 0]] (piece 1, leaf 0, once)", wanted)
			}

			woken := mt.Written(1)
			if err := mt.SetLeafHashes(1, append(hashes, [32]byte{})); err != nil {
				t.Fatal(err)
			}
			select {
			case <-woken:
			default:
				t.Error("SetLeafHashes did not wake a reader waiting in Written")
			}
			if !mt.HasLeafHashes(1) || mt.HasLeafHashes(0) {
				t.Errorf("HasLeafHashes: piece 1 %v, piece 0 %v; want true, false", mt.HasLeafHashes(1), mt.HasLeafHashes(0))
			}
			for _, tc := range []struct {
				off   int64
				wantN int
			}{
				{0, LeafSize},            // stops at the corrupted leaf
				{100, LeafSize - 100},    // inside a proven leaf
				{LeafSize, 0},            // the corrupted leaf
				{LeafSize + 5, 0},        // inside it
				{2 * LeafSize, LeafSize}, // stops at the leaf not arrived
				{3 * LeafSize, 0},
			} {
				for name, f := range map[string]func(int, int64, []byte) (int, error){"ReadUnverified": mt.ReadUnverified, "ReadVerified": mt.ReadVerified} {
					if n := read(f, tc.off); n != tc.wantN {
						t.Errorf("%s at %d: %d bytes; want %d", name, tc.off, n, tc.wantN)
					} else if err := checkPattern(buf[:n], 1, pl+tc.off); err != nil {
						t.Errorf("%s at %d: %v", name, tc.off, err)
					}
				}
			}
			if mt.RefusedLeaves() == 0 || c.Stats().RefusedLeaves != mt.RefusedLeaves() {
				t.Errorf("RefusedLeaves %d, the client's %d, after reads stopped at the corrupted leaf; want them equal and above 0",
					mt.RefusedLeaves(), c.Stats().RefusedLeaves)
			}

			// The peer sends the leaf again, right this time.
			leaf := make([]byte, LeafSize)
			fill(leaf, 1, pl+LeafSize)
			if _, err := p.WriteAt(leaf, LeafSize); err != nil {
				t.Fatal(err)
			}
			if n := read(mt.ReadVerified, 0); n != 3*LeafSize {
				t.Errorf("ReadVerified after the leaf came right: %d bytes; want %d", n, 3*LeafSize)
			}

			for _, tc := range []struct {
				name   string
				piece  int
				hashes [][32]byte
				want   error
			}{
				{"too few hashes", 1, hashes[:3], nil},
				{"piece out of range", 2, hashes, ErrOutOfRange},
			} {
				err := mt.SetLeafHashes(tc.piece, tc.hashes)
				if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
					t.Errorf("SetLeafHashes, %s: got %v; want an error (%v)", tc.name, err, tc.want)
				}
			}
			mt.Close()
			if err := mt.SetLeafHashes(0, hashes); !errors.Is(err, ErrClosed) {
				t.Errorf("SetLeafHashes after Close: got %v; want ErrClosed", err)
			}
		})
	}
}

// TestLeafHashRange checks a piece that has the hashes of some of its
// leaves (SetLeafHashRange): a leaf whose hash is known is read proven, one
// whose hash is not is read as without hashes, ReadUnverified stops where
// known hashes begin, and OnWantLeafHashes is told each leaf a reader
// moves to.
func TestLeafHashRange(t *testing.T) {
	const pl = 4 * LeafSize
	c, told := newLeafTestClient(t, LeafSize)
	tt, info := openTest(t, c, 1, pl, 2)
	mt, _ := c.Torrent(ihOf(1))
	p := tt.Piece(info.Piece(0))
	hashes := writeLeaves(t, p, 0, 4, func(j int, leaf []byte) bool {
		if j == 2 {
			leaf[7] ^= 1 // corrupted
		}
		return true
	})
	if err := mt.SetLeafHashRange(0, 2, hashes[2:]); err != nil {
		t.Fatal(err)
	}
	if mt.HasLeafHashes(0) || mt.HasLeafHash(0, LeafSize) || !mt.HasLeafHash(0, 2*LeafSize) || !mt.HasLeafHash(0, pl-1) {
		t.Errorf("HasLeafHashes %v, HasLeafHash of leaves 1, 2, 3: %v %v %v; want false, false true true",
			mt.HasLeafHashes(0), mt.HasLeafHash(0, LeafSize), mt.HasLeafHash(0, 2*LeafSize), mt.HasLeafHash(0, pl-1))
	}
	buf := make([]byte, pl)
	for _, tc := range []struct {
		name  string
		f     func(int, int64, []byte) (int, error)
		off   int64
		wantN int
	}{
		{"ReadVerified", mt.ReadVerified, 0, 0},                         // hash not known
		{"ReadUnverified", mt.ReadUnverified, 0, 2 * LeafSize},          // up to the known hashes
		{"ReadUnverified", mt.ReadUnverified, 2 * LeafSize, 0},          // the corrupted leaf
		{"ReadVerified", mt.ReadVerified, 3*LeafSize + 1, LeafSize - 1}, // proven
	} {
		n, err := tc.f(0, tc.off, buf)
		if err != nil || n != tc.wantN {
			t.Errorf("%s at %d: %d bytes, %v; want %d", tc.name, tc.off, n, err, tc.wantN)
		} else if err := checkPattern(buf[:n], 1, tc.off); err != nil {
			t.Errorf("%s at %d: %v", tc.name, tc.off, err)
		}
	}
	if got, want := told(), [][2]int{{0, 0}, {0, 2}, {0, 3}}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("OnWantLeafHashes told (piece, leaf) %v; want %v", got, want)
	}
	if err := mt.SetLeafHashRange(0, 0, hashes[:2]); err != nil {
		t.Fatal(err)
	}
	if n, _ := mt.ReadVerified(0, 0, buf); !mt.HasLeafHashes(0) || n != 2*LeafSize {
		t.Errorf("with every hash: HasLeafHashes %v, ReadVerified %d bytes; want true, %d (up to the corrupted leaf)", mt.HasLeafHashes(0), n, 2*LeafSize)
	}
	if err := mt.SetLeafHashRange(0, 4, hashes[:1]); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("SetLeafHashRange past the piece's leaves: %v; want ErrOutOfRange", err)
	}
}

// newLeafTestClient is a test client with storage blocks of bs bytes, and a
// function that returns the (piece, leaf) pairs OnWantLeafHashes was told
// so far.
func newLeafTestClient(t *testing.T, bs int) (*Client, func() [][2]int) {
	var mu sync.Mutex
	var told [][2]int
	c := newTestClient(t, Options{Capacity: 1 << 20, BlockSize: bs, OnWantLeafHashes: func(ih metainfo.Hash, piece, leaf int) {
		mu.Lock()
		defer mu.Unlock()
		told = append(told, [2]int{piece, leaf})
	}})
	return c, func() [][2]int {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(told)
	}
}

// writeLeaves writes n leaves of torrent 1's pattern into p, which starts
// at off in the torrent, and returns their hashes. alter sees each leaf
// before it is written, may change it (a corrupting peer) and says
// whether to write it.
func writeLeaves(t *testing.T, p storage.Piece, off int64, n int, alter func(j int, leaf []byte) bool) [][32]byte {
	t.Helper()
	var hashes [][32]byte
	leaf := make([]byte, LeafSize)
	for j := range n {
		fill(leaf, 1, off+int64(j)*LeafSize)
		hashes = append(hashes, sha256.Sum256(leaf))
		if !alter(j, leaf) {
			continue
		}
		if _, err := p.WriteAt(leaf, int64(j)*LeafSize); err != nil {
			t.Fatal(err)
		}
	}
	return hashes
}
