package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/memtorrent/memtorrent/internal/swarm"
	"github.com/memtorrent/memtorrent/stream"
)

// The streaming scenario plays one file the way a media player does: HTTP
// Range requests to a stream.Handler, with seeks, every byte checked. The
// leecher (client, memory storage, Handler) runs in a child process of its
// own, a fresh one for every run, so that its peak RSS is its own; the
// seeder and the player run in this process.

// readSize is the player's buffer: bytes per Read of a response body.
const readSize = 256 << 10

// streamBench holds what the streaming runs share. Its fields never change
// after start, except those under mu.
type streamBench struct {
	cfg    config
	logger *slog.Logger
	logW   io.Writer // the leechers' standard error
	spec   swarm.Spec

	seed   *swarm.Seeder // nil until start
	miPath string        // the torrent file the leechers load; "" until start
	exe    string        // this executable, run as the leecher

	mu       sync.Mutex      // guards the fields below
	series   []Series        // the first run of each contestant
	maxSeenR map[int64]int64 // capacity -> the highest Resident sampled
}

func newStreamBench(cfg config, logger *slog.Logger, logW io.Writer) *streamBench {
	spec := swarm.Spec{Name: "movie.mkv", Length: cfg.StreamSize, PieceLength: cfg.PieceLength, Seed: 3}
	return &streamBench{cfg: cfg, logger: logger, logW: logW, spec: spec, maxSeenR: map[int64]int64{}}
}

func (b *streamBench) name() string { return scenarioStreaming }

// start starts the seeder, serving generated data, and writes the torrent
// file for the leechers.
func (b *streamBench) start(ctx context.Context) (err error) {
	if b.exe, err = os.Executable(); err != nil {
		return fmt.Errorf("finding this executable to run the leecher: %w", err)
	}
	if b.seed, err = swarm.SeedSource(ctx, swarm.Config("", b.logger), b.spec); err != nil {
		return fmt.Errorf("starting the streaming seeder: %w", err)
	}
	f, err := os.CreateTemp("", "memtorrent-bench-*.torrent")
	if err != nil {
		return err
	}
	b.miPath = f.Name()
	return errors.Join(b.seed.MetaInfo.Write(f), f.Close())
}

func (b *streamBench) close() error {
	var errs []error
	if b.seed != nil {
		errs = append(errs, b.seed.Close())
	}
	if b.miPath != "" {
		errs = append(errs, os.Remove(b.miPath))
	}
	return errors.Join(errs...)
}

// takeSeries returns the memory samples of each contestant's first run.
func (b *streamBench) takeSeries() []Series {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.series
}

func (b *streamBench) about() string {
	c := b.cfg
	return fmt.Sprintf("A %s file in %s pieces, served over loopback by a seeder of generated data in the bench's process, "+
		"played over HTTP through stream.Handler (ReadaheadCap %s) by a leecher in a child process of its own, fresh for "+
		"every run: host.New over memory storage at each capacity, lookbehind on (the Handler's default budget) or off "+
		"(memory.Options.NoLookbehind, Options.LookbehindBytes -1). The player sends open-ended Range requests and reads "+
		"%d KiB at a time, checking every byte, and drops the connection to seek, as media players do. "+
		"Phases: (1) read the first half: time to first byte of the first request, throughput from that byte; "+
		"(2) seek back %s and read up to the middle again: latency to the first byte, and the bytes of that range "+
		"the leecher did not hold at the seek (to be downloaded again); (3) a second player (another session) reads the last "+
		"min(capacity, 1/8 of the file), then the first seeks back %s again; (4) seek forward to 3/4, data never requested, "+
		"and read to the end; (5) seek back to the middle, beyond the lookbehind, and read the quarter skipped. "+
		"Peak RSS is the leecher's VmHWM over its whole life; CPU is its user+sys time per GiB played; downloaded is "+
		"BytesReadData over the file size. Heap and resident bytes are sampled every %v.",
		ibytes(c.StreamSize), ibytes(c.PieceLength), ibytes(c.ReadaheadCap), readSize>>10,
		ibytes(c.SeekBack), ibytes(c.SeekBack), sampleInterval)
}

