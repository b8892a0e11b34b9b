package memory

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"
	"go.uber.org/atomic"
)

// residentSet returns the pieces of tt that hold data.
func residentSet(tt *Torrent) map[int]bool {
	out := map[int]bool{}
	for i, s := range tt.AppendPieceStates(nil) {
		if s&PieceResident != 0 {
			out[i] = true
		}
	}
	return out
}

// TestEvictionClasses checks the order of every eviction class: each case
// fills a 4-piece cache with pieces of two classes (or two members of one
// class), writes one more piece, and checks which piece went.
func TestEvictionClasses(t *testing.T) {
	const pl = 64 << 10
	for _, tc := range []struct {
		name    string
		setup   func(t *testing.T, c *Client, mt *Torrent, fill func(i int, complete bool))
		evicted int
	}{
		{
			name: "unprotected complete before lookbehind",
			setup: func(t *testing.T, c *Client, mt *Torrent, fill func(int, bool)) {
				for i := range 4 {
					fill(i, true)
				}
				mustNil(t, mt.SetLookbehindRange(0, 1)) // 0 protected; 1 is the LRU unprotected
				setLastUse(mt, 0, 0)                    // oldest of all
			},
			evicted: 1,
		},
		{
			name: "lookbehind furthest behind first",
			setup: func(t *testing.T, c *Client, mt *Torrent, fill func(int, bool)) {
				for i := range 4 {
					fill(i, true)
				}
				mustNil(t, mt.SetLookbehind([]int{0, 1, 2, 3}))
				setLastUse(mt, 0, 1<<40) // most recently used, still first to go
			},
			evicted: 0,
		},
		{
			name: "lookbehind before partial",
			setup: func(t *testing.T, c *Client, mt *Torrent, fill func(int, bool)) {
				fill(0, false) // partial, oldest
				for i := 1; i < 4; i++ {
					fill(i, true)
				}
				mustNil(t, mt.SetLookbehind([]int{1, 2, 3}))
			},
			evicted: 1,
		},
		{
			name: "partial before pinned head",
			setup: func(t *testing.T, c *Client, mt *Torrent, fill func(int, bool)) {
				for i := range 4 {
					fill(i, i != 3)
				}
				pin, err := mt.Pin(0, pl) // piece 0, complete and oldest
				mustNil(t, err)
				t.Cleanup(pin.Release)
				w := mt.NewReadahead()
				t.Cleanup(w.Close)
				mustNil(t, w.Set(pl, 2*pl)) // 1..2
			},
			evicted: 3,
		},
		{
			name: "pinned before reader window",
			setup: func(t *testing.T, c *Client, mt *Torrent, fill func(int, bool)) {
				for i := range 4 {
					fill(i, true)
				}
				w := mt.NewReadahead()
				t.Cleanup(w.Close)
				mustNil(t, w.Set(0, 3*pl)) // 0..2 in the window
				pin, err := mt.Pin(3*pl, pl)
				mustNil(t, err)
				t.Cleanup(pin.Release)
			},
			evicted: 3,
		},
		{
			name: "reader window before written but unhashed",
			setup: func(t *testing.T, c *Client, mt *Torrent, fill func(int, bool)) {
				for i := range 4 {
					fill(i, i != 0)
				}
				writePiece(t, storageTorrent(mt), testInfo(pl, 8, 8*pl), 1, 0) // whole, not verified
				w := mt.NewReadahead()
				t.Cleanup(w.Close)
				mustNil(t, w.Set(pl, 3*pl)) // 1..3, 3 furthest ahead; 0 outside
			},
			evicted: 3,
		},
		{
			name: "window furthest ahead first",
			setup: func(t *testing.T, c *Client, mt *Torrent, fill func(int, bool)) {
				for i := range 4 {
					fill(i, true)
				}
				w := mt.NewReadahead()
				t.Cleanup(w.Close)
				mustNil(t, w.Set(0, 4*pl))
			},
			evicted: 3,
		},
		{
			name: "cleared window counts as unprotected",
			setup: func(t *testing.T, c *Client, mt *Torrent, fill func(int, bool)) {
				for i := range 4 {
					fill(i, true)
				}
				w := mt.NewReadahead()
				t.Cleanup(w.Close)
				mustNil(t, w.Set(pl, 3*pl)) // 1..3, 3 furthest ahead
				mustNil(t, w.Clear())
				setLastUse(mt, 2, 0) // the least recently used
			},
			evicted: 2,
		},
		{
			name: "lookbehind over its budget counts as unprotected",
			setup: func(t *testing.T, c *Client, mt *Torrent, fill func(int, bool)) {
				fill(0, false) // partial, oldest
				for i := 1; i < 4; i++ {
					fill(i, true)
				}
				mustNil(t, mt.SetLookbehind([]int{1, 2, 3}))
				// Furthest behind would pick 1; least recently used picks 2.
				setLastUse(mt, 1, 1<<40)
				// Shrink the lookbehind budget below what it holds: a window
				// over the other torrent's pieces takes the room.
				other := c.openForTest(t, 2, pl, 64)
				w := other.NewReadahead()
				t.Cleanup(w.Close)
				mustNil(t, w.Set(0, 64*pl))
			},
			evicted: 2,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestClient(t, Options{Capacity: 4 * pl, LookbehindShare: 1})
			tt, info := openTest(t, c, 1, pl, 8)
			mt, _ := c.Torrent(ihOf(1))
			fill := func(i int, complete bool) {
				if complete {
					completePiece(t, tt, info, 1, i)
				} else {
					mustNil2(tt.Piece(info.Piece(i)).WriteAt(make([]byte, 16<<10), 0))
				}
			}
			tc.setup(t, c, mt, fill)
			before := residentSet(mt)
			completePiece(t, tt, info, 1, 4)
			after := residentSet(mt)
			for i := range 4 {
				if before[i] && !after[i] && i != tc.evicted {
					t.Errorf("piece %d evicted; want piece %d", i, tc.evicted)
				}
			}
			if after[tc.evicted] {
				t.Errorf("piece %d still resident; want it evicted first (resident: %v)", tc.evicted, after)
			}
		})
	}
}

