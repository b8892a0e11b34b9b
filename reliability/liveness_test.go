package reliability

import (
	"context"
	"io"
	"net/http"
	"os/exec"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memtorrent/memtorrent/internal/testutil"
	"github.com/memtorrent/memtorrent/stream"
)

// resumeBound is how soon a stream must resume once its seeder is back: a
// read waits on the network, never on a state nothing will change.
const resumeBound = 10 * time.Second

// startBurners runs one CPU burner (yes > /dev/null) per core until the end
// of the test: the machine is as loaded as a busy user's.
func startBurners(t *testing.T) {
	t.Helper()
	for range runtime.NumCPU() {
		cmd := exec.Command("yes")
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting a CPU burner: %v", err)
		}
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
		})
	}
}

// progressReader counts the bytes read through it.
type progressReader struct {
	r io.Reader
	n atomic.Int64
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n.Add(int64(n))
	return n, err
}

// TestSeederLoss streams a file from qBittorrent through a cache of a
// quarter of it, with a CPU burner on every core, and cuts the only
// connection mid-stream: by stopping the seeder's process and starting
// another on the same port after a downtime long enough for any backoff to
// grow ("restart"), or by closing the connection under the stream
// ("close"). The stream must resume within resumeBound of the seeder being
// back, and every byte must be exact.
func TestSeederLoss(t *testing.T) {
	qbittorrentProgram.require(t)
	for _, restart := range []bool{true, false} {
		name := map[bool]string{true: "restart", false: "close"}[restart]
		t.Run(name, func(t *testing.T) { testSeederLoss(t, restart) })
	}
}

func testSeederLoss(t *testing.T, restart bool) {
	dataDir := t.TempDir()
	spec := testutil.Spec{Name: "movie.bin", PieceLength: pieceLength, Length: 24 * mib, Seed: 31}
	mi := testutil.MakeTorrent(t, dataDir, spec)
	torrentFile := writeTorrent(t, mi)
	port := testutil.FreePort(t)
	q := seedQBittorrent(t, port, dataDir, torrentFile)
	content := testutil.Content(spec)
	e := newEnv(t, spec.Length/4, stream.Options{})
	tor := e.add(mi, q.addr)
	startBurners(t)

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
	body := &progressReader{r: resp.Body}
	got := make([]byte, len(content))
	const head = 4 * mib
	if _, err := io.ReadFull(body, got[:head]); err != nil {
		t.Fatalf("reading the first %d bytes: %v", head, err)
	}
	done := make(chan error, 1)
	var back time.Time
	if restart {
		q.p.stop()
		testutil.WaitFor(t, testutil.SetupTimeout, "the leecher to lose its only peer", func() bool { return len(tor.PeerConns()) == 0 })
		go func() {
			_, err := io.ReadFull(body, got[head:])
			done <- err
		}()
		// The stream waits and the leecher redials the stopped seeder.
		// Its downtime is long enough for a redial backoff doubling from
		// one second to pass 30 s.
		testutil.WaitFor(t, testutil.SetupTimeout, "a redial of the stopped seeder", func() bool {
			return e.hc.RedialState(tor.InfoHash()).Redials > 0
		})
		select {
		case <-time.After(16 * time.Second):
		case err := <-done:
			t.Fatalf("the stream ended with its seeder stopped (err %v)", err)
		}
		stalled := body.n.Load()
		seedQBittorrent(t, port, dataDir, torrentFile)
		back = time.Now()
		testutil.WaitFor(t, resumeBound, "the stream to resume after the seeder came back", func() bool {
			return body.n.Load() > stalled
		})
	} else {
		go func() {
			_, err := io.ReadFull(body, got[head:])
			done <- err
		}()
		back = time.Now()
		read := body.n.Load()
		for _, pc := range tor.PeerConns() {
			pc.Close()
		}
		testutil.WaitFor(t, resumeBound, "the stream to go on after its connection was closed", func() bool {
			return body.n.Load() > read+2*pieceLength && len(tor.PeerConns()) > 0
		})
	}
	t.Logf("resumed %v after the seeder was back; redials %+v", time.Since(back).Round(time.Millisecond), e.hc.RedialState(tor.InfoHash()))
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("reading the rest: %v", err)
		}
	case <-ctx.Done():
		t.Fatalf("reading the rest: %v", ctx.Err())
	}
	equal(t, "streamed file", got, content)
}
