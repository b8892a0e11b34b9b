package memory

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"
)

// blockingWriter blocks its first Write until release is closed, telling
// started when it begins.
type blockingWriter struct {
	started chan struct{}
	release chan struct{}
	once    bool
}

func (w *blockingWriter) Write(b []byte) (int, error) {
	if !w.once {
		w.once = true
		close(w.started)
		<-w.release
	}
	return len(b), nil
}

func TestEvictionOrder(t *testing.T) {
	const pl = 64 << 10
	t.Run("least recently used complete piece first", func(t *testing.T) {
		c := newTestClient(t, Options{Capacity: 3 * pl})
		tt, info := openTest(t, c, 1, pl, 8)
		for i := range 3 {
			completePiece(t, tt, info, 1, i)
		}
		// Touch piece 0: piece 1 is now the least recently used.
		if _, err := tt.Piece(info.Piece(0)).ReadAt(make([]byte, 1), 0); err != nil {
			t.Fatal(err)
		}
		completePiece(t, tt, info, 1, 3)
		for i, want := range []bool{true, false, true, true} {
			if got := isComplete(tt, info, i); got != want {
				t.Errorf("piece %d complete: got %v; want %v", i, got, want)
			}
		}
		if got := c.Stats().Evictions; got != 1 {
			t.Errorf("Evictions: got %d; want 1", got)
		}
	})
	t.Run("complete before partial", func(t *testing.T) {
		c := newTestClient(t, Options{Capacity: 3 * pl})
		tt, info := openTest(t, c, 1, pl, 8)
		// Piece 0 partial and oldest, piece 1 complete and newer.
		if _, err := tt.Piece(info.Piece(0)).WriteAt(make([]byte, 16<<10), 0); err != nil {
			t.Fatal(err)
		}
		completePiece(t, tt, info, 1, 1)
		writePiece(t, tt, info, 1, 2) // fills the budget: 16 KiB + 2 pieces
		completePiece(t, tt, info, 1, 3)
		if isComplete(tt, info, 1) {
			t.Errorf("piece 1 (complete) survived; want it evicted before partial piece 0")
		}
		if n, _ := tt.Piece(info.Piece(0)).ReadAt(make([]byte, 16<<10), 0); n != 16<<10 {
			t.Errorf("partial piece 0: got %d bytes readable; want 16384 (kept)", n)
		}
	})
	t.Run("partial before fully written unhashed", func(t *testing.T) {
		c := newTestClient(t, Options{Capacity: 2 * pl})
		tt, info := openTest(t, c, 1, pl, 8)
		writePiece(t, tt, info, 1, 0) // all bytes, not yet marked complete
		if _, err := tt.Piece(info.Piece(1)).WriteAt(make([]byte, 16<<10), 0); err != nil {
			t.Fatal(err)
		}
		writePiece(t, tt, info, 1, 2) // needs 64 KiB more than the 48 KiB free
		if err := tt.Piece(info.Piece(0)).MarkComplete(); err != nil {
			t.Errorf("MarkComplete(0): got %v; want nil (unhashed piece kept, partial piece 1 evicted)", err)
		}
		if _, err := tt.Piece(info.Piece(1)).ReadAt(make([]byte, 1), 0); err == nil {
			t.Errorf("partial piece 1 readable; want it evicted")
		}
	})
	t.Run("pinned piece never evicted", func(t *testing.T) {
		c := newTestClient(t, Options{Capacity: 2 * pl, WaitTimeout: 50 * time.Millisecond})
		tt, info := openTest(t, c, 1, pl, 8)
		completePiece(t, tt, info, 1, 0)
		completePiece(t, tt, info, 1, 1)
		w := &blockingWriter{started: make(chan struct{}), release: make(chan struct{})}
		done := make(chan error)
		go func() {
			_, err := tt.Piece(info.Piece(0)).WriteTo(w)
			done <- err
		}()
		<-w.started
		completePiece(t, tt, info, 1, 2) // must evict piece 1, the only unpinned one
		if !isComplete(tt, info, 0) || isComplete(tt, info, 1) {
			t.Errorf("complete: piece 0 %v, piece 1 %v; want true, false (0 pinned)", isComplete(tt, info, 0), isComplete(tt, info, 1))
		}
		completePiece(t, tt, info, 1, 3) // evicts 2, still not 0
		if !isComplete(tt, info, 0) {
			t.Errorf("pinned piece 0 evicted")
		}
		close(w.release)
		if err := <-done; err != nil {
			t.Errorf("WriteTo: %v", err)
		}
	})
	t.Run("write waits for a pin, bounded", func(t *testing.T) {
		c := newTestClient(t, Options{Capacity: pl, WaitTimeout: 20 * time.Millisecond})
		tt, info := openTest(t, c, 1, pl, 8)
		completePiece(t, tt, info, 1, 0)
		w := &blockingWriter{started: make(chan struct{}), release: make(chan struct{})}
		done := make(chan error)
		go func() {
			_, err := tt.Piece(info.Piece(0)).WriteTo(w)
			done <- err
		}()
		<-w.started
		_, err := tt.Piece(info.Piece(1)).WriteAt(make([]byte, 16<<10), 0)
		if !errors.Is(err, ErrNoSpace) {
			t.Errorf("WriteAt with every piece pinned: got %v; want ErrNoSpace", err)
		}
		// Released while a writer waits: the write goes through.
		wrote := make(chan error)
		go func() {
			_, err := tt.Piece(info.Piece(1)).WriteAt(make([]byte, 16<<10), 0)
			wrote <- err
		}()
		close(w.release)
		if err := <-done; err != nil {
			t.Errorf("WriteTo: %v", err)
		}
		// The waiting writer may have timed out before the release on a slow
		// machine; a retry after it must succeed.
		if err := <-wrote; err != nil {
			if _, err := tt.Piece(info.Piece(1)).WriteAt(make([]byte, 16<<10), 0); err != nil {
				t.Errorf("WriteAt after the pin ended: %v", err)
			}
		}
		if s := c.Stats(); s.Resident > s.Capacity {
			t.Errorf("Resident %d > Capacity %d", s.Resident, s.Capacity)
		}
	})
}

