package server

import (
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/dustin/go-humanize"

	"github.com/memtorrent/memtorrent/storage/memory"
	"github.com/memtorrent/memtorrent/stream"
)

// This file serves the status pages, beside the stream handler's routes:
//
//	GET /                      the torrents, each linking to its page
//	GET /ui/{infohash}         the torrent's status page (ui/status.html)
//	GET /ui/{infohash}/state   JSON: the piece map and the files (uiState)
//
// The page polls /ui/{infohash}/state and the stream handler's
// /status/{infohash} every 500 ms.

//go:embed ui/status.html ui/index.html
var uiFiles embed.FS

var indexTemplate = template.Must(template.ParseFS(uiFiles, "ui/index.html"))

// pieceDownloading marks, in the piece map, a piece the torrent client has
// part of and has not verified: a bit beside memory.PieceState's.
const pieceDownloading = 1 << 7

// ui serves the status pages. It is safe for concurrent use; its fields
// never change.
type ui struct {
	cl  *torrent.Client
	mem *memory.Client
	log *slog.Logger
	app *app
}

func (u *ui) register(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", u.serveIndex)
	mux.HandleFunc("GET /ui/{infohash}", u.servePage)
	mux.HandleFunc("GET /ui/{infohash}/state", u.serveState)
}

// uiFile is one file of a torrent, as the page shows it.
type uiFile struct {
	Index  int    `json:"index"`
	Path   string `json:"path"`
	Length int64  `json:"length"`
	Stream string `json:"stream"` // URL path of the file
	Media  bool   `json:"media"`  // video or audio, by extension
}

// uiState is the JSON of /ui/{infohash}/state.
type uiState struct {
	InfoHash    string   `json:"infoHash"`
	Name        string   `json:"name"`
	GotInfo     bool     `json:"gotInfo"`
	PieceLength int64    `json:"pieceLength"`
	Main        int      `json:"main"` // index of the file to play, -1 for none
	Files       []uiFile `json:"files"`
	// Pieces is the piece map: two hex digits per piece, the bits of
	// memory.PieceState and pieceDownloading.
	Pieces string `json:"pieces"`
	// IdleSeconds is how long no request has used the torrent;
	// DropInSeconds how long before it is dropped for that, -1 never.
	IdleSeconds   float64 `json:"idleSeconds"`
	DropInSeconds float64 `json:"dropInSeconds"`
}

func (u *ui) torrent(w http.ResponseWriter, r *http.Request) (*torrent.Torrent, bool) {
	var ih metainfo.Hash
	if err := ih.FromHexString(r.PathValue("infohash")); err != nil {
		http.Error(w, http.StatusText(http.StatusNotFound), http.StatusNotFound)
		return nil, false
	}
	t, ok := u.cl.Torrent(ih)
	if !ok {
		http.Error(w, http.StatusText(http.StatusNotFound), http.StatusNotFound)
		return nil, false
	}
	return t, true
}