func (b *streamBench) groups() []group {
	var gs []group
	for _, capacity := range b.cfg.Capacities {
		gs = append(gs, group{
			key:  strings.ReplaceAll(ibytes(capacity), " ", ""),
			name: fmt.Sprintf("stream %s into %s", ibytes(b.cfg.StreamSize), ibytes(capacity)),
			metrics: []metric{
				{key: "rss", name: "leecher peak RSS (VmHWM)", unit: "MiB"},
				{key: "rss-over", name: "leecher peak RSS - capacity", unit: "MiB"},
				{key: "seq", name: "sequential read", unit: "MB/s", higher: true},
				{key: "ttfb", name: "time to first byte", unit: "ms"},
				{key: "back-latency", name: fmt.Sprintf("seek back %s: latency", ibytes(b.cfg.SeekBack)), unit: "ms"},
				{key: "back-missing", name: fmt.Sprintf("seek back %s: bytes to download again", ibytes(b.cfg.SeekBack)), unit: "MiB"},
				{key: "pressure-back-latency", name: fmt.Sprintf("seek back %s after a second reader: latency", ibytes(b.cfg.SeekBack)), unit: "ms"},
				{key: "pressure-back-missing", name: fmt.Sprintf("seek back %s after a second reader: bytes to download again", ibytes(b.cfg.SeekBack)), unit: "MiB"},
				{key: "forward-latency", name: "seek forward to 3/4 (cold): latency", unit: "ms"},
				{key: "cold-back-latency", name: "seek back to 1/2 (beyond lookbehind): latency", unit: "ms"},
				{key: "longest-read", name: "longest wait for one Read", unit: "ms"},
				{key: "cpu", name: "leecher CPU", unit: "cpu-s/GiB"},
				{key: "downloaded", name: "downloaded / file size", unit: "x"},
				{key: "heap", name: "leecher peak Go heap (objects, with garbage not yet swept)", unit: "MiB"},
				{key: "resident", name: "peak resident (memtorrent Stats)", unit: "MiB"},
			},
			contestants: []contestant{
				{"lookbehind on", b.stream(capacity, false)},
				{"lookbehind off", b.stream(capacity, true)},
			},
		})
	}
	return gs
}

