package stream

import (
	"mime"
	"path"
	"strings"
)

// MediaType returns the Content-Type of a file by the extension of its
// name (any case), and whether a player plays it: true for the video and
// audio types of the table below. The table comes first, since Go's
// built-in one lacks most media types; then mime.TypeByExtension (never
// playable: the system's tables differ between machines); then
// application/octet-stream. Subtitles have their types but are not
// playable.
//
// Every place that sorts files into playable or not (the playlists, the
// printed URLs, the status page, the APIs' media flags) asks MediaType, so
// that they agree. It is safe for concurrent use.
func MediaType(name string) (contentType string, playable bool) {
	ext := strings.ToLower(path.Ext(name))
	if t := mediaType(ext); t != "" {
		return t, strings.HasPrefix(t, "video/") || strings.HasPrefix(t, "audio/")
	}
	if t := mime.TypeByExtension(ext); t != "" {
		return t, false
	}
	return "application/octet-stream", false
}

// mediaType returns the Content-Type of a video, audio or subtitle
// extension (lower case, with its dot), "" for others.
func mediaType(ext string) string {
	switch ext {
	case ".mp4":
		return "video/mp4"
	case ".m4v":
		return "video/x-m4v"
	case ".mkv":
		return "video/x-matroska"
	case ".webm":
		return "video/webm"
	case ".avi":
		return "video/x-msvideo"
	case ".mov":
		return "video/quicktime"
	case ".wmv":
		return "video/x-ms-wmv"
	case ".flv":
		return "video/x-flv"
	case ".mpg", ".mpeg":
		return "video/mpeg"
	case ".ts", ".m2ts", ".mts":
		return "video/mp2t"
	case ".3gp":
		return "video/3gpp"
	case ".ogv":
		return "video/ogg"
	case ".mp3":
		return "audio/mpeg"
	case ".flac":
		return "audio/flac"
	case ".m4a":
		return "audio/mp4"
	case ".aac":
		return "audio/aac"
	case ".ogg", ".oga":
		return "audio/ogg"
	case ".opus":
		return "audio/opus"
	case ".wav":
		return "audio/wav"
	case ".wma":
		return "audio/x-ms-wma"
	case ".mka":
		return "audio/x-matroska"
	case ".srt":
		return "application/x-subrip"
	case ".vtt":
		return "text/vtt"
	case ".ass", ".ssa":
		return "text/x-ssa"
	}
	return ""
}
