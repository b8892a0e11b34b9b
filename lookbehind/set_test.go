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

// checkMembers fails t unless s holds exactly want, and Count and Contains
// agree with it.
func checkMembers(t *testing.T, s *Set, want []int) {
	t.Helper()
	if got := members(s); !slices.Equal(got, want) {
		t.Fatalf("members: got %v; want %v", got, want)
	}
	if got := s.Count(); got != len(want) {
		t.Errorf("Count: got %d; want %d", got, len(want))
	}
	for i := -1; i <= s.n; i++ {
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
	checkMembers(t, mustNew(t, 70), []int{})
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
		{"clear", []step{
			{"add", func(s *Set) error { return s.ReplaceRange(0, 3) }, seq(0, 3)},
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
// names it, and leaves the set unchanged.
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustNew(t, n)
			if err := s.ReplaceRange(2, 6); err != nil {
				t.Fatal(err)
			}
			err := tt.do(s)
			if err == nil {
				t.Fatalf("got nil error; want one naming %s", tt.named)
			}
			if !strings.Contains(err.Error(), tt.named) || !strings.HasPrefix(err.Error(), "lookbehind: ") {
				t.Errorf("got error %q; want it to start with \"lookbehind: \" and name %s", err, tt.named)
			}
			checkMembers(t, s, seq(2, 6))
		})
	}
}

// TestReadsDoNotAllocate checks the promise that the read side, and writes
// that change nothing, allocate nothing.
func TestReadsDoNotAllocate(t *testing.T) {
	s := mustNew(t, 1000)
	if err := s.ReplaceRange(100, 300); err != nil {
		t.Fatal(err)
	}
	buf := make([]int, 0, 1000)
	empty := mustNew(t, 10)
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
		{"AppendTo with room", func() { sink += len(s.AppendTo(buf[:0])) }},
		{"ReplaceRange unchanged", func() { _ = s.ReplaceRange(100, 300) }},
		{"Clear empty", empty.Clear},
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
// publish an empty set or a run of width pieces.
func TestConcurrent(t *testing.T) {
	const (
		n          = 1000
		width      = 70
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
				switch g % 6 {
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
				case 4: // point reads and the count
					c := 0
					for i := k; i < k+width; i++ {
						if s.Contains(i) {
							c++
						}
					}
					if c > width {
						report("Contains: %d of %d pieces protected", c, width)
					}
					if c := s.Count(); c != 0 && c != width {
						report("Count: got %d; want 0 or %d", c, width)
					}
				case 5: // iteration
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
	if got := s.Count(); got != len(members(s)) {
		t.Errorf("final Count: got %d; want %d", got, len(members(s)))
	}
}
