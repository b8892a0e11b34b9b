package main

import (
	"fmt"
	"math"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/memtorrent/memtorrent/internal/testutil"
)

// TestOneRequestPlayFFmpeg points ffprobe, then ffmpeg with ten seeks, at
// a TorrServer stream URL whose link is a magnet URI naming a loopback
// seeder in x.pe: no torrent was added before, the first request adds it,
// waits for its metadata and streams, under a capacity smaller than the
// file.
func TestOneRequestPlayFFmpeg(t *testing.T) {
	ffmpeg := testutil.RequireProgram(t, "ffmpeg", "ffmpeg")
	ffprobe := testutil.RequireProgram(t, "ffprobe", "ffmpeg")
	const duration = 20.0
	dir := t.TempDir()
	path := filepath.Join(dir, "clip.mp4")
	testutil.Run(t, ffmpeg, "-v", "error", "-threads", "1",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc=duration=%v:size=320x240:rate=25,noise=alls=30:allf=t", duration),
		"-f", "lavfi", "-i", "sine", "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "1200k",
		"-c:a", "aac", "-shortest", path)
	_, magnet := seedFile(t, path, "clip.mp4")
	s, base := startAPIServer(t) // 2 MiB of memory for a file of about 3 MiB
	u := base + "/stream?link=" + url.QueryEscape(magnet) + "&index=1&play"

	out := testutil.Run(t, ffprobe, "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", u)
	if d, err := strconv.ParseFloat(strings.TrimSpace(out), 64); err != nil || math.Abs(d-duration) > 0.5 {
		t.Errorf("ffprobe duration %q (%v); want about %v", out, err, duration)
	}
	for _, ss := range []float64{17, 0.5, 12, 3, 19, 8, 15.5, 1, 10, 5} {
		testutil.Run(t, ffmpeg, "-v", "error", "-threads", "1", "-ss", fmt.Sprint(ss), "-i", u, "-t", "1", "-f", "null", "-")
	}
	s.stop(t, syscall.SIGTERM, 10*time.Second)
}
