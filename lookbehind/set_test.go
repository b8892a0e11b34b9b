package lookbehind

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
)

func mustNew(t testing.TB, n int) *Set {
	t.Helper()
	s, err := New(n)
	if err != nil {
		t.Fatalf("New(%d): got error %v; want nil", n, err)
	}
	return s
}

// members returns the protected pieces of s, never nil.
func members(s *Set) []int { return s.AppendTo([]int{}) }

// checkMembers fails t unless s holds exactly want, and Count, Contains and
// All agree with it.
func checkMembers(t *testing.T, s *Set, want []int) {
	t.Helper()
	if got := members(s); !slices.Equal(got, want) {
		t.Fatalf("members: got %v; want %v", got, want)
	}
	if got := s.Count(); got != len(want) {
		t.Errorf("Count: got %d; want %d", got, len(want))
	}
	if got := slices.Collect(s.All()); !slices.Equal(got, want) {
		t.Errorf("All: got %v; want %v", got, want)
	}
	for i := -1; i <= s.NumPieces(); i++ {
		if got, want := s.Contains(i), slices.Contains(want, i); got != want {
			t.Errorf("Contains(%d): got %v; want %v", i, got, want)
		}
	}
}

func seq(begin, end int) []int {
	r := []int{}
	for i := begin; i < end; i++ {
		r = append(r, i)
	}
	return r
}

func TestNew(t *testing.T) {
	for _, n := range []int{-1, 0} {
		s, err := New(n)
		if err == nil || s != nil {
			t.Errorf("New(%d): got (%v, %v); want (nil, error)", n, s, err)
		} else if !strings.Contains(err.Error(), fmt.Sprint(n)) {
			t.Errorf("New(%d): got error %q; want it to name %d", n, err, n)
		}
	}
	s := mustNew(t, 70)
	if got := s.NumPieces(); got != 70 {
		t.Errorf("NumPieces: got %d; want 70", got)
	}
	checkMembers(t, s, []int{})
	if got, want := s.Stats(), (Stats{}); got != want {
		t.Errorf("Stats: got %+v; want %+v", got, want)
	}
}

// TestWrites applies a sequence of writes to a set of 130 pieces (three
// words, the last partial) and checks the members after each.
func TestWrites(t *testing.T) {
	const n = 130
	type step struct {
		name string
		do   func(*Set) error
		want []int
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"replace list", []step{
			{"list", func(s *Set) error { return s.Replace([]int{5, 0, 129, 5, 64}) }, []int{0, 5, 64, 129}},
			{"empty list", func(s *Set) error { return s.Replace(nil) }, []int{}},
		}},
		{"replace range", []step{
			{"[60,70)", func(s *Set) error { return s.ReplaceRange(60, 70) }, seq(60, 70)},
			{"same again", func(s *Set) error { return s.ReplaceRange(60, 70) }, seq(60, 70)},
			{"[0,130)", func(s *Set) error { return s.ReplaceRange(0, n) }, seq(0, n)},
			{"[3,3)", func(s *Set) error { return s.ReplaceRange(3, 3) }, []int{}},
			{"[130,130)", func(s *Set) error { return s.ReplaceRange(n, n) }, []int{}},
		}},
		{"add and remove", []step{
			{"add [10,20)", func(s *Set) error { return s.AddRange(10, 20) }, seq(10, 20)},
			{"add [15,70)", func(s *Set) error { return s.AddRange(15, 70) }, seq(10, 70)},
			{"add inside", func(s *Set) error { return s.AddRange(30, 40) }, seq(10, 70)},
			{"remove [12,64)", func(s *Set) error { return s.RemoveRange(12, 64) }, append(seq(10, 12), seq(64, 70)...)},
			{"remove [65,66)", func(s *Set) error { return s.RemoveRange(65, 66) }, []int{10, 11, 64, 66, 67, 68, 69}},
			{"remove absent", func(s *Set) error { return s.RemoveRange(100, 130) }, []int{10, 11, 64, 66, 67, 68, 69}},
			{"add [128,130)", func(s *Set) error { return s.AddRange(128, n) }, []int{10, 11, 64, 66, 67, 68, 69, 128, 129}},
			{"remove [0,130)", func(s *Set) error { return s.RemoveRange(0, n) }, []int{}},
			{"add empty", func(s *Set) error { return s.AddRange(7, 7) }, []int{}},
		}},
		{"remove within one word", []step{
			{"add [0,130)", func(s *Set) error { return s.AddRange(0, n) }, seq(0, n)},
			{"remove [1,63)", func(s *Set) error { return s.RemoveRange(1, 63) }, append([]int{0}, seq(63, n)...)},
			{"remove [63,128)", func(s *Set) error { return s.RemoveRange(63, 128) }, []int{0, 128, 129}},
		}},
		{"clear", []step{
			{"add", func(s *Set) error { return s.AddRange(0, 3) }, seq(0, 3)},
			{"clear", func(s *Set) error { s.Clear(); return nil }, []int{}},
			{"clear empty", func(s *Set) error { s.Clear(); return nil }, []int{}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustNew(t, n)
			for _, st := range tt.steps {
				if err := st.do(s); err != nil {
					t.Fatalf("%s: got error %v; want nil", st.name, err)
				}
				checkMembers(t, s, st.want)
			}
		})
	}
}

