package server

import (
	"context"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"

	"github.com/memtorrent/memtorrent/stream"
)

// This file is memtorrent's own HTTP API for adding torrents at run time
// and playing them in one request:
//
//	POST   /api/torrents[?wait]        add: JSON {"link", "title"} or a multipart .torrent ("file")
//	GET    /api/torrents               list
//	GET    /api/torrents/{infohash}    one torrent
//	DELETE /api/torrents/{infohash}    drop it (204)
//	GET|HEAD /play?link=&index=        add if needed, wait for metadata, stream file index (0-based; main file without)
//
// Every answer about a torrent is a Torrent, whose files carry absolute
// stream URLs with the server's token. The stream handler's routes
// (/stream/{infohash}/{file}, /status, /metrics) and the playlist, here
// with tokens in its URLs, stay where they were.

// maxTorrentFile bounds a .torrent upload.
const maxTorrentFile = 16 << 20

// Torrent is one torrent in the answers of /api/torrents.
type Torrent struct {
	InfoHash      string  `json:"infoHash"`
	Name          string  `json:"name"`
	Title         string  `json:"title,omitempty"`
	GotInfo       bool    `json:"gotInfo"`
	Length        int64   `json:"length"`
	StatusPage    string  `json:"statusPage"` // URL of the status page
	Playlist      string  `json:"playlist"`   // URL of the M3U, with the token
	Files         []File  `json:"files"`
	Sessions      int     `json:"sessions"`
	ResidentBytes int64   `json:"residentBytes"`
	IdleSeconds   float64 `json:"idleSeconds"`
	// DropInSeconds is how long before an idle torrent is dropped; -1
	// never (torrents of Server.Add, or Config.Idle 0).
	DropInSeconds float64 `json:"dropInSeconds"`
}

// File is one file of a Torrent.
type File struct {
	Index  int    `json:"index"`
	Path   string `json:"path"`
	Length int64  `json:"length"`
	Media  bool   `json:"media"`
	Stream string `json:"stream"` // absolute URL, with the token
}

func (a *app) register(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/torrents", a.apiAdd)
	mux.HandleFunc("GET /api/torrents", a.apiList)
	mux.HandleFunc("GET /api/torrents/{infohash}", a.apiGet)
	mux.HandleFunc("DELETE /api/torrents/{infohash}", a.apiDrop)
	mux.HandleFunc("GET /play", a.servePlay)
	mux.HandleFunc("GET /playlist/{name}", a.servePlaylist)
	// The stream handler's routes, but its playlist: the server's names
	// URLs with the token.
	mux.HandleFunc("GET /stream/{infohash}/", a.serveStream)
	mux.Handle("GET /status", a.h)
	mux.Handle("GET /status/{infohash}", a.h)
	mux.Handle("GET /metrics", a.h)
	a.registerTorrServer(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { httpStatus(w, http.StatusNotFound) })
}

// baseOf returns the scheme and host the request came to.
func baseOf(r *http.Request) string {
	if r.TLS != nil {
		return "https://" + r.Host
	}
	return "http://" + r.Host
}

// describe returns the Torrent of t for a request to base.
func (a *app) describe(t *torrent.Torrent, base string) Torrent {
	ih := t.InfoHash().HexString()
	tok := "?" + tokenParam + "=" + url.QueryEscape(a.token)
	e := a.entryOf(t)
	at := Torrent{
		InfoHash: ih, Name: t.Name(), Title: e.title,
		StatusPage: base + "/ui/" + ih,
		Playlist:   base + "/playlist/" + ih + ".m3u" + tok,
		Files:      []File{},
		Sessions:   a.h.Sessions(t.InfoHash()),
	}
	idle, left := a.idleLeft(t, time.Now())
	at.IdleSeconds, at.DropInSeconds = idle.Seconds(), left.Seconds()
	if left < 0 {
		at.DropInSeconds = -1
	}
	if mt, ok := a.mem.Torrent(t.InfoHash()); ok {
		at.ResidentBytes = mt.Stats().ResidentBytes
	}
	if t.Info() == nil {
		return at
	}
	at.GotInfo = true
	at.Length = t.Length()
	for i, f := range t.Files() {
		at.Files = append(at.Files, File{
			Index: i, Path: f.DisplayPath(), Length: f.Length(), Media: isMedia(f.DisplayPath()),
			Stream: base + stream.FilePath(t.InfoHash(), i) + tok,
		})
	}
	return at
}

