package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/atomic"

	"github.com/memtorrent/memtorrent/storage/memory"
)

// Defaults for Options.
const (
	DefaultIdleTimeout  = 30 * time.Second
	DefaultMaxSessions  = 16
	DefaultReadaheadCap = 32 << 20
	DefaultInfoTimeout  = 30 * time.Second
)

// retryAfter is the Retry-After of 503 responses, in seconds.
const retryAfter = "5"

// Options configure a Handler. The zero value of every field selects its
// default.
type Options struct {
	// IdleTimeout ends a session that has had no request for this long.
	// Default 30 s.
	IdleTimeout time.Duration
	// MaxSessions bounds the sessions alive at once. Default 16.
	MaxSessions int
	// LookbehindBytes is the lookbehind budget of all sessions together,
	// split evenly among them. Default memory.DefaultLookbehindShare of the
	// storage's capacity; negative disables lookbehind. The storage trims
	// lookbehind to its own share of the capacity in any case.
	LookbehindBytes int64
	// ReadaheadCap bounds one session's readahead. Default 32 MiB.
	ReadaheadCap int64
	// Bitrate is the media's bitrate in bits per second, if known; it bounds
	// the readahead to 60 s of media. Zero means unknown.
	Bitrate int64
	// InfoTimeout bounds how long a request waits for the info of a torrent
	// added by info hash. Default 30 s.
	InfoTimeout time.Duration
	// Verify says which bytes may reach a player: VerifyStrict (the
	// default) only bytes of pieces that passed their hash check,
	// VerifyPlayhead also the bytes of the playhead's piece as they arrive.
	Verify string
	// Logger receives what went wrong inside, at Debug to Error levels.
	// Default slog.Default().
	Logger *slog.Logger
	// Watchdog, when set, is asked why a read has waited WatchAfter for a
	// piece, and acts on it; /status and /metrics show its reasons and its
	// view of each torrent's peers. Set it to the *host.Client that made
	// the torrent client. Default none: waits are timed, not explained.
	Watchdog Watchdog
}

// withDefaults returns o with its zero fields defaulted, or an error naming
// a negative field.
func (o Options) withDefaults() (Options, error) {
	switch {
	case o.IdleTimeout < 0:
		return o, fmt.Errorf("stream: negative IdleTimeout %v", o.IdleTimeout)
	case o.MaxSessions < 0:
		return o, fmt.Errorf("stream: negative MaxSessions %d", o.MaxSessions)
	case o.ReadaheadCap < 0:
		return o, fmt.Errorf("stream: negative ReadaheadCap %d", o.ReadaheadCap)
	case o.Bitrate < 0:
		return o, fmt.Errorf("stream: negative Bitrate %d", o.Bitrate)
	case o.InfoTimeout < 0:
		return o, fmt.Errorf("stream: negative InfoTimeout %v", o.InfoTimeout)
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.MaxSessions == 0 {
		o.MaxSessions = DefaultMaxSessions
	}
	if o.ReadaheadCap == 0 {
		o.ReadaheadCap = DefaultReadaheadCap
	}
	if o.InfoTimeout == 0 {
		o.InfoTimeout = DefaultInfoTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Verify == "" {
		o.Verify = VerifyStrict
	}
	return o, checkVerify(o.Verify)
}

// Handler is the http.Handler of the package's routes (see the package doc).
// It is safe for concurrent use. Create it with New and Close it when done.
type Handler struct {
	// These never change after New.
	cl     *torrent.Client
	mem    *memory.Client
	opts   Options
	log    *slog.Logger
	mux    *http.ServeMux
	ctx    context.Context    // cancelled by Close; parent of every stream read
	cancel context.CancelFunc // cancels ctx
	done   chan struct{}      // closed when the background goroutine returns

	closeOnce   sync.Once
	isClosed    atomic.Bool  // mirrors closed, for a lock-free check per request
	readers     atomic.Int64 // playheads (one per session) created since New
	stalls      atomic.Int64 // torrent reads that waited longer than StallThreshold
	longestWait atomic.Int64 // nanoseconds: the longest wait of one torrent read
	// unverifiedBytes counts bytes served before their piece's hash check;
	// unverifiedFails the pieces that failed it afterwards.
	unverifiedBytes atomic.Int64
	// leafVerifiedBytes counts bytes served before their piece's hash
	// check that leaf hashes proved (see readEarly).
	leafVerifiedBytes atomic.Int64
	unverifiedFails   atomic.Int64
	numSessions       atomic.Int64 // len(sessions), for sizing readahead without the lock
	requests          sync.WaitGroup

	mu        sync.Mutex // guards the fields below
	closed    bool
	nextID    uint64
	sessions  []*session                     // at most opts.MaxSessions
	torrents  map[*torrent.Torrent]*torState // torrents with sessions
	readersBy map[metainfo.Hash]int64        // readers created per torrent since New
	rates     map[metainfo.Hash]rateSample   // download rate samples
	inflight  map[*inflight]struct{}         // stream requests being served
}

var _ http.Handler = (*Handler)(nil)

// New returns a Handler serving the torrents of cl whose storage is mem,
// and starts its background goroutine (idle reaper and rate sampler), which
// Close stops. mem should be cl's storage, both made by host.New, which
// tells cl of every eviction: a read of an evicted piece waits for that news
// before it asks for the piece again. Torrents whose storage is not mem are
// served too, without windows, lookbehind or pins. New fails if cl or mem is nil or an option is negative.
func New(cl *torrent.Client, mem *memory.Client, opts Options) (*Handler, error) {
	if cl == nil || mem == nil {
		return nil, errors.New("stream: New needs a torrent client and a memory client")
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &Handler{
		cl:        cl,
		mem:       mem,
		opts:      opts,
		log:       opts.Logger,
		mux:       http.NewServeMux(),
		ctx:       ctx,
		cancel:    cancel,
		done:      make(chan struct{}),
		torrents:  make(map[*torrent.Torrent]*torState),
		readersBy: make(map[metainfo.Hash]int64),
		rates:     make(map[metainfo.Hash]rateSample),
		inflight:  make(map[*inflight]struct{}),
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(&collector{h: h})
	h.mux.HandleFunc("GET /stream/{infohash}/{file}", h.serveIndex)
	h.mux.HandleFunc("GET /stream/{infohash}/path/{path...}", h.servePath)
	h.mux.HandleFunc("GET /status", h.serveStatus)
	h.mux.HandleFunc("GET /status/{infohash}", h.serveTorrentStatus)
	h.mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slogErrorLog{h.log}}))
	h.mux.HandleFunc("GET /playlist/{name}", h.servePlaylist)
	go h.loop(min(time.Second, max(opts.IdleTimeout/2, 10*time.Millisecond)))
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ew := &errorWriter{ResponseWriter: w, size: -1}
	if h.isClosed.Load() {
		unavailable(ew)
		return
	}
	h.mux.ServeHTTP(ew, r)
}

// Close ends every session, ends the requests in flight, waits for them and
// joins the Handler's goroutine. It is idempotent and returns nil; a second
// call returns once the first has finished.
func (h *Handler) Close() error {
	h.closeOnce.Do(h.close)
	return nil
}

func (h *Handler) close() {
	h.mu.Lock()
	h.closed = true
	h.isClosed.Store(true)
	var idle []*session
	h.sessions = slices.DeleteFunc(h.sessions, func(s *session) bool {
		if !s.busy {
			idle = append(idle, s)
			return true
		}
		return false // closed by release
	})
	h.numSessions.Store(int64(len(h.sessions)))
	flights := make([]*inflight, 0, len(h.inflight))
	for f := range h.inflight {
		flights = append(flights, f)
	}
	h.mu.Unlock()

	h.cancel()
	for _, f := range flights {
		f.abort()
	}
	for _, s := range idle {
		s.close()
	}
	<-h.done
	h.requests.Wait()
}

// loop reaps idle sessions and samples download rates every interval
// until Close.
func (h *Handler) loop(interval time.Duration) {
	defer close(h.done)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-h.ctx.Done():
			return
		case now := <-tick.C:
			h.reapIdle(now)
			h.sample(now)
			h.watch(now)
		}
	}
}

