package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"

	"github.com/memtorrent/memtorrent/storage/memory"
	"github.com/memtorrent/memtorrent/stream"
)

// This file answers the calls of TorrServer's API (MatriX) that Lampa
// (src/interaction/torserver.js) and Kodi's Jacktorr (lib/torrserver/api.py)
// make, with the same paths, parameters, JSON field names and status
// codes as far as those clients read them (docs/torrserver.md lists what
// differs):
//
//	GET|HEAD /stream[/{name}]?link=&index=&play|stat|m3u|preload   index 1-based
//	POST /torrents       {"action": "add"|"get"|"set"|"list"|"rem"|"drop"|"wipe", "link", "hash", "title", "poster", "data"}
//	POST /torrent/upload multipart "file" (.torrent), "title", "poster", "data"
//	POST /cache          {"action": "get", "hash"}
//	POST /settings       {"action": "get"}
//	GET  /echo
//	GET  /playlist?hash=
//
// TorrServer keeps a database of torrents; memtorrent keeps nothing, so
// "rem" is "drop" and save_to_db is ignored.

// tsVersion is the answer of /echo: it starts like TorrServer's MatriX
// versions, then says what answers.
const tsVersion = "MatriX.memtorrent"

// TorrServer's torrent states (its TorrentStat).
const (
	tsGettingInfo = 1
	tsWorking     = 3
)

// tsStatus is TorrServer's TorrentStatus.
type tsStatus struct {
	Title               string   `json:"title"`
	Poster              string   `json:"poster"`
	Data                string   `json:"data,omitempty"`
	Category            string   `json:"category,omitempty"`
	Timestamp           int64    `json:"timestamp"`
	Name                string   `json:"name,omitempty"`
	Hash                string   `json:"hash,omitempty"`
	Stat                int      `json:"stat"`
	StatString          string   `json:"stat_string"`
	LoadedSize          int64    `json:"loaded_size,omitempty"`
	TorrentSize         int64    `json:"torrent_size,omitempty"`
	PreloadedBytes      int64    `json:"preloaded_bytes,omitempty"`
	PreloadSize         int64    `json:"preload_size,omitempty"`
	DownloadSpeed       float64  `json:"download_speed,omitempty"`
	UploadSpeed         float64  `json:"upload_speed,omitempty"`
	TotalPeers          int      `json:"total_peers,omitempty"`
	PendingPeers        int      `json:"pending_peers,omitempty"`
	ActivePeers         int      `json:"active_peers,omitempty"`
	ConnectedSeeders    int      `json:"connected_seeders,omitempty"`
	HalfOpenPeers       int      `json:"half_open_peers,omitempty"`
	BytesWritten        int64    `json:"bytes_written,omitempty"`
	BytesWrittenData    int64    `json:"bytes_written_data,omitempty"`
	BytesRead           int64    `json:"bytes_read,omitempty"`
	BytesReadData       int64    `json:"bytes_read_data,omitempty"`
	BytesReadUsefulData int64    `json:"bytes_read_useful_data,omitempty"`
	ChunksWritten       int64    `json:"chunks_written,omitempty"`
	ChunksRead          int64    `json:"chunks_read,omitempty"`
	ChunksReadUseful    int64    `json:"chunks_read_useful,omitempty"`
	ChunksReadWasted    int64    `json:"chunks_read_wasted,omitempty"`
	PiecesDirtiedGood   int64    `json:"pieces_dirtied_good,omitempty"`
	PiecesDirtiedBad    int64    `json:"pieces_dirtied_bad,omitempty"`
	FileStats           []tsFile `json:"file_stats,omitempty"`
}

// tsFile is TorrServer's TorrentFileStat; Id is 1-based.
type tsFile struct {
	ID     int    `json:"id,omitempty"`
	Path   string `json:"path,omitempty"`
	Length int64  `json:"length,omitempty"`
}

// tsCache is TorrServer's CacheState (its fields are not renamed in JSON).
type tsCache struct {
	Hash         string
	Capacity     int64
	Filled       int64
	PiecesLength int64
	PiecesCount  int
	Torrent      tsStatus
	Pieces       map[int]tsPiece
	Readers      []tsReader
}

type tsPiece struct {
	Id        int
	Length    int64
	Size      int64
	Completed bool
}

type tsReader struct {
	Start, End, Reader int
}

// tsSettings is the part of TorrServer's BTSets that memtorrent can
// answer truthfully; Lampa recognises a compatible server by CacheSize.
type tsSettings struct {
	CacheSize                int64
	ReaderReadAHead          int
	PreloadCache             int
	UseDisk                  bool
	RemoveCacheOnDrop        bool
	DisableUpload            bool
	EnableDLNA               bool
	EnableRutorSearch        bool
	TorrentDisconnectTimeout int
}