// stream returns one streaming run at capacity.
func (b *streamBench) stream(capacity int64, noLookbehind bool) func(context.Context, int) ([]float64, error) {
	name := fmt.Sprintf("%s, lookbehind on", ibytes(capacity))
	if noLookbehind {
		name = fmt.Sprintf("%s, lookbehind off", ibytes(capacity))
	}
	return func(ctx context.Context, runIndex int) (_ []float64, err error) {
		ctx, cancel := context.WithTimeout(ctx, b.cfg.Timeout)
		defer cancel()
		lp, err := b.startLeecher(ctx, leecherConfig{
			MetaInfo: b.miPath, Seeder: b.seed.Client.ListenAddrs()[0].String(), Capacity: capacity,
			NoLookbehind: noLookbehind, ReadaheadCap: b.cfg.ReadaheadCap, Verbose: b.cfg.Verbose,
		})
		if err != nil {
			return nil, err
		}
		defer func() {
			if lp != nil {
				lp.kill()
			}
		}()
		tr := &http.Transport{DisableCompression: true}
		defer tr.CloseIdleConnections()
		httpc := &http.Client{Transport: tr}
		url := lp.base + stream.FilePath(b.seed.MetaInfo.HashInfoBytes(), 0)
		src := b.spec.Source()
		p := &player{c: httpc, url: url + "?session=player", src: src}
		other := &player{c: httpc, url: url + "?session=other", src: src}

		size, back := b.cfg.StreamSize, b.cfg.SeekBack
		half, quarter := size/2, size/4
		// Phase 1: the first half.
		ttfb, first, err := p.read(ctx, 0, half)
		if err != nil {
			return nil, err
		}
		seq := mbps(half, time.Since(first).Seconds())
		// Phase 2: back, within the lookbehind, and on to the middle again.
		missing, err := lp.missing(ctx, httpc, half-back, half)
		if err != nil {
			return nil, err
		}
		backLat, _, err := p.read(ctx, half-back, back)
		if err != nil {
			return nil, err
		}
		// Phase 3: a second reader reads the file's tail; then the player
		// seeks back again.
		tail := min(capacity, size/8)
		if _, _, err := other.read(ctx, size-tail, tail); err != nil {
			return nil, fmt.Errorf("second reader: %w", err)
		}
		pressMissing, err := lp.missing(ctx, httpc, half-back, half)
		if err != nil {
			return nil, err
		}
		pressLat, _, err := p.read(ctx, half-back, back)
		if err != nil {
			return nil, err
		}
		// Phase 4: forward into data never requested, to the end.
		fwdLat, _, err := p.read(ctx, half+quarter, size-half-quarter)
		if err != nil {
			return nil, err
		}
		// Phase 5: back to the middle, beyond the lookbehind, and read the
		// quarter skipped.
		coldLat, _, err := p.read(ctx, half, quarter)
		if err != nil {
			return nil, err
		}

		rep, err := lp.report(ctx, httpc)
		if err != nil {
			return nil, err
		}
		tr.CloseIdleConnections()
		cpu, err := lp.close()
		lp = nil
		if err != nil {
			return nil, err
		}
		var peakHeap, peakRes int64
		for _, s := range rep.Samples {
			peakHeap, peakRes = max(peakHeap, s.Heap), max(peakRes, s.Resident)
		}
		if peakRes > capacity {
			return nil, fmt.Errorf("memtorrent held %d bytes, above its capacity of %d", peakRes, capacity)
		}
		b.mu.Lock()
		if runIndex == 0 {
			b.series = append(b.series, Series{Contestant: name, Capacity: capacity, Points: rep.Samples})
		}
		b.maxSeenR[capacity] = max(b.maxSeenR[capacity], peakRes)
		b.mu.Unlock()
		played := p.bytes + other.bytes
		return []float64{
			mib(rep.VmHWM), mib(rep.VmHWM - capacity), seq, ms(ttfb),
			ms(backLat), mib(missing), ms(pressLat), mib(pressMissing), ms(fwdLat), ms(coldLat),
			ms(max(p.longest, other.longest)), cpu.Seconds() / (float64(played) / (1 << 30)),
			float64(rep.Downloaded) / float64(size), mib(peakHeap), mib(peakRes),
		}, nil
	}
}

// notes returns what the report should say about the runs.
func (b *streamBench) notes() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var notes []string
	for _, c := range b.cfg.Capacities {
		notes = append(notes, fmt.Sprintf("memtorrent's resident bytes never passed its capacity of %s: highest sample %s.",
			ibytes(c), ibytes(b.maxSeenR[c])))
	}
	return notes
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// player reads one file over HTTP as a media player does. It is not safe
// for concurrent use.
type player struct {
	c         *http.Client
	url       string        // the file's URL, with the player's session
	src       *swarm.Source // what the bytes must be
	buf, want []byte
	bytes     int64         // read in all
	longest   time.Duration // the longest a single Read has taken
}

