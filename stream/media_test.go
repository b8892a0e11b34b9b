package stream

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/anacrolix/torrent"

	"github.com/memtorrent/memtorrent/internal/testutil"
)

// mediaDuration is the length of the clips TestMedia makes.
const mediaDuration = 20.0

// TestMedia makes an MP4 (moov atom at the end) and an MKV with ffmpeg,
// serves each through a seeder and a memory leecher whose capacity is
// below the file's size, and checks that ffprobe reads the duration and
// that ffmpeg decodes after ten seeks and from start to end without an
// error. Without ffmpeg it skips, unless CI=true, where it fails.
func TestMedia(t *testing.T) {
	testutil.RequireProgram(t, "ffmpeg", "ffmpeg")
	testutil.RequireProgram(t, "ffprobe", "ffmpeg")
	const capacity = 2 * mib
	for _, name := range []string{"clip.mp4", "clip.mkv"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, name)
			testutil.Run(t, "ffmpeg", "-v", "error", "-threads", "1",
				"-f", "lavfi", "-i", fmt.Sprintf("testsrc=duration=%v:size=320x240:rate=25,noise=alls=30:allf=t", mediaDuration),
				"-f", "lavfi", "-i", "sine", "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "1200k",
				"-c:a", "aac", "-shortest", path)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(data)) <= capacity {
				t.Fatalf("%s is %d bytes; want more than the capacity %d", name, len(data), capacity)
			}
			if strings.HasSuffix(name, ".mp4") {
				if boxes := mp4Boxes(data); !moovAtEnd(boxes) {
					t.Fatalf("top-level boxes %v; want moov after mdat", boxes)
				}
			}

			e := newEnv(t, capacity, Options{})
			tor := e.seedFile(path)
			url := e.srv.URL + streamPath(tor, 0)

			out := testutil.Run(t, "ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", url)
			d, err := strconv.ParseFloat(strings.TrimSpace(out), 64)
			if err != nil || math.Abs(d-mediaDuration) > 0.5 {
				t.Errorf("ffprobe duration %q (%v); want about %v", out, err, mediaDuration)
			}
			for _, ss := range []float64{17, 0.5, 12, 3, 19, 8, 15.5, 1, 10, 5} {
				testutil.Run(t, "ffmpeg", "-v", "error", "-threads", "1", "-ss", fmt.Sprint(ss), "-i", url, "-t", "1", "-f", "null", "-")
			}
			testutil.Run(t, "ffmpeg", "-v", "error", "-threads", "1", "-i", url, "-f", "null", "-")

			st := e.status(tor)
			if s := e.mem.Stats(); s.Resident > s.Capacity {
				t.Errorf("resident %d above capacity %d", s.Resident, s.Capacity)
			}
			t.Logf("%s: %d bytes, %d pieces, %d readers created, %d sessions, lookbehind %+v",
				name, len(data), st.Pieces.Total, st.ReadersCreated, len(st.Sessions), st.Lookbehind)
		})
	}
}

// mp4Boxes returns the types of an MP4 file's top-level boxes, in order.
func mp4Boxes(b []byte) []string {
	var boxes []string
	for off := uint64(0); off+8 <= uint64(len(b)); {
		size := uint64(binary.BigEndian.Uint32(b[off:]))
		boxes = append(boxes, string(b[off+4:off+8]))
		if size == 1 && off+16 <= uint64(len(b)) {
			size = binary.BigEndian.Uint64(b[off+8:])
		}
		if size < 8 {
			break
		}
		off += size
	}
	return boxes
}

// moovAtEnd reports whether the moov box comes after the mdat box.
func moovAtEnd(boxes []string) bool {
	mdat := -1
	for i, b := range boxes {
		switch b {
		case "mdat":
			mdat = i
		case "moov":
			return mdat >= 0
		}
	}
	return false
}

// seedFile seeds the file at path, a single-file torrent of 256 KiB pieces,
// from a new client over the file storage in its directory, and adds the
// torrent to the leecher. (testutil.NewSeeder seeds generated data only.)
func (e *env) seedFile(path string) *torrent.Torrent {
	t := e.t
	t.Helper()
	mi := testutil.FileMetaInfo(t, path, pieceLength)
	seeder := testutil.SeedDir(t, filepath.Dir(path), mi, nil)
	return testutil.AddTorrent(t, e.cl, mi, seeder)
}