func TestEvictedCompletePieceReadsFail(t *testing.T) {
	const pl = 64 << 10
	c := newTestClient(t, Options{Capacity: pl})
	tt, info := openTest(t, c, 1, pl, 4)
	completePiece(t, tt, info, 1, 0)
	completePiece(t, tt, info, 1, 1)
	p := tt.Piece(info.Piece(0))
	if got := p.Completion(); !got.Ok || got.Complete {
		t.Errorf("Completion of evicted piece: got %+v; want {Ok: true, Complete: false}", got)
	}
	n, err := p.PieceImpl.ReadAt(make([]byte, 100), 0)
	if n != 0 || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("ReadAt of evicted piece: got (%d, %v); want (0, ErrUnexpectedEOF)", n, err)
	}
	var buf bytes.Buffer
	if _, err := p.WriteTo(&buf); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("WriteTo of evicted piece: got %v; want ErrUnexpectedEOF", err)
	}
}

func TestCloseTorrentLeavesOthers(t *testing.T) {
	const pl = 64 << 10
	c := newTestClient(t, Options{Capacity: 8 * pl})
	t1, info := openTest(t, c, 1, pl, 4)
	t2, _ := openTest(t, c, 2, pl, 4)
	completePiece(t, t1, info, 1, 0)
	completePiece(t, t2, info, 2, 0)
	if err := t1.Close(); err != nil {
		t.Fatal(err)
	}
	if err := t1.Close(); err != nil {
		t.Errorf("second Close: got %v; want nil", err)
	}
	if _, err := t1.Piece(info.Piece(0)).PieceImpl.ReadAt(make([]byte, 1), 0); !errors.Is(err, ErrClosed) {
		t.Errorf("ReadAt after Close: got %v; want ErrClosed", err)
	}
	if _, err := t1.Piece(info.Piece(1)).WriteAt(make([]byte, 1), 0); !errors.Is(err, ErrClosed) {
		t.Errorf("WriteAt after Close: got %v; want ErrClosed", err)
	}
	if err := t1.Piece(info.Piece(0)).MarkComplete(); !errors.Is(err, ErrClosed) {
		t.Errorf("MarkComplete after Close: got %v; want ErrClosed", err)
	}
	if got := t1.Piece(info.Piece(0)).Completion(); !errors.Is(got.Err, ErrClosed) {
		t.Errorf("Completion after Close: got %+v; want Err ErrClosed", got)
	}
	if !isComplete(t2, info, 0) {
		t.Errorf("other torrent's piece lost after closing the first")
	}
	s := c.Stats()
	if s.Torrents != 1 || s.Resident != pl {
		t.Errorf("Stats after Close: got %d torrents, %d resident; want 1, %d", s.Torrents, s.Resident, pl)
	}
}

func TestSetCapacity(t *testing.T) {
	const pl = 64 << 10
	c := newTestClient(t, Options{Capacity: 4 * pl})
	tt, info := openTest(t, c, 1, pl, 8)
	for i := range 4 {
		completePiece(t, tt, info, 1, i)
	}
	for _, bad := range []int64{0, -5, pl - 1} {
		if err := c.SetCapacity(bad); err == nil {
			t.Errorf("SetCapacity(%d): got nil; want an error", bad)
		}
	}
	if got := c.Stats().Capacity; got != 4*pl {
		t.Errorf("Capacity after bad SetCapacity: got %d; want %d (unchanged)", got, 4*pl)
	}
	if err := c.SetCapacity(2 * pl); err != nil {
		t.Fatal(err)
	}
	if s := c.Stats(); s.Capacity != 2*pl || s.Resident > 2*pl {
		t.Errorf("after shrink: Capacity %d, Resident %d; want %d, <= %d", s.Capacity, s.Resident, 2*pl, 2*pl)
	}
	if n, _ := (*tt.Capacity)(); n != 2*pl {
		t.Errorf("reported capacity: got %d; want %d", n, 2*pl)
	}
	if s := c.Stats(); s.Pooled+s.Resident > s.Capacity {
		t.Errorf("pool not trimmed: Pooled %d + Resident %d > Capacity %d", s.Pooled, s.Resident, s.Capacity)
	}
	if err := c.SetCapacity(8 * pl); err != nil {
		t.Fatal(err)
	}
	for i := range 8 {
		completePiece(t, tt, info, 1, i)
	}
	if s := c.Stats(); s.Resident != 8*pl {
		t.Errorf("after grow: Resident %d; want %d", s.Resident, 8*pl)
	}
}