func (c *Client) openForTest(t *testing.T, k int, pl int64, n int) *Torrent {
	t.Helper()
	openTest(t, c, k, pl, n)
	mt, _ := c.Torrent(ihOf(k))
	return mt
}

func mustNil(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mustNil2(_ int, err error) {
	if err != nil {
		panic(err)
	}
}

func TestProtectBadInput(t *testing.T) {
	const pl = 64 << 10
	c := newTestClient(t, Options{Capacity: 4 * pl})
	openTest(t, c, 1, pl, 8)
	mt, _ := c.Torrent(ihOf(1))
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"lookbehind piece -1", mt.SetLookbehind([]int{-1})},
		{"lookbehind piece 8", mt.SetLookbehind([]int{1, 8})},
		{"lookbehind range reversed", mt.SetLookbehindRange(3, 2)},
		{"lookbehind range past end", mt.SetLookbehindRange(0, 9)},
		{"window negative", mt.NewReadahead().Set(-1, 10)},
		{"window past end", mt.NewReadahead().Set(8*pl-10, 11)},
		{"pin past end", func() error { _, err := mt.Pin(8*pl-10, 11); return err }()},
		{"pin empty", func() error { _, err := mt.Pin(0, 0); return err }()},
	} {
		if !errors.Is(tc.err, ErrOutOfRange) {
			t.Errorf("%s: got %v; want ErrOutOfRange", tc.name, tc.err)
		}
	}
	if got := mt.LookbehindStats().Protected; got != 0 {
		t.Errorf("protected after bad input: got %d; want 0 (unchanged)", got)
	}
	if _, err := mt.Pin(0, 2*pl); !errors.Is(err, ErrNoSpace) {
		t.Errorf("pin of half the capacity: got %v; want ErrNoSpace", err)
	}
}

func TestReportedCapacity(t *testing.T) {
	const pl = 64 << 10
	c := newTestClient(t, Options{Capacity: 16 * pl, LookbehindShare: 0.25})
	tt, info := openTest(t, c, 1, pl, 32)
	mt, _ := c.Torrent(ihOf(1))
	for i := range 8 {
		completePiece(t, tt, info, 1, i)
	}
	reported := func() int64 { n, _ := (*tt.Capacity)(); return n }
	if got := reported(); got != 16*pl {
		t.Errorf("reported with nothing held: got %d; want %d", got, 16*pl)
	}
	mustNil(t, mt.SetLookbehindRange(0, 8)) // trimmed to the budget: 4 pieces
	if got := mt.LookbehindStats().Protected; got != 4 {
		t.Errorf("protected after a range above budget: got %d; want 4", got)
	}
	if got := reported(); got != 12*pl {
		t.Errorf("reported with 4 lookbehind pieces held: got %d; want %d", got, 12*pl)
	}
	if s := c.Stats(); s.Reported != 12*pl || s.LookbehindLimit != 4*pl {
		t.Errorf("Stats: Reported %d, LookbehindLimit %d; want %d, %d", s.Reported, s.LookbehindLimit, 12*pl, 4*pl)
	}
	pin, err := mt.Pin(16*pl, 4*pl)
	mustNil(t, err)
	if got := reported(); got != 8*pl {
		t.Errorf("reported with lookbehind and a pin: got %d; want %d", got, 8*pl)
	}
	pin.Release()
	mt.ClearLookbehind()
	if got := reported(); got != 16*pl {
		t.Errorf("reported after release and clear: got %d; want %d", got, 16*pl)
	}
}

