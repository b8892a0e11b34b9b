package stream

import (
	"context"
	"errors"
	"math"
	"math/bits"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
	"go.uber.org/atomic"

	"github.com/memtorrent/memtorrent/lookbehind"
	"github.com/memtorrent/memtorrent/storage/memory"
)

// Sizing of readahead and pins (see the package doc).
const (
	readaheadMedia = 60 * time.Second // readahead bound at Options.Bitrate
	pinMax         = 2 << 20          // head and tail pins: at most this...
	pinShare       = 100              // ...and at most 1/pinShare of the capacity
)

var (
	errClosed = errors.New("stream: handler closed")
	errBusy   = errors.New("stream: every session is busy")
)

// sessionKey names the sessions of one client on one file. It holds the
// torrent itself, not only its info hash, so that the sessions of a torrent
// that was dropped never serve the one added again in its place.
type sessionKey struct {
	client string // "session=<value>" or "<remote IP> <User-Agent>"
	t      *torrent.Torrent
	ih     metainfo.Hash // t's
	file   int
}

// clientID returns the client part of a request's session key.
func clientID(r *http.Request) string {
	if v := r.URL.Query().Get("session"); v != "" {
		return "session=" + v
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return host + " " + r.UserAgent()
}

// session is one player's playback of one file: a playhead with its piece
// priorities, a storage window and a lookbehind that outlive single
// requests. The request that holds the session (busy, handed over under
// Handler.mu) is the only user of the fields it owns; close runs after the
// session left Handler.sessions.
type session struct {
	// These never change after acquire.
	id   uint64
	key  sessionKey
	h    *Handler
	ts   *torState
	file *torrent.File
	geom lookbehind.File

	// Owned by the request holding the session, then by close.
	mt     *memory.Torrent // nil when the torrent's storage is not h.mem
	leaves bool            // the torrent is v2 or hybrid: its blocks can be proven by leaf hashes (set by open)
	// Under VerifyPlayhead with leaves, readEarly's wait for leaf hashes:
	// the piece it is for, when it ends, and whether the last one ended
	// without them. Used by one read at a time, as pos.
	gracePiece   int
	graceEnd     time.Time
	noLeafHashes bool
	win          *memory.Readahead // nil with mt
	pinned       bool              // holds a reference on the file's pins
	pos          int64             // the playhead: where the last read ended, in the file
	readahead    int64             // bytes from the playhead on: prioritised and the window
	budget       int64             // lookbehind bytes
	piece        int               // playhead piece when the window was last set; -1 none
	play         playback          // the player's rate and buffer, learned from its reads
	urgent       int64             // bytes from the playhead on that are urgent
	prios        priorities        // when the window was last set

	// Figures for the status, written by the owner.
	position atomic.Int64   // the playhead
	requests atomic.Int64   // requests served
	seeks    atomic.Int64   // playhead moves other than by reading
	raBytes  atomic.Int64   // readahead
	buffered atomic.Int64   // the player's buffer estimate, in nanoseconds; bufferedUnknownNs before the first read
	rate     atomic.Float64 // bytes per second: the learned playback rate, or the one assumed until then
	learned  atomic.Bool    // rate was learned from the player's reads
	share    atomic.String  // the sharing rule's class at the last move (priorities.class); empty before

	// Guarded by Handler.mu.
	busy     bool
	lastUsed time.Time
	wait     waitState
}

// acquire hands the caller a session of key for a request whose range
// starts at start: the idle session of key whose playhead is nearest to start,
// or a new one. It returns errBusy when MaxSessions sessions exist and all
// are busy, and errClosed after Close. The caller must release the session.
func (h *Handler) acquire(key sessionKey, f *torrent.File, geom lookbehind.File, start int64) (*session, error) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, errClosed
	}
	var best *session
	for _, s := range h.sessions {
		if s.key == key && !s.busy && (best == nil || dist(s.position.Load(), start) < dist(best.position.Load(), start)) {
			best = s
		}
	}
	if best != nil {
		best.busy = true
		h.mu.Unlock()
		return best, nil
	}
	var victim *session
	if len(h.sessions) >= h.opts.MaxSessions {
		for _, s := range h.sessions {
			if !s.busy && (victim == nil || s.lastUsed.Before(victim.lastUsed)) {
				victim = s
			}
		}
		if victim == nil {
			h.mu.Unlock()
			return nil, errBusy
		}
		h.sessions = slices.DeleteFunc(h.sessions, func(s *session) bool { return s == victim })
	}
	ts := h.holdTorStateLocked(key.t)
	h.nextID++
	now := time.Now()
	s := &session{id: h.nextID, key: key, h: h, ts: ts, file: f, geom: geom, piece: -1, gracePiece: -1, busy: true, lastUsed: now}
	s.buffered.Store(bufferedUnknownNs)
	h.sessions = append(h.sessions, s)
	h.numSessions.Store(int64(len(h.sessions)))
	h.readersBy[key.ih]++
	h.mu.Unlock()

	if victim != nil {
		h.log.Debug("stream: ending least recently used idle session for a new one", "session", victim.id, "client", victim.key.client)
		victim.close()
	}
	s.open()
	return s, nil
}

