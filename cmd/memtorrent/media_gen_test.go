package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/memtorrent/memtorrent/internal/testutil"
)

// TestDemoMP4 writes the demo video and has ffprobe and ffmpeg read it
// without an error: H.264, 320x240, the duration its frame count gives.
func TestDemoMP4(t *testing.T) {
	ffmpeg := testutil.RequireProgram(t, "ffmpeg", "ffmpeg")
	ffprobe := testutil.RequireProgram(t, "ffprobe", "ffmpeg")
	path := filepath.Join(t.TempDir(), "demo.mp4")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	const size = 8 << 20
	if err := writeDemoMP4(f, size); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	frames := size / demoFrameSize()
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
