package reliability

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/memtorrent/memtorrent/internal/testutil"
)

// playerOptions is how a player model plays one file over HTTP.
type playerOptions struct {
	rate        int64         // media bytes per second of playback
	startAfter  time.Duration // media buffered before the first frame
	resumeAfter time.Duration // media buffered before playing again after a stall or a seek
	bufferMax   time.Duration // the player stops fetching with this much media buffered
	duration    time.Duration // how long the viewer watches, from its start
	seeks       []seek
	// onStall, if set, is called when a stall begins, with the file
	// position the player waits for.
	onStall func(pos int64)
}

// seek is a scripted move of the playhead.
type seek struct {
	at   time.Duration // from the viewer's start
	name string
	to   func(played, size int64) int64
}

// viewerReport is what a viewer saw.
type viewerReport struct {
	firstByte time.Duration // to the first body byte
	startup   time.Duration // to the first frame
	stalls    int           // rebufferings after startup, seeks excluded
	stalled   time.Duration // their total
	longest   time.Duration
	stallLog  []string      // each stall: when it began (since the start), where, how long
	watched   time.Duration // time spent playing
	seeks     []time.Duration
	seekNames []string
	delivered int64 // bytes the player received
}

// rebuffering is the stalled share of the time after startup.
func (r viewerReport) rebuffering() float64 {
	if r.stalled+r.watched == 0 {
		return 0
	}
	return float64(r.stalled) / float64(r.stalled+r.watched)
}

// playerTick is the player model's clock: how often it plays and checks
// its buffer. It is the model's time step, not a wait for a condition.
const playerTick = 20 * time.Millisecond

// player is one viewer playing one file over HTTP. Its fetcher reads the
// response body as fast as it comes while less than bufferMax of media is
// buffered (so a full buffer pushes back on the server, as a player's
// does), and checks every byte against the file's content.
type player struct {
	opts    playerOptions
	client  *http.Client
	url     string
	content []byte // the file's

	mu        sync.Mutex // guards the fields below
	played    int64      // the playhead, in the file
	fetched   int64      // end of the bytes fetched from played on
	delivered int64
	firstAt   time.Time // when the first body byte arrived; zero before
	err       error
}

// play plays url (content is the file's bytes) for opts.duration and
// returns what the viewer saw. It returns an error for a byte that differs
// from content, an HTTP failure or ctx's end.
func play(ctx context.Context, client *http.Client, url string, content []byte, opts playerOptions) (viewerReport, error) {
	p := &player{opts: opts, client: client, url: url, content: content}
	size := int64(len(content))
	var rep viewerReport
	rate := float64(opts.rate)
	need := func(d time.Duration) int64 { return int64(rate * d.Seconds()) }

	stopFetch := p.startFetch(ctx, 0)
	defer func() { stopFetch() }()

	const (
		starting = iota
		playing
		stalled
		seeking
	)
	state := starting
	start := time.Now()
	last, since := start, start // last tick; start of the stall or seek
	var stallAt time.Duration   // since start, of the stall
	var stallPos int64          // the played position it began at
	endStall := func(now time.Time) {
		d := now.Sub(since)
		rep.stalled += d
		rep.longest = max(rep.longest, d)
		rep.stallLog = append(rep.stallLog, fmt.Sprintf("%.1f s at %.1f MiB: %.1f s", stallAt.Seconds(), float64(stallPos)/(1<<20), d.Seconds()))
	}
	seeks := opts.seeks
	var carry float64 // fractional bytes played
	ticker := time.NewTicker(playerTick)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return rep, ctx.Err()
		case <-ticker.C:
		}
		now := time.Now()
		elapsed, dt := now.Sub(start), now.Sub(last)
		last = now
		p.mu.Lock()
		err, played, fetched := p.err, p.played, p.fetched
		rep.delivered = p.delivered
		if rep.firstByte == 0 && !p.firstAt.IsZero() {
			rep.firstByte = p.firstAt.Sub(start)
		}
		p.mu.Unlock()
		if err != nil {
			return rep, err
		}
		if elapsed >= opts.duration || played >= size {
			if state == stalled {
				endStall(now)
			}
			return rep, nil
		}
		if len(seeks) > 0 && elapsed >= seeks[0].at {
			s := seeks[0]
			seeks = seeks[1:]
			stopFetch()
			if state == stalled {
				endStall(now)
			}
			to := max(0, min(s.to(played, size), size-1))
			p.mu.Lock()
			p.played, p.fetched = to, to
			p.mu.Unlock()
			stopFetch = p.startFetch(ctx, to)
			rep.seekNames = append(rep.seekNames, s.name)
			state, since, carry = seeking, now, 0
			continue
		}
		buffered := fetched - played
		ready := func(d time.Duration) bool { return buffered >= need(d) || fetched >= size }
		switch state {
		case starting:
			if ready(opts.startAfter) {
				rep.startup = elapsed
				state = playing
			}
		case playing:
			rep.watched += dt
			carry += rate * dt.Seconds()
			step := int64(carry)
			carry -= float64(step)
			played = min(played+step, fetched)
			p.mu.Lock()
			p.played = played
			p.mu.Unlock()
			if played >= fetched && fetched < size {
				rep.stalls++
				state, since, stallAt, stallPos = stalled, now, elapsed, played
				if opts.onStall != nil {
					opts.onStall(played)
				}
			}
		case stalled:
			if ready(opts.resumeAfter) {
				endStall(now)
				state = playing
			}
		case seeking:
			if ready(opts.resumeAfter) {
				rep.seeks = append(rep.seeks, now.Sub(since))
				state = playing
			}
		}
	}
}