func dist(a, b int64) int64 {
	if a > b {
		return a - b
	}
	return b - a
}

// release ends the caller's hold on s. A session whose storage failed, or
// released after Close, is closed.
func (h *Handler) release(s *session, broken bool) {
	h.mu.Lock()
	s.busy = false
	s.lastUsed = time.Now()
	drop := h.closed || broken
	if drop {
		h.sessions = slices.DeleteFunc(h.sessions, func(o *session) bool { return o == s })
		h.numSessions.Store(int64(len(h.sessions)))
	}
	h.mu.Unlock()
	if drop {
		s.close()
	}
}

// reapIdle closes the sessions idle for Options.IdleTimeout at now. Tests
// call it with a time in the future to expire sessions.
func (h *Handler) reapIdle(now time.Time) {
	h.mu.Lock()
	var idle []*session
	h.sessions = slices.DeleteFunc(h.sessions, func(s *session) bool {
		if !s.busy && now.Sub(s.lastUsed) >= h.opts.IdleTimeout {
			idle = append(idle, s)
			return true
		}
		return false
	})
	h.numSessions.Store(int64(len(h.sessions)))
	h.mu.Unlock()
	for _, s := range idle {
		h.log.Debug("stream: session idle, ending it", "session", s.id, "client", s.key.client)
		s.close()
	}
}

// open creates the session's window and pins. It runs once, by the request
// that created the session.
func (s *session) open() {
	h := s.h
	h.readers.Inc()
	mt, ok := h.mem.Torrent(s.key.ih)
	if !ok {
		return
	}
	s.mt, s.win = mt, mt.NewReadahead()
	if info := s.key.t.Info(); info != nil && info.HasV2() {
		s.leaves = true
	}
	if h.opts.Verify == VerifyPlayhead {
		mt.OnUnverifiedFailure(h.unverifiedFailed(s.key.ih.HexString()))
	}
	errs := s.ts.pinFile(mt, s.key.file, s.geom, h.mem.Stats().Capacity)
	s.pinned = true
	for _, err := range errs {
		if errors.Is(err, memory.ErrNoSpace) {
			h.log.Info("stream: no budget to pin file head or tail", "infohash", s.key.ih, "file", s.key.file, "err", err)
		} else {
			h.log.Warn("stream: pinning file head or tail", "infohash", s.key.ih, "file", s.key.file, "err", err)
		}
	}
}

// close releases everything the session holds. It runs once, after the
// session left Handler.sessions, by whoever removed it.
func (s *session) close() {
	h := s.h
	s.ts.setWindow(s.key.t, s, window{})
	if s.win != nil {
		s.win.Close()
		if err := s.ts.setLookbehind(s, lookbehind.Range{}); err != nil {
			h.log.Debug("stream: dropping session lookbehind", "session", s.id, "err", err)
		}
	}
	if s.pinned {
		s.ts.unpinFile(s.key.file)
	}
	h.letGoTorState(s.key.t, s.ts)
}

// holdTorStateLocked returns t's torState, creating it, and takes a
// reference on it, which letGoTorState gives back. h.mu must be held.
func (h *Handler) holdTorStateLocked(t *torrent.Torrent) *torState {
	ts := h.torrents[t]
	if ts == nil {
		ts = &torState{
			lb:         make(map[*session]lookbehind.Range),
			pins:       make(map[int]*filePins),
			wins:       make(map[*session]window),
			applied:    make(map[int]torrent.PiecePriority),
			unverified: make(map[int]struct{}),
		}
		h.torrents[t] = ts
	}
	ts.refs++
	return ts
}

// letGoTorState gives back a reference holdTorStateLocked took on ts, t's;
// the last one forgets it.
func (h *Handler) letGoTorState(t *torrent.Torrent, ts *torState) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ts.refs--
	if ts.refs == 0 && h.torrents[t] == ts {
		delete(h.torrents, t)
	}
}