func (u *ui) servePage(w http.ResponseWriter, r *http.Request) {
	if _, ok := u.torrent(w, r); !ok {
		return
	}
	b, err := uiFiles.ReadFile("ui/status.html")
	if err != nil {
		u.log.Error("reading the status page", "err", err)
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(b)
}

func (u *ui) serveState(w http.ResponseWriter, r *http.Request) {
	t, ok := u.torrent(w, r)
	if !ok {
		return
	}
	st := uiState{InfoHash: t.InfoHash().HexString(), Name: t.Name(), Main: -1, Files: []uiFile{}, DropInSeconds: -1}
	if u.app != nil {
		idle, left := u.app.idleLeft(t, time.Now())
		st.IdleSeconds = idle.Seconds()
		if left >= 0 {
			st.DropInSeconds = left.Seconds()
		}
	}
	select {
	case <-t.GotInfo():
		st.GotInfo = true
	default:
	}
	if st.GotInfo {
		st.PieceLength = t.Info().PieceLength
		main := MainFile(t)
		for i, f := range t.Files() {
			if f == main {
				st.Main = i
			}
			st.Files = append(st.Files, uiFile{
				Index:  i,
				Path:   f.DisplayPath(),
				Length: f.Length(),
				Stream: stream.FilePath(t.InfoHash(), i),
				Media:  isMedia(f.DisplayPath()),
			})
		}
		st.Pieces = pieceMap(t, u.mem)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if err := json.NewEncoder(w).Encode(st); err != nil {
		u.log.Debug("writing /ui state", "err", err)
	}
}

// pieceMap returns the piece map of uiState.Pieces.
func pieceMap(t *torrent.Torrent, mem *memory.Client) string {
	n := t.NumPieces()
	states := make([]byte, n)
	if mt, ok := mem.Torrent(t.InfoHash()); ok {
		ps := mt.AppendPieceStates(make([]memory.PieceState, 0, n))
		for i := range min(n, len(ps)) {
			states[i] = byte(ps[i])
		}
	}
	i := 0
	for _, run := range t.PieceStateRuns() {
		if run.Partial && !run.Complete {
			for j := i; j < min(i+run.Length, n); j++ {
				states[j] |= pieceDownloading
			}
		}
		i += run.Length
	}
	return hex.EncodeToString(states)
}

// indexEntry is one torrent of the index page.
type indexEntry struct {
	InfoHash, Name, Size string
}

func (u *ui) serveIndex(w http.ResponseWriter, r *http.Request) {
	var entries []indexEntry
	for _, t := range u.cl.Torrents() {
		e := indexEntry{InfoHash: t.InfoHash().HexString(), Name: t.Name()}
		if t.Info() != nil {
			e.Size = humanize.IBytes(uint64(t.Length()))
		}
		entries = append(entries, e)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := indexTemplate.Execute(w, entries); err != nil {
		u.log.Debug("writing the index page", "err", err)
	}
}

// isMedia reports whether name is a video or audio file: stream.MediaType
// decides, for the status page, the printed URLs, the playlists and the
// APIs alike.
func isMedia(name string) bool {
	_, playable := stream.MediaType(name)
	return playable
}

// PlayFiles returns the indices of the files of t a player is offered (the
// playlists, the URLs the command prints): its media files by
// stream.MediaType, or every file when none is media. t must have its info.
func PlayFiles(t *torrent.Torrent) []int {
	files := t.Files()
	anyMedia := slices.ContainsFunc(files, func(f *torrent.File) bool { return isMedia(f.DisplayPath()) })
	var is []int
	for i, f := range files {
		if !anyMedia || isMedia(f.DisplayPath()) {
			is = append(is, i)
		}
	}
	return is
}

// MainFile returns the file of t to play: its largest media file, else its
// largest file; nil before the info or for a torrent without files.
func MainFile(t *torrent.Torrent) *torrent.File {
	if t.Info() == nil {
		return nil
	}
	var best *torrent.File
	bestMedia := false
	for _, f := range t.Files() {
		m := isMedia(f.DisplayPath())
		if best == nil || (m && !bestMedia) || (m == bestMedia && f.Length() > best.Length()) {
			best, bestMedia = f, m
		}
	}
	return best
}

// WriteURLs writes to w the URLs of t on the server at base (scheme and
// host, as http://127.0.0.1:8080): its status page, its playlist and each
// of its PlayFiles, with the torrent's name and size. t must have its info.
func WriteURLs(w io.Writer, base string, t *torrent.Torrent) {
	ih := t.InfoHash().HexString()
	fmt.Fprintf(w, "torrent %s (%s, %s)\n", t.Name(), ih, humanize.IBytes(uint64(t.Length())))
	fmt.Fprintf(w, "  status:   %s/ui/%s\n", base, ih)
	fmt.Fprintf(w, "  playlist: %s/playlist/%s.m3u\n", base, ih)
	files := t.Files()
	for _, i := range PlayFiles(t) {
		f := files[i]
		fmt.Fprintf(w, "  stream:   %s%s  %s (%s)\n", base, stream.FilePath(t.InfoHash(), i), f.DisplayPath(),
			humanize.IBytes(uint64(f.Length())))
	}
}
