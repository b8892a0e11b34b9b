package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/anacrolix/torrent"

	"github.com/memtorrent/memtorrent/host"
	"github.com/memtorrent/memtorrent/internal/testutil"
	"github.com/memtorrent/memtorrent/lookbehind"
	"github.com/memtorrent/memtorrent/storage/memory"
)

// The streaming scenario plays one file the way a video player does, into
// memtorrent with a capacity far below the file: it reads through a
// torrent.Reader, moves the storage's reader window and lookbehind range
// after every read, seeks, and checks every byte.

const (
	readSize       = 256 << 10             // bytes per Read, as an HTTP handler copies
	sampleInterval = 20 * time.Millisecond // memory samples for the peaks and the plot
)

// streamBench holds what the streaming runs share. Its fields never change
// after start, except those under mu.
type streamBench struct {
	cfg    config
	logger *slog.Logger
	spec   testutil.Spec
	seed   *seeder // nil until start

	mu       sync.Mutex // guards the fields below
	series   []Series   // the first run of each contestant
	hwmNote  string     // set when VmHWM could not be reset
	maxSeenR int64      // the highest Resident sampled in any run
}

func newStreamBench(cfg config, logger *slog.Logger) *streamBench {
	spec := testutil.Spec{Name: "movie.mkv", Length: cfg.StreamSize, PieceLength: cfg.PieceLength, Seed: 3}
	return &streamBench{cfg: cfg, logger: logger, spec: spec}
}

func (b *streamBench) name() string { return scenarioStreaming }

// start starts the seeder. It serves the file from its generated content,
// not from a file: the anacrolix file storage maps its files, and pages of
// a mapped tmpfs file count in this process's RSS, which the scenario
// measures.
func (b *streamBench) start(ctx context.Context) error {
	s, err := newSourceSeeder(ctx, b.spec, b.logger)
	if err != nil {
		return fmt.Errorf("starting the streaming seeder: %w", err)
	}
	b.seed = s
	return nil
}

func (b *streamBench) close() error {
	if b.seed == nil {
		return nil
	}
	return b.seed.close()
}

// takeSeries returns the memory samples of each contestant's first run.
func (b *streamBench) takeSeries() []Series {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.series
}

// lookbehindBudget is the byte budget the player gives lookbehind: the
// storage's default share of its capacity.
func (b *streamBench) lookbehindBudget() int64 {
	return int64(float64(b.cfg.Capacity) * memory.DefaultLookbehindShare)
}

func (b *streamBench) about() string {
	c := b.cfg
	return fmt.Sprintf("A %s file in %s pieces streamed over loopback into memtorrent with a capacity of %s, "+
		"through a torrent.Reader with a %s readahead (no DownloadAll), %d KiB per Read, every byte checked. "+
		"After each Read the player moves the storage's reader window over the readahead and its lookbehind range "+
		"over the %s behind the playhead (lookbehind off: memory.Options{NoLookbehind: true}). "+
		"Phases: (1) read the first half: time to first byte from adding the torrent, throughput from the first byte; "+
		"(2) seek back %s and read up to the middle again: latency to the first byte, and the bytes of that range "+
		"the storage did not hold at the seek (to be downloaded again); (3) the player pauses while a second reader "+
		"(another viewer, or a player probing the file's tail) reads the last %s of the file, then the player seeks back "+
		"%s again; (4) seek forward a quarter into data never requested and read to the end; (5) seek back to the middle, "+
		"beyond the lookbehind, and read the quarter skipped. Downloaded is BytesReadData over the file size, once every "+
		"byte has been read. The longest Read shows stalls. Peak RSS is VmHWM, reset before each run; the seeder serves "+
		"generated data, so it adds no file pages. Peak heap and resident bytes are sampled every %v.",
		ibytes(c.StreamSize), ibytes(c.PieceLength), ibytes(c.Capacity), ibytes(c.Readahead), readSize>>10,
		ibytes(b.lookbehindBudget()), ibytes(c.SeekBack), ibytes(c.Capacity), ibytes(c.SeekBack), sampleInterval)
}