// abandon gives up the session's window when its player closed the
// connection mid-read: the pieces ahead of the playhead are no longer
// downloaded first nor kept from eviction. The session stays for the
// player's next request, whose first read declares the window again; the
// lookbehind and pins stay, and the storage window keeps the playhead so
// that a backward seek still counts lookbehind hits. Called by the holder of
// the busy session.
func (s *session) abandon() {
	s.ts.setWindow(s.key.t, s, window{})
	if s.win != nil {
		if err := s.win.Clear(); err != nil {
			s.h.log.Debug("stream: clearing storage window", "session", s.id, "err", err)
		}
	}
	s.piece = -1
}

// begin prepares the session for a request.
func (s *session) begin() {
	s.requests.Inc()
	s.resize()
}

// resize recomputes the readahead and lookbehind budget from the capacity
// and the number of sessions; a change makes the next move declare the
// window again.
func (s *session) resize() {
	h := s.h
	sessions := int(h.numSessions.Load())
	capacity := h.mem.Stats().Capacity
	if ra := readahead(h.opts, capacity, s.geom.PieceLength, sessions, s.play.rate); ra != s.readahead {
		s.readahead = ra
		s.raBytes.Store(ra)
		s.piece = -1
	}
	if b := lookbehindBudget(h.opts, capacity, sessions); b != s.budget {
		s.budget = b
		s.piece = -1
	}
}

// readAt reads the file at pos into p, up to the end of the piece holding
// pos, waiting for the data until ctx ends or the torrent is dropped (see
// ReadPiece); it moves the playhead to pos first, then past the bytes read.
// p must not pass the end of the file.
func (s *session) readAt(ctx context.Context, p []byte, pos int64) (int, error) {
	if pos != s.pos {
		s.pos = pos
		s.position.Store(pos)
		s.seeks.Inc()
		s.play.seek(time.Now())
	}
	s.moved() // declare the window before waiting for its first piece
	start := time.Now()
	s.startWait(int((s.geom.Offset + pos) / s.geom.PieceLength))
	// A read that waits long means the player's buffer drains: its urgent
	// pieces come first whatever the sharing rule said at the last move.
	promote := time.AfterFunc(promoteAfter, func() { s.ts.promote(s.key.t, s) })
	var n int
	var err error
	switch {
	case s.mt != nil && s.h.opts.Verify == VerifyPlayhead:
		n, err = s.readEarly(ctx, p, s.geom.Offset+pos, false)
	case s.mt != nil && s.leaves:
		n, err = s.readEarly(ctx, p, s.geom.Offset+pos, true)
	default:
		n, err = readPiece(ctx, s.key.t, p, s.geom.Offset+pos, s.mt != nil)
	}
	promote.Stop()
	s.endWait()
	now := time.Now()
	waited := now.Sub(start)
	s.h.recordWait(waited)
	s.play.read(now, n, waited)
	s.pos += int64(n)
	s.position.Store(s.pos)
	s.moved()
	return n, err
}

// moved tells the torrent client and the storage where the playhead is
// when it has entered another piece (or the sizes changed): the pieces to
// download first, the storage's reader window from it on, and the
// lookbehind behind it. Sizes follow the number of sessions.
func (s *session) moved() {
	piece := int((s.geom.Offset + s.pos) / s.geom.PieceLength)
	rate := s.play.rateOr(s.fallbackRate())
	buffered := s.play.buffered(time.Now(), rate)
	s.buffered.Store(int64(buffered))
	s.rate.Store(rate)
	s.learned.Store(s.play.rate > 0)
	prios := sharePriorities(buffered, s.h.neediest())
	s.share.Store(prios.class())
	if piece == s.piece && s.prios == prios {
		return
	}
	s.resize()
	s.piece = piece
	s.prios = prios
	s.urgent = max(s.geom.PieceLength, int64(rate*urgentMedia.Seconds()))
	s.ts.setWindow(s.key.t, s, s.wanted())
	if s.win == nil {
		return
	}
	log := s.h.log
	if err := s.win.Set(s.geom.Offset+s.pos, min(s.readahead, s.geom.Length-s.pos)); err != nil {
		log.Debug("stream: moving storage window", "session", s.id, "err", err)
	}
	r, err := lookbehind.Pieces(s.geom, s.pos, s.budget)
	if err != nil {
		log.Warn("stream: computing lookbehind", "session", s.id, "err", err)
		return
	}
	if err := s.ts.setLookbehind(s, r); err != nil {
		log.Debug("stream: setting lookbehind", "session", s.id, "err", err)
	}
}