// TestLookbehindConcurrent runs 16 goroutines across several torrents
// setting, clearing and reading lookbehind sets and stats, and moving
// windows, while writers force evictions.
func TestLookbehindConcurrent(t *testing.T) {
	const (
		pl       = 64 << 10
		torrents = 4
		pieces   = 64
	)
	c := newTestClient(t, Options{Capacity: 32 * pl})
	s := startSampler(c)
	var mts []*Torrent
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var written atomic.Int64
	for k := range torrents {
		tt, info := openTest(t, c, k, pl, pieces)
		mt, _ := c.Torrent(ihOf(k))
		mts = append(mts, mt)
		wg.Add(1)
		go func() { // a writer: 4 torrents x 64 pieces into 32 pieces of memory
			defer wg.Done()
			for i := 0; ; i = (i + 1) % pieces {
				select {
				case <-stop:
					return
				default:
				}
				writePieceNoFatal(t, tt, info, k, i)
				tt.Piece(info.Piece(i)).MarkComplete()
				written.Inc()
			}
		}()
	}
	for g := range 16 {
		mt := mts[g%torrents]
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := mt.NewReadahead()
			defer w.Close()
			for iter := 0; ; iter++ {
				select {
				case <-stop:
					return
				default:
				}
				i := (iter*7 + g) % pieces
				var err error
				switch iter % 6 {
				case 0:
					err = mt.SetLookbehindRange(max(0, i-8), i)
				case 1:
					err = mt.SetLookbehind([]int{i, (i + 3) % pieces})
				case 2:
					mt.ClearLookbehind()
				case 3:
					mt.LookbehindAvailable(i)
				case 4:
					st := mt.LookbehindStats()
					if st.Resident > st.Protected {
						t.Errorf("lookbehind stats: %d resident > %d protected", st.Resident, st.Protected)
						return
					}
				case 5:
					err = w.Set(int64(i)*pl, int64(min(4, pieces-i))*pl)
					_ = c.Stats()
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	target := int64(2 * torrents * pieces) // two passes over every torrent
	spinUntil(t, "writers to force evictions", func() bool { return written.Load() >= target })
	close(stop)
	wg.Wait()
	checkSampler(t, s)
	if st := c.Stats(); st.Evictions == 0 {
		t.Errorf("Evictions: got 0; want > 0")
	}
}

// storageTorrent wraps mt's piece handles as the client would.
func storageTorrent(mt *Torrent) storage.Torrent {
	return storage.Torrent{TorrentImpl: storage.TorrentImpl{PieceWithHash: mt.pieceImpl}}
}

// TestReadaheadClear checks that Clear empties a readahead but keeps its
// playhead: a later Set further back counts the lookbehind pieces it covers
// as hits, and Clear after Close is ErrClosed.
func TestReadaheadClear(t *testing.T) {
	const pl = 64 << 10
	c := newTestClient(t, Options{Capacity: 8 * pl, LookbehindShare: 1})
	tt, info := openTest(t, c, 1, pl, 8)
	mt, _ := c.Torrent(ihOf(1))
	for i := range 4 {
		completePiece(t, tt, info, 1, i)
	}
	w := mt.NewReadahead()
	mustNil(t, w.Set(4*pl, 2*pl))
	mustNil(t, mt.SetLookbehindRange(0, 4))
	mustNil(t, w.Clear())
	if b, e := w.Pieces(); b != e {
		t.Errorf("after Clear: pieces [%d, %d); want empty", b, e)
	}
	if n := mt.Stats().ReadaheadBytes; n != 0 {
		t.Errorf("after Clear: %d readahead bytes; want 0", n)
	}
	mustNil(t, w.Set(2*pl, 2*pl)) // back over 2 and 3, both held
	if st := mt.LookbehindStats(); st.Hits != 2 || st.Misses != 0 {
		t.Errorf("backward Set after Clear: %d hits, %d misses; want 2, 0", st.Hits, st.Misses)
	}
	w.Close()
	if err := w.Clear(); !errors.Is(err, ErrClosed) {
		t.Errorf("Clear after Close: %v; want ErrClosed", err)
	}
}

// TestEvictedUnverifiedCounts checks Stats.EvictedPartial and
// EvictedUnhashed: pieces evicted before their hash, whose download is
// wasted.
func TestEvictedUnverifiedCounts(t *testing.T) {
	const pl = 64 << 10
	c := newTestClient(t, Options{Capacity: pl})
	tt, info := openTest(t, c, 1, pl, 8)
	mustNil2(tt.Piece(info.Piece(0)).WriteAt(make([]byte, 16<<10), 0)) // partial
	writePiece(t, tt, info, 1, 1)                                      // whole, not verified: evicts 0
	completePiece(t, tt, info, 1, 2)                                   // evicts 1
	completePiece(t, tt, info, 1, 3)                                   // evicts 2, complete
	st := c.Stats()
	if st.Evictions != 3 || st.EvictedPartial != 1 || st.EvictedUnhashed != 1 {
		t.Errorf("stats: %d evictions, %d partial, %d unhashed; want 3, 1, 1", st.Evictions, st.EvictedPartial, st.EvictedUnhashed)
	}
}

// TestEvictedPieceUnknownOutsideReadaheads checks the completion of a piece
// evicted while complete: unknown while its torrent has readaheads and none
// covers it, known incomplete (and handed to OnEvict again) once one does,
// or once the last readahead closes.
func TestEvictedPieceUnknownOutsideReadaheads(t *testing.T) {
	const pl = 64 << 10
	reports := make(chan []int, 16)
	c := newTestClient(t, Options{Capacity: 2 * pl, NoLookbehind: true, OnEvict: func(_ metainfo.Hash, pieces []int) {
		reports <- slices.Clone(pieces)
	}})
	tt, info := openTest(t, c, 1, pl, 6)
	mt, _ := c.Torrent(ihOf(1))
	next := func(want int) {
		t.Helper()
		select {
		case got := <-reports:
			if !slices.Equal(got, []int{want}) {
				t.Fatalf("OnEvict got %v; want [%d]", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("OnEvict not called for piece %d", want)
		}
	}
	completion := func(i int, want storage.Completion) {
		t.Helper()
		if got := tt.Piece(info.Piece(i)).Completion(); got != want {
			t.Errorf("Completion of piece %d: got %+v; want %+v", i, got, want)
		}
	}
	unknown, incomplete := storage.Completion{}, storage.Completion{Ok: true}

	w := mt.NewReadahead()
	mustNil(t, w.Set(2*pl, 2*pl)) // pieces 2 and 3
	completePiece(t, tt, info, 1, 0)
	completePiece(t, tt, info, 1, 1)
	completePiece(t, tt, info, 1, 2) // evicts 0, the least recently used
	next(0)
	completion(0, unknown)
	completion(0, unknown) // asking again changes nothing

	mustNil(t, w.Set(0, 2*pl)) // covers 0 again: the client must ask again
	next(0)
	completion(0, incomplete)
	mustNil(t, w.Set(2*pl, 2*pl)) // away again: unknown if asked, and told again when covered
	completion(0, unknown)
	mustNil(t, w.Set(0, pl))
	next(0)
	completion(0, incomplete)
	mustNil(t, w.Set(2*pl, 2*pl))

	completePiece(t, tt, info, 1, 3) // evicts 1 (2 and 3 stay, 3 the newest)
	next(1)
	completion(1, unknown)
	writePiece(t, tt, info, 1, 1) // held again, evicting 3 (furthest ahead): known
	next(3)
	completion(1, incomplete)
	completion(3, incomplete) // covered by the readahead

	mustNil(t, w.Set(4*pl, pl))
	mustNil(t, tt.Piece(info.Piece(1)).MarkComplete())
	completePiece(t, tt, info, 1, 4) // evicts 2, older than 1
	next(2)
	completion(2, unknown)

	w.Close() // no readahead left: every piece known again
	next(2)
	completion(2, incomplete)
	select {
	case got := <-reports:
		t.Errorf("OnEvict got %v after the last report; want nothing", got)
	default:
	}
}