func (a *app) registerTorrServer(mux *http.ServeMux) {
	mux.HandleFunc("POST /torrents", a.tsTorrents)
	mux.HandleFunc("POST /torrent/upload", a.tsUpload)
	mux.HandleFunc("POST /cache", a.tsCacheReq)
	mux.HandleFunc("POST /settings", a.tsSettingsReq)
	mux.HandleFunc("GET /echo", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, tsVersion)
	})
	mux.HandleFunc("GET /playlist", a.tsPlaylist)
	mux.HandleFunc("GET /stream", a.tsStream)
	mux.HandleFunc("GET /stream/{name}", a.tsStream)
}

// sortTorrents sorts ts by info hash.
func sortTorrents(ts []*torrent.Torrent) {
	slices.SortFunc(ts, func(x, y *torrent.Torrent) int {
		ix, iy := x.InfoHash(), y.InfoHash()
		return bytes.Compare(ix[:], iy[:])
	})
}

// tsStatusOf returns t's TorrentStatus, with file_stats when files is set.
func (a *app) tsStatusOf(t *torrent.Torrent, files bool) tsStatus {
	e := a.entryOf(t)
	st := tsStatus{
		Title: e.title, Poster: e.poster, Data: e.data, Category: e.catName,
		Timestamp: e.added.Unix(), Name: t.Name(), Hash: t.InfoHash().HexString(),
		Stat: tsGettingInfo, StatString: "Torrent getting info",
	}
	if e.added.IsZero() {
		st.Timestamp = time.Now().Unix()
	}
	if st.Title == "" {
		st.Title = t.Name()
	}
	s := t.Stats()
	st.TotalPeers, st.PendingPeers, st.ActivePeers = s.TotalPeers, s.PendingPeers, s.ActivePeers
	st.ConnectedSeeders, st.HalfOpenPeers = s.ConnectedSeeders, s.HalfOpenPeers
	st.BytesWritten, st.BytesWrittenData = s.BytesWritten.Int64(), s.BytesWrittenData.Int64()
	st.BytesRead, st.BytesReadData, st.BytesReadUsefulData = s.BytesRead.Int64(), s.BytesReadData.Int64(), s.BytesReadUsefulData.Int64()
	st.ChunksWritten, st.ChunksRead = s.ChunksWritten.Int64(), s.ChunksRead.Int64()
	st.ChunksReadUseful, st.ChunksReadWasted = s.ChunksReadUseful.Int64(), s.ChunksReadWasted.Int64()
	st.PiecesDirtiedGood, st.PiecesDirtiedBad = s.PiecesDirtiedGood.Int64(), s.PiecesDirtiedBad.Int64()
	if mt, ok := a.mem.Torrent(t.InfoHash()); ok {
		st.LoadedSize = mt.Stats().ResidentBytes
		st.PreloadedBytes = st.LoadedSize
	}
	if t.Info() == nil {
		return st
	}
	st.Stat, st.StatString = tsWorking, "Torrent working"
	st.TorrentSize = t.Length()
	st.PreloadSize = min(a.readahead, a.capacity/4)
	if ts, ok := a.h.TorrentStatus(t.InfoHash()); ok {
		st.DownloadSpeed = ts.DownloadRate
	}
	if files {
		st.FileStats = make([]tsFile, 0, len(t.Files()))
		for i, f := range t.Files() {
			st.FileStats = append(st.FileStats, tsFile{ID: i + 1, Path: f.Path(), Length: f.Length()})
		}
	}
	return st
}

// tsRequest is the JSON body of /torrents, /cache and /settings.
type tsRequest struct {
	Action   string `json:"action"`
	Link     string `json:"link"`
	Hash     string `json:"hash"`
	Title    string `json:"title"`
	Poster   string `json:"poster"`
	Data     string `json:"data"`
	Category string `json:"category"`
}

func readTSRequest(w http.ResponseWriter, r *http.Request) (tsRequest, bool) {
	var req tsRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		if !WriteRefusal(w, BodyError(err, nil)) {
			httpStatus(w, http.StatusBadRequest)
		}
		return req, false
	}
	return req, true
}

// readTSGet reads a request whose action must be "get"; another action is
// answered with refuse. It returns false once it has answered.
func readTSGet(w http.ResponseWriter, r *http.Request, refuse int) (tsRequest, bool) {
	req, ok := readTSRequest(w, r)
	if ok && req.Action != "get" {
		httpStatus(w, refuse)
		return req, false
	}
	return req, ok
}

