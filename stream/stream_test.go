package stream

import (
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/memtorrent/memtorrent/internal/testutil"
)

const (
	mib         = 1 << 20
	pieceLength = 256 << 10
)

func TestWholeFile(t *testing.T) {
	e := newEnv(t, 2*mib, Options{})
	spec := testutil.Spec{Name: "movie.mkv", Length: 4*mib + 1234, PieceLength: pieceLength, Seed: 1}
	tor := e.seed(spec)
	want := testutil.Content(spec)

	// HEAD: the headers, no body, no session.
	resp, body := e.do(http.MethodHead, streamPath(tor, 0))
	if resp.StatusCode != http.StatusOK || len(body) != 0 {
		t.Fatalf("HEAD: status %d, %d body bytes; want 200 and none", resp.StatusCode, len(body))
	}
	etag := fmt.Sprintf(`"%s-0"`, tor.InfoHash().HexString())
	for name, want := range map[string]string{
		"Content-Length":           strconv.Itoa(len(want)),
		"Content-Type":             "video/x-matroska",
		"Accept-Ranges":            "bytes",
		"ETag":                     etag,
		"transferMode.dlna.org":    "Streaming",
		"contentFeatures.dlna.org": dlnaFeatures,
	} {
		if got := resp.Header.Get(name); got != want {
			t.Errorf("HEAD: %s: got %q; want %q", name, got, want)
		}
	}
	if st := e.status(tor); len(st.Sessions) != 0 || st.ReadersCreated != 0 {
		t.Errorf("after HEAD: %d sessions, %d readers; want none", len(st.Sessions), st.ReadersCreated)
	}

	resp, body = e.get(streamPath(tor, 0), http.StatusOK)
	testutil.Equal(t, body, want)
	if got := resp.Header.Get("Content-Type"); got != "video/x-matroska" {
		t.Errorf("GET: Content-Type: got %q; want video/x-matroska", got)
	}
	if s := e.mem.Stats(); s.Resident > s.Capacity {
		t.Errorf("resident %d; want at most the capacity %d", s.Resident, s.Capacity)
	}
}

func TestRandomRanges(t *testing.T) {
	e := newEnv(t, 2*mib, Options{})
	spec := testutil.Spec{Name: "movie.mp4", Length: 4 * mib, PieceLength: pieceLength, Seed: 2}
	tor := e.seed(spec)
	want := testutil.Content(spec)
	size := int64(len(want))
	rng := rand.New(rand.NewPCG(4, 2))
	for i := range 50 {
		start := rng.Int64N(size)
		end := start + rng.Int64N(min(512<<10, size-start)) // inclusive
		rangeHdr := fmt.Sprintf("bytes=%d-%d", start, end)
		switch i % 10 {
		case 3: // open-ended
			end = size - 1
			rangeHdr = fmt.Sprintf("bytes=%d-", start)
		case 7: // suffix
			n := end - start + 1
			start, end = size-n, size-1
			rangeHdr = fmt.Sprintf("bytes=-%d", n)
		}
		began := time.Now()
		resp, body := e.get(streamPath(tor, 0), http.StatusPartialContent, "Range", rangeHdr)
		if d := time.Since(began); d > time.Second {
			t.Logf("%s took %v", rangeHdr, d.Round(time.Millisecond))
		}
		if got, want := resp.Header.Get("Content-Range"), fmt.Sprintf("bytes %d-%d/%d", start, end, size); got != want {
			t.Fatalf("%s: Content-Range: got %q; want %q", rangeHdr, got, want)
		}
		if !testutil.Equal(t, body, want[start:end+1]) {
			t.Fatalf("%s: wrong bytes", rangeHdr)
		}
	}
}

