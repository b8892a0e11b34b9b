package memory

import (
	"bytes"
	"crypto/sha1"
	"errors"
	"io"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"
	"go.uber.org/atomic"

	"github.com/memtorrent/memtorrent/internal/bound"
)

// startSampler samples c's Resident and Capacity back to back until
// checkSampler.
func startSampler(c *Client) *bound.Sampler {
	return bound.Start(func() (int64, int64) {
		st := c.Stats()
		return st.Resident, st.Capacity
	}, 0)
}

// checkSampler stops s and fails t if a sample broke the bound.
func checkSampler(t *testing.T, s *bound.Sampler) {
	t.Helper()
	r := s.Stop()
	r.Check(t)
	t.Logf("%d Stats samples, worst Resident-Capacity %d", r.Samples, r.Worst)
}

// TestBoundHeldUnderConcurrentWrites writes 16x the capacity into 8
// torrents from many goroutines in random block order, sampling Stats all
// along, and checks every read returns the written bytes or an error.
func TestBoundHeldUnderConcurrentWrites(t *testing.T) {
	const (
		pl        = 256 << 10
		capacity  = 4 << 20
		torrents  = 8
		perT      = 16 * capacity / torrents / pl // pieces per torrent
		writers   = 4                             // per torrent
		chunkSize = 16 << 10
	)
	c := newTestClient(t, Options{Capacity: capacity})
	s := startSampler(c)
	var wg sync.WaitGroup
	var readsOK, readsMissing atomic.Int64
	errs := make(chan error, torrents*writers)
	for k := range torrents {
		tt, info := openTest(t, c, k, pl, perT)
		// Every (piece, chunk) once, in random order, split among writers.
		var jobs []int64
		for off := int64(0); off < info.TotalLength(); off += chunkSize {
			jobs = append(jobs, off)
		}
		rng := rand.New(rand.NewPCG(uint64(k), 1))
		rng.Shuffle(len(jobs), func(i, j int) { jobs[i], jobs[j] = jobs[j], jobs[i] })
		for w := range writers {
			wg.Add(1)
			go func(mine []int64) {
				defer wg.Done()
				buf := make([]byte, chunkSize)
				rbuf := make([]byte, chunkSize)
				for _, off := range mine {
					i := int(off / pl)
					p := tt.Piece(info.Piece(i))
					fill(buf, k, off)
					if _, err := p.WriteAt(buf, off%pl); err != nil {
						errs <- err
						return
					}
					// Read back a random earlier chunk of this torrent.
					ro := mine[rng2(off)%len(mine)]
					n, err := tt.Piece(info.Piece(int(ro/pl))).ReadAt(rbuf, ro%pl)
					if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
						errs <- err
						return
					}
					if perr := checkPattern(rbuf[:n], k, ro); perr != nil {
						errs <- perr
						return
					}
					if n == chunkSize {
						readsOK.Inc()
					} else {
						readsMissing.Inc()
					}
				}
			}(jobs[w*len(jobs)/writers : (w+1)*len(jobs)/writers])
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	checkSampler(t, s)
	st := c.Stats()
	if st.Evictions == 0 {
		t.Errorf("Evictions: got 0; want > 0 after writing 16x the capacity")
	}
	t.Logf("reads: %d whole, %d missing (evicted or unwritten); %d evictions", readsOK.Load(), readsMissing.Load(), st.Evictions)
}

func rng2(x int64) int { return int(uint64(x) * 0x9E3779B97F4A7C15 >> 40) }

// TestConcurrentTorrents runs readers, writers, hashers and Stats callers on
// several torrents at once.
func TestConcurrentTorrents(t *testing.T) {
	const pl = 128 << 10
	c := newTestClient(t, Options{Capacity: 2 << 20})
	s := startSampler(c)
	var wg sync.WaitGroup
	for k := range 4 {
		tt, info := openTest(t, c, k, pl, 16)
		for g := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				buf := make([]byte, 16<<10)
				var hashBuf bytes.Buffer
				for iter := range 200 {
					i := (iter*7 + g*5) % 16
					p := tt.Piece(info.Piece(i))
					switch (iter + g) % 4 {
					case 0:
						off := int64(iter%8) * 16 << 10
						fill(buf, k, int64(i)*pl+off)
						if _, err := p.WriteAt(buf, off); err != nil {
							t.Errorf("WriteAt: %v", err)
							return
						}
					case 1:
						off := int64(iter%8) * 16 << 10
						n, err := p.ReadAt(buf, off)
						if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
							t.Errorf("ReadAt: %v", err)
							return
						}
						if err := checkPattern(buf[:n], k, int64(i)*pl+off); err != nil {
							t.Errorf("ReadAt: %v", err)
							return
						}
					case 2:
						hashBuf.Reset()
						n, err := p.WriteTo(&hashBuf)
						if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
							t.Errorf("WriteTo: %v", err)
							return
						}
						if err := checkPattern(hashBuf.Bytes()[:n], k, int64(i)*pl); err != nil {
							t.Errorf("WriteTo: %v", err)
							return
						}
						if n == pl {
							p.MarkComplete()
						}
					case 3:
						_ = p.Completion()
						_ = c.Stats()
					}
				}
			}()
		}
	}
	wg.Wait()
	checkSampler(t, s)
}