func (b *streamBench) groups() []group {
	return []group{{
		name: fmt.Sprintf("stream %s into %s", ibytes(b.cfg.StreamSize), ibytes(b.cfg.Capacity)),
		metrics: []metric{
			{key: "ttfb", name: "time to first byte", unit: "ms"},
			{key: "seq", name: "sequential read", unit: "MB/s", higher: true},
			{key: "rss-start", name: "RSS at the start of the run", unit: "MiB"},
			{key: "rss", name: "peak RSS (VmHWM)", unit: "MiB"},
			{key: "heap", name: "peak Go heap (objects, with garbage not yet swept)", unit: "MiB"},
			{key: "live-heap", name: "peak Go live heap (marked by the last GC)", unit: "MiB"},
			{key: "resident", name: "peak resident (memtorrent Stats)", unit: "MiB"},
			{key: "downloaded", name: "downloaded / file size", unit: "x"},
			{key: "longest-read", name: "longest wait for one Read", unit: "ms"},
			{key: "back-latency", name: fmt.Sprintf("seek back %s: latency", ibytes(b.cfg.SeekBack)), unit: "ms"},
			{key: "back-missing", name: fmt.Sprintf("seek back %s: bytes to download again", ibytes(b.cfg.SeekBack)), unit: "MiB"},
			{key: "pressure-back-latency", name: fmt.Sprintf("seek back %s after a second reader read %s: latency",
				ibytes(b.cfg.SeekBack), ibytes(b.cfg.Capacity)), unit: "ms"},
			{key: "pressure-back-missing", name: fmt.Sprintf("seek back %s after a second reader read %s: bytes to download again",
				ibytes(b.cfg.SeekBack), ibytes(b.cfg.Capacity)), unit: "MiB"},
			{key: "forward-latency", name: "seek forward 1/4 (cold): latency", unit: "ms"},
			{key: "cold-back-latency", name: "seek back to 1/2 (beyond lookbehind): latency", unit: "ms"},
		},
		contestants: []contestant{
			{"lookbehind on", b.stream(false)},
			{"lookbehind off", b.stream(true)},
		},
	}}
}

