package memory

import (
	"bytes"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"

	"github.com/memtorrent/memtorrent/internal/blocking"
)

// hashInFlight starts reading piece i of tt into a blocking.Writer, as a
// hash does, and returns once the read is in flight (the piece pinned). The
// returned function lets the read end and returns its error.
func hashInFlight(tt storage.Torrent, info *metainfo.Info, i int) (release func() error) {
	w := blocking.New()
	done := make(chan error, 1)
	go func() {
		_, err := tt.Piece(info.Piece(i)).WriteTo(w)
		done <- err
	}()
	<-w.Started
	return func() error {
		close(w.Release)
		return <-done
	}
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
		release := hashInFlight(tt, info, 0)
		completePiece(t, tt, info, 1, 2) // must evict piece 1, the only unpinned one
		if !isComplete(tt, info, 0) || isComplete(tt, info, 1) {
			t.Errorf("complete: piece 0 %v, piece 1 %v; want true, false (0 pinned)", isComplete(tt, info, 0), isComplete(tt, info, 1))
		}
		completePiece(t, tt, info, 1, 3) // evicts 2, still not 0
		if !isComplete(tt, info, 0) {
			t.Errorf("pinned piece 0 evicted")
		}
		if err := release(); err != nil {
			t.Errorf("WriteTo: %v", err)
		}
	})
	t.Run("write waits for a pin, bounded", func(t *testing.T) {
		c := newTestClient(t, Options{Capacity: pl, WaitTimeout: 20 * time.Millisecond})
		tt, info := openTest(t, c, 1, pl, 8)
		completePiece(t, tt, info, 1, 0)
		release := hashInFlight(tt, info, 0)
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
		if err := release(); err != nil {
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

// setLastUse sets the last use of piece i, keeping the eviction index in
// step, for tests that need an order the clock would not give.
func setLastUse(mt *Torrent, i int, v int64) {
	mt.mu.Lock()
	defer mt.mu.Unlock()
	p := &mt.pieces[i]
	p.lastUse = v
	mt.reindexLocked(p)
}

// scanRankLocked is the ranking the eviction index replaced, kept as the
// reference it must agree with: it looks at the piece's state directly.
func (p *piece) scanRankLocked(lbOver bool) (r rank, ok bool) {
	if p.pins > 0 || p.pos < 0 {
		return rank{}, false
	}
	if !p.complete && p.validLocked(0, p.length) == p.length {
		return rank{classUnhashed, p.lastUse}, true
	}
	t := p.t
	ahead := -1
	for _, w := range t.readaheads {
		if p.index >= w.begin && p.index < w.end && (ahead < 0 || p.index-w.begin < ahead) {
			ahead = p.index - w.begin
		}
	}
	if ahead >= 0 {
		return rank{classReadahead, -int64(ahead)}, true
	}
	for _, pin := range t.pins {
		if p.index >= pin.begin && p.index < pin.end {
			return rank{classPinned, p.lastUse}, true
		}
	}
	switch {
	case p.complete && !lbOver && t.lb.Contains(p.index):
		return rank{classLookbehind, int64(p.index)}, true
	case p.complete:
		return rank{classComplete, p.lastUse}, true
	default:
		return rank{classPartial, p.lastUse}, true
	}
}

// checkIndex compares the torrent's eviction index with a scan of its
// resident pieces: every piece in the slot its state says, heap keys equal
// to last uses, heaps ordered, sets holding exactly their pieces, and the
// index's candidate ranked as the scan's best, for both lookbehind budgets;
// and the lookbehind figures (lbHeld, lbBytes) equal to a count of the
// complete resident pieces in the set.
func checkIndex(t *testing.T, mt *Torrent) {
	t.Helper()
	mt.mu.Lock()
	defer mt.mu.Unlock()
	e := &mt.ev
	count := [numSlots]int{}
	var lbHeld int
	var lbBytes int64
	for i := range mt.pieces {
		p := &mt.pieces[i]
		if held := p.pos >= 0 && p.complete && mt.lb.Contains(i); held {
			lbHeld++
			lbBytes += mt.c.blockSize * int64(p.numBlocks())
		}
		if want := mt.slotLocked(p); p.slot != want {
			t.Fatalf("piece %d in slot %d; want %d", i, p.slot, want)
		}
		full := p.blocks != nil && p.validLocked(0, p.length) == p.length
		if (int(p.full) == p.numBlocks()) != full {
			t.Fatalf("piece %d: %d full blocks of %d, but fully written is %v", i, p.full, p.numBlocks(), full)
		}
		count[p.slot]++
		switch p.slot {
		case slotNone:
			continue
		case slotReadahead:
			continue
		}
		h := e.heaps[p.slot]
		if int(p.hpos) >= len(h) || h[p.hpos].idx != int32(i) || h[p.hpos].key != p.lastUse {
			t.Fatalf("piece %d (slot %d): heap position %d wrong", i, p.slot, p.hpos)
		}
	}
	for s := range e.heaps {
		h := e.heaps[s]
		if s != slotNone && s != slotReadahead && len(h) != count[s] {
			t.Fatalf("slot %d: heap of %d; want %d", s, len(h), count[s])
		}
		for k := 1; k < len(h); k++ {
			if h[(k-1)/4].key > h[k].key {
				t.Fatalf("slot %d: heap out of order at %d", s, k)
			}
		}
	}
	for _, set := range []struct {
		s    *indexSet
		slot uint8
	}{{&e.lbIndex, slotLookbehind}, {&e.readahead, slotReadahead}} {
		if set.s.len != count[set.slot] {
			t.Fatalf("slot %d: set of %d; want %d", set.slot, set.s.len, count[set.slot])
		}
		var n int64
		i, ok := set.s.next(0, &n)
		for k := 0; k < count[set.slot]; k++ {
			if !ok || mt.pieces[i].slot != set.slot {
				t.Fatalf("slot %d: set member %d (found %v) not in the slot", set.slot, i, ok)
			}
			i, ok = set.s.next(i+1, &n)
		}
		if ok {
			t.Fatalf("slot %d: set holds %d beyond its %d members", set.slot, i, count[set.slot])
		}
	}
	if mt.lbHeld != lbHeld || mt.lbBytes.Load() != lbBytes {
		t.Fatalf("lookbehind held: %d pieces, %d bytes; the scan counts %d, %d", mt.lbHeld, mt.lbBytes.Load(), lbHeld, lbBytes)
	}
	for _, lbOver := range []bool{false, true} {
		var want rank
		var found bool
		for _, i := range mt.resident {
			if r, ok := mt.pieces[i].scanRankLocked(lbOver); ok && (!found || r.less(want)) {
				want, found = r, true
			}
		}
		mt.mu.Unlock()
		i, got, ok := mt.candidate(lbOver)
		mt.mu.Lock()
		if ok != found || got != want {
			t.Fatalf("lbOver %v: candidate piece %d rank %+v (ok %v); the scan's best is %+v (ok %v)", lbOver, i, got, ok, want, found)
		}
		if ok {
			if r, _ := mt.pieces[i].scanRankLocked(lbOver); r != got {
				t.Fatalf("lbOver %v: candidate piece %d ranked %+v; the scan ranks it %+v", lbOver, i, got, r)
			}
		}
	}
}

// TestEvictIndexMatchesScan runs random operations of every kind that
// moves a piece between eviction classes (writes, hashes, completion,
// reads, windows, pins, lookbehind sets, evictions) on two torrents, and
// after each checks the eviction index against a scan of every piece.
func TestEvictIndexMatchesScan(t *testing.T) {
	const (
		bs     = 4 << 10
		pl     = 3*bs - 1000 // a short last block
		pieces = 40
	)
	rng := rand.New(rand.NewPCG(1, 2))
	c := newTestClient(t, Options{Capacity: 48 * bs, BlockSize: bs, LookbehindShare: 0.5, WaitTimeout: time.Millisecond})
	var tts []storage.Torrent
	var mts []*Torrent
	for k := range 2 {
		tt, _ := openTest(t, c, k, pl, pieces)
		mt, _ := c.Torrent(ihOf(k))
		tts, mts = append(tts, tt), append(mts, mt)
	}
	info := testInfo(pl, pieces, pl*pieces)
	var windows []*Readahead
	var pins []*Pin
	var hashed []*piece
	buf := make([]byte, pl)
	iters := 4000
	if testing.Short() {
		iters = 1000
	}
	for range iters {
		k := rng.IntN(2)
		tt, mt := tts[k], mts[k]
		i := rng.IntN(pieces)
		p := tt.Piece(info.Piece(i))
		write := func(b []byte, off int64) {
			// A write into a piece being hashed waits for the hash, and a
			// write into a cache of nothing but such pieces fails.
			if _, err := p.WriteAt(b, off); err != nil && !errors.Is(err, ErrNoSpace) {
				t.Fatal(err)
			}
		}
		switch op := rng.IntN(16); op {
		case 0, 1, 2: // write a chunk
			off := int64(rng.IntN(pl))
			write(buf[:min(int64(rng.IntN(2*bs)+1), pl-off)], off)
		case 3: // write a whole piece and hash it
			write(buf, 0)
			p.MarkComplete()
		case 4:
			p.MarkComplete()
		case 5:
			p.MarkNotComplete()
		case 6:
			p.ReadAt(buf[:1], 0)
		case 7: // a hash in flight, or the end of one
			if len(hashed) > 0 && rng.IntN(2) == 0 {
				hp := hashed[len(hashed)-1]
				hashed = hashed[:len(hashed)-1]
				hp.unpin()
				break
			}
			mp := &mt.pieces[i]
			mt.mu.Lock()
			mp.pins++
			mt.reindexLocked(mp)
			mt.mu.Unlock()
			hashed = append(hashed, mp)
		case 8, 9: // move a window, or open one
			if len(windows) == 0 || rng.IntN(4) == 0 {
				windows = append(windows, mt.NewReadahead())
			}
			w := windows[rng.IntN(len(windows))]
			begin := rng.IntN(pieces)
			n := rng.IntN(pieces - begin + 1)
			w.Set(int64(begin)*pl+int64(rng.IntN(pl)), int64(n)*pl)
		case 10:
			if len(windows) > 0 {
				j := rng.IntN(len(windows))
				if rng.IntN(2) == 0 {
					windows[j].Clear()
					break
				}
				windows[j].Close()
				windows = slices.Delete(windows, j, j+1)
			}
		case 11:
			if len(pins) > 0 && rng.IntN(2) == 0 {
				j := rng.IntN(len(pins))
				pins[j].Release()
				pins = slices.Delete(pins, j, j+1)
				break
			}
			if pin, err := mt.Pin(int64(i)*pl, int64(rng.IntN(3)+1)*bs); err == nil {
				pins = append(pins, pin)
			}
		case 12:
			begin := rng.IntN(pieces)
			mustNil(t, mt.SetLookbehindRange(begin, begin+rng.IntN(min(8, pieces-begin+1))))
		case 13:
			mustNil(t, mt.SetLookbehind([]int{i, (i + 5) % pieces, (i + 9) % pieces}))
		case 14:
			mt.ClearLookbehind()
		case 15:
			c.evictOne()
		}
		for _, mt := range mts {
			checkIndex(t, mt)
		}
	}
	for _, hp := range hashed {
		hp.unpin()
	}
}

// TestEvictionExaminesLogPieces counts the heap entries and set words that
// eviction looks at (evictIndex.examined) while writes evict least recently
// used complete pieces, with 64 and then 4096 pieces resident: 64 times the
// pieces may cost no more than about twice the work (O(log n)); the scan
// this replaced looked at every resident piece, 64 times the work.
func TestEvictionExaminesLogPieces(t *testing.T) {
	const pl = 4 << 10
	perEviction := func(resident int) float64 {
		c := newTestClient(t, Options{Capacity: int64(resident) * pl, BlockSize: pl, NoLookbehind: true})
		n := 2 * resident
		tt, info := openTest(t, c, 1, pl, n)
		mt, _ := c.Torrent(ihOf(1))
		buf := make([]byte, pl)
		write := func(i int) {
			p := tt.Piece(info.Piece(i % n))
			mustNil2(p.WriteAt(buf, 0))
			mustNil(t, p.MarkComplete())
		}
		for i := range resident {
			write(i) // fill: nothing evicted yet
		}
		mt.mu.Lock()
		ex0 := mt.ev.examined
		mt.mu.Unlock()
		ev0 := c.Stats().Evictions
		for i := resident; i < resident+2*n; i++ {
			write(i) // each write evicts one piece
		}
		mt.mu.Lock()
		ex := mt.ev.examined - ex0
		mt.mu.Unlock()
		evictions := c.Stats().Evictions - ev0
		if evictions != int64(2*n) {
			t.Fatalf("%d resident: %d evictions; want %d", resident, evictions, 2*n)
		}
		return float64(ex) / float64(evictions)
	}
	small, large := perEviction(64), perEviction(64*64)
	t.Logf("entries examined per eviction: %.1f with 64 pieces resident, %.1f with 4096", small, large)
	if large > 2.5*small {
		t.Errorf("examined per eviction grew from %.1f to %.1f (%.1fx) as resident pieces grew 64x; want at most 2.5x (O(log n))", small, large, large/small)
	}
	if bound := 4*math.Log2(4096) + 8; large > bound {
		t.Errorf("examined per eviction with 4096 pieces resident: %.1f; want at most %.0f", large, bound)
	}
}
