package reliability

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/memtorrent/memtorrent/internal/bound"
	"github.com/memtorrent/memtorrent/internal/testutil"
	"github.com/memtorrent/memtorrent/storage/memory"
	"github.com/memtorrent/memtorrent/stream"
)

// startBoundSampler samples mem's Resident and Capacity every
// millisecond until its Stop (bound.Sampler).
func startBoundSampler(mem *memory.Client) *bound.Sampler {
	return bound.Start(func() (int64, int64) {
		st := mem.Stats()
		return st.Resident, st.Capacity
	}, time.Millisecond)
}

// TestShrinkWhileStreaming cuts the storage's capacity to a quarter while
// a player fetches a file in consecutive 512 KiB Range requests (the way
// players do). Resident <= Capacity must hold in every sample, the
// SetCapacity call must succeed, and the stream must go on with the exact
// bytes under the smaller capacity.
func TestShrinkWhileStreaming(t *testing.T) {
	const capacity = 4 * mib
	spec := testutil.Spec{Name: "movie.mkv", PieceLength: pieceLength, Length: 12*mib + 4321, Seed: 105}
	want := testutil.Content(spec)
	e := newEnv(t, capacity, stream.Options{})
	s := newSeeder(t, spec, nil)
	tor := e.add(s.mi, s.addr())

	sampler := startBoundSampler(e.mem)
	const chunk = 512 * kib
	shrunk := false
	var maxAfter int64
	for off := int64(0); off < int64(len(want)); off += chunk {
		end := min(off+chunk, int64(len(want)))
		if !shrunk && off >= 3*mib {
			if err := e.mem.SetCapacity(capacity / 4); err != nil {
				t.Fatalf("SetCapacity(%d) while streaming: %v", capacity/4, err)
			}
			shrunk = true
		}
		body, err := e.fetch(t.Context(), e.url(tor, 0), fmt.Sprintf("bytes=%d-%d", off, end-1), http.StatusPartialContent)
		if err != nil {
			t.Fatalf("after %d bytes: %v", off, err)
		}
		equal(t, fmt.Sprintf("bytes %d-%d", off, end-1), body, want[off:end])
		if shrunk {
			maxAfter = max(maxAfter, e.mem.Stats().Resident)
		}
	}
	bs := sampler.Stop()
	bs.Check(t)
	st := e.mem.Stats()
	if st.Capacity != capacity/4 {
		t.Errorf("Capacity %d after the shrink; want %d", st.Capacity, capacity/4)
	}
	if maxAfter > capacity/4 {
		t.Errorf("Resident %d after the shrink; want at most %d", maxAfter, capacity/4)
	}
	t.Logf("%d samples, max Resident %d; evictions %d (%d bytes), write waits %d",
		bs.Samples, bs.MaxResident, st.Evictions, st.EvictedBytes, st.WriteWaits)
}
