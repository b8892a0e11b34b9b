package memory_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/anacrolix/torrent"

	"github.com/memtorrent/memtorrent/internal/testutil"
	"github.com/memtorrent/memtorrent/lookbehind"
	"github.com/memtorrent/memtorrent/storage/memory"
)

// newMemLeecher returns a memory storage of the given capacity bound to a
// fresh loopback leecher, both closed at cleanup (storage last).
func newMemLeecher(t *testing.T, opts memory.Options) (*memory.Client, *torrent.Client) {
	t.Helper()
	hc := testutil.NewMemLeecher(t, opts)
	return hc.Storage, hc.Torrent
}

// boundWatch samples Stats from a goroutine until stopped, and reports the
// worst Resident - Capacity seen.
func boundWatch(t *testing.T, mem *memory.Client) (stop func()) {
	t.Helper()
	quit, done := make(chan struct{}), make(chan struct{})
	var worst int64 = -1 << 62
	var samples int
	go func() {
		defer close(done)
		tick := time.NewTicker(100 * time.Microsecond)
		defer tick.Stop()
		for {
			select {
			case <-quit:
				return
			case <-tick.C:
			}
			s := mem.Stats()
			worst = max(worst, s.Resident-s.Capacity)
			samples++
		}
	}()
	return func() {
		close(quit)
		<-done
		if worst > 0 {
			t.Errorf("Resident exceeded Capacity by %d bytes in %d samples", worst, samples)
		}
	}
}

// TestSmallCacheTransfer reads a whole torrent through a leecher whose
// memory holds two pieces, in the manner of the library's
// TestClientTransferSmallCache* tests, with several readahead settings.
func TestSmallCacheTransfer(t *testing.T) {
	spec := testutil.Spec{Name: "small-cache", PieceLength: 256 << 10, Length: 4<<20 + 12345, Seed: 7}
	seeder := testutil.NewSeeder(t, spec)
	want := testutil.Content(spec)
	for _, tc := range []struct {
		name      string
		readahead int64 // < 0: the reader's default
	}{
		{"default readahead", -1},
		{"no readahead", 0},
		{"piece-sized readahead", 256 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem, cl := newMemLeecher(t, memory.Options{Capacity: 2 * spec.PieceLength})
			stop := boundWatch(t, mem)
			tt := testutil.AddTorrent(t, cl, seeder.MetaInfo, seeder)
			r := tt.NewReader()
			defer r.Close()
			if tc.readahead >= 0 {
				r.SetReadahead(tc.readahead)
			}
			got := testutil.ReadAll(t, 2*time.Minute, r)
			stop()
			testutil.Equal(t, got, want)
			if s := mem.Stats(); s.Evictions == 0 {
				t.Errorf("Evictions: got 0; want > 0 with a two-piece cache")
			}
		})
	}
}

// TestSwarmStreamEighthCapacity streams a 64 MiB torrent through a
// leecher whose memory holds an eighth of it, and checks every byte and
// the bound.
func TestSwarmStreamEighthCapacity(t *testing.T) {
	spec := testutil.Spec{Name: "eighth", PieceLength: 256 << 10, Length: 64 << 20, Seed: 8}
	seeder := testutil.NewSeeder(t, spec)
	mem, cl := newMemLeecher(t, memory.Options{Capacity: 8 << 20})
	stop := boundWatch(t, mem)
	tt := testutil.AddTorrent(t, cl, seeder.MetaInfo, seeder)
	r := tt.NewReader()
	defer r.Close()
	r.SetReadahead(2 << 20)
	got := testutil.ReadAll(t, 3*time.Minute, r)
	stop()
	testutil.Equal(t, got, testutil.Content(spec))
	s := mem.Stats()
	if s.Evictions == 0 || s.Notified == 0 {
		t.Errorf("Evictions %d, Notified %d; want both > 0", s.Evictions, s.Notified)
	}
	t.Logf("stats: %+v", s)
}

// session plays the part of a stream session: it reads through a torrent
// reader and keeps the storage's reader window and lookbehind in step with
// the playhead.
type session struct {
	t         *testing.T
	r         torrent.Reader
	mt        *memory.Torrent
	w         *memory.Readahead
	file      lookbehind.File
	readahead int64
	budget    int64
	pos       int64
}

func (s *session) seek(pos int64) {
	s.t.Helper()
	if _, err := s.r.Seek(pos, io.SeekStart); err != nil {
		s.t.Fatal(err)
	}
	s.pos = pos
	s.track()
}

