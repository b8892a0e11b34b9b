package host

import (
	"io"
	"testing"

	gen "github.com/anacrolix/generics"
	"github.com/anacrolix/torrent/metainfo"

	"github.com/memtorrent/memtorrent/storage/memory"
)

// TestGuardedPieceHandleDoesNotAllocate: the client asks for a piece's
// handle on every access, and memory's handles allocate nothing; the
// guard's wrapper must not change that, and must keep io.WriterTo.
func TestGuardedPieceHandleDoesNotAllocate(t *testing.T) {
	mem, err := memory.New(memory.Options{Capacity: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	info := &metainfo.Info{Name: "guard.bin", PieceLength: 64 << 10, Length: 256 << 10, Pieces: make([]byte, 4*20)}
	ti, err := newSeedGuard().wrap(mem).OpenTorrent(t.Context(), info, metainfo.Hash{1})
	if err != nil {
		t.Fatal(err)
	}
	defer ti.Close()
	mp := info.Piece(2)
	if _, ok := ti.PieceWithHash(mp, gen.None[[]byte]()).(io.WriterTo); !ok {
		t.Error("wrapped piece: not an io.WriterTo; want the memory piece's WriteTo kept")
	}
	allocs := testing.AllocsPerRun(100, func() {
		_ = ti.PieceWithHash(mp, gen.None[[]byte]()).Completion()
	})
	if allocs != 0 {
		t.Errorf("PieceWithHash+Completion: got %v allocs; want 0", allocs)
	}
}
