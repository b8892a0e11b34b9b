package memory

import (
	"sync"
	"time"

	"go.uber.org/atomic"
)

// budget is the Client's byte budget and its pool of blocks.
//
// Invariant: used <= capacity at every instant. Growing publishes capacity
// before raising limit; shrinking lowers limit, evicts until used <= the new
// value, then publishes capacity. reserve admits against limit, so used never
// passes capacity.
type budget struct {
	blockSize int64 // never changes

	limit    atomic.Int64 // admission limit, bytes
	capacity atomic.Int64 // published capacity, bytes; see seq
	seq      atomic.Int64 // odd while capacity is being published
	used     atomic.Int64 // bytes reserved for blocks held by pieces
	pooled   atomic.Int64 // free blocks in the pool, for Stats

	// mu guards the fields below. It is held for a push or a pop, and for
	// the arena's system calls: a mapping every chunkTarget bytes of growth,
	// and one madvise per block released when the capacity shrinks.
	mu        sync.Mutex
	free      [][]byte
	allocated int64 // blocks taken from the arena and not released: in use + free
	dropped   bool  // after drop, put releases
	arena     arena
}

func (b *budget) init(blockSize, capacity int64) {
	b.blockSize = blockSize
	b.arena.init(blockSize, capacity)
	b.limit.Store(capacity)
	b.capacity.Store(capacity)
}

// reserve takes one block's bytes from the budget if they fit under the
// admission limit. It is the only way to obtain a buffer (see get).
func (b *budget) reserve() bool {
	for {
		u := b.used.Load()
		if u+b.blockSize > b.limit.Load() {
			return false
		}
		if b.used.CompareAndSwap(u, u+b.blockSize) {
			return true
		}
	}
}

// get returns a buffer for a reservation the caller holds: a pooled one,
// or a new one from the arena when the pool is empty. Blocks made never
// exceed capacity/blockSize, because each needs a reservation.
func (b *budget) get() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n := len(b.free); n > 0 {
		buf := b.free[n-1]
		b.free[n-1] = nil
		b.free = b.free[:n-1]
		b.pooled.Dec()
		return buf
	}
	b.allocated++
	return b.arena.alloc()
}

// put returns a buffer and its reservation. Buffers beyond what the current
// limit allows go back to the arena, which returns their pages to the OS,
// so the pool shrinks with the capacity. The caller must not use buf after
// put.
func (b *budget) put(buf []byte) {
	b.mu.Lock()
	if !b.dropped && b.allocated*b.blockSize <= b.limit.Load() {
		b.free = append(b.free, buf)
		b.pooled.Inc()
	} else {
		b.allocated--
		b.arena.release(buf)
	}
	b.mu.Unlock()
	b.used.Sub(b.blockSize)
}

// trim releases pooled blocks above the current limit to the arena.
func (b *budget) trim() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for len(b.free) > 0 && b.allocated*b.blockSize > b.limit.Load() {
		buf := b.free[len(b.free)-1]
		b.free[len(b.free)-1] = nil
		b.free = b.free[:len(b.free)-1]
		b.allocated--
		b.pooled.Dec()
		b.arena.release(buf)
	}
}

// drop empties the pool for good (Client.Close): the arena unmaps every
// chunk no piece holds a block of, and the rest as their blocks come back.
func (b *budget) drop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.arena.close()
	for i, buf := range b.free {
		b.arena.release(buf)
		b.free[i] = nil
	}
	b.allocated -= int64(len(b.free))
	b.pooled.Sub(int64(len(b.free)))
	b.free = nil
	b.dropped = true
}

// publish sets the published capacity. Callers serialise (Client.capMu).
func (b *budget) publish(n int64) {
	b.seq.Inc()
	b.capacity.Store(n)
	b.seq.Inc()
}

// snapshot returns the capacity and used bytes as of one instant in which
// no capacity change was in progress, so used <= capacity.
func (b *budget) snapshot() (capacity, used int64) {
	for {
		s := b.seq.Load()
		if s&1 == 0 {
			capacity = b.capacity.Load()
			used = b.used.Load()
			if b.seq.Load() == s {
				return capacity, used
			}
		}
	}
}

// spaceSignal wakes writers waiting for space when a pin or a write ends or
// a piece is freed. Waiters take the current channel before looking for a
// victim, so a release after their look closes the channel they wait on.
type spaceSignal struct {
	waiters atomic.Int32 // goroutines between wait() and the end of their wait

	mu sync.Mutex // guards ch
	ch chan struct{}
}

func (s *spaceSignal) init() { s.ch = make(chan struct{}) }

// wait registers a waiter and returns the channel to wait on; the waiter
// calls done when it stops waiting.
func (s *spaceSignal) wait() <-chan struct{} {
	s.waiters.Inc()
	s.mu.Lock()
	ch := s.ch
	s.mu.Unlock()
	return ch
}

func (s *spaceSignal) done() { s.waiters.Dec() }

// broadcast wakes every waiter. It costs an atomic load when nobody waits.
func (s *spaceSignal) broadcast() {
	if s.waiters.Load() == 0 {
		return
	}
	s.mu.Lock()
	close(s.ch)
	s.ch = make(chan struct{})
	s.mu.Unlock()
}

// sleepUntil waits on ch until deadline; it reports false on timeout.
func sleepUntil(ch <-chan struct{}, deadline time.Time) bool {
	d := time.Until(deadline)
	if d <= 0 {
		return false
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ch:
		return true
	case <-timer.C:
		return false
	}
}
