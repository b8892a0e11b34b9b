package stream

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

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
	var b bytes.Buffer
	b.WriteString("#EXTM3U\n")
	for _, f := range t.Files() {
		p := f.DisplayPath()
		if _, ok := MediaType(p); !ok {
			continue
		}
		elems := strings.Split(p, "/")
		for i, e := range elems {
			elems[i] = url.PathEscape(e)
		}
		// Titles are one line: a torrent's paths are not trusted.
		title := strings.Map(func(r rune) rune {
			if r == '\n' || r == '\r' {
				return ' '
			}
			return r
		}, p)
		fmt.Fprintf(&b, "#EXTINF:-1,%s\n%s://%s%s/stream/%s/path/%s\n",
			title, scheme, r.Host, prefix, t.InfoHash().HexString(), strings.Join(elems, "/"))
	}
	w.Header().Set("Content-Type", "audio/x-mpegurl")
	w.Write(b.Bytes())
}
