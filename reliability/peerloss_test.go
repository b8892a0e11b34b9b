package reliability

import (
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/memtorrent/memtorrent/internal/testutil"
	"github.com/memtorrent/memtorrent/stream"
)

// TestPeerLoss streams a file whose only seeder goes away mid-stream. The
// storage holds a quarter of the file, so most of it is still to come
// when the seeder's client closes. The HTTP response must wait, bounded
// only by the request's context, and resume with the exact bytes once a
// new seeder of the same data connects: never wrong data, never an early
// EOF.
func TestPeerLoss(t *testing.T) {
	spec := testutil.Spec{Name: "movie.mp4", PieceLength: pieceLength, Length: 8*mib + 777, Seed: 102}
	want := testutil.Content(spec)
	e := newEnv(t, 2*mib, stream.Options{})
	first := newSeeder(t, spec, nil)
	tor := e.add(first.mi, first.addr())

	ctx, cancel := context.WithTimeout(t.Context(), transferTimeout)
	defer cancel()
	resp, err := e.get(ctx, e.url(tor, 0), "")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d; want 200", resp.StatusCode)
	}
	got := make([]byte, len(want))
	const head = 1 * mib
	if _, err := io.ReadFull(resp.Body, got[:head]); err != nil {
		t.Fatalf("reading the first %d bytes: %v", head, err)
	}

	first.cl.Close()
	testutil.WaitFor(t, testutil.SetupTimeout, "the leecher to lose its only peer", func() bool {
		return len(tor.PeerConns()) == 0
	})
	missing := tor.BytesMissing()
	done := make(chan error, 1)
	go func() {
		_, err := io.ReadFull(resp.Body, got[head:])
		done <- err
	}()

	second := newSeeder(t, spec, nil)
	select {
	case err := <-done:
		t.Fatalf("the stream ended with no seeder (err %v); the storage should not hold the whole file", err)
	default:
	}
	addPeers(tor, second.addr())
	if err := <-done; err != nil {
		t.Fatalf("reading the rest after the new seeder came: %v", err)
	}
	equal(t, "streamed file", got, want)
	if n, err := resp.Body.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("after the file: read %d bytes, error %v; want 0, EOF", n, err)
	}
	uploaded := second.tor.Stats().BytesWrittenData
	if uploaded.Int64() == 0 {
		t.Errorf("the second seeder uploaded nothing; the stream cannot have waited for it")
	}
	t.Logf("missing when the seeder left: %d bytes; the second seeder uploaded %d", missing, uploaded.Int64())
}