// tsTorrent returns the torrent of a TorrServer hash, or false.
func (a *app) tsTorrent(hash string) (*torrent.Torrent, bool) {
	var ih metainfo.Hash
	if !IsInfoHash(hash) || ih.FromHexString(hash) != nil {
		return nil, false
	}
	return a.cl.Torrent(ih)
}

func (a *app) tsTorrents(w http.ResponseWriter, r *http.Request) {
	req, ok := readTSRequest(w, r)
	if !ok {
		return
	}
	switch req.Action {
	case "add":
		spec, err := parseLink(strings.ReplaceAll(req.Link, "&amp;", "&"))
		t, ok := a.add(w, spec, nil, meta{req.Title, req.Poster, req.Data, req.Category}, err)
		if !ok {
			return
		}
		a.release(t)
		a.writeJSON(w, http.StatusOK, a.tsStatusOf(t, true))
	case "get":
		t, ok := a.tsTorrent(req.Hash)
		if !ok {
			httpStatus(w, http.StatusNotFound)
			return
		}
		a.touch(t)
		a.writeJSON(w, http.StatusOK, a.tsStatusOf(t, true))
	case "set":
		t, ok := a.tsTorrent(req.Hash)
		if ok {
			a.setMeta(t, meta{req.Title, req.Poster, req.Data, req.Category})
		}
		w.WriteHeader(http.StatusOK)
	case "list":
		ts := a.cl.Torrents()
		sortTorrents(ts)
		out := make([]tsStatus, 0, len(ts))
		for _, t := range ts {
			out = append(out, a.tsStatusOf(t, false))
		}
		a.writeJSON(w, http.StatusOK, out)
	case "rem", "drop":
		if t, ok := a.tsTorrent(req.Hash); ok {
			a.drop(t)
		} else if req.Hash == "" {
			httpStatus(w, http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusOK)
	case "wipe":
		for _, t := range a.cl.Torrents() {
			a.drop(t)
		}
		w.WriteHeader(http.StatusOK)
	default:
		httpStatus(w, http.StatusBadRequest)
	}
}

// touch counts a request about t as a use of it.
func (a *app) touch(t *torrent.Torrent) {
	if t, ok := a.use(t.InfoHash()); ok {
		a.release(t)
	}
}

// setMeta replaces what a client said about t.
func (a *app) setMeta(t *torrent.Torrent, m meta) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if e := a.entries[t.InfoHash()]; e != nil && e.t == t {
		e.title, e.poster, e.data, e.catName = m.title, m.poster, m.data, m.category
	}
}

func (a *app) tsUpload(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxTorrentFile)
	if err := r.ParseMultipartForm(maxTorrentFile); err != nil {
		a.failOpen(w, BodyError(err, errBadLink))
		return
	}
	fhs := r.MultipartForm.File["file"]
	if len(fhs) == 0 {
		httpStatus(w, http.StatusBadRequest)
		return
	}
	m := meta{title: r.FormValue("title"), poster: r.FormValue("poster"), data: r.FormValue("data")}
	var last *torrent.Torrent
	for _, fh := range fhs {
		f, err := fh.Open()
		if err != nil {
			httpStatus(w, http.StatusBadRequest)
			return
		}
		spec, info, err := readTorrentFile(f)
		f.Close()
		t, ok := a.add(w, spec, info, m, err)
		if !ok {
			return
		}
		a.release(t)
		last = t
	}
	a.writeJSON(w, http.StatusOK, a.tsStatusOf(last, true))
}

func (a *app) tsCacheReq(w http.ResponseWriter, r *http.Request) {
	req, ok := readTSGet(w, r, http.StatusBadRequest)
	if !ok {
		return
	}
	t, ok := a.tsTorrent(req.Hash)
	if !ok {
		httpStatus(w, http.StatusNotFound)
		return
	}
	a.touch(t)
	c := tsCache{
		Hash: t.InfoHash().HexString(), Capacity: a.capacity,
		Torrent: a.tsStatusOf(t, true), Pieces: map[int]tsPiece{}, Readers: []tsReader{},
	}
	info := t.Info()
	if info == nil {
		a.writeJSON(w, http.StatusOK, c)
		return
	}
	c.PiecesLength, c.PiecesCount = info.PieceLength, info.NumPieces()
	if mt, ok := a.mem.Torrent(t.InfoHash()); ok {
		c.Filled = mt.Stats().ResidentBytes
		for i, ps := range mt.AppendPieceStates(nil) {
			if ps&memory.PieceResident == 0 {
				continue
			}
			p := tsPiece{Id: i, Length: t.Piece(i).Info().Length(), Completed: ps&memory.PieceComplete != 0}
			if p.Completed {
				p.Size = p.Length
			}
			c.Pieces[i] = p
		}
	}
	if ts, ok := a.h.TorrentStatus(t.InfoHash()); ok {
		for _, s := range ts.Sessions {
			f := t.Files()[s.File]
			pos := (f.Offset() + s.Position) / info.PieceLength
			end := (f.Offset() + s.Position + s.Readahead) / info.PieceLength
			c.Readers = append(c.Readers, tsReader{Start: int(pos), End: int(min(end, int64(c.PiecesCount-1))), Reader: int(pos)})
		}
	}
	a.writeJSON(w, http.StatusOK, c)
}

