package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"

	"github.com/memtorrent/memtorrent/host"
	"github.com/memtorrent/memtorrent/storage/memory"
	"github.com/memtorrent/memtorrent/stream"
)

// This file keeps the torrents of the server: those of Server.Add
// (kept until the end) and those added over HTTP, which are dropped after
// Config.Idle without a player so that their memory returns to the budget.

// Errors of app.open and app.waitInfo.
var (
	errBadLink     = errors.New("not a magnet URI or an info hash")
	errInfoTimeout = errors.New("no metadata in time")
	errDropped     = errors.New("torrent dropped")
)

// app is the registry of the server's torrents and its HTTP APIs: the
// torrent client, its storage and stream handler, and what it knows of
// each torrent beyond them. It is safe for concurrent use.
type app struct {
	// These never change after start.
	hc          *host.Client // drops go through it (host.Client.Drop)
	cl          *torrent.Client
	mem         *memory.Client
	h           *stream.Handler
	log         *slog.Logger
	token       string
	capacity    int64
	readahead   int64
	idle        time.Duration // 0: never drop
	infoTimeout time.Duration
	maxTorrents int           // most torrents; 0 no cap (-max-torrents)
	done        chan struct{} // closed when the reaper returns
	stop        context.CancelFunc

	mu      sync.Mutex // guards the field below
	entries map[metainfo.Hash]*entry
}

// entry is what the server knows of one torrent beyond the client. Its
// fields are guarded by app.mu.
type entry struct {
	t                            *torrent.Torrent
	title, poster, data, catName string
	added                        time.Time
	lastUsed                     time.Time
	pinned                       bool  // from Server.Add: never dropped
	inflight                     int   // requests using the torrent now
	rejected                     error // the storage refused its info
}

// newApp returns the registry of cfg (with its defaults), without a client
// yet: only rejectInfo may be called before start.
func newApp(cfg Config) *app {
	return &app{
		log: cfg.Logger, token: cfg.Token,
		capacity: cfg.Capacity, readahead: cfg.Readahead, idle: cfg.Idle, infoTimeout: cfg.InfoTimeout,
		maxTorrents: cfg.MaxTorrents, done: make(chan struct{}),
		entries: make(map[metainfo.Hash]*entry),
	}
}

// start gives a the client and the stream handler and starts its idle
// reaper, which close stops.
func (a *app) start(hc *host.Client, h *stream.Handler) {
	ctx, cancel := context.WithCancel(context.Background())
	a.hc, a.cl, a.mem, a.h, a.stop = hc, hc.Torrent, hc.Storage, h, cancel
	go a.reap(ctx, reapInterval(a.idle))
}

// reapInterval is how often the reaper looks for idle torrents.
func reapInterval(idle time.Duration) time.Duration {
	if idle <= 0 {
		return time.Second
	}
	return min(max(idle/4, 10*time.Millisecond), 5*time.Second)
}

// close stops the reaper.
func (a *app) close() {
	a.stop()
	<-a.done
}

// meta is what a client may say about a torrent it adds.
type meta struct {
	title, poster, data, category string
}

// open adds spec to the client unless it has the torrent, and returns it
// counted as in use: call release when done. A torrent added here is
// dropped after Config.Idle unused; pinned marks a torrent of Server.Add.
// info, when known (a .torrent), is checked to fit in the capacity first.
func (a *app) open(spec *torrent.TorrentSpec, info *metainfo.Info, m meta, pinned bool) (*torrent.Torrent, error) {
	if info != nil {
		if err := CheckPieceFits(info.BestName(), info, a.capacity); err != nil {
			return nil, err
		}
	}
	if _, have := a.cl.Torrent(spec.InfoHash); !have && !pinned {
		// Concurrent adds may each pass this check: the cap is soft by their number.
		if err := CheckTorrentCount(len(a.cl.Torrents()), a.maxTorrents); err != nil {
			return nil, err
		}
	}
	t, _, err := a.hc.AddTorrentSpec(spec) // remembers x.pe for redials
	if err != nil {
		return nil, fmt.Errorf("adding torrent %s: %w", spec.InfoHash.HexString(), err)
	}
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	e := a.entries[t.InfoHash()]
	if e == nil || e.t != t {
		e = &entry{t: t, added: now, title: spec.DisplayName}
		a.entries[t.InfoHash()] = e
	}
	e.pinned = e.pinned || pinned
	if m.title != "" {
		e.title = m.title
	}
	if m.poster != "" {
		e.poster = m.poster
	}
	if m.data != "" {
		e.data = m.data
	}
	if m.category != "" {
		e.catName = m.category
	}
	e.inflight++
	e.lastUsed = now
	return t, nil
}

