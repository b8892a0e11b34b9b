package memory

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"testing"
)

// statusKiB returns a field of /proc/self/status in KiB.
func statusKiB(tb testing.TB, field string) int64 {
	tb.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		tb.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		rest, ok := bytes.CutPrefix(sc.Bytes(), []byte(field+":"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			tb.Fatalf("/proc/self/status: %s: %q", field, rest)
		}
		n, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			tb.Fatalf("/proc/self/status: %s: %v", field, err)
		}
		return n
	}
	tb.Fatalf("/proc/self/status has no %s", field)
	return 0
}

// TestShrinkReturnsPages fills a cache, shrinks it to a sixth and checks
// that the process's anonymous RSS falls by most of the freed bytes: the
// evicted and trimmed blocks' pages go back to the OS at once, not when a
// collection runs. It reads RSS, not time, so load does not flake it.
func TestShrinkReturnsPages(t *testing.T) {
	const (
		mib    = 1 << 20
		before = 96 * mib
		after  = 16 * mib
	)
	c := newTestClient(t, Options{Capacity: before})
	tt, info := openTest(t, c, 1, mib, before/mib)
	chunk := bytes.Repeat([]byte{0xab}, 16<<10)
	for i := range info.NumPieces() {
		p := tt.Piece(info.Piece(i))
		for off := int64(0); off < mib; off += int64(len(chunk)) {
			if _, err := p.WriteAt(chunk, off); err != nil {
				t.Fatal(err)
			}
		}
	}
	s := c.Stats()
	if s.Mapped == 0 {
		t.Skip("no anonymous mmap: blocks are on the Go heap")
	}
	if s.Resident != before || s.Mapped < before {
		t.Fatalf("full: Resident %d, Mapped %d; want %d, >= %d", s.Resident, s.Mapped, before, before)
	}
	rss0 := statusKiB(t, "RssAnon") << 10
	if err := c.SetCapacity(after); err != nil {
		t.Fatal(err)
	}
	rss1 := statusKiB(t, "RssAnon") << 10
	s = c.Stats()
	t.Logf("RssAnon %d -> %d MiB; Mapped %d MiB; Resident+Pooled %d MiB",
		rss0>>20, rss1>>20, s.Mapped>>20, (s.Resident+s.Pooled)>>20)
	if s.Resident+s.Pooled > after {
		t.Errorf("after shrink: Resident %d + Pooled %d > %d", s.Resident, s.Pooled, after)
	}
	if s.Mapped > after+chunkTarget*4 {
		t.Errorf("after shrink: Mapped %d; want <= %d (emptied chunks unmapped)", s.Mapped, after+chunkTarget*4)
	}
	freed := int64(before - after)
	if fell := rss0 - rss1; fell < freed*3/4 {
		t.Errorf("RssAnon fell by %d MiB; want >= %d MiB (3/4 of the %d MiB freed)", fell>>20, freed*3/4>>20, freed>>20)
	}
}
