package server

import (
	"slices"
	"testing"

	"github.com/memtorrent/memtorrent/internal/testutil"
)

// TestPlayFiles checks the files a player is offered: the media files by
// stream.MediaType's table, or every file when none is media.
func TestPlayFiles(t *testing.T) {
	cl := testutil.NewLeecher(t, nil)
	for _, tt := range []struct {
		name  string
		files []string
		want  []int
	}{
		{"media", []string{"ep1.mkv", "readme.txt", "ep1.srt", "extra/clip.3GP", "song.wma"}, []int{0, 3, 4}},
		{"none is media", []string{"a.txt", "b.bin"}, []int{0, 1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			spec := testutil.Spec{Name: tt.name, PieceLength: 16 << 10}
			for _, f := range tt.files {
				spec.Files = append(spec.Files, testutil.File{Path: f, Length: 1000})
			}
			mi, err := spec.MetaInfo()
			if err != nil {
				t.Fatal(err)
			}
			tor := testutil.AddTorrent(t, cl, mi)
			if got := PlayFiles(tor); !slices.Equal(got, tt.want) {
				t.Errorf("PlayFiles(%q): got %v; want %v", tt.files, got, tt.want)
			}
		})
	}
}