// use returns the torrent with the info hash counted as in use, or false;
// call release when done.
func (a *app) use(ih metainfo.Hash) (*torrent.Torrent, bool) {
	t, ok := a.cl.Torrent(ih)
	if !ok {
		return nil, false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	e := a.entries[ih]
	if e == nil || e.t != t {
		e = &entry{t: t, added: time.Now(), pinned: true} // added by someone else: kept
		a.entries[ih] = e
	}
	e.inflight++
	e.lastUsed = time.Now()
	return t, true
}

// release ends a use of t begun by open or use.
func (a *app) release(t *torrent.Torrent) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if e := a.entries[t.InfoHash()]; e != nil && e.t == t {
		e.inflight--
		e.lastUsed = time.Now()
	}
}

// entryOf returns a copy of t's entry, or a zero entry.
func (a *app) entryOf(t *torrent.Torrent) entry {
	a.mu.Lock()
	defer a.mu.Unlock()
	if e := a.entries[t.InfoHash()]; e != nil && e.t == t {
		return *e
	}
	return entry{t: t}
}

// drop drops t from the client; its memory returns to the budget.
func (a *app) drop(t *torrent.Torrent) {
	a.mu.Lock()
	if e := a.entries[t.InfoHash()]; e != nil && e.t == t {
		delete(a.entries, t.InfoHash())
	}
	a.mu.Unlock()
	a.hc.Drop(t)
}

// rejectInfo records that the storage refused the info of the torrent ih
// (its pieces do not fit): the reaper drops it, waiters give up. Called by
// the storage under the torrent client's lock: it takes only app.mu.
func (a *app) rejectInfo(ih metainfo.Hash, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if e := a.entries[ih]; e != nil {
		e.rejected = err
	}
}

func (a *app) rejectedErr(t *torrent.Torrent) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if e := a.entries[t.InfoHash()]; e != nil && e.t == t {
		return e.rejected
	}
	return nil
}

// waitInfo waits up to the metadata timeout for t's info.
func (a *app) waitInfo(ctx context.Context, t *torrent.Torrent) error {
	select {
	case <-t.GotInfo():
		return nil
	default:
	}
	timer := time.NewTimer(a.infoTimeout)
	defer timer.Stop()
	tick := time.NewTicker(50 * time.Millisecond) // for rejections
	defer tick.Stop()
	for {
		select {
		case <-t.GotInfo():
			return nil
		case <-t.Closed():
			return errDropped
		case <-timer.C:
			return errInfoTimeout
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			if err := a.rejectedErr(t); err != nil {
				return err
			}
		}
	}
}

// reap drops, every interval until ctx ends, the torrents added over HTTP
// that no request and no playback session has used for a.idle, those
// whose info the storage refused, and forgets the torrents dropped.
func (a *app) reap(ctx context.Context, interval time.Duration) {
	defer close(a.done)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			a.reapOnce(now)
		}
	}
}

func (a *app) reapOnce(now time.Time) {
	type cand struct {
		t        *torrent.Torrent
		lastUsed time.Time
		rejected bool
	}
	var cands []cand
	a.mu.Lock()
	for ih, e := range a.entries {
		select {
		case <-e.t.Closed():
			delete(a.entries, ih)
			continue
		default:
		}
		switch {
		case e.rejected != nil && e.inflight == 0:
			cands = append(cands, cand{e.t, e.lastUsed, true})
		case !e.pinned && a.idle > 0 && e.inflight == 0 && now.Sub(e.lastUsed) >= a.idle:
			cands = append(cands, cand{e.t, e.lastUsed, false})
		}
	}
	a.mu.Unlock()
	for _, c := range cands {
		ih := c.t.InfoHash()
		busy := !c.rejected && a.h.Sessions(ih) > 0
		a.mu.Lock()
		e := a.entries[ih]
		ok := e != nil && e.t == c.t && e.inflight == 0 && e.lastUsed.Equal(c.lastUsed)
		if ok && busy {
			e.lastUsed = now // idle counts from the last session's end
			ok = false
		}
		if ok {
			delete(a.entries, ih)
		}
		a.mu.Unlock()
		if !ok {
			continue
		}
		if c.rejected {
			a.log.Warn("dropping torrent: pieces larger than the capacity", "infohash", ih)
		} else {
			a.log.Info("dropping idle torrent", "infohash", ih, "idle", a.idle)
		}
		a.hc.Drop(c.t)
	}
}

// idleLeft returns how long t has been unused and how long before the
// reaper drops it (-1 when it never will).
func (a *app) idleLeft(t *torrent.Torrent, now time.Time) (idle, left time.Duration) {
	e := a.entryOf(t)
	if e.inflight > 0 || e.lastUsed.IsZero() {
		idle = 0
	} else {
		idle = now.Sub(e.lastUsed)
	}
	if e.pinned || a.idle <= 0 || e.lastUsed.IsZero() {
		return idle, -1
	}
	return idle, max(0, a.idle-idle)
}
