package reliability

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/memtorrent/memtorrent/internal/testutil"
	"github.com/memtorrent/memtorrent/stream"
)

// TestDropWhileReading drops a torrent while two HTTP responses of it are
// in flight: one whose player has stopped reading after the first MiB,
// and one waiting for data no peer has any more (its seeder is gone).
// Both must end with an error, the torrent's sessions must end, and the
// storage must give its buffers back: Resident falls to what the other
// torrent, streamed before and left alone, holds. Goroutines are checked
// by TestMain.
func TestDropWhileReading(t *testing.T) {
	// The capacity is a quarter of the dropped torrent, so most of it is
	// never held and reads of it wait once its seeder is gone.
	e := newEnv(t, 4*mib, stream.Options{})

	otherSpec := testutil.Spec{Name: "other.mkv", PieceLength: pieceLength, Length: 1*mib + 99, Seed: 103}
	otherSeeder := newSeeder(t, otherSpec, nil)
	other := e.add(otherSeeder.mi, otherSeeder.addr())
	body, err := e.fetch(t.Context(), e.url(other, 0), "", http.StatusOK)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "other torrent", body, testutil.Content(otherSpec))

	spec := testutil.Spec{Name: "dropped.mkv", PieceLength: pieceLength, Length: 16*mib + 5, Seed: 104}
	s := newSeeder(t, spec, nil)
	tor := e.add(s.mi, s.addr())
	ih := tor.InfoHash()

	ctx, cancel := context.WithTimeout(t.Context(), transferTimeout)
	defer cancel()
	stalled, err := e.get(ctx, e.url(tor, 0), "")
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Body.Close()
	if _, err := io.ReadFull(stalled.Body, make([]byte, mib)); err != nil {
		t.Fatalf("reading the first MiB: %v", err)
	}
	s.cl.Close()
	testutil.WaitFor(t, testutil.SetupTimeout, "the leecher to lose its peer", func() bool {
		return len(tor.PeerConns()) == 0
	})
	// A piece the client does not have waits for data that never comes.
	last := tor.NumPieces() - 1
	for last >= 0 && tor.Piece(last).State().Complete {
		last--
	}
	if last < 0 {
		t.Fatal("the leecher has every piece; the test proves nothing")
	}
	off := int64(last) * pieceLength
	waiting := e.fetchAsync(e.url(tor, 0), fmt.Sprintf("bytes=%d-%d", off, off+999), http.StatusPartialContent)

	testutil.WaitFor(t, testutil.SetupTimeout, "two busy sessions on the torrent", func() bool {
		ts, ok := e.h.TorrentStatus(ih)
		n := 0
		for _, s := range ts.Sessions {
			if s.Busy {
				n++
			}
		}
		return ok && n == 2
	})
	memTor, ok := e.mem.Torrent(ih)
	if !ok {
		t.Fatal("the storage does not know the torrent")
	}
	droppedResident := memTor.Stats().ResidentBytes
	if droppedResident == 0 {
		t.Fatal("the torrent holds no bytes before the drop; the test proves nothing")
	}
	otherMem, ok := e.mem.Torrent(other.InfoHash())
	if !ok {
		t.Fatal("the storage does not know the other torrent")
	}
	otherResident := otherMem.Stats().ResidentBytes

	e.hc.Drop(tor)

	if r := waitResult(t, waiting); r.err == nil {
		t.Errorf("the waiting request succeeded with %d bytes; want an error", len(r.body))
	}
	if n, err := io.Copy(io.Discard, stalled.Body); err == nil {
		t.Errorf("the stalled response ended cleanly after %d more bytes; want an error", n)
	}
	testutil.WaitFor(t, testutil.SetupTimeout, "the dropped torrent to leave the Handler and the storage", func() bool {
		_, inHandler := e.h.TorrentStatus(ih)
		_, inMem := e.mem.Torrent(ih)
		return !inHandler && !inMem
	})
	testutil.WaitFor(t, testutil.SetupTimeout, "the sessions of the dropped torrent to end", func() bool {
		st := e.h.Status()
		return st.Sessions <= 1 // the other torrent's idle session
	})
	testutil.WaitFor(t, testutil.SetupTimeout, "Resident to fall to the other torrent's bytes", func() bool {
		return e.mem.Stats().Resident == otherResident
	})
	if st := e.mem.Stats(); st.Torrents != 1 {
		t.Errorf("storage has %d torrents; want 1", st.Torrents)
	}
	t.Logf("dropped a torrent holding %d bytes while reads waited for piece %d; the other torrent holds %d",
		droppedResident, last, otherResident)
	// The other torrent still streams, from memory.
	body, err = e.fetch(t.Context(), e.url(other, 0), "bytes=1000-", http.StatusPartialContent)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "other torrent after the drop", body, testutil.Content(otherSpec)[1000:])
}
