package stream_test

import (
	"testing"

	"github.com/memtorrent/memtorrent/stream"
)

func TestMediaType(t *testing.T) {
	for _, tt := range []struct {
		name     string
		want     string
		playable bool
	}{
		{"a.mkv", "video/x-matroska", true},
		{"dir/B.MP4", "video/mp4", true},
		{"c.mp3", "audio/mpeg", true},
		{"b.FLAC", "audio/flac", true},
		{"clip.3gp", "video/3gpp", true},
		{"show.mts", "video/mp2t", true},
		{"voice.oga", "audio/ogg", true},
		{"track.wma", "audio/x-ms-wma", true},
		{"album.mka", "audio/x-matroska", true},
		{"d.srt", "application/x-subrip", false},
		{"e.vtt", "text/vtt", false},
		{"f.json", "application/json", false},
		{"g.bin", "application/octet-stream", false},
		{"noext", "application/octet-stream", false},
		{"dir.mkv/readme", "application/octet-stream", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, playable := stream.MediaType(tt.name)
			if got != tt.want || playable != tt.playable {
				t.Errorf("MediaType(%q): got %q, %v; want %q, %v", tt.name, got, playable, tt.want, tt.playable)
			}
		})
	}
}
