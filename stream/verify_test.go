package stream

import (
	"net/http"
	"testing"

	"github.com/memtorrent/memtorrent/internal/testutil"
)

// TestVerifyPlayheadStreams streams a file through a cache smaller than it
// with VerifyPlayhead, with a seek back and forth: every byte is exact, and
// the status reports the mode.
func TestVerifyPlayheadStreams(t *testing.T) {
	e := newEnv(t, 2*mib, Options{Verify: VerifyPlayhead})
	spec := testutil.Spec{Name: "movie.mkv", Length: 4*mib + 777, PieceLength: pieceLength, Seed: 31}
	want := testutil.Content(spec)
	tor := e.seed(spec)
	_, body := e.get(streamPath(tor, 0), http.StatusOK)
	testutil.Equal(t, body, want)
	_, body = e.get(streamPath(tor, 0), http.StatusPartialContent, "Range", "bytes=1000-")
	testutil.Equal(t, body, want[1000:])
	_, body = e.get(streamPath(tor, 0), http.StatusPartialContent, "Range", "bytes=3145000-3146000")
	testutil.Equal(t, body, want[3145000:3146001])

	st := e.h.Status()
	if st.Verify != VerifyPlayhead || st.UnverifiedFailed != 0 {
		t.Errorf("verify %q, failed %d; want %q, 0", st.Verify, st.UnverifiedFailed, VerifyPlayhead)
	}
	t.Logf("%d bytes served before their hash", st.UnverifiedBytes)
}
