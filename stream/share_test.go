package stream

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/anacrolix/torrent"

	"github.com/memtorrent/memtorrent/internal/testutil"
	"github.com/memtorrent/memtorrent/storage/memory"
)

// TestIdleLookbehindYieldsToReadahead checks the memory side of the
// sharing rule through the Handler: the lookbehind of an idle session
// never keeps an active session's readahead out of memory. Session a
// plays file 0 to its end and goes idle with its lookbehind resident;
// session b then plays file 1 with a player that stops reading (its
// buffer is full), in a capacity that file 0 alone fills. b's readahead
// must end up resident in full (storage/memory's
// TestIdleLookbehindBeforeActiveReadahead checks the order of eviction).
func TestIdleLookbehindYieldsToReadahead(t *testing.T) {
	const capacity = 4 * mib // 16 pieces: file 0 exactly
	e := newEnv(t, capacity, Options{IdleTimeout: time.Hour})
	spec := testutil.Spec{Name: "pair", PieceLength: pieceLength, Seed: 32, Files: []testutil.File{
		{Path: "a.mkv", Length: 4 * mib}, {Path: "b.mkv", Length: 16 * mib}}}
	tor := e.seed(spec)
	mt, ok := e.mem.Torrent(tor.InfoHash())
	if !ok {
		t.Fatal("torrent not in the memory storage")
	}
	const filePieces = 4 * mib / pieceLength // file 0's pieces: [0, filePieces)
	// count returns the resident pieces of [begin, end) whose state has
	// every bit of want; readahead the resident readahead pieces of file 1
	// and all of them.
	count := func(begin, end int, want memory.PieceState) (n int) {
		for i, s := range mt.AppendPieceStates(nil) {
			if i >= begin && i < end && s&(want|memory.PieceResident) == want|memory.PieceResident {
				n++
			}
		}
		return n
	}
	readahead := func() (resident, all int) {
		for _, s := range mt.AppendPieceStates(nil)[filePieces:] {
			if s&memory.PieceReadahead != 0 {
				all++
				if s&memory.PieceResident != 0 {
					resident++
				}
			}
		}
		return resident, all
	}

	_, body := e.get(streamPath(tor, 0)+"?session=a", http.StatusOK)
	testutil.Equal(t, body, testutil.FileContent(spec, 0))
	before := count(0, filePieces, memory.PieceLookbehind)
	if before == 0 {
		t.Fatalf("session a idle: none of file 0's %d pieces resident in its lookbehind; want some", filePieces)
	}

	// Session b's player reads the response head and stops: the server
	// writes until the connection's buffers are full, then waits with the
	// session busy and its readahead declared.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, err := testutil.NewRequest(ctx, http.MethodGet, e.srv.URL+streamPath(tor, 1)+"?session=b", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	testutil.WaitFor(t, transferTimeout, "session b's readahead resident in full", func() bool {
		resident, all := readahead()
		return busy(e.status(tor)) == 1 && all > 0 && resident == all
	})
	if e.mem.Stats().Evictions == 0 {
		t.Errorf("no eviction while b's readahead came into a full memory")
	}
}

// TestNeediestAcrossTorrents checks that the sharing rule compares the
// sessions of every torrent: a session well ahead on one torrent yields
// to a needier one on another, and sessions that are not playing (idle,
// or before their first read) do not count.
func TestNeediestAcrossTorrents(t *testing.T) {
	one, other := new(torrent.Torrent), new(torrent.Torrent)
	sess := func(tor *torrent.Torrent, busy bool, buffered time.Duration) *session {
		s := &session{key: sessionKey{t: tor}, busy: busy}
		s.buffered.Store(int64(buffered))
		return s
	}
	h := &Handler{sessions: []*session{
		sess(one, true, 28*time.Second),
		sess(other, true, 12*time.Second),
		sess(other, false, time.Second),                   // idle: its player is gone
		sess(one, true, time.Duration(bufferedUnknownNs)), // before its first read
	}}
	least := h.neediest()
	if least != 12*time.Second {
		t.Fatalf("neediest: got %v; want 12s, the playing session on the other torrent", least)
	}
	if got := sharePriorities(28*time.Second, least).class(); got != ShareWellAhead {
		t.Errorf("the session well ahead on one torrent: got %q; want %q", got, ShareWellAhead)
	}
	if got := sharePriorities(12*time.Second, least).class(); got != ShareNeedy {
		t.Errorf("the neediest, on the other torrent: got %q; want %q", got, ShareNeedy)
	}
	if a, b := sharePriorities(12*time.Second, least), sharePriorities(28*time.Second, least); !(a.first > b.first && a.urgent > b.urgent && a.ahead > b.ahead) {
		t.Errorf("needy %v; well ahead %v: want every piece of the needy session's window first", a, b)
	}
}
