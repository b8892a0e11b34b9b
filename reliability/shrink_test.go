package reliability

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"go.uber.org/atomic"

	"github.com/memtorrent/memtorrent/internal/testutil"
	"github.com/memtorrent/memtorrent/storage/memory"
	"github.com/memtorrent/memtorrent/stream"
)

// boundSampler samples a memory.Client's Stats in a goroutine, every
// millisecond, until stopped, and counts the samples in which Resident
// exceeded Capacity.
type boundSampler struct {
	samples    atomic.Int64
	violations atomic.Int64
	maxRes     atomic.Int64

	mu    sync.Mutex // guards the field below
	first memory.Stats

	stop chan struct{}
	done chan struct{}
}

func startBoundSampler(mem *memory.Client) *boundSampler {
	s := &boundSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			st := mem.Stats()
			s.samples.Add(1)
			if st.Resident > st.Capacity {
				if s.violations.Add(1) == 1 {
					s.mu.Lock()
					s.first = st
					s.mu.Unlock()
				}
			}
			if st.Resident > s.maxRes.Load() {
				s.maxRes.Store(st.Resident)
			}
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// halt stops the sampler, waits for it and fails t if any sample broke the
// bound.
func (s *boundSampler) halt(t *testing.T) {
	t.Helper()
	close(s.stop)
	<-s.done
	if n := s.violations.Load(); n > 0 {
		s.mu.Lock()
		defer s.mu.Unlock()
		t.Errorf("%d of %d samples had Resident > Capacity; first: Resident %d, Capacity %d",
			n, s.samples.Load(), s.first.Resident, s.first.Capacity)
	}
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
	sampler.halt(t)
	st := e.mem.Stats()
	if st.Capacity != capacity/4 {
		t.Errorf("Capacity %d after the shrink; want %d", st.Capacity, capacity/4)
	}
	if maxAfter > capacity/4 {
		t.Errorf("Resident %d after the shrink; want at most %d", maxAfter, capacity/4)
	}
	t.Logf("%d samples, max Resident %d; evictions %d (%d bytes), write waits %d",
		sampler.samples.Load(), sampler.maxRes.Load(), st.Evictions, st.EvictedBytes, st.WriteWaits)
}