// writeJSON sends v as JSON with code.
func (a *app) writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		a.log.Error("encoding an API answer", "err", err)
		httpStatus(w, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

// failOpen answers the error of open or waitInfo.
func (a *app) failOpen(w http.ResponseWriter, err error) {
	switch {
	case WriteRefusal(w, err): // 400, 403, 413 or 507 saying why
	case errors.Is(err, errBadLink):
		httpStatus(w, http.StatusBadRequest)
	case errors.Is(err, errInfoTimeout):
		httpStatus(w, http.StatusGatewayTimeout)
	case errors.Is(err, ErrPieceTooLarge):
		httpStatus(w, http.StatusInsufficientStorage)
	case errors.Is(err, errDropped), errors.Is(err, context.Canceled):
		w.Header().Set("Retry-After", "5")
		httpStatus(w, http.StatusServiceUnavailable)
	default:
		a.log.Error("adding a torrent", "err", err)
		httpStatus(w, http.StatusInternalServerError)
	}
}

// readAdd returns the torrent a POST names: a multipart .torrent in field
// "file" (the first, when several), or a JSON or form "link".
func readAdd(w http.ResponseWriter, r *http.Request) (*torrent.TorrentSpec, *metainfo.Info, meta, error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxTorrentFile)
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "multipart/form-data":
		if err := r.ParseMultipartForm(maxTorrentFile); err != nil {
			return nil, nil, meta{}, BodyError(err, errBadLink)
		}
		m := meta{title: r.FormValue("title"), poster: r.FormValue("poster"), data: r.FormValue("data")}
		fhs := r.MultipartForm.File["file"]
		if len(fhs) == 0 {
			spec, err := parseLink(r.FormValue("link"))
			return spec, nil, m, err
		}
		f, err := fhs[0].Open()
		if err != nil {
			return nil, nil, m, errBadLink
		}
		defer f.Close()
		spec, info, err := readTorrentFile(f)
		return spec, info, m, err
	case "application/x-www-form-urlencoded":
		spec, err := parseLink(r.FormValue("link"))
		return spec, nil, meta{title: r.FormValue("title")}, err
	}
	var req struct {
		Link, Title, Poster, Data, Category string
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		return nil, nil, meta{}, BodyError(err, errBadLink)
	}
	spec, err := parseLink(req.Link)
	return spec, nil, meta{req.Title, req.Poster, req.Data, req.Category}, err
}

// add opens spec for a request, unpinned, with m, unless reading it failed
// with err. On an error of either it answers w (failOpen) and returns
// false; otherwise the caller releases t.
func (a *app) add(w http.ResponseWriter, spec *torrent.TorrentSpec, info *metainfo.Info, m meta, err error) (*torrent.Torrent, bool) {
	if err == nil {
		var t *torrent.Torrent
		if t, err = a.open(spec, info, m, false); err == nil {
			return t, true
		}
	}
	a.failOpen(w, err)
	return nil, false
}

func (a *app) apiAdd(w http.ResponseWriter, r *http.Request) {
	spec, info, m, err := readAdd(w, r)
	t, ok := a.add(w, spec, info, m, err)
	if !ok {
		return
	}
	defer a.release(t)
	if r.URL.Query().Has("wait") {
		if err := a.waitInfo(r.Context(), t); err != nil {
			a.failOpen(w, err)
			return
		}
	}
	a.writeJSON(w, http.StatusOK, a.describe(t, baseOf(r)))
}

func (a *app) apiList(w http.ResponseWriter, r *http.Request) {
	ts := a.cl.Torrents()
	sortTorrents(ts)
	out := make([]Torrent, 0, len(ts))
	for _, t := range ts {
		out = append(out, a.describe(t, baseOf(r)))
	}
	a.writeJSON(w, http.StatusOK, out)
}