// TestBadInput checks that every bad argument is refused with an error that
// names it, and leaves the set and its figures unchanged.
func TestBadInput(t *testing.T) {
	const n = 10
	tests := []struct {
		name  string
		do    func(*Set) error
		named string // the value the error must name
	}{
		{"Replace negative", func(s *Set) error { return s.Replace([]int{1, -3}) }, "-3"},
		{"Replace too big", func(s *Set) error { return s.Replace([]int{1, 10}) }, "10"},
		{"ReplaceRange negative", func(s *Set) error { return s.ReplaceRange(-2, 4) }, "-2"},
		{"ReplaceRange reversed", func(s *Set) error { return s.ReplaceRange(6, 5) }, "6 > end 5"},
		{"ReplaceRange past end", func(s *Set) error { return s.ReplaceRange(0, 11) }, "11"},
		{"AddRange negative", func(s *Set) error { return s.AddRange(-1, 0) }, "-1"},
		{"AddRange reversed", func(s *Set) error { return s.AddRange(9, 8) }, "9 > end 8"},
		{"AddRange past end", func(s *Set) error { return s.AddRange(9, 12) }, "12"},
		{"RemoveRange negative", func(s *Set) error { return s.RemoveRange(-7, 1) }, "-7"},
		{"RemoveRange reversed", func(s *Set) error { return s.RemoveRange(3, 2) }, "3 > end 2"},
		{"RemoveRange past end", func(s *Set) error { return s.RemoveRange(2, 13) }, "13"},
		{"MarkResident negative", func(s *Set) error { return s.MarkResident(-4, 1) }, "-4"},
		{"MarkResident too big", func(s *Set) error { return s.MarkResident(10, 1) }, "10"},
		{"MarkResident negative bytes", func(s *Set) error { return s.MarkResident(3, -5) }, "-5"},
		{"MarkEvicted negative", func(s *Set) error { return s.MarkEvicted(-6) }, "-6"},
		{"MarkEvicted too big", func(s *Set) error { return s.MarkEvicted(14) }, "14"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustNew(t, n)
			if err := s.ReplaceRange(2, 6); err != nil {
				t.Fatal(err)
			}
			if err := s.MarkResident(3, 100); err != nil {
				t.Fatal(err)
			}
			before := s.Stats()
			err := tt.do(s)
			if err == nil {
				t.Fatalf("got nil error; want one naming %s", tt.named)
			}
			if !strings.Contains(err.Error(), tt.named) || !strings.HasPrefix(err.Error(), "lookbehind: ") {
				t.Errorf("got error %q; want it to start with \"lookbehind: \" and name %s", err, tt.named)
			}
			checkMembers(t, s, seq(2, 6))
			if got := s.Stats(); got != before {
				t.Errorf("Stats after error: got %+v; want %+v", got, before)
			}
		})
	}
}