// lookupTorrent returns the torrent named by the request's {infohash},
// waiting for its info up to Options.InfoTimeout. On failure it has written
// the response (404 or 503) and returns false.
func (h *Handler) lookupTorrent(w http.ResponseWriter, r *http.Request) (*torrent.Torrent, bool) {
	var ih metainfo.Hash
	if err := ih.FromHexString(r.PathValue("infohash")); err != nil {
		notFound(w)
		return nil, false
	}
	t, ok := h.cl.Torrent(ih)
	if !ok {
		notFound(w)
		return nil, false
	}
	select {
	case <-t.GotInfo():
		return t, true
	default:
	}
	timer := time.NewTimer(h.opts.InfoTimeout)
	defer timer.Stop()
	select {
	case <-t.GotInfo():
		return t, true
	case <-t.Closed():
		notFound(w)
	case <-timer.C:
		h.log.Info("stream: no torrent info in time", "infohash", ih, "timeout", h.opts.InfoTimeout)
		unavailable(w)
	case <-r.Context().Done():
		unavailable(w)
	case <-h.ctx.Done():
		unavailable(w)
	}
	return nil, false
}

// notFound sends 404.
func notFound(w http.ResponseWriter) { httpError(w, http.StatusNotFound) }

// unavailable sends 503 with Retry-After.
func unavailable(w http.ResponseWriter) {
	w.Header().Set("Retry-After", retryAfter)
	httpError(w, http.StatusServiceUnavailable)
}

// httpError sends code with its status text as body.
func httpError(w http.ResponseWriter, code int) {
	http.Error(w, http.StatusText(code), code)
}

// errorWriter makes the body of every response with a status of 400 or
// more exactly http.StatusText of the status, whatever the code below wrote
// (ServeContent and ServeMux write their own texts), and gives every 416 a
// Content-Range. It is used by one request's goroutine.
type errorWriter struct {
	http.ResponseWriter
	size      int64 // the file's size for a 416's Content-Range; -1 unknown
	failed    bool  // a status >= 400 was written: swallow the rest
	writeFail bool  // a write to the connection failed: the client went away
}

func (w *errorWriter) WriteHeader(code int) {
	if code < http.StatusBadRequest || w.failed {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	w.failed = true
	hdr := w.Header()
	if code == http.StatusRequestedRangeNotSatisfiable && hdr.Get("Content-Range") == "" && w.size >= 0 {
		hdr.Set("Content-Range", fmt.Sprintf("bytes */%d", w.size))
	}
	hdr.Del("Content-Length")
	hdr.Set("Content-Type", "text/plain; charset=utf-8")
	hdr.Set("X-Content-Type-Options", "nosniff")
	w.ResponseWriter.WriteHeader(code)
	fmt.Fprintln(w.ResponseWriter, http.StatusText(code))
}

func (w *errorWriter) Write(p []byte) (int, error) {
	if w.failed {
		return len(p), nil
	}
	n, err := w.ResponseWriter.Write(p)
	if err != nil {
		w.writeFail = true
	}
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (w *errorWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// slogErrorLog adapts a slog.Logger to promhttp.Logger.
type slogErrorLog struct{ log *slog.Logger }

func (l slogErrorLog) Println(v ...any) {
	l.log.Error("stream: serving metrics", "err", fmt.Sprint(v...))
}