func TestOpenWriteCloseCycles(t *testing.T) {
	info := testInfo(64<<10, 2, 128<<10)
	buf := make([]byte, 16<<10)
	for i := range 1000 {
		c, err := New(Options{Capacity: 64 << 10})
		if err != nil {
			t.Fatal(err)
		}
		ti, err := c.OpenTorrent(t.Context(), info, ihOf(i))
		if err != nil {
			t.Fatal(err)
		}
		tt := storage.Torrent{TorrentImpl: ti}
		for off := int64(0); off < 128<<10; off += 16 << 10 {
			if _, err := tt.Piece(info.Piece(int(off/(64<<10)))).WriteAt(buf, off%(64<<10)); err != nil {
				t.Fatalf("cycle %d: WriteAt: %v", i, err)
			}
		}
		if i%2 == 0 {
			tt.Close()
		}
		if err := c.Close(); err != nil {
			t.Fatalf("cycle %d: Close: %v", i, err)
		}
		if err := c.Close(); err != nil {
			t.Fatalf("cycle %d: second Close: %v", i, err)
		}
		if _, err := c.OpenTorrent(t.Context(), info, ihOf(i)); !errors.Is(err, ErrClosed) {
			t.Fatalf("OpenTorrent after Close: got %v; want ErrClosed", err)
		}
	}
	// goleak in TestMain checks that no worker outlived its Client.
}

// TestCloseWhileBusy closes the Client while reads, writes and hashes are in
// flight on several torrents: no panic, no race, no leak, and every
// operation ends with success or ErrClosed.
func TestCloseWhileBusy(t *testing.T) {
	for round := range 20 {
		const pl = 64 << 10
		c, err := New(Options{Capacity: 512 << 10})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for k := range 3 {
			tt, info := openTest(t, c, k, pl, 16)
			for g := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					buf := make([]byte, 16<<10)
					h := sha1.New()
					for iter := 0; ; iter++ {
						p := tt.Piece(info.Piece((iter + g) % 16))
						var err error
						switch g {
						case 0, 1:
							_, err = p.WriteAt(buf, int64(iter%4)*16<<10)
						case 2:
							_, err = p.ReadAt(buf, 0)
						case 3:
							h.Reset()
							_, err = p.WriteTo(h)
							if err == nil {
								err = p.MarkComplete()
							}
						}
						if errors.Is(err, ErrClosed) {
							return
						}
						if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
							t.Errorf("round %d: unexpected error: %v", round, err)
							return
						}
					}
				}()
			}
		}
		close(start)
		// Let some work happen, then close under it.
		waitForStats(t, c, func(s Stats) bool { return s.Resident > 0 })
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		if s := c.Stats(); s.Resident != 0 || s.Torrents != 0 {
			t.Errorf("round %d: after Close: Resident %d, Torrents %d; want 0, 0", round, s.Resident, s.Torrents)
		}
	}
}

// waitForStats polls Stats until cond holds, failing after a minute.
func waitForStats(t *testing.T, c *Client, cond func(Stats) bool) {
	t.Helper()
	spinUntil(t, "a condition on Stats", func() bool { return cond(c.Stats()) })
}

// spinUntil yields until cond holds, failing the test after a minute.
func spinUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.Gosched()
	}
}

func TestShrinkWhileWriting(t *testing.T) {
	const pl = 64 << 10
	c := newTestClient(t, Options{Capacity: 4 << 20})
	s := startSampler(c)
	var wg sync.WaitGroup
	var written atomic.Int64
	stop := make(chan struct{})
	for k := range 4 {
		tt, info := openTest(t, c, k, pl, 64)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for iter := 0; ; iter++ {
				select {
				case <-stop:
					return
				default:
				}
				i := iter % 64
				writePieceNoFatal(t, tt, info, k, i)
				tt.Piece(info.Piece(i)).MarkComplete()
				written.Inc()
			}
		}()
	}
	for _, n := range []int64{3 << 20, 1 << 20, 256 << 10, 2 << 20, 128 << 10, 4 << 20, 512 << 10} {
		// Let the writers fill what the last step allowed.
		target := written.Load() + 32
		spinUntil(t, "32 more pieces written", func() bool { return written.Load() >= target })
		if err := c.SetCapacity(n); err != nil {
			t.Errorf("SetCapacity(%d): %v", n, err)
		}
		if st := c.Stats(); st.Capacity != n {
			t.Errorf("Capacity after SetCapacity(%d): got %d", n, st.Capacity)
		}
	}
	close(stop)
	wg.Wait()
	checkSampler(t, s)
}

func writePieceNoFatal(t *testing.T, tt storage.Torrent, info *metainfo.Info, k, i int) {
	p := tt.Piece(info.Piece(i))
	buf := make([]byte, 16<<10)
	base := int64(i) * info.PieceLength
	for off := int64(0); off < info.PieceLength; off += int64(len(buf)) {
		fill(buf, k, base+off)
		if _, err := p.WriteAt(buf, off); err != nil {
			t.Errorf("WriteAt(piece %d, off %d): %v", i, off, err)
			return
		}
	}
}
