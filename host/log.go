package host

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/anacrolix/log"
	"github.com/anacrolix/torrent"
)

// UseLogger makes logger the torrent client's logger for both of the
// client's logging paths, and makes its handler's level govern both.
//
// v1.59.1 logs through cfg.Slogger and through cfg.Logger, an
// anacrolix/log Logger that the torrent, its connections and its DHT
// servers use (the DHT announce errors among them). Given only Slogger, the
// client bridges Logger to Slogger's handler with log.SlogHandlerAsHandler,
// which calls the handler's Handle without asking Enabled: every line at
// Warning or above is written whatever the handler's level (so -log-level
// error still printed each failed DHT announce), lines below Warning never
// reach the handler (so -log-level debug showed none of the library's debug
// lines), a line without a level panics, and so does a handler's error.
//
// UseLogger sets cfg.Slogger to logger and cfg.Logger to a Logger whose
// handler asks logger's handler Enabled for each line and hands it only
// the lines it wants, at the level the line was logged at (a line without
// a level at Info), and ignores the handler's errors as slog.Logger does.
// Its filter level is the lowest of Debug, Info, Warn and Error that the
// handler enables when UseLogger runs, so lines below it are dropped
// before the bridge; a handler whose level is lowered later still gets only
// lines at or above that. UseLogger changes no other field; call it before
// torrent.NewClient. A nil logger is a programming error: UseLogger panics.
func UseLogger(cfg *torrent.ClientConfig, logger *slog.Logger) {
	h := logger.Handler()
	cfg.Slogger = logger
	l := log.NewLogger()
	l.SetHandlers(slogBridge{h})
	cfg.Logger = l.WithFilterLevel(filterLevel(h))
}

// filterLevel returns the anacrolix/log level below which h wants nothing.
func filterLevel(h slog.Handler) log.Level {
	for _, l := range []struct {
		slog slog.Level
		log  log.Level
	}{
		{slog.LevelDebug, log.Debug},
		{slog.LevelInfo, log.Info},
		{slog.LevelWarn, log.Warning},
		{slog.LevelError, log.Error},
		{slog.LevelError + 1, log.Critical},
	} {
		if h.Enabled(context.Background(), l.slog) {
			return l.log
		}
	}
	return log.Disabled
}

// slogBridge is an anacrolix/log Handler that passes each record its slog
// handler enables to that handler. Safe for concurrent use if the slog
// handler is.
type slogBridge struct{ h slog.Handler }

func (b slogBridge) Handle(r log.Record) {
	var level slog.Level
	switch r.Level {
	case log.Debug:
		level = slog.LevelDebug
	case log.Warning:
		level = slog.LevelWarn
	case log.Error:
		level = slog.LevelError
	case log.Critical:
		level = slog.LevelError + 1
	default: // Info, and lines without a level
		level = slog.LevelInfo
	}
	ctx := context.Background()
	if !b.h.Enabled(ctx, level) {
		return
	}
	sr := slog.NewRecord(time.Now(), level, r.Msg.String(), 0)
	sr.AddAttrs(slog.Any("names", r.Names))
	_ = b.h.Handle(ctx, sr) // slog.Logger ignores handler errors too
}

// The limits of RateLimit: a message is let through at most RepeatLimit
// times per RepeatInterval.
const (
	RepeatLimit    = 5
	RepeatInterval = 10 * time.Minute
)

// maxRepeatKeys bounds the lines a rate limiter tracks at once; a line
// arriving while it tracks that many passes unlimited.
const maxRepeatKeys = 1000

// RateLimit returns a slog.Handler that passes records to next, except
// that a line repeated (the same level, message and attributes, its
// handler's and its own; only the time differs) is let through at most
// RepeatLimit times per RepeatInterval and dropped after that. The interval
// starts with the first record of the line let through. Once it has ended,
// the next record of the line, or else of any line, brings a record
// "suppressed K similar lines" at the line's level, with the message as
// attribute "like" and the line's attributes; a count of lines dropped in
// the last interval of a line never seen again is reported only if
// something is logged afterwards. Records next does not enable are dropped
// without being counted. The handlers derived with WithAttrs and WithGroup
// share the limits. Handle returns next's error. Safe for concurrent use if
// next is.
func RateLimit(next slog.Handler) slog.Handler {
	return newRateLimit(next, RepeatLimit, RepeatInterval)
}

