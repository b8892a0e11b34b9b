package stream

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"

	"github.com/memtorrent/memtorrent/lookbehind"
)

// dlnaFeatures is the contentFeatures.dlna.org of every stream response:
// OP=01 byte seeks, CI=0 not transcoded, FLAGS streaming transfer mode,
// background transfer, connection stall allowed, DLNA 1.5.
const dlnaFeatures = "DLNA.ORG_OP=01;DLNA.ORG_CI=0;DLNA.ORG_FLAGS=01700000000000000000000000000000"

// serveIndex serves /stream/{infohash}/{file}.
func (h *Handler) serveIndex(w http.ResponseWriter, r *http.Request) {
	t, ok := h.lookupTorrent(w, r)
	if !ok {
		return
	}
	i, err := strconv.Atoi(r.PathValue("file"))
	if err != nil || i < 0 || i >= len(t.Files()) {
		notFound(w)
		return
	}
	h.serveFile(w, r, t, i)
}

// servePath serves /stream/{infohash}/path/{path...}.
func (h *Handler) servePath(w http.ResponseWriter, r *http.Request) {
	p := r.PathValue("path")
	if !validPath(p) {
		notFound(w)
		return
	}
	t, ok := h.lookupTorrent(w, r)
	if !ok {
		return
	}
	for i, f := range t.Files() {
		if f.DisplayPath() == p || f.Path() == p {
			h.serveFile(w, r, t, i)
			return
		}
	}
	notFound(w)
}

// validPath reports whether p is a relative slash-separated path without
// empty, "." or ".." elements, backslashes or NULs. Paths are only ever
// compared with the torrent's, so this is belt and braces.
func validPath(p string) bool {
	if p == "" || strings.ContainsAny(p, "\\\x00") {
		return false
	}
	for elem := range strings.SplitSeq(p, "/") {
		if elem == "" || elem == "." || elem == ".." {
			return false
		}
	}
	return true
}

// FilePath returns the URL path of file i of the torrent ih on the
// Handler's index route: /stream/{infohash}/{i}.
func FilePath(ih metainfo.Hash, i int) string {
	return "/stream/" + ih.HexString() + "/" + strconv.Itoa(i)
}

// ServeFile serves file i of t (a torrent of the Handler's client) as the
// index route does, for an application that routes its own URLs to files:
// 404 when t has no info yet or no file i, 503 after Close.
func (h *Handler) ServeFile(w http.ResponseWriter, r *http.Request, t *torrent.Torrent, i int) {
	ew := &errorWriter{ResponseWriter: w, size: -1}
	switch {
	case h.isClosed.Load():
		unavailable(ew)
	case t.Info() == nil || i < 0 || i >= len(t.Files()):
		notFound(ew)
	default:
		h.serveFile(ew, r, t, i)
	}
}

// serveFile serves file i of t through http.ServeContent and a session.
func (h *Handler) serveFile(w http.ResponseWriter, r *http.Request, t *torrent.Torrent, i int) {
	f := t.Files()[i]
	info := t.Info()
	geom := lookbehind.File{
		PieceLength:   info.PieceLength,
		TorrentLength: info.TotalLength(),
		Offset:        f.Offset(),
		Length:        f.Length(),
	}
	hdr := w.Header()
	ct, _ := MediaType(f.DisplayPath())
	hdr.Set("Content-Type", ct)
	hdr.Set("ETag", fmt.Sprintf(`"%s-%d"`, t.InfoHash().HexString(), i))
	hdr.Set("transferMode.dlna.org", "Streaming")
	hdr.Set("contentFeatures.dlna.org", dlnaFeatures)
	if ew, ok := w.(*errorWriter); ok {
		ew.size = f.Length()
	}
	name := path.Base(f.DisplayPath())
	if r.Method == http.MethodHead {
		http.ServeContent(w, r, name, time.Time{}, &content{size: f.Length()})
		return
	}

	fl, ok := h.track(w)
	if !ok {
		unavailable(w)
		return
	}
	defer h.untrack(fl)
	key := sessionKey{client: clientID(r), t: t, ih: t.InfoHash(), file: i}
	s, err := h.acquire(key, f, geom, rangeStart(r.Header.Get("Range"), f.Length()))
	switch {
	case errors.Is(err, errBusy):
		h.log.Info("stream: too many sessions", "max", h.opts.MaxSessions, "client", key.client)
		unavailable(w)
		return
	case err != nil:
		unavailable(w)
		return
	}
	// Reads end with the request and at Close; ReadPiece also ends them
	// when the torrent is dropped.
	ctx, cancel := context.WithCancel(r.Context())
	stop := context.AfterFunc(h.ctx, cancel)
	s.begin()
	c := &content{size: f.Length(), s: s, ctx: ctx}
	http.ServeContent(w, r, name, time.Time{}, c)
	cancel()
	stop()
	err = c.finish()
	if err != nil {
		h.log.Warn("stream: reading torrent, ending session", "infohash", key.ih, "file", i, "session", s.id, "err", err)
	}
	closed := false
	select {
	case <-t.Closed():
		closed = true
	default:
	}
	// A player that closed the connection before the end of its range
	// has moved on (a seek, a stop): its window is not wanted any more.
	ew, _ := w.(*errorWriter)
	if r.Context().Err() != nil || ew != nil && ew.writeFail {
		s.abandon()
	}
	h.release(s, err != nil || closed)
}

// rangeStart returns where the first range of a Range header starts, 0 when
// there is none or it does not parse (ServeContent judges it properly).
func rangeStart(hdr string, size int64) int64 {
	spec, ok := strings.CutPrefix(hdr, "bytes=")
	if !ok {
		return 0
	}
	spec, _, _ = strings.Cut(spec, ",")
	first, last, _ := strings.Cut(strings.TrimSpace(spec), "-")
	if first == "" {
		n, err := strconv.ParseInt(last, 10, 64)
		if err != nil {
			return 0
		}
		return max(0, size-n)
	}
	n, err := strconv.ParseInt(first, 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// inflight is a stream request being served, which Close ends.
type inflight struct {
	rc *http.ResponseController // never changes

	mu    sync.Mutex // guards the field below
	ended bool
}

// track registers a stream request so that Close can end it; it returns
// false after Close. Call untrack when the request is done.
func (h *Handler) track(w http.ResponseWriter) (*inflight, bool) {
	fl := &inflight{rc: http.NewResponseController(w)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, false
	}
	h.requests.Add(1)
	h.inflight[fl] = struct{}{}
	return fl, true
}

func (h *Handler) untrack(fl *inflight) {
	fl.mu.Lock()
	fl.ended = true
	fl.mu.Unlock()
	h.mu.Lock()
	delete(h.inflight, fl)
	h.mu.Unlock()
	h.requests.Done()
}

// abort makes the request's blocked and future writes fail at once.
func (fl *inflight) abort() {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if !fl.ended {
		_ = fl.rc.SetWriteDeadline(time.Unix(1, 0)) // unsupported by some writers; reads are cancelled anyway
	}
}