// TestStats follows residency and counters through set changes.
func TestStats(t *testing.T) {
	s := mustNew(t, 100)
	check := func(step string, want Stats) {
		t.Helper()
		if got := s.Stats(); got != want {
			t.Errorf("%s: got %+v; want %+v", step, got, want)
		}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("got error %v; want nil", err)
		}
	}
	must(s.MarkResident(5, 1000))
	must(s.MarkResident(70, 700))
	check("resident, nothing protected", Stats{})

	must(s.ReplaceRange(0, 10))
	check("protect [0,10)", Stats{Protected: 10, Resident: 1, ResidentBytes: 1000})

	must(s.MarkResident(6, 600))
	check("6 resident", Stats{Protected: 10, Resident: 2, ResidentBytes: 1600})

	must(s.MarkResident(6, 650))
	check("6 grows", Stats{Protected: 10, Resident: 2, ResidentBytes: 1650})

	must(s.MarkResident(50, 1))
	check("unprotected 50 resident", Stats{Protected: 10, Resident: 2, ResidentBytes: 1650})

	must(s.AddRange(60, 80))
	check("add [60,80)", Stats{Protected: 30, Resident: 3, ResidentBytes: 2350})

	must(s.MarkEvicted(5))
	must(s.MarkEvicted(5))
	check("5 evicted twice", Stats{Protected: 30, Resident: 2, ResidentBytes: 1350})

	must(s.RemoveRange(0, 10))
	check("remove [0,10)", Stats{Protected: 20, Resident: 1, ResidentBytes: 700})

	s.RecordHit()
	s.RecordHit()
	s.RecordMiss()
	check("counters", Stats{Protected: 20, Resident: 1, ResidentBytes: 700, Hits: 2, Misses: 1})

	must(s.Replace([]int{50, 6, 99}))
	check("replace list", Stats{Protected: 3, Resident: 2, ResidentBytes: 651, Hits: 2, Misses: 1})

	s.Clear()
	check("clear", Stats{Hits: 2, Misses: 1})
}

// TestAllStopsEarly checks that breaking out of All stops the iteration.
func TestAllStopsEarly(t *testing.T) {
	s := mustNew(t, 200)
	if err := s.ReplaceRange(10, 200); err != nil {
		t.Fatal(err)
	}
	var got []int
	for i := range s.All() {
		got = append(got, i)
		if len(got) == 3 {
			break
		}
	}
	if want := []int{10, 11, 12}; !slices.Equal(got, want) {
		t.Errorf("got %v; want %v", got, want)
	}
}

// TestAllIsOneSnapshot checks that All keeps iterating the members it
// started with while the set changes.
func TestAllIsOneSnapshot(t *testing.T) {
	s := mustNew(t, 10)
	if err := s.ReplaceRange(0, 5); err != nil {
		t.Fatal(err)
	}
	var got []int
	for i := range s.All() {
		got = append(got, i)
		if err := s.ReplaceRange(5, 10); err != nil {
			t.Fatal(err)
		}
	}
	if want := seq(0, 5); !slices.Equal(got, want) {
		t.Errorf("got %v; want %v", got, want)
	}
}

