package stream

import (
	"math"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/memtorrent/memtorrent/lookbehind"
)

func TestReadahead(t *testing.T) {
	def, err := Options{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	withBitrate := def
	withBitrate.Bitrate = 8 << 20 // 1 MiB/s: 60 MiB in 60 s
	lowBitrate := def
	lowBitrate.Bitrate = 80 << 10 // 10 KiB/s: 600 KiB in 60 s
	for _, c := range []struct {
		name           string
		o              Options
		capacity, plen int64
		sessions       int
		want           int64
	}{
		{"half the capacity", def, 16 * mib, pieceLength, 1, 8 * mib},
		{"split among sessions", def, 16 * mib, pieceLength, 4, 2 * mib},
		{"no sessions counts as one", def, 16 * mib, pieceLength, 0, 8 * mib},
		{"capped", def, 1 << 30, pieceLength, 1, DefaultReadaheadCap},
		{"at least two pieces", def, 2 * mib, 4 * mib, 3, 8 * mib},
		{"bitrate above the share", withBitrate, 16 * mib, pieceLength, 1, 8 * mib},
		{"bitrate below the share", lowBitrate, 16 * mib, pieceLength, 1, 600 << 10},
	} {
		if got := readahead(c.o, c.capacity, c.plen, c.sessions, 0); got != c.want {
			t.Errorf("%s: got %d; want %d", c.name, got, c.want)
		}
	}

	if got := lookbehindBudget(def, 16*mib, 2); got != 2*mib {
		t.Errorf("default lookbehind budget: got %d; want %d", got, 2*mib)
	}
	if got := lookbehindBudget(Options{LookbehindBytes: 3 * mib}, 16*mib, 3); got != mib {
		t.Errorf("explicit lookbehind budget: got %d; want %d", got, mib)
	}
	if got := lookbehindBudget(Options{LookbehindBytes: -1}, 16*mib, 1); got != 0 {
		t.Errorf("disabled lookbehind budget: got %d; want 0", got)
	}
}

func TestPinExtents(t *testing.T) {
	for _, c := range []struct {
		name     string
		f        lookbehind.File
		capacity int64
		want     [][2]int64
	}{
		{"1% of capacity", lookbehind.File{Offset: 100, Length: 50 * mib}, 100 * mib, [][2]int64{{100, mib}, {100 + 49*mib, mib}}},
		{"at most 2 MiB", lookbehind.File{Length: 50 * mib}, 1 << 30, [][2]int64{{0, 2 * mib}, {48 * mib, 2 * mib}}},
		{"head and tail meet", lookbehind.File{Offset: 10, Length: 2 * mib}, 100 * mib, [][2]int64{{10, 2 * mib}}},
		{"empty file", lookbehind.File{Offset: 10}, 100 * mib, nil},
	} {
		got := pinExtents(c.f, c.capacity)
		if len(got) != len(c.want) {
			t.Errorf("%s: got %v; want %v", c.name, got, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%s: got %v; want %v", c.name, got, c.want)
			}
		}
	}
}

func TestRangeStart(t *testing.T) {
	for hdr, want := range map[string]int64{
		"":                  0,
		"bytes=100-":        100,
		"bytes=100-200":     100,
		"bytes= 7-8, 20-30": 7,
		"bytes=-10":         990,
		"bytes=-5000":       0,
		"bytes=x-":          0,
		"items=5-":          0,
	} {
		if got := rangeStart(hdr, 1000); got != want {
			t.Errorf("rangeStart(%q): got %d; want %d", hdr, got, want)
		}
	}
}

func TestValidPath(t *testing.T) {
	for p, want := range map[string]bool{
		"a.mkv": true, "dir/a.mkv": true, "a..b.mkv": true,
		"": false, "/a": false, "a/": false, "a//b": false, ".": false, "..": false,
		"../a": false, "a/../b": false, "a/./b": false, `a\..\b`: false, "a\x00": false,
	} {
		if got := validPath(p); got != want {
			t.Errorf("validPath(%q): got %v; want %v", p, got, want)
		}
	}
}

func TestClientID(t *testing.T) {
	r := httptest.NewRequest("GET", "/stream/x/0", nil)
	r.RemoteAddr = "192.0.2.7:5555"
	r.Header.Set("User-Agent", "TV/1.0")
	if got, want := clientID(r), "192.0.2.7 TV/1.0"; got != want {
		t.Errorf("clientID: got %q; want %q", got, want)
	}
	r = httptest.NewRequest("GET", "/stream/x/0?session=abc", nil)
	if got, want := clientID(r), "session=abc"; got != want {
		t.Errorf("clientID with ?session: got %q; want %q", got, want)
	}
}

func TestNewRejects(t *testing.T) {
	if _, err := New(nil, nil, Options{}); err == nil {
		t.Errorf("New(nil, nil): no error")
	}
	for _, o := range []Options{{IdleTimeout: -1}, {MaxSessions: -1}, {ReadaheadCap: -1}, {Bitrate: -1}, {InfoTimeout: -1}, {Verify: "loose"}} {
		if _, err := o.withDefaults(); err == nil {
			t.Errorf("options %+v: no error", o)
		}
	}
}

func TestPlaybackBytes(t *testing.T) {
	tests := []struct {
		name string
		d    time.Duration
		rate int64
		want int64
	}{
		{"ten seconds at 500 kB/s", 10 * time.Second, 500_000, 5_000_000},
		{"rounds down", 1500 * time.Millisecond, 3, 4},
		{"zero duration", 0, 1 << 30, 0},
		{"zero rate", time.Hour, 0, 0},
		{"product beyond 64 bits", math.MaxInt64, 4, 36_893_488_147},
		{"saturates", math.MaxInt64, math.MaxInt64, math.MaxInt64},
		{"saturates just past int64", time.Second, math.MaxInt64, math.MaxInt64},
		{"negative duration", -time.Second, 1, 0},
		{"negative rate", time.Second, -8, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := playbackBytes(tt.d, tt.rate); got != tt.want {
				t.Errorf("playbackBytes(%v, %d): got %d; want %d", tt.d, tt.rate, got, tt.want)
			}
		})
	}
}