func newRateLimit(next slog.Handler, limit int, interval time.Duration) *rateLimit {
	return &rateLimit{next: next, s: &repeats{
		limit:    limit,
		interval: interval,
		seen:     map[repeatKey]*repeat{},
	}}
}

// rateLimit is the handler RateLimit returns.
type rateLimit struct {
	next   slog.Handler // never changes
	s      *repeats     // shared with derived handlers
	prefix string       // the attributes and groups of WithAttrs and WithGroup, formatted
}

// repeats is the state of a rate limiter, shared by the handlers derived
// from it.
type repeats struct {
	limit    int           // never changes
	interval time.Duration // never changes

	mu        sync.Mutex // guards the fields below
	seen      map[repeatKey]*repeat
	lastSweep time.Time // when seen last lost its ended intervals
}

// repeatKey identifies a line.
type repeatKey struct {
	level slog.Level
	msg   string
	attrs string // the handler's prefix and the record's attributes, formatted
}

// repeat is a line's current interval.
type repeat struct {
	start      time.Time
	passed     int          // records let through since start
	suppressed int          // records dropped since start
	h          slog.Handler // passed the first record of the interval
	attrs      []slog.Attr  // of that record
}

// summary is a record "suppressed K similar lines" to write through h.
type summary struct {
	h slog.Handler
	r slog.Record
}

func (h *rateLimit) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

func (h *rateLimit) Handle(ctx context.Context, r slog.Record) error {
	if !h.next.Enabled(ctx, r.Level) {
		return nil
	}
	var attrs []slog.Attr
	key := repeatKey{level: r.Level, msg: r.Message}
	var b strings.Builder
	b.WriteString(h.prefix)
	r.Attrs(func(a slog.Attr) bool {
		attrs = append(attrs, a)
		b.WriteByte(' ')
		b.WriteString(a.String())
		return true
	})
	key.attrs = b.String()
	pass, summaries := h.s.record(h.next, key, attrs)
	for _, s := range summaries {
		_ = s.h.Handle(ctx, s.r)
	}
	if !pass {
		return nil
	}
	return h.next.Handle(ctx, r)
}

// record counts a record of key, with attributes attrs, that h would
// write, and returns whether to let it through and the summaries due.
func (s *repeats) record(h slog.Handler, key repeatKey, attrs []slog.Attr) (pass bool, due []summary) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Sub(s.lastSweep) >= s.interval {
		s.lastSweep = now
		for k, rp := range s.seen {
			if now.Sub(rp.start) >= s.interval {
				due = appendSummary(due, k, rp, now)
				delete(s.seen, k)
			}
		}
	}
	rp := s.seen[key]
	switch {
	case rp != nil && now.Sub(rp.start) >= s.interval:
		due = appendSummary(due, key, rp, now)
		*rp = repeat{start: now, passed: 1, h: h, attrs: attrs}
		return true, due
	case rp != nil && rp.passed < s.limit:
		rp.passed++
		return true, due
	case rp != nil:
		rp.suppressed++
		return false, due
	case len(s.seen) < maxRepeatKeys:
		s.seen[key] = &repeat{start: now, passed: 1, h: h, attrs: attrs}
	}
	return true, due
}

// appendSummary appends to due the summary of rp, if it dropped records.
func appendSummary(due []summary, key repeatKey, rp *repeat, now time.Time) []summary {
	if rp.suppressed == 0 {
		return due
	}
	r := slog.NewRecord(now, key.level, fmt.Sprintf("suppressed %d similar lines", rp.suppressed), 0)
	r.AddAttrs(slog.String("like", key.msg))
	r.AddAttrs(rp.attrs...)
	return append(due, summary{rp.h, r})
}

func (h *rateLimit) WithAttrs(as []slog.Attr) slog.Handler {
	prefix := h.prefix
	for _, a := range as {
		prefix += " " + a.String()
	}
	return &rateLimit{next: h.next.WithAttrs(as), s: h.s, prefix: prefix}
}

func (h *rateLimit) WithGroup(name string) slog.Handler {
	return &rateLimit{next: h.next.WithGroup(name), s: h.s, prefix: h.prefix + " " + name + ":"}
}