// read requests the file from off on (an open-ended Range, as players
// send), reads n bytes, checking them, and drops the connection. It
// returns the time from sending the request to the first byte, and when
// that byte came.
func (p *player) read(ctx context.Context, off, n int64) (time.Duration, time.Time, error) {
	if p.buf == nil {
		p.buf, p.want = make([]byte, readSize), make([]byte, readSize)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
	if err != nil {
		return 0, time.Time{}, err
	}
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-", off))
	start := time.Now()
	resp, err := p.c.Do(req)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("GET %s from %d: %w", p.url, off, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		return 0, time.Time{}, fmt.Errorf("GET %s from %d: %s: %q", p.url, off, resp.Status, msg)
	}
	var first time.Time
	pos := off
	for end := off + n; pos < end; {
		t := time.Now()
		k, err := resp.Body.Read(p.buf[:min(int64(len(p.buf)), end-pos)])
		p.longest = max(p.longest, time.Since(t))
		if k > 0 {
			if first.IsZero() {
				first = time.Now()
			}
			p.src.ReadAt(p.want[:k], pos)
			if !bytes.Equal(p.buf[:k], p.want[:k]) {
				return 0, first, fmt.Errorf("read %d bytes at %d that differ from the file's", k, pos)
			}
			pos += int64(k)
			p.bytes += int64(k)
		}
		if err != nil && pos < end {
			return 0, first, fmt.Errorf("reading at %d: %w", pos, err)
		}
	}
	return first.Sub(start), first, nil
}

// leecherProc is a running leecher process.
type leecherProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	base  string // http://127.0.0.1:port
}

// startLeecher starts a leecher process with cfg and waits for its address.
func (b *streamBench) startLeecher(ctx context.Context, cfg leecherConfig) (*leecherProc, error) {
	raw, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, b.exe)
	cmd.Env = append(os.Environ(), leecherEnv+"="+string(raw))
	if b.logW != io.Discard {
		cmd.Stderr = b.logW
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the leecher %s: %w", b.exe, err)
	}
	lp := &leecherProc{cmd: cmd, stdin: stdin}
	addr := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		addr <- strings.TrimSpace(line)
		io.Copy(io.Discard, stdout) // until the process exits
	}()
	timer := time.NewTimer(swarm.SetupTimeout)
	defer timer.Stop()
	select {
	case a := <-addr:
		if a == "" {
			return nil, fmt.Errorf("the leecher exited before serving: %w", lp.wait())
		}
		lp.base = "http://" + a
		return lp, nil
	case <-timer.C:
		lp.kill()
		return nil, fmt.Errorf("the leecher did not start within %v", swarm.SetupTimeout)
	}
}

// missing returns the bytes of the file's range [from, to) the leecher
// does not hold.
func (lp *leecherProc) missing(ctx context.Context, c *http.Client, from, to int64) (int64, error) {
	var n int64
	err := lp.getJSON(ctx, c, fmt.Sprintf("/bench/missing?from=%d&to=%d", from, to), &n)
	return n, err
}

// report stops the leecher's sampling and returns its figures.
func (lp *leecherProc) report(ctx context.Context, c *http.Client) (leecherReport, error) {
	var rep leecherReport
	err := lp.getJSON(ctx, c, "/bench/mem", &rep)
	return rep, err
}

func (lp *leecherProc) getJSON(ctx context.Context, c *http.Client, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, lp.base+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		return fmt.Errorf("GET %s: %s: %q", path, resp.Status, msg)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	return nil
}

// close tells the leecher to exit, waits for it and returns its CPU time.
func (lp *leecherProc) close() (time.Duration, error) {
	lp.stdin.Close()
	if err := lp.wait(); err != nil {
		return 0, err
	}
	ps := lp.cmd.ProcessState
	return ps.UserTime() + ps.SystemTime(), nil
}

// wait waits for the process to exit.
func (lp *leecherProc) wait() error {
	if err := lp.cmd.Wait(); err != nil {
		return fmt.Errorf("the leecher: %w", err)
	}
	return nil
}

// kill ends the process and waits for it.
func (lp *leecherProc) kill() {
	lp.stdin.Close()
	lp.cmd.Process.Kill()
	lp.cmd.Wait()
}