func (a *app) tsSettingsReq(w http.ResponseWriter, r *http.Request) {
	if _, ok := readTSGet(w, r, http.StatusNotImplemented); !ok {
		return
	}
	a.writeJSON(w, http.StatusOK, tsSettings{
		CacheSize:                a.capacity,
		ReaderReadAHead:          95,
		PreloadCache:             int(min(100, 100*min(a.readahead, a.capacity/4)/a.capacity)),
		RemoveCacheOnDrop:        true,
		TorrentDisconnectTimeout: int(a.idle.Seconds()),
	})
}

// tsStream serves TorrServer's /stream[/{name}]?link=...; without link=
// it answers 404, as the stream handler does for a path it does not know.
func (a *app) tsStream(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !q.Has("link") {
		httpStatus(w, http.StatusNotFound)
		return
	}
	spec, err := parseLink(q.Get("link"))
	if err != nil {
		a.failOpen(w, err)
		return
	}
	title := q.Get("title")
	if title == "" {
		title = r.PathValue("name")
	}
	t, ok := a.openPlay(w, r, spec, meta{title: title, poster: q.Get("poster")})
	if !ok {
		return
	}
	defer a.release(t)
	index := -1
	if len(t.Files()) == 1 {
		index = 1
	} else if n, err := strconv.Atoi(q.Get("index")); err == nil {
		index = n
	}
	valid := index >= 1 && index <= len(t.Files())
	_, play := q["play"]
	_, stat := q["stat"]
	_, m3u := q["m3u"]
	_, preload := q["preload"]
	if (play || preload) && !valid && !stat && !m3u {
		httpStatus(w, http.StatusBadRequest)
		return
	}
	if preload && valid {
		a.preload(r.Context(), t, index-1)
	}
	switch {
	case stat:
		a.writeJSON(w, http.StatusOK, a.tsStatusOf(t, true))
	case m3u:
		a.writeM3U(w, r, t)
	case play || preload:
		// preload alone plays too, so that Lampa's preload URL plays.
		a.h.ServeFile(w, r, t, index-1)
	default:
		w.WriteHeader(http.StatusOK)
	}
}

// tsPlaylist serves /playlist?hash=: an M3U of the torrent's files in
// TorrServer's URL form, each with the token.
func (a *app) tsPlaylist(w http.ResponseWriter, r *http.Request) {
	t, ok := a.tsTorrent(r.URL.Query().Get("hash"))
	if !ok {
		httpStatus(w, http.StatusNotFound)
		return
	}
	a.touch(t)
	if err := a.waitInfo(r.Context(), t); err != nil {
		a.failOpen(w, err)
		return
	}
	a.writeM3U(w, r, t)
}

// writeM3U writes the M3U of t's playFiles as TorrServer's stream URLs.
func (a *app) writeM3U(w http.ResponseWriter, r *http.Request, t *torrent.Torrent) {
	base, ih := baseOf(r), t.InfoHash().HexString()
	files := t.Files()
	var entries []stream.PlaylistEntry
	for _, i := range PlayFiles(t) {
		name := path.Base(files[i].DisplayPath())
		entries = append(entries, stream.PlaylistEntry{Title: name,
			URL: base + "/stream/" + url.PathEscape(name) + "?link=" + ih + "&index=" + strconv.Itoa(i+1) +
				"&play&" + tokenParam + "=" + url.QueryEscape(a.token)})
	}
	w.Header().Set("Content-Disposition", `attachment; filename="`+ih+`.m3u"`)
	stream.WritePlaylist(w, entries)
}

// preload fetches the head of file i of t, up to a readahead and a
// quarter of the capacity (stream.Handler.Preload), waiting for it up to
// the metadata timeout or the end of ctx.
func (a *app) preload(ctx context.Context, t *torrent.Torrent, i int) {
	ctx, cancel := context.WithTimeout(ctx, a.infoTimeout)
	defer cancel()
	if err := a.h.Preload(ctx, t, i, PrebufferBytes(a.capacity, a.readahead), 50*time.Millisecond, nil); err != nil && ctx.Err() == nil {
		a.log.Debug("torrserver: preload", "infohash", t.InfoHash().HexString(), "file", i, "err", err)
	}
}
