package stream

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/memtorrent/memtorrent/internal/testutil"
)

func TestStatusAndMetrics(t *testing.T) {
	const capacity = 2 * mib
	e := newEnv(t, capacity, Options{})
	spec := testutil.Spec{Name: "movie.mkv", Length: 4 * mib, PieceLength: pieceLength, Seed: 12}
	tor := e.seed(spec)
	ih := tor.InfoHash().HexString()
	_, body := e.get(streamPath(tor, 0), http.StatusOK)
	testutil.Equal(t, body, testutil.Content(spec))

	resp, body := e.get("/status", http.StatusOK)
	if got := resp.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type %q; want application/json", got)
	}
	var st Status
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatalf("decoding /status: %v\n%s", err, body)
	}
	if st.Capacity != capacity || st.Resident <= 0 || st.Resident > capacity || st.Sessions != 1 ||
		st.MaxSessions != DefaultMaxSessions || st.ReadersCreated != 1 || len(st.Torrents) != 1 {
		t.Fatalf("status: %+v", st)
	}
	// The process figures: the storage's blocks are mapped (where mmap
	// exists), and RSS covers at least what the storage holds.
	if st.GoHeap <= 0 || st.BlocksMapped < 0 || (st.BlocksMapped > 0 && st.BlocksMapped < st.Resident) {
		t.Errorf("process: Go heap %d, blocks mapped %d, resident %d; want heap > 0 and mapped 0 or >= resident", st.GoHeap, st.BlocksMapped, st.Resident)
	}
	if _, err := os.Stat("/proc/self/statm"); err == nil && st.ProcessRSS < st.Resident {
		t.Errorf("process RSS %d; want >= resident %d", st.ProcessRSS, st.Resident)
	}
	if st.LongestReadWait <= 0 || st.LongestReadWait >= StallThreshold.Seconds() || st.Stalls != 0 {
		t.Errorf("read waits: longest %vs, %d stalls; want a wait in (0, %v) and no stall", st.LongestReadWait, st.Stalls, StallThreshold)
	}
	if st.Verify != VerifyStrict || st.UnverifiedBytes != 0 || st.UnverifiedFailed != 0 {
		t.Errorf("verify %q, unverified bytes %d, failed %d; want %q, 0, 0", st.Verify, st.UnverifiedBytes, st.UnverifiedFailed, VerifyStrict)
	}
	ts := st.Torrents[0]
	pieces := int(spec.Length / pieceLength)
	checks := []struct {
		what string
		ok   bool
	}{
		{"info hash", ts.InfoHash == ih},
		{"name", ts.Name == "movie.mkv" && ts.GotInfo},
		{"length", ts.Length == spec.Length && ts.PieceLength == pieceLength},
		{"pieces total", ts.Pieces.Total == pieces},
		{"pieces complete", ts.Pieces.Complete > 0 && ts.Pieces.Complete <= ts.Pieces.Resident},
		{"pieces resident", ts.Pieces.Resident*pieceLength <= capacity},
		{"pieces pinned", ts.Pieces.Pinned > 0},
		{"pieces lookbehind", ts.Pieces.Lookbehind > 0 && ts.Pieces.Lookbehind == ts.Lookbehind.Protected},
		{"capacity", ts.Capacity == capacity},
		{"resident bytes", ts.ResidentBytes > 0 && ts.ResidentBytes <= capacity},
		{"bytes read", ts.BytesReadData >= spec.Length},
		{"download rate", ts.DownloadRate >= 0},
		{"readers", ts.ReadersCreated == 1},
		{"one session", len(ts.Sessions) == 1},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("status: %s wrong in %+v", c.what, ts)
		}
	}
	if len(ts.Sessions) == 1 {
		s := ts.Sessions[0]
		if s.Position != spec.Length || s.Path != "movie.mkv" || s.File != 0 || s.Requests != 1 ||
			s.Readahead != capacity/2 || s.Busy || !strings.HasPrefix(s.Client, "127.0.0.1 Go-http-client/") {
			t.Errorf("session: %+v", s)
		}
		// The sharing rule's view: a buffer estimate, a rate (too few
		// reads to learn one: the default), and alone, the neediest.
		if s.BufferedSeconds < 0 || s.PlaybackRate != defaultRate || s.RateLearned || s.Share != ShareNeedy {
			t.Errorf("session sharing: buffered %vs, rate %v (learned %v), share %q; want >= 0, %v (assumed), %q",
				s.BufferedSeconds, s.PlaybackRate, s.RateLearned, s.Share, defaultRate, ShareNeedy)
		}
	}
	// Nothing plays now: no demand, no shortfall.
	if st.Demand != 0 || st.Shortfall != 0 || st.Overloaded || ts.Demand != 0 || ts.Shortfall != 0 {
		t.Errorf("admission idle: demand %v, shortfall %v, overloaded %v; torrent demand %v, shortfall %v; want all 0",
			st.Demand, st.Shortfall, st.Overloaded, ts.Demand, ts.Shortfall)
	}
	// /status/{infohash} is the same torrent.
	if one := e.status(tor); one.InfoHash != ih || one.Pieces.Total != pieces || len(one.Sessions) != 1 {
		t.Errorf("/status/%s: %+v", ih, one)
	}

	sid := ""
	if len(ts.Sessions) == 1 {
		sid = strconv.FormatUint(ts.Sessions[0].ID, 10)
	}
	_, body = e.get("/metrics", http.StatusOK)
	var parser expfmt.TextParser
	families, err := parser.TextToMetricFamilies(bufio.NewReader(strings.NewReader(string(body))))
	if err != nil {
		t.Fatalf("parsing /metrics: %v\n%s", err, body)
	}
	value := func(name string, labels ...string) (float64, dto.MetricType, bool) {
		f := families[name]
		if f == nil {
			return 0, 0, false
		}
	metrics:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue metrics
				}
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				return m.GetCounter().GetValue(), f.GetType(), true
			default:
				return m.GetGauge().GetValue(), f.GetType(), true
			}
		}
		return 0, 0, false
	}
	for _, c := range []struct {
		name   string
		labels []string
		typ    dto.MetricType
		want   func(float64) bool
	}{
		{"memtorrent_storage_capacity_bytes", nil, dto.MetricType_GAUGE, func(v float64) bool { return v == capacity }},
		{"memtorrent_storage_resident_bytes", nil, dto.MetricType_GAUGE, func(v float64) bool { return v > 0 && v <= capacity }},
		{"memtorrent_process_resident_bytes", nil, dto.MetricType_GAUGE, func(v float64) bool { return v >= 0 }},
		{"memtorrent_go_heap_objects_bytes", nil, dto.MetricType_GAUGE, func(v float64) bool { return v > 0 }},
		{"memtorrent_storage_mapped_bytes", nil, dto.MetricType_GAUGE, func(v float64) bool { return v >= 0 }},
		{"memtorrent_storage_evictions_total", nil, dto.MetricType_COUNTER, func(v float64) bool { return v >= 0 }},
		{"memtorrent_storage_evicted_unverified_total", nil, dto.MetricType_COUNTER, func(v float64) bool { return v >= 0 }},
		{"memtorrent_stream_sessions", nil, dto.MetricType_GAUGE, func(v float64) bool { return v == 1 }},
		{"memtorrent_stream_readers_created_total", nil, dto.MetricType_COUNTER, func(v float64) bool { return v == 1 }},
		{"memtorrent_stream_stalls_total", nil, dto.MetricType_COUNTER, func(v float64) bool { return v == 0 }},
		{"memtorrent_stream_unverified_bytes_total", nil, dto.MetricType_COUNTER, func(v float64) bool { return v == 0 }},
		{"memtorrent_stream_unverified_failed_pieces_total", nil, dto.MetricType_COUNTER, func(v float64) bool { return v == 0 }},
		{"memtorrent_stream_longest_read_wait_seconds", nil, dto.MetricType_GAUGE, func(v float64) bool { return v > 0 && v < 2 }},
		{"memtorrent_torrent_pieces", []string{"infohash", ih, "state", "total"}, dto.MetricType_GAUGE, func(v float64) bool { return v == float64(pieces) }},
		{"memtorrent_torrent_pieces", []string{"infohash", ih, "state", "complete"}, dto.MetricType_GAUGE, func(v float64) bool { return v == float64(ts.Pieces.Complete) }},
		{"memtorrent_torrent_pieces", []string{"infohash", ih, "state", "lookbehind"}, dto.MetricType_GAUGE, func(v float64) bool { return v == float64(ts.Pieces.Lookbehind) }},
		{"memtorrent_torrent_sessions", []string{"infohash", ih}, dto.MetricType_GAUGE, func(v float64) bool { return v == 1 }},
		{"memtorrent_torrent_readers_created_total", []string{"infohash", ih}, dto.MetricType_COUNTER, func(v float64) bool { return v == 1 }},
		{"memtorrent_torrent_resident_bytes", []string{"infohash", ih}, dto.MetricType_GAUGE, func(v float64) bool { return v > 0 }},
		{"memtorrent_torrent_lookbehind_pieces", []string{"infohash", ih}, dto.MetricType_GAUGE, func(v float64) bool { return v == float64(ts.Lookbehind.Protected) }},
		{"memtorrent_torrent_lookbehind_hits_total", []string{"infohash", ih}, dto.MetricType_COUNTER, func(v float64) bool { return v >= 0 }},
		{"memtorrent_torrent_lookbehind_misses_total", []string{"infohash", ih}, dto.MetricType_COUNTER, func(v float64) bool { return v >= 0 }},
		{"memtorrent_torrent_read_data_bytes_total", []string{"infohash", ih}, dto.MetricType_COUNTER, func(v float64) bool { return v >= float64(spec.Length) }},
		{"memtorrent_torrent_download_rate_bytes_per_second", []string{"infohash", ih}, dto.MetricType_GAUGE, func(v float64) bool { return v >= 0 }},
		{"memtorrent_stream_demand_bytes_per_second", nil, dto.MetricType_GAUGE, func(v float64) bool { return v == 0 }},
		{"memtorrent_stream_shortfall_bytes_per_second", nil, dto.MetricType_GAUGE, func(v float64) bool { return v == 0 }},
		{"memtorrent_stream_overloaded", nil, dto.MetricType_GAUGE, func(v float64) bool { return v == 0 }},
		{"memtorrent_torrent_demand_bytes_per_second", []string{"infohash", ih}, dto.MetricType_GAUGE, func(v float64) bool { return v == 0 }},
		{"memtorrent_torrent_shortfall_bytes_per_second", []string{"infohash", ih}, dto.MetricType_GAUGE, func(v float64) bool { return v == 0 }},
		{"memtorrent_session_buffered_seconds", []string{"infohash", ih, "session", sid}, dto.MetricType_GAUGE, func(v float64) bool { return v >= 0 }},
		{"memtorrent_session_playback_rate_bytes_per_second", []string{"infohash", ih, "session", sid, "learned", "false"}, dto.MetricType_GAUGE, func(v float64) bool { return v == defaultRate }},
		{"memtorrent_session_share", []string{"infohash", ih, "session", sid, "share", ShareNeedy}, dto.MetricType_GAUGE, func(v float64) bool { return v == 1 }},
	} {
		v, typ, ok := value(c.name, c.labels...)
		if !ok || typ != c.typ || !c.want(v) {
			t.Errorf("metric %s%q: got %v of type %v (found %v)", c.name, c.labels, v, typ, ok)
		}
	}
}