func TestTwoClientsTwoFiles(t *testing.T) {
	const capacity = 3 * mib
	e := newEnv(t, capacity, Options{})
	specs := []testutil.Spec{
		{Name: "a.mp4", Length: 4 * mib, PieceLength: pieceLength, Seed: 10},
		{Name: "b.mkv", Length: 5*mib - 100, PieceLength: pieceLength, Seed: 11},
	}
	type result struct {
		body []byte
		err  error
	}
	results := make([]chan result, len(specs))
	client := e.srv.Client()
	for i, spec := range specs {
		if spec.Length <= capacity {
			t.Fatalf("file %d of %d bytes fits the capacity %d", i, spec.Length, capacity)
		}
		tor := e.seed(spec)
		url := fmt.Sprintf("%s%s?session=client%d", e.srv.URL, streamPath(tor, 0), i)
		results[i] = make(chan result, 1)
		go func() {
			resp, err := client.Get(url)
			if err != nil {
				results[i] <- result{err: err}
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				results[i] <- result{err: fmt.Errorf("status %d", resp.StatusCode)}
				return
			}
			body, err := io.ReadAll(resp.Body)
			results[i] <- result{body, err}
		}()
	}
	for i, spec := range specs {
		r := <-results[i]
		if r.err != nil {
			t.Fatalf("client %d: %v", i, r.err)
		}
		testutil.Equal(t, r.body, testutil.Content(spec))
	}
	if s := e.mem.Stats(); s.Resident > s.Capacity || s.Evictions == 0 {
		t.Errorf("storage: resident %d, capacity %d, %d evictions; want resident within capacity and evictions",
			s.Resident, s.Capacity, s.Evictions)
	}
}

func TestSessionReuse(t *testing.T) {
	e := newEnv(t, 2*mib, Options{})
	spec := testutil.Spec{Name: "movie.mkv", Length: 4 * mib, PieceLength: pieceLength, Seed: 3}
	tor := e.seed(spec)
	want := testutil.Content(spec)
	const requests, chunk = 200, 16 << 10
	for i := range requests {
		start, end := i*chunk, (i+1)*chunk-1
		_, body := e.get(streamPath(tor, 0), http.StatusPartialContent, "Range", fmt.Sprintf("bytes=%d-%d", start, end))
		if !testutil.Equal(t, body, want[start:end+1]) {
			t.Fatalf("request %d: wrong bytes", i)
		}
	}
	st := e.status(tor)
	if st.ReadersCreated != 1 || len(st.Sessions) != 1 {
		t.Fatalf("after %d requests: %d readers created, %d sessions; want 1 and 1", requests, st.ReadersCreated, len(st.Sessions))
	}
	s := st.Sessions[0]
	if s.Requests != requests || s.Seeks != 0 || s.Position != requests*chunk {
		t.Errorf("session: %d requests, %d seeks, position %d; want %d, 0, %d",
			s.Requests, s.Seeks, s.Position, requests, requests*chunk)
	}
}

func TestConditionalAndMultipleRanges(t *testing.T) {
	e := newEnv(t, 2*mib, Options{})
	spec := testutil.Spec{Name: "song.mp3", Length: mib, PieceLength: pieceLength, Seed: 4}
	tor := e.seed(spec)
	want := testutil.Content(spec)
	etag := fmt.Sprintf(`"%s-0"`, tor.InfoHash().HexString())

	_, body := e.get(streamPath(tor, 0), http.StatusPartialContent, "Range", "bytes=10-19", "If-Range", etag)
	testutil.Equal(t, body, want[10:20])
	_, body = e.get(streamPath(tor, 0), http.StatusOK, "Range", "bytes=10-19", "If-Range", `"other"`)
	testutil.Equal(t, body, want)
	e.get(streamPath(tor, 0), http.StatusNotModified, "If-None-Match", etag)

	ranges := [][2]int{{0, 9}, {300000, 300099}, {mib - 5, mib - 1}}
	resp, body := e.get(streamPath(tor, 0), http.StatusPartialContent, "Range", "bytes=0-9,300000-300099,-5")
	mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/byteranges" {
		t.Fatalf("Content-Type %q (%v); want multipart/byteranges", resp.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(strings.NewReader(string(body)), params["boundary"])
	for i, r := range ranges {
		part, err := mr.NextPart()
		if err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
		got, err := io.ReadAll(part)
		if err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
		testutil.Equal(t, got, want[r[0]:r[1]+1])
	}
}
