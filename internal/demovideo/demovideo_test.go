package demovideo_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/memtorrent/memtorrent/internal/demovideo"
	"github.com/memtorrent/memtorrent/internal/testutil"
)

// TestWriteMP4 writes the demo video and has ffprobe and ffmpeg read it
// without an error: H.264, 320x240, the duration its frame count gives.
func TestWriteMP4(t *testing.T) {
	ffmpeg := testutil.RequireProgram(t, "ffmpeg", "ffmpeg")
	ffprobe := testutil.RequireProgram(t, "ffprobe", "ffmpeg")
	path := filepath.Join(t.TempDir(), "demo.mp4")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	const size = 8 << 20
	if err := demovideo.WriteMP4(f, size); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	frames := size / demovideo.FrameSize()
	out := testutil.Run(t, ffprobe, "-v", "error", "-select_streams", "v:0", "-count_frames", "-show_entries",
		"stream=codec_name,width,height,nb_read_frames:format=duration", "-of", "default=nw=1", path)
	for _, want := range []string{"codec_name=h264", "width=320", "height=240", "nb_read_frames=" + strconv.Itoa(frames)} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("ffprobe: %q; want %s", out, want)
		}
	}
	testutil.Run(t, ffmpeg, "-v", "error", "-i", path, "-f", "null", "-")
	if os.Getenv("MEMTORRENT_DEMO_FRAME") != "" {
		testutil.Run(t, ffmpeg, "-v", "error", "-ss", "1", "-i", path, "-frames:v", "1", "-y", os.Getenv("MEMTORRENT_DEMO_FRAME"))
	}
}

// TestPieceLength checks the demo's piece lengths.
func TestPieceLength(t *testing.T) {
	for _, tc := range []struct{ size, capacity, want int64 }{
		{1, 256 << 20, 16 << 10},
		{64 << 20, 256 << 20, 64 << 10},
		{4 << 30, 256 << 20, 1 << 20},
		{4 << 30, 1 << 20, 256 << 10},
		{4 << 30, 16 << 10, 16 << 10},
	} {
		if got := demovideo.PieceLength(tc.size, tc.capacity); got != tc.want {
			t.Errorf("demovideo.PieceLength(%d, %d) = %d; want %d", tc.size, tc.capacity, got, tc.want)
		}
	}
}