// TestReadsDoNotAllocate checks the promise that the read side, and writes
// that change nothing, allocate nothing.
func TestReadsDoNotAllocate(t *testing.T) {
	s := mustNew(t, 1000)
	if err := s.ReplaceRange(100, 300); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkResident(150, 1<<20); err != nil {
		t.Fatal(err)
	}
	buf := make([]int, 0, 1000)
	var sink int
	tests := []struct {
		name string
		f    func()
	}{
		{"Contains", func() {
			if s.Contains(150) && !s.Contains(-1) && !s.Contains(5000) {
				sink++
			}
		}},
		{"Count", func() { sink += s.Count() }},

		{"Stats", func() { sink += s.Stats().Resident }},
		{"RecordHit", s.RecordHit},
		{"RecordMiss", s.RecordMiss},
		{"AppendTo with room", func() { sink += len(s.AppendTo(buf[:0])) }},
		{"ReplaceRange unchanged", func() { _ = s.ReplaceRange(100, 300) }},
		{"AddRange unchanged", func() { _ = s.AddRange(120, 130) }},
		{"RemoveRange unchanged", func() { _ = s.RemoveRange(400, 500) }},
		{"MarkResident unchanged", func() { _ = s.MarkResident(150, 1<<20) }},
		{"MarkResident unprotected", func() { _ = s.MarkResident(900, 1) }},
		{"MarkEvicted not resident", func() { _ = s.MarkEvicted(901) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := testing.AllocsPerRun(100, tt.f); got != 0 {
				t.Errorf("got %v allocs/op; want 0", got)
			}
		})
	}
	_ = sink
}

// TestConcurrent runs 16 goroutines that write and read one Set at once, and
// checks that every reader sees whole snapshots: the writers only ever
// publish an empty set or a run of width pieces, and every resident piece
// holds pieceBytes bytes.
func TestConcurrent(t *testing.T) {
	const (
		n          = 1000
		width      = 70
		pieceBytes = 4096
		goroutines = 16
		rounds     = 500
	)
	s := mustNew(t, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	report := func(format string, args ...any) {
		select {
		case errs <- fmt.Errorf(format, args...):
		default:
		}
	}
	for g := range goroutines {
		wg.Go(func() {
			<-start
			for r := range rounds {
				k := (g*rounds + r) % (n - width)
				switch g % 8 {
				case 0, 1: // replace with a run
					if err := s.ReplaceRange(k, k+width); err != nil {
						report("ReplaceRange: %v", err)
					}
				case 2: // replace with a list
					if err := s.Replace(seq(k, k+width)); err != nil {
						report("Replace: %v", err)
					}
				case 3: // clear
					s.Clear()
				case 4: // residency
					if err := s.MarkResident(k, pieceBytes); err != nil {
						report("MarkResident: %v", err)
					}
					if err := s.MarkEvicted((k + 7*width) % n); err != nil {
						report("MarkEvicted: %v", err)
					}
				case 5: // point reads
					c := 0
					for i := k; i < k+width; i++ {
						if s.Contains(i) {
							c++
						}
					}
					if c > width {
						report("Contains: %d of %d pieces protected", c, width)
					}
					s.RecordHit()
				case 6: // stats
					st := s.Stats()
					if st.Protected != 0 && st.Protected != width {
						report("Stats: got Protected %d; want 0 or %d", st.Protected, width)
					}
					if st.Resident > st.Protected || st.ResidentBytes != int64(st.Resident)*pieceBytes {
						report("Stats: got %+v; want Resident <= Protected and ResidentBytes = Resident*%d", st, pieceBytes)
					}
					if c := s.Count(); c != 0 && c != width {
						report("Count: got %d; want 0 or %d", c, width)
					}
					s.RecordMiss()
				case 7: // iteration
					got := members(s)
					if len(got) != 0 && (len(got) != width || got[width-1]-got[0] != width-1) {
						report("members: got %v; want none or a run of %d", got, width)
					}
				}
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st := s.Stats()
	if want := int64(goroutines / 8 * rounds); st.Hits != want || st.Misses != want {
		t.Errorf("counters: got %d hits, %d misses; want %d of each", st.Hits, st.Misses, want)
	}
	// The figures kept up incrementally must match a count from scratch.
	want := Stats{Protected: s.Count(), Hits: st.Hits, Misses: st.Misses}
	for i := range s.All() {
		if s.resident.Test(uint(i)) {
			want.Resident++
			want.ResidentBytes += s.bytes[i]
		}
	}
	if st != want {
		t.Errorf("final Stats: got %+v; want %+v", st, want)
	}
}