func (s *session) track() {
	s.t.Helper()
	if err := s.w.Set(s.pos, min(s.readahead, s.file.Length-s.pos)); err != nil {
		s.t.Fatal(err)
	}
	lr, err := lookbehind.Pieces(s.file, s.pos, s.budget)
	if err != nil {
		s.t.Fatal(err)
	}
	if err := s.mt.SetLookbehindRange(lr.Begin, lr.End); err != nil {
		s.t.Fatal(err)
	}
}

// read reads n bytes at the playhead in 256 KiB steps.
func (s *session) read(n int64) []byte {
	s.t.Helper()
	out := make([]byte, 0, n)
	buf := make([]byte, 256<<10)
	for int64(len(out)) < n {
		k, err := io.ReadFull(s.r, buf[:min(int64(len(buf)), n-int64(len(out)))])
		out = append(out, buf[:k]...)
		s.pos += int64(k)
		s.track()
		if err != nil {
			s.t.Fatalf("read at %d: %v", s.pos, err)
		}
	}
	return out
}

// TestLookbehindSeekBack streams 64 MiB with 16 MiB of memory and 4 MiB of
// lookbehind: a seek back of 3 MiB is served from memory without a byte
// downloaded again; a seek back of 12 MiB downloads again, exact bytes.
func TestLookbehindSeekBack(t *testing.T) {
	const mib = 1 << 20
	spec := testutil.Spec{Name: "lookbehind", PieceLength: 256 << 10, Length: 64 * mib, Seed: 9}
	seeder := testutil.NewSeeder(t, spec)
	want := testutil.Content(spec)
	mem, cl := newMemLeecher(t, memory.Options{Capacity: 16 * mib, LookbehindShare: 0.25})
	stop := boundWatch(t, mem)
	defer stop()
	tt := testutil.AddTorrent(t, cl, seeder.MetaInfo, seeder)
	mt, ok := mem.Torrent(tt.InfoHash())
	if !ok {
		t.Fatal("memory.Client.Torrent: torrent not found")
	}
	r := tt.NewReader()
	defer r.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	r.SetContext(ctx) // a stalled download fails the test instead of hanging it
	// Readahead 8 MiB + lookbehind 4 MiB leave 4 MiB of the 16 for other
	// complete pieces, which the storage keeps (least recently used go
	// first): the 12 MiB seek lands beyond them.
	const readahead = 8 * mib
	r.SetReadahead(readahead)
	w := mt.NewReadahead()
	defer w.Close()
	s := &session{
		t: t, r: r, mt: mt, w: w, readahead: readahead, budget: 4 * mib,
		file: lookbehind.File{PieceLength: spec.PieceLength, TorrentLength: spec.Length, Length: spec.Length},
	}
	s.seek(0)
	const playhead = 40 * mib
	testutil.Equal(t, s.read(playhead), want[:playhead])

	// Let the readahead window finish downloading, so that nothing in
	// flight is counted below.
	quiet := func() {
		t.Helper()
		begin, end := w.Pieces()
		testutil.WaitFor(t, time.Minute, "readahead window downloaded", func() bool {
			for i := begin; i < end; i++ {
				if !tt.Piece(i).State().Complete {
					return false
				}
			}
			return true
		})
	}
	quiet()
	lbBefore := mt.LookbehindStats()
	if lbBefore.Protected != 16 || lbBefore.Resident != 16 {
		t.Fatalf("lookbehind before seeking: %+v; want 16 pieces protected and resident", lbBefore)
	}
	downloaded := func() int64 {
		st := tt.Stats()
		return st.BytesReadData.Int64()
	}
	before := downloaded()
	s.seek(playhead - 3*mib)
	testutil.Equal(t, s.read(mib), want[playhead-3*mib:playhead-2*mib])
	if got := downloaded() - before; got != 0 {
		t.Errorf("seek back 3 MiB: downloaded %d bytes again; want 0", got)
	}
	if st := mt.LookbehindStats(); st.Hits == 0 {
		t.Errorf("lookbehind hits after seek back: got 0; want > 0 (%+v)", st)
	}

	quiet()
	before = downloaded()
	s.seek(playhead - 12*mib)
	testutil.Equal(t, s.read(mib), want[playhead-12*mib:playhead-11*mib])
	if got := downloaded() - before; got < mib {
		t.Errorf("seek back 12 MiB: downloaded %d bytes; want >= %d (outside lookbehind)", got, mib)
	}
	t.Logf("lookbehind: %+v; memory: %+v", mt.LookbehindStats(), mem.Stats())
}