// wanted returns the pieces of the readahead from the playhead on, clamped
// to the file, its urgent pieces first, with the priorities of the last
// move.
func (s *session) wanted() window {
	n := min(s.readahead, s.geom.Length-s.pos)
	if n <= 0 {
		return window{}
	}
	begin := s.geom.Offset + s.pos
	end := func(n int64) int { return int((begin + n + s.geom.PieceLength - 1) / s.geom.PieceLength) }
	return window{
		pieceRange: pieceRange{begin: int(begin / s.geom.PieceLength), end: end(n)},
		urgentEnd:  end(min(s.urgent, n)),
		prios:      s.prios,
	}
}

// fallbackRate is the rate assumed before one is learned: Options.Bitrate,
// or defaultRate.
func (s *session) fallbackRate() float64 {
	if s.h.opts.Bitrate > 0 {
		return float64(s.h.opts.Bitrate) / 8
	}
	return defaultRate
}

// readahead is a session's readahead (see the package doc); learned is the
// session's learned rate in bytes per second, 0 if none.
func readahead(o Options, capacity, pieceLength int64, sessions int, learned float64) int64 {
	ra := min(o.ReadaheadCap, capacity/2/int64(max(sessions, 1)))
	switch {
	case o.Bitrate > 0:
		ra = min(ra, playbackBytes(readaheadMedia, o.Bitrate/8))
	case learned > 0:
		ra = min(ra, int64(learned*readaheadLearned.Seconds()))
	}
	return max(ra, 2*pieceLength)
}

// playbackBytes returns the bytes that d of playback take at bytesPerSecond
// (a bitrate in bits per second divided by 8), rounded down and saturating
// at math.MaxInt64; 0 if either is negative.
func playbackBytes(d time.Duration, bytesPerSecond int64) int64 {
	if d < 0 || bytesPerSecond < 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(d), uint64(bytesPerSecond))
	if hi >= uint64(time.Second) {
		return math.MaxInt64
	}
	q, _ := bits.Div64(hi, lo, uint64(time.Second))
	return int64(min(q, math.MaxInt64))
}

// lookbehindBudget is a session's lookbehind budget: Options.LookbehindBytes
// (or its default) split among the sessions.
func lookbehindBudget(o Options, capacity int64, sessions int) int64 {
	total := o.LookbehindBytes
	switch {
	case total < 0:
		return 0
	case total == 0:
		total = int64(memory.DefaultLookbehindShare * float64(capacity))
	}
	return total / int64(max(sessions, 1))
}

// pinExtents returns the byte ranges (in the torrent) to pin for a file:
// its head and tail, or the whole file when they would meet.
func pinExtents(f lookbehind.File, capacity int64) [][2]int64 {
	n := max(1, min(pinMax, capacity/pinShare))
	switch {
	case f.Length <= 0:
		return nil
	case f.Length <= 2*n:
		return [][2]int64{{f.Offset, f.Length}}
	}
	return [][2]int64{{f.Offset, n}, {f.Offset + f.Length - n, n}}
}

// torState is what the sessions on one torrent share: their lookbehinds,
// whose union the storage gets, the pins of the files they play, and the
// piece priorities their playheads set.
type torState struct {
	refs int // sessions on the torrent; guarded by Handler.mu

	mu   sync.Mutex // guards the two fields below; held across calls into memory.Torrent, never into the torrent client
	lb   map[*session]lookbehind.Range
	pins map[int]*filePins // by file index

	prioMu     sync.Mutex                    // guards the fields below; held across Piece.SetPriority, so that calls apply in order
	wins       map[*session]window           // the pieces each session wants
	applied    map[int]torrent.PiecePriority // the priorities set on pieces, None absent
	unverified map[int]struct{}              // pieces served before their hash and not yet complete (see servedUnverified)
}

// pieceRange is the piece indexes [begin, end).
type pieceRange struct{ begin, end int }

func (r pieceRange) empty() bool { return r.begin >= r.end }

// window is the pieces a session wants: begin at prios.first, the rest of
// [begin, urgentEnd) at prios.urgent, [urgentEnd, end) at prios.ahead.
type window struct {
	pieceRange
	urgentEnd int
	prios     priorities
}

// priority returns the priority w wants for piece i, PiecePriorityNone
// outside it.
func (w window) priority(i int) torrent.PiecePriority {
	switch {
	case i < w.begin || i >= w.end:
		return torrent.PiecePriorityNone
	case i == w.begin:
		return w.prios.first
	case i < w.urgentEnd:
		return w.prios.urgent
	}
	return w.prios.ahead
}