func TestRateSample(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var r rateSample
	r = r.next(t0, 100)
	if r.rate != 0 {
		t.Errorf("first sample: rate %v; want 0", r.rate)
	}
	r = r.next(t0.Add(2*time.Second), 100+4*mib)
	if r.rate != 2*mib {
		t.Errorf("rate: got %v; want %v", r.rate, 2*mib)
	}
	if r = r.next(t0.Add(2*time.Second), 200+4*mib); r.rate != 0 {
		t.Errorf("no time passed: rate %v; want 0", r.rate)
	}
}

func TestPlaylist(t *testing.T) {
	e := newEnv(t, 2*mib, Options{})
	spec := testutil.Spec{Name: "show", PieceLength: pieceLength, Seed: 13, Files: []testutil.File{
		{Path: "ep1.mkv", Length: 300 << 10},
		{Path: "readme.txt", Length: 1000},
		{Path: "Extras/ep 2 #1?.MP4", Length: 200 << 10},
		{Path: "song.flac", Length: 100 << 10},
	}}
	tor := e.seed(spec)
	ih := tor.InfoHash().HexString()
	playlist := "/playlist/" + ih + ".m3u"
	resp, body := e.get(playlist, http.StatusOK)
	if got := resp.Header.Get("Content-Type"); got != "audio/x-mpegurl" {
		t.Errorf("Content-Type %q; want audio/x-mpegurl", got)
	}
	base := e.srv.URL + "/stream/" + ih + "/path/"
	want := "#EXTM3U\n" +
		"#EXTINF:-1,ep1.mkv\n" + base + "ep1.mkv\n" +
		"#EXTINF:-1,Extras/ep 2 #1?.MP4\n" + base + "Extras/ep%202%20%231%3F.MP4\n" +
		"#EXTINF:-1,song.flac\n" + base + "song.flac\n"
	if string(body) != want {
		t.Fatalf("playlist:\n%s\nwant:\n%s", body, want)
	}
	for i, file := range []int{0, 2, 3} {
		url := strings.Split(string(body), "\n")[2+2*i]
		_, got := e.get(strings.TrimPrefix(url, e.srv.URL), http.StatusOK)
		testutil.Equal(t, got, testutil.FileContent(spec, file))
	}

	// Mounted under a prefix, the URLs keep it.
	mux := http.NewServeMux()
	mux.Handle("/media/", http.StripPrefix("/media", e.h))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	res, err := srv.Client().Get(srv.URL + "/media" + playlist)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		if line := sc.Text(); !strings.HasPrefix(line, "#") && !strings.HasPrefix(line, srv.URL+"/media/stream/"+ih+"/path/") {
			t.Errorf("prefixed playlist entry %q; want it under %s/media/", line, srv.URL)
		}
	}
}

// TestRecordWait counts a wait above StallThreshold as a stall and keeps
// the longest wait.
func TestRecordWait(t *testing.T) {
	var h Handler
	for _, d := range []time.Duration{time.Millisecond, StallThreshold, StallThreshold + 1, 30 * time.Millisecond} {
		h.recordWait(d)
	}
	if got := h.stalls.Load(); got != 1 {
		t.Errorf("stalls: got %d; want 1 (only the wait above %v)", got, StallThreshold)
	}
	if got := time.Duration(h.longestWait.Load()); got != StallThreshold+1 {
		t.Errorf("longest wait: got %v; want %v", got, StallThreshold+1)
	}
}
