package memory

import "testing"

// TestIdleLookbehindBeforeActiveReadahead checks the memory side of the
// stream's sharing rule between sessions on different torrents: when the
// readahead of an active session needs room, the pieces of an idle
// session's lookbehind go first, even when they were used more recently,
// and no piece of the readahead goes while one of them is left. Two
// mechanisms hold it: the lookbehind's limit is the capacity less every
// readahead (a lookbehind over it ranks with the unprotected pieces), and
// within the limit the lookbehind class is evicted before the readahead
// class.
func TestIdleLookbehindBeforeActiveReadahead(t *testing.T) {
	const pl = 64 << 10
	c := newTestClient(t, Options{Capacity: 8 * pl, LookbehindShare: 1})
	idleT, idleInfo := openTest(t, c, 1, pl, 8)
	activeT, activeInfo := openTest(t, c, 2, pl, 16)
	idle, _ := c.Torrent(ihOf(1))
	active, _ := c.Torrent(ihOf(2))

	// The active session's readahead: 6 pieces, resident, the least
	// recently used of all.
	w := active.NewReadahead()
	t.Cleanup(w.Close)
	mustNil(t, w.Set(0, 6*pl))
	for i := range 6 {
		completePiece(t, activeT, activeInfo, 2, i)
		setLastUse(active, i, 0)
	}
	// The idle session's lookbehind: 2 pieces of the other torrent, used
	// last; with the readahead they fill the capacity.
	for i := range 2 {
		completePiece(t, idleT, idleInfo, 1, i)
	}
	mustNil(t, idle.SetLookbehind([]int{0, 1}))
	setLastUse(idle, 0, 1<<40)
	setLastUse(idle, 1, 1<<40)
	for i, s := range idle.AppendPieceStates(nil)[:2] {
		if want := PieceLookbehind | PieceResident | PieceComplete; s&want != want {
			t.Fatalf("idle piece %d: state %v; want resident, complete and in the lookbehind", i, s)
		}
	}

	// The active session's readahead grows to 8 pieces (its playhead ran
	// ahead, or the sessions' shares changed) and its next pieces arrive.
	mustNil(t, w.Set(0, 8*pl))
	evictions := c.Stats().Evictions
	for i := 6; i < 8; i++ {
		completePiece(t, activeT, activeInfo, 2, i)
		lb := residentSet(idle)
		ra := residentSet(active)
		if len(lb) != 7-i {
			t.Errorf("after readahead piece %d: idle lookbehind resident %v; want %d pieces left", i, lb, 7-i)
		}
		for j := 0; j <= i; j++ {
			if !ra[j] {
				t.Errorf("after readahead piece %d: readahead piece %d evicted (resident %v) with lookbehind %v left", i, j, ra, lb)
			}
		}
		st := c.Stats()
		if got := st.Evictions - evictions; got != int64(i-5) || st.EvictedPartial != 0 {
			t.Errorf("after readahead piece %d: %d evictions, %d of them partial; want %d, none partial", i, got, st.EvictedPartial, i-5)
		}
	}
}