// setWindow makes w the pieces s wants (empty: none) and sets the priority
// of each piece whose wanted priority changed on t: the highest over the
// torrent's sessions (window.priority); PiecePriorityNone for the pieces no
// session wants any more. Once t is dropped it only forgets.
func (ts *torState) setWindow(t *torrent.Torrent, s *session, w window) {
	ts.prioMu.Lock()
	defer ts.prioMu.Unlock()
	ts.pruneUnverifiedLocked(t)
	ts.setWindowLocked(t, s, w)
}

// promote gives s's window the priorities of the neediest session
// (needy), if it has others.
func (ts *torState) promote(t *torrent.Torrent, s *session) {
	ts.prioMu.Lock()
	defer ts.prioMu.Unlock()
	w, ok := ts.wins[s]
	if !ok || w.prios == needy {
		return
	}
	w.prios = needy
	ts.setWindowLocked(t, s, w)
}

// setWindowLocked is setWindow; ts.prioMu must be held.
func (ts *torState) setWindowLocked(t *torrent.Torrent, s *session, w window) {
	old := ts.wins[s]
	r := w.pieceRange
	if old == w || old.empty() && r.empty() {
		return
	}
	if r.empty() {
		delete(ts.wins, s)
	} else {
		ts.wins[s] = w
	}
	update := func(r pieceRange) {
		for i := r.begin; i < r.end; i++ {
			ts.applyLocked(t, i)
		}
	}
	switch o := old.pieceRange; {
	case o.empty():
		update(r)
	case r.empty():
		update(o)
	case o.end < r.begin || r.end < o.begin:
		update(o)
		update(r)
	default:
		update(pieceRange{min(o.begin, r.begin), max(o.end, r.end)})
	}
}

// sessionWants reports whether a session other than self wants pieces of
// the torrent.
func (ts *torState) sessionWants(self *session) bool {
	ts.prioMu.Lock()
	defer ts.prioMu.Unlock()
	for s := range ts.wins {
		if s != self {
			return true
		}
	}
	return false
}

// want returns the priority the sessions want for piece i: at least
// PiecePriorityNormal for a piece served before its hash. ts.prioMu must be
// held.
func (ts *torState) want(i int) torrent.PiecePriority {
	want := torrent.PiecePriorityNone
	if _, ok := ts.unverified[i]; ok {
		want = torrent.PiecePriorityNormal
	}
	for _, w := range ts.wins {
		want = max(want, w.priority(i))
	}
	return want
}

// filePins are the pins of one file and the sessions using them.
type filePins struct {
	refs int
	pins []*memory.Pin
}

// setLookbehind makes r the lookbehind of s (an empty r removes it) and
// gives the storage the union over the torrent's sessions. It returns
// without calling the storage when s's range is unchanged.
func (ts *torState) setLookbehind(s *session, r lookbehind.Range) error {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	old, had := ts.lb[s]
	switch {
	case r.Len() == 0 && !had, had && old == r:
		return nil
	case r.Len() == 0:
		delete(ts.lb, s)
	default:
		ts.lb[s] = r
	}
	switch len(ts.lb) {
	case 0:
		s.mt.ClearLookbehind()
		return nil
	case 1:
		for _, r := range ts.lb {
			return s.mt.SetLookbehindRange(r.Begin, r.End)
		}
	}
	var pieces []int
	for _, r := range ts.lb {
		for i := r.Begin; i < r.End; i++ {
			pieces = append(pieces, i)
		}
	}
	slices.Sort(pieces)
	return s.mt.SetLookbehind(slices.Compact(pieces))
}

// pinFile takes a reference on the pins of file, pinning its head and tail
// in mt if it is the first. It returns the pins the storage refused.
func (ts *torState) pinFile(mt *memory.Torrent, file int, f lookbehind.File, capacity int64) (errs []error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if fp := ts.pins[file]; fp != nil {
		fp.refs++
		return nil
	}
	fp := &filePins{refs: 1}
	ts.pins[file] = fp
	for _, e := range pinExtents(f, capacity) {
		p, err := mt.Pin(e[0], e[1])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		fp.pins = append(fp.pins, p)
	}
	return errs
}

// unpinFile drops a reference on the pins of file, releasing them with the
// last.
func (ts *torState) unpinFile(file int) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	fp := ts.pins[file]
	if fp == nil {
		return
	}
	if fp.refs--; fp.refs > 0 {
		return
	}
	for _, p := range fp.pins {
		p.Release()
	}
	delete(ts.pins, file)
}