// stream returns one streaming run.
func (b *streamBench) stream(noLookbehind bool) func(context.Context, int) ([]float64, error) {
	name := "lookbehind on"
	if noLookbehind {
		name = "lookbehind off"
	}
	return func(ctx context.Context, runIndex int) (_ []float64, err error) {
		ctx, cancel := context.WithTimeout(ctx, b.cfg.Timeout)
		defer cancel()
		if err := resetPeakRSS(); err != nil {
			b.mu.Lock()
			b.hwmNote = fmt.Sprintf("peak RSS is the process's VmHWM since it started: %v", err)
			b.mu.Unlock()
		}
		hc, err := host.New(clientConfig(nil, b.logger), memory.Options{Capacity: b.cfg.Capacity, NoLookbehind: noLookbehind, Logger: b.logger})
		if err != nil {
			return nil, fmt.Errorf("creating the leecher: %w", err)
		}
		defer func() { err = errors.Join(err, hc.Close()) }()
		mem, cl := hc.Storage, hc.Torrent
		smp := startSampler(mem)
		defer smp.stop() // idempotent; stopped below on success

		start := time.Now()
		t, err := b.seed.addTorrent(ctx, cl)
		if err != nil {
			return nil, err
		}
		mt, ok := mem.Torrent(t.InfoHash())
		if !ok {
			return nil, fmt.Errorf("memtorrent has no torrent %s", t.InfoHash())
		}
		p, err := b.newPlayer(ctx, t, mt, true)
		if err != nil {
			return nil, err
		}
		defer p.close()

		size, capacity, back := b.cfg.StreamSize, b.cfg.Capacity, b.cfg.SeekBack
		half, quarter := size/2, size/4
		// Phase 1: the first half.
		first, err := p.read(half)
		if err != nil {
			return nil, err
		}
		ttfb := first.Sub(start)
		seq := mbps(half, time.Since(first).Seconds())

		// Phase 2: back, within the lookbehind, and on to the middle again.
		missing := p.missingBytes(half-back, half)
		backLat, err := p.seekRead(half-back, back)
		if err != nil {
			return nil, err
		}

		// Phase 3: while the player pauses, a second reader reads as much
		// as the capacity from the end of the file; then the player seeks
		// back again.
		other, err := b.newPlayer(ctx, t, mt, false)
		if err != nil {
			return nil, err
		}
		_, err = other.seekRead(size-capacity, capacity)
		other.close()
		if err != nil {
			return nil, fmt.Errorf("second reader: %w", err)
		}
		pressMissing := p.missingBytes(half-back, half)
		pressLat, err := p.seekRead(half-back, back)
		if err != nil {
			return nil, err
		}

		// Phase 4: forward into data never requested, to the end.
		fwdLat, err := p.seekRead(half+quarter, size-half-quarter)
		if err != nil {
			return nil, err
		}
		// Phase 5: back to the middle, beyond the lookbehind, and read the
		// quarter skipped.
		coldLat, err := p.seekRead(half, quarter)
		if err != nil {
			return nil, err
		}
		ts := t.Stats()
		downloaded := ts.BytesReadData.Int64()

		samples := smp.stop()
		st, err := procStatus("VmHWM")
		if err != nil {
			return nil, err
		}
		var peakHeap, peakLive, peakRes int64
		for _, s := range samples {
			peakHeap, peakLive, peakRes = max(peakHeap, s.Heap), max(peakLive, s.Live), max(peakRes, s.Resident)
		}
		if peakRes > b.cfg.Capacity {
			return nil, fmt.Errorf("memtorrent held %d bytes, above its capacity of %d", peakRes, b.cfg.Capacity)
		}
		b.mu.Lock()
		if runIndex == 0 {
			b.series = append(b.series, Series{Contestant: name, Capacity: b.cfg.Capacity, Points: samples})
		}
		b.maxSeenR = max(b.maxSeenR, peakRes)
		b.mu.Unlock()
		return []float64{
			ms(ttfb), seq, mib(samples[0].RSS), mib(st["VmHWM"]), mib(peakHeap), mib(peakLive), mib(peakRes),
			float64(downloaded) / float64(size), ms(p.longest),
			ms(backLat), mib(missing), ms(pressLat), mib(pressMissing), ms(fwdLat), ms(coldLat),
		}, nil
	}
}

// notes returns what the report should say about the runs.
func (b *streamBench) notes() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	notes := []string{fmt.Sprintf("memtorrent's resident bytes never passed its capacity: highest sample %s of %s.",
		ibytes(b.maxSeenR), ibytes(b.cfg.Capacity))}
	if b.hwmNote != "" {
		notes = append(notes, b.hwmNote)
	}
	return notes
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// player reads a torrent as a video player does and tells the storage
// where its playhead is. It is not safe for concurrent use.
type player struct {
	r              torrent.Reader
	mt             *memory.Torrent
	win            *memory.Window
	setsLookbehind bool // whether this player sets the torrent's lookbehind range
	file           lookbehind.File
	budget         int64 // lookbehind bytes
	readahead      int64
	src            *testutil.Source // what the bytes must be
	pos            int64
	buf, want      []byte
	longest        time.Duration // the longest a single Read has taken
}

