package stream

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"
)

// PlaylistEntry is one entry of an M3U playlist: a title and a URL.
type PlaylistEntry struct {
	Title, URL string
}

// WritePlaylist writes an extended M3U of entries as the response w, with
// Content-Type audio/x-mpegurl. Line breaks in titles become spaces: a
// torrent's paths are not trusted.
func WritePlaylist(w http.ResponseWriter, entries []PlaylistEntry) {
	var b bytes.Buffer
	b.WriteString("#EXTM3U\n")
	for _, e := range entries {
		b.WriteString("#EXTINF:-1," + oneLine(e.Title) + "\n" + oneLine(e.URL) + "\n")
	}
	w.Header().Set("Content-Type", "audio/x-mpegurl")
	w.Write(b.Bytes())
}

// oneLine replaces the line breaks of s by spaces.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}

// servePlaylist serves /playlist/{infohash}.m3u: an extended M3U of the
// torrent's video and audio files in torrent order, each an absolute URL of
// the path route on the request's Host.
func (h *Handler) servePlaylist(w http.ResponseWriter, r *http.Request) {
	ihs, ok := strings.CutSuffix(r.PathValue("name"), ".m3u")
	if !ok {
		notFound(w)
		return
	}
	r.SetPathValue("infohash", ihs)
	t, ok := h.lookupTorrent(w, r)
	if !ok {
		return
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	// Behind http.StripPrefix, RequestURI still holds the prefix.
	prefix := ""
	if u, err := url.ParseRequestURI(r.RequestURI); err == nil {
		if before, ok := strings.CutSuffix(u.EscapedPath(), r.URL.EscapedPath()); ok {
			prefix = before
		}
	}
	var entries []PlaylistEntry
	for _, f := range t.Files() {
		p := f.DisplayPath()
		if _, ok := MediaType(p); !ok {
			continue
		}
		elems := strings.Split(p, "/")
		for i, e := range elems {
			elems[i] = url.PathEscape(e)
		}
		entries = append(entries, PlaylistEntry{Title: p,
			URL: scheme + "://" + r.Host + prefix + "/stream/" + t.InfoHash().HexString() + "/path/" + strings.Join(elems, "/")})
	}
	WritePlaylist(w, entries)
}