// torrentOf returns the torrent of the request's {infohash}, or answers 404.
func (a *app) torrentOf(w http.ResponseWriter, r *http.Request) (*torrent.Torrent, bool) {
	var ih metainfo.Hash
	if err := ih.FromHexString(r.PathValue("infohash")); err != nil {
		httpStatus(w, http.StatusNotFound)
		return nil, false
	}
	t, ok := a.cl.Torrent(ih)
	if !ok {
		httpStatus(w, http.StatusNotFound)
	}
	return t, ok
}

func (a *app) apiGet(w http.ResponseWriter, r *http.Request) {
	if t, ok := a.torrentOf(w, r); ok {
		a.writeJSON(w, http.StatusOK, a.describe(t, baseOf(r)))
	}
}

func (a *app) apiDrop(w http.ResponseWriter, r *http.Request) {
	if t, ok := a.torrentOf(w, r); ok {
		a.drop(t)
		w.WriteHeader(http.StatusNoContent)
	}
}

// openPlay opens spec for a play request (unpinned, with m) and waits for
// its info. If either fails it answers w (failOpen), releases what it
// opened and returns false; otherwise the caller releases t.
func (a *app) openPlay(w http.ResponseWriter, r *http.Request, spec *torrent.TorrentSpec, m meta) (*torrent.Torrent, bool) {
	if _, have := a.cl.Torrent(spec.InfoHash); !have {
		// A page of another site may play a torrent, not add one.
		if err := CheckAdd(r); err != nil {
			a.failOpen(w, err)
			return nil, false
		}
	}
	t, err := a.open(spec, nil, m, false)
	if err != nil {
		a.failOpen(w, err)
		return nil, false
	}
	if err := a.waitInfo(r.Context(), t); err != nil {
		a.failOpen(w, err)
		a.release(t)
		return nil, false
	}
	return t, true
}

// servePlay serves /play?link=&index=: one-request play.
func (a *app) servePlay(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	link := q.Get("link")
	if link == "" {
		link = q.Get("uri") // Elementum's name
	}
	spec, err := parseLink(link)
	if err != nil {
		a.failOpen(w, err)
		return
	}
	t, ok := a.openPlay(w, r, spec, meta{})
	if !ok {
		return
	}
	defer a.release(t)
	i := -1
	if s := q.Get("index"); s != "" && s != "-1" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n >= len(t.Files()) {
			httpStatus(w, http.StatusNotFound)
			return
		}
		i = n
	} else if f := MainFile(t); f != nil {
		i = fileIndex(t, f)
	}
	if i < 0 {
		httpStatus(w, http.StatusNotFound)
		return
	}
	a.h.ServeFile(w, r, t, i)
}

// fileIndex returns the index of f in t's files, -1 if it is not one.
func fileIndex(t *torrent.Torrent, f *torrent.File) int {
	for i, g := range t.Files() {
		if g == f {
			return i
		}
	}
	return -1
}

// serveStream serves the stream handler's /stream/{infohash}/... routes,
// counting the torrent as in use meanwhile.
func (a *app) serveStream(w http.ResponseWriter, r *http.Request) {
	var ih metainfo.Hash
	if ih.FromHexString(r.PathValue("infohash")) == nil {
		if t, ok := a.use(ih); ok {
			defer a.release(t)
		}
	}
	a.h.ServeHTTP(w, r)
}

// servePlaylist serves /playlist/{infohash}.m3u: the torrent's playFiles,
// each an absolute stream URL with the token.
func (a *app) servePlaylist(w http.ResponseWriter, r *http.Request) {
	hex, ok := strings.CutSuffix(r.PathValue("name"), ".m3u")
	var ih metainfo.Hash
	if !ok || ih.FromHexString(hex) != nil {
		httpStatus(w, http.StatusNotFound)
		return
	}
	t, ok := a.use(ih)
	if !ok {
		httpStatus(w, http.StatusNotFound)
		return
	}
	defer a.release(t)
	if err := a.waitInfo(r.Context(), t); err != nil {
		a.failOpen(w, err)
		return
	}
	base, tok := baseOf(r), "?"+tokenParam+"="+url.QueryEscape(a.token)
	files := t.Files()
	var entries []stream.PlaylistEntry
	for _, i := range PlayFiles(t) {
		entries = append(entries, stream.PlaylistEntry{Title: files[i].DisplayPath(), URL: base + stream.FilePath(t.InfoHash(), i) + tok})
	}
	stream.WritePlaylist(w, entries)
}