// newPlayer returns a player at the start of the torrent's first file, with
// its own reader and storage window. Only one player of a torrent may set
// the torrent's lookbehind range.
func (b *streamBench) newPlayer(ctx context.Context, t *torrent.Torrent, mt *memory.Torrent, setsLookbehind bool) (*player, error) {
	f := t.Files()[0]
	r := f.NewReader()
	r.SetContext(ctx)
	r.SetReadahead(b.cfg.Readahead)
	p := &player{
		r: r, mt: mt, win: mt.NewWindow(), setsLookbehind: setsLookbehind,
		file:      lookbehind.File{PieceLength: b.cfg.PieceLength, TorrentLength: b.cfg.StreamSize, Offset: f.Offset(), Length: f.Length()},
		budget:    b.lookbehindBudget(),
		readahead: b.cfg.Readahead,
		src:       b.spec.Source(),
		buf:       make([]byte, readSize),
		want:      make([]byte, readSize),
	}
	if err := p.update(); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

func (p *player) close() {
	p.r.Close()
	p.win.Close()
}

// update moves the storage's window and lookbehind range to the playhead.
func (p *player) update() error {
	if err := p.win.Set(p.file.Offset+p.pos, min(p.readahead, p.file.Length-p.pos)); err != nil {
		return err
	}
	if !p.setsLookbehind {
		return nil
	}
	rg, err := lookbehind.Window(p.file, p.pos, p.budget)
	if err != nil {
		return err
	}
	return p.mt.SetLookbehindRange(rg.Begin, rg.End)
}

// read reads n bytes from the playhead, checking them, and returns when
// the first of them arrived.
func (p *player) read(n int64) (first time.Time, err error) {
	for n > 0 {
		start := time.Now()
		k, err := p.r.Read(p.buf[:min(int64(len(p.buf)), n)])
		p.longest = max(p.longest, time.Since(start))
		if k > 0 {
			if first.IsZero() {
				first = time.Now()
			}
			p.src.ReadAt(p.want[:k], p.pos)
			if !bytes.Equal(p.buf[:k], p.want[:k]) {
				return first, fmt.Errorf("read %d bytes at %d that differ from the file's", k, p.pos)
			}
			p.pos += int64(k)
			n -= int64(k)
			if err := p.update(); err != nil {
				return first, err
			}
		}
		if err != nil && (n > 0 || err != io.EOF) {
			return first, fmt.Errorf("reading at %d: %w", p.pos, err)
		}
	}
	return first, nil
}

// seekRead seeks to pos, reads n bytes and returns the time from the seek
// to the first byte.
func (p *player) seekRead(pos, n int64) (time.Duration, error) {
	start := time.Now()
	if _, err := p.r.Seek(pos, io.SeekStart); err != nil {
		return 0, fmt.Errorf("seeking to %d: %w", pos, err)
	}
	p.pos = pos
	if err := p.update(); err != nil {
		return 0, err
	}
	first, err := p.read(n)
	return first.Sub(start), err
}

// missingBytes returns the bytes of the pieces holding [from, to) of the
// file that the storage does not hold complete.
func (p *player) missingBytes(from, to int64) int64 {
	states := p.mt.AppendPieceStates(nil)
	pl := p.file.PieceLength
	var n int64
	for i := (p.file.Offset + from) / pl; i <= (p.file.Offset+to-1)/pl; i++ {
		if states[i]&memory.PieceComplete == 0 {
			n += min(pl, p.file.TorrentLength-i*pl)
		}
	}
	return n
}

// sampler records a Client's resident bytes, the Go heap and the RSS every
// sampleInterval from its own goroutine, until stopped.
type sampler struct {
	stopOnce sync.Once
	done     chan struct{}
	finished chan struct{}
	samples  []Sample // written by the goroutine until finished closes
}

func startSampler(mem *memory.Client) *sampler {
	s := &sampler{done: make(chan struct{}), finished: make(chan struct{})}
	go func() {
		defer close(s.finished)
		heap := newHeapSampler()
		start := time.Now()
		tick := time.NewTicker(sampleInterval)
		defer tick.Stop()
		for {
			h, live := heap.read()
			var rss int64
			if st, err := procStatus("VmRSS"); err == nil {
				rss = st["VmRSS"]
			}
			s.samples = append(s.samples, Sample{
				Seconds:  time.Since(start).Seconds(),
				Resident: mem.Stats().Resident,
				Heap:     h,
				Live:     live,
				RSS:      rss,
			})
			select {
			case <-s.done:
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// stop ends the sampling, waits for the goroutine and returns the samples.
// It is idempotent.
func (s *sampler) stop() []Sample {
	s.stopOnce.Do(func() { close(s.done) })
	<-s.finished
	return s.samples
}