// startFetch starts fetching from off on; the function it returns stops
// the fetch and waits for it to end.
func (p *player) startFetch(ctx context.Context, off int64) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go p.fetch(ctx, off, done)
	return func() {
		cancel()
		<-done
	}
}

// fetch GETs the file from off on and reads it into the player's buffer
// while there is room, until ctx ends, the file ends or something fails
// (p.err). It closes done when it returns.
func (p *player) fetch(ctx context.Context, off int64, done chan<- struct{}) {
	defer close(done)
	fail := func(err error) {
		if ctx.Err() != nil {
			return // a seek or the end: not a failure
		}
		p.mu.Lock()
		if p.err == nil {
			p.err = err
		}
		p.mu.Unlock()
	}
	req, err := testutil.NewRequest(ctx, http.MethodGet, p.url, nil, "Range", fmt.Sprintf("bytes=%d-", off))
	if err != nil {
		fail(err)
		return
	}
	resp, err := p.client.Do(req)
	if err != nil {
		fail(err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent {
		fail(fmt.Errorf("GET %s at %d: status %d; want 206", p.url, off, resp.StatusCode))
		return
	}
	size := int64(len(p.content))
	room := int64(float64(p.opts.rate) * p.opts.bufferMax.Seconds())
	buf := make([]byte, 64<<10)
	pos := off
	ticker := time.NewTicker(playerTick)
	defer ticker.Stop()
	for pos < size {
		p.mu.Lock()
		free := room - (pos - p.played)
		p.mu.Unlock()
		if free <= 0 {
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
			}
			continue
		}
		n, err := resp.Body.Read(buf[:min(int64(len(buf)), free, size-pos)])
		if n > 0 {
			if !bytes.Equal(buf[:n], p.content[pos:pos+int64(n)]) {
				fail(fmt.Errorf("GET %s: bytes differ in [%d, %d)", p.url, pos, pos+int64(n)))
				return
			}
			pos += int64(n)
			p.mu.Lock()
			p.fetched = pos
			if p.delivered == 0 {
				p.firstAt = time.Now()
			}
			p.delivered += int64(n)
			p.mu.Unlock()
		}
		if errors.Is(err, io.EOF) && pos < size {
			fail(fmt.Errorf("GET %s: body ended at %d of %d", p.url, pos, size))
			return
		}
		if err != nil && !errors.Is(err, io.EOF) {
			fail(fmt.Errorf("GET %s: reading at %d: %w", p.url, pos, err))
			return
		}
	}
}
