package memory

import (
	"testing"
	"unsafe"
)

func addr(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b))) }

// TestArena checks the arena's bookkeeping where blocks are mapped: chunks
// carved in order, a chunk unmapped when its last block is released, a
// released slot reused, and after close a held block stays mapped (and
// writable) until it is released.
func TestArena(t *testing.T) {
	const bs = 16 << 10
	var a arena
	a.init(bs, 4<<20)
	perChunk := int(a.chunkSize / bs)
	if a.chunkSize != chunkTarget {
		t.Fatalf("chunkSize: got %d; want %d", a.chunkSize, chunkTarget)
	}
	blocks := make([][]byte, perChunk+perChunk/2)
	seen := map[uintptr]bool{}
	for i := range blocks {
		blocks[i] = a.alloc()
		if len(blocks[i]) != bs || cap(blocks[i]) != bs {
			t.Fatalf("block %d: len %d cap %d; want %d", i, len(blocks[i]), cap(blocks[i]), bs)
		}
		if seen[addr(blocks[i])] {
			t.Fatalf("block %d handed out twice", i)
		}
		seen[addr(blocks[i])] = true
		blocks[i][0], blocks[i][bs-1] = byte(i), byte(i)
	}
	if a.mapped.Load() == 0 {
		t.Skip("no anonymous mmap on this system: blocks come from the heap")
	}
	if got, want := a.mapped.Load(), 2*a.chunkSize; got != want {
		t.Fatalf("mapped after %d blocks: got %d; want %d", len(blocks), got, want)
	}
	for i := range perChunk { // the whole first chunk
		a.release(blocks[i])
		blocks[i] = nil
	}
	if got, want := a.mapped.Load(), a.chunkSize; got != want {
		t.Fatalf("mapped after releasing a chunk: got %d; want %d", got, want)
	}
	k := perChunk + 3
	old := addr(blocks[k])
	a.release(blocks[k])
	blocks[k] = a.alloc()
	if addr(blocks[k]) != old {
		t.Errorf("released slot not reused: got %#x; want %#x", addr(blocks[k]), old)
	}
	a.close()
	if got, want := a.mapped.Load(), a.chunkSize; got != want {
		t.Fatalf("mapped after close with held blocks: got %d; want %d", got, want)
	}
	for i := perChunk; i < len(blocks); i++ {
		blocks[i][1] = 1 // still mapped: a fault here would crash the test
		if i != k && blocks[i][0] != byte(i) {
			t.Fatalf("block %d: got %d; want %d", i, blocks[i][0], byte(i))
		}
		a.release(blocks[i])
	}
	if got := a.mapped.Load(); got != 0 {
		t.Errorf("mapped after releasing every block: got %d; want 0", got)
	}
}

// TestArenaSmallCapacity checks that a cache smaller than a chunk maps no
// more than its capacity, rounded up to a block.
func TestArenaSmallCapacity(t *testing.T) {
	var a arena
	a.init(16<<10, 40<<10)
	if got, want := a.chunkSize, int64(48<<10); got != want {
		t.Errorf("chunkSize: got %d; want %d", got, want)
	}
	a.init(4<<20, 1<<20)
	if got, want := a.chunkSize, int64(4<<20); got != want {
		t.Errorf("chunkSize for 4 MiB blocks: got %d; want %d", got, want)
	}
}

// gateWriter signals its first Write and then waits for a release, so a
// WriteTo stays in flight while the test closes the Client.
type gateWriter struct {
	started, release chan struct{}
	got              []byte
}

func (w *gateWriter) Write(b []byte) (int, error) {
	if w.got == nil {
		close(w.started)
		<-w.release
	}
	w.got = append(w.got, b...)
	return len(b), nil
}

// TestCloseKeepsPinnedBlocksMapped closes a Client while a WriteTo (a
// hash) reads one of its pieces: the piece's blocks must stay mapped until
// the read ends, which then sees the right bytes, and be unmapped after.
func TestCloseKeepsPinnedBlocksMapped(t *testing.T) {
	const pl = 256 << 10
	c, err := New(Options{Capacity: 8 * pl})
	if err != nil {
		t.Fatal(err)
	}
	tt, info := openTest(t, c, 1, pl, 8)
	for i := range 8 {
		writePiece(t, tt, info, 1, i)
	}
	w := &gateWriter{started: make(chan struct{}), release: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		_, err := tt.Piece(info.Piece(5)).WriteTo(w)
		done <- err
	}()
	<-w.started
	c.Close()
	mapped := c.Stats().Mapped
	if mapped == 0 {
		t.Log("no anonymous mmap on this system: blocks come from the heap")
	}
	close(w.release)
	if err := <-done; err != nil {
		t.Fatalf("WriteTo across Close: %v", err)
	}
	if err := checkPattern(w.got, 1, 5*pl); err != nil {
		t.Errorf("WriteTo across Close: %v", err)
	}
	if len(w.got) != pl {
		t.Errorf("WriteTo across Close: got %d bytes; want %d", len(w.got), pl)
	}
	if got := c.Stats().Mapped; got != 0 {
		t.Errorf("Mapped after the read ended: got %d; want 0 (was %d while it ran)", got, mapped)
	}
}
