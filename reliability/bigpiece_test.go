package reliability

import (
	"bytes"
	"context"
	"flag"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/storage"
	"golang.org/x/time/rate"

	"github.com/memtorrent/memtorrent/internal/testutil"
	"github.com/memtorrent/memtorrent/stream"
)

var firstByteRate = flag.Int("firstbyte.rate", 4<<20, "TestBigPieceFirstByte: the seeder's upload rate, bytes per second")

// bigPieceSpec is a film of three 16 MiB pieces.
var bigPieceSpec = testutil.Spec{Name: "film.mkv", PieceLength: 16 * mib, Length: 48 * mib, Seed: 221}

// TestBigPieceCorruptingPeer streams a file of 16 MiB pieces whose first
// piece a peer corrupts; the leecher has only that peer until it bans it,
// then an honest seeder. Strict: every byte streamed is exact, nothing is
// served before its hash. Playhead: the bytes of the first piece reach the
// player before its hash (wrong ones), the failure is counted in /status
// and /metrics, the piece is downloaded again although the playhead has
// left it, and a later read of it is exact.
func TestBigPieceCorruptingPeer(t *testing.T) {
	for _, tc := range []struct {
		verify, badHost string
	}{
		{stream.VerifyStrict, "127.0.0.3"},
		{stream.VerifyPlayhead, "127.0.0.4"},
	} {
		t.Run(tc.verify, func(t *testing.T) {
			want := testutil.Content(bigPieceSpec)
			e := newEnv(t, 96*mib, stream.Options{Verify: tc.verify})
			bad := newSeeder(t, bigPieceSpec, func(st storage.ClientImplCloser) storage.ClientImplCloser {
				return corruptStorage{st, func(i int) bool { return i == 0 }}
			}, listenOn(tc.badHost))
			tor := e.add(bad.mi, bad.addr())
			res := e.fetchAsync(e.url(tor, 0), "", http.StatusOK)

			testutil.WaitFor(t, transferTimeout, "the leecher to ban "+tc.badHost, func() bool {
				return slices.Equal(bannedIPs(e.cl), []string{tc.badHost})
			})
			good := newSeeder(t, bigPieceSpec, nil)
			addPeers(tor, good.addr())
			r := waitResult(t, res)
			if r.err != nil {
				t.Fatalf("streaming beside a corrupting peer: %v", r.err)
			}
			st := e.h.Status()
			t.Logf("unverified bytes served %d, pieces failed after serving %d", st.UnverifiedBytes, st.UnverifiedFailed)

			if tc.verify == stream.VerifyStrict {
				equal(t, "streamed file", r.body, want)
				if st.UnverifiedBytes != 0 || st.UnverifiedFailed != 0 {
					t.Errorf("strict: unverified bytes %d, failed %d; want 0, 0", st.UnverifiedBytes, st.UnverifiedFailed)
				}
				return
			}
			p := bigPieceSpec.PieceLength
			equal(t, "streamed file after the corrupt piece", r.body[p:], want[p:])
			if bytes.Equal(r.body[:p], want[:p]) {
				t.Errorf("the corrupt piece reached the player exact; want the corrupting peer's bytes (the test did not test)")
			}
			if st.UnverifiedFailed != 1 || st.UnverifiedBytes == 0 {
				t.Errorf("unverified bytes %d, failed %d; want > 0, 1", st.UnverifiedBytes, st.UnverifiedFailed)
			}
			metrics, err := e.fetch(t.Context(), e.srv.URL+"/metrics", "", http.StatusOK)
			if err != nil {
				t.Fatal(err)
			}
			if line := "memtorrent_stream_unverified_failed_pieces_total 1\n"; !strings.Contains(string(metrics), line) {
				t.Errorf("/metrics lacks %q", line)
			}
			// Downloaded again though no playhead is on it.
			testutil.WaitFor(t, transferTimeout, "the failed piece to be downloaded again", func() bool {
				return tor.Piece(0).State().Complete
			})
			ctx, cancel := context.WithTimeout(t.Context(), transferTimeout)
			defer cancel()
			again, err := e.fetch(ctx, e.url(tor, 0), "bytes=0-1048575", http.StatusPartialContent)
			if err != nil {
				t.Fatal(err)
			}
			equal(t, "a later read of the failed piece", again, want[:1<<20])
		})
	}
}

// TestBigPieceFirstByte reads the start of a file of 16 MiB pieces from a
// seeder limited to -firstbyte.rate (4 MiB/s: 4 s a piece) and logs the
// time to the first byte of the response. Playhead: the first byte
// arrives while the piece is still incomplete. Strict: only once the
// piece is complete. Run with -firstbyte.rate=1000000 -v to measure at
// 1 MB/s.
func TestBigPieceFirstByte(t *testing.T) {
	want := testutil.Content(bigPieceSpec)
	for _, verify := range []string{stream.VerifyStrict, stream.VerifyPlayhead} {
		t.Run(verify, func(t *testing.T) {
			e := newEnv(t, 96*mib, stream.Options{Verify: verify})
			seeder := newSeeder(t, bigPieceSpec, nil, func(cfg *torrent.ClientConfig) {
				cfg.UploadRateLimiter = rate.NewLimiter(rate.Limit(*firstByteRate), 64<<10)
			})
			tor := e.add(seeder.mi, seeder.addr())
			ctx, cancel := context.WithTimeout(t.Context(), transferTimeout)
			defer cancel()
			start := time.Now()
			resp, err := e.get(ctx, e.url(tor, 0), "bytes=0-1048575")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusPartialContent {
				t.Fatalf("status %d; want 206", resp.StatusCode)
			}
			body := make([]byte, 1<<20)
			if _, err := io.ReadFull(resp.Body, body[:1]); err != nil {
				t.Fatalf("reading the first byte: %v", err)
			}
			ttfb := time.Since(start)
			complete := tor.Piece(0).State().Complete
			t.Logf("verify %s: first byte after %v at %d B/s, piece complete then: %v", verify, ttfb.Round(time.Millisecond), *firstByteRate, complete)
			if _, err := io.ReadFull(resp.Body, body[1:]); err != nil {
				t.Fatalf("reading the body: %v", err)
			}
			equal(t, "first MiB", body, want[:1<<20])
			st := e.h.Status()
			switch {
			case verify == stream.VerifyStrict && (!complete || st.UnverifiedBytes != 0):
				t.Errorf("strict: piece complete at the first byte %v, unverified bytes %d; want true, 0", complete, st.UnverifiedBytes)
			case verify == stream.VerifyPlayhead && (complete || st.UnverifiedBytes == 0):
				t.Errorf("playhead: piece complete at the first byte %v, unverified bytes %d; want false, > 0", complete, st.UnverifiedBytes)
			}
		})
	}
}
