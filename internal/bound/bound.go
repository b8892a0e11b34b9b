// Package bound samples a storage's resident bytes and capacity from a
// goroutine of its own, for tests that check that Resident never exceeds
// Capacity while they load the storage.
package bound

import (
	"sync"
	"testing"
	"time"
)

// Sampler calls a stats function until Stop, back to back or at an
// interval, and records what the samples showed. It is safe for concurrent
// use.
type Sampler struct {
	stop chan struct{} // closed by Stop
	done chan struct{} // closed when the goroutine returns

	once   sync.Once
	result Result // written by the goroutine until done closes
}

// Result is what a Sampler saw.
type Result struct {
	Samples     int64 // samples taken
	Violations  int64 // samples with resident > capacity
	MaxResident int64 // the largest resident seen
	// Worst is the largest resident - capacity seen (negative while the
	// bound held by a margin).
	Worst int64
	// FirstResident and FirstCapacity are those of the first violation.
	FirstResident, FirstCapacity int64
}

// Start starts sampling stats, which returns the resident bytes and the
// capacity, every interval (0: back to back) until Stop.
func Start(stats func() (resident, capacity int64), interval time.Duration) *Sampler {
	s := &Sampler{stop: make(chan struct{}), done: make(chan struct{})}
	go s.run(stats, interval)
	return s
}

func (s *Sampler) run(stats func() (resident, capacity int64), interval time.Duration) {
	defer close(s.done)
	r := &s.result
	r.Worst = -1 << 62
	var tick <-chan time.Time
	if interval > 0 {
		t := time.NewTicker(interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		res, capacity := stats()
		r.Samples++
		r.MaxResident = max(r.MaxResident, res)
		r.Worst = max(r.Worst, res-capacity)
		if res > capacity {
			if r.Violations == 0 {
				r.FirstResident, r.FirstCapacity = res, capacity
			}
			r.Violations++
		}
		if tick == nil {
			select {
			case <-s.stop:
				return
			default:
			}
			continue
		}
		select {
		case <-s.stop:
			return
		case <-tick:
		}
	}
}

// Stop ends the sampling, waits for the goroutine and returns what it saw.
// It is idempotent.
func (s *Sampler) Stop() Result {
	s.once.Do(func() { close(s.stop) })
	<-s.done
	return s.result
}

// Check fails tb if a sample broke the bound or none was taken.
func (r Result) Check(tb testing.TB) {
	tb.Helper()
	if r.Violations > 0 {
		tb.Errorf("%d of %d samples had Resident > Capacity; first: Resident %d, Capacity %d",
			r.Violations, r.Samples, r.FirstResident, r.FirstCapacity)
	}
	if r.Samples == 0 {
		tb.Errorf("no samples of Resident and Capacity taken")
	}
}
