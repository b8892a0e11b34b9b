package reliability

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"
	"go.uber.org/goleak"

	"github.com/memtorrent/memtorrent/host"
	"github.com/memtorrent/memtorrent/internal/testutil"
	"github.com/memtorrent/memtorrent/storage/memory"
	"github.com/memtorrent/memtorrent/stream"
)

// TestMain checks for leaked goroutines, except toxiproxy's (the QoE
// harness's proxies): v2.5.0 leaves a connection's toxic goroutines
// blocked on a send once the connection's writer has ended.
func TestMain(m *testing.M) {
	testutil.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/Shopify/toxiproxy/v2/toxics.(*ToxicStub).Run"))
}

const (
	kib = 1 << 10
	mib = 1 << 20

	// pieceLength is the piece length of every test torrent.
	pieceLength = 256 * kib
	// transferTimeout bounds one HTTP transfer of a test file: a few MiB
	// over loopback take well under a second, but -race on two shared
	// cores is slow, and a stall must show as a failure with a message,
	// not a hung test.
	transferTimeout = 2 * time.Minute
)

// listenOn returns a client option that makes the client listen on host
// (an address of 127.0.0.0/8). The library bans peers by IP, so a peer
// meant to be banned needs an address of its own.
func listenOn(host string) func(*torrent.ClientConfig) {
	return func(cfg *torrent.ClientConfig) {
		cfg.ListenHost = func(string) string { return host }
	}
}

// env is a leecher over memory storage, a stream.Handler on it and an HTTP
// server.
type env struct {
	t   testing.TB
	hc  *host.Client // drop torrents with hc.Drop
	mem *memory.Client
	cl  *torrent.Client
	h   *stream.Handler
	srv *httptest.Server
}

// newEnv starts a leecher whose pieces live in capacity bytes of memory
// and serves a Handler with opts over it (testutil.Serve), the leecher's
// host.Client its Watchdog unless opts has one; the leecher's
// configuration is testutil.Config (which applies host.Apply), then
// cfgOpts. Everything is closed at the end of the test: the Handler first,
// then the server, the client and the storage.
func newEnv(t testing.TB, capacity int64, opts stream.Options, cfgOpts ...func(*torrent.ClientConfig)) *env {
	t.Helper()
	s := testutil.Serve(t, capacity, func(hc *host.Client, logger *slog.Logger) (*stream.Handler, error) {
		if opts.Logger == nil {
			opts.Logger = logger
		}
		if opts.Watchdog == nil {
			opts.Watchdog = hc
		}
		return stream.New(hc.Torrent, hc.Storage, opts)
	}, cfgOpts...)
	return &env{t: t, hc: s.Host, mem: s.Mem, cl: s.Client, h: s.Handler, srv: s.Server}
}

// newEnvWith is newEnv with the host made by host.NewWith(o).
func newEnvWith(t testing.TB, capacity int64, o host.Options, opts stream.Options, cfgOpts ...func(*torrent.ClientConfig)) *env {
	t.Helper()
	hc, err := host.NewWith(testutil.Config(t, cfgOpts...), memory.Options{Capacity: capacity}, o)
	if err != nil {
		t.Fatalf("creating memory leecher: %v", err)
	}
	t.Cleanup(func() { hc.Close() })
	if opts.Logger == nil {
		opts.Logger = testutil.Logger(t, slog.LevelWarn)
	}
	if opts.Watchdog == nil {
		opts.Watchdog = hc
	}
	h, err := stream.New(hc.Torrent, hc.Storage, opts)
	if err != nil {
		t.Fatalf("creating the handler: %v", err)
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("closing the handler: %v", err)
		}
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &env{t: t, hc: hc, mem: hc.Storage, cl: hc.Torrent, h: h, srv: srv}
}

// add adds mi to the leecher and has it connect to each address as an
// untrusted peer (one the library may ban), remembered by the redialer
// (host.Client.AddPeers) as a server remembers a torrent's peers. It
// returns once the torrent has its info, which it has at once since mi
// carries it.
func (e *env) add(mi *metainfo.MetaInfo, peers ...net.Addr) *torrent.Torrent {
	e.t.Helper()
	tor, err := e.cl.AddTorrent(mi)
	if err != nil {
		e.t.Fatalf("adding torrent: %v", err)
	}
	var pis []torrent.PeerInfo
	for _, a := range peers {
		pis = append(pis, torrent.PeerInfo{Addr: a, Trusted: false})
	}
	e.hc.AddPeers(tor, pis)
	testutil.WaitChan(e.t, testutil.SetupTimeout, "the torrent's info", tor.GotInfo())
	return tor
}

// addMagnet adds the torrent ih to the leecher as a magnet naming peers in
// x.pe (host.Client.AddTorrentSpec, as a server adds one) and returns once
// it has its info from them.
func (e *env) addMagnet(ih metainfo.Hash, peers ...net.Addr) *torrent.Torrent {
	e.t.Helper()
	spec := &torrent.TorrentSpec{AddTorrentOpts: torrent.AddTorrentOpts{InfoHash: ih}}
	for _, a := range peers {
		spec.PeerAddrs = append(spec.PeerAddrs, a.String())
	}
	tor, _, err := e.hc.AddTorrentSpec(spec)
	if err != nil {
		e.t.Fatalf("adding magnet: %v", err)
	}
	testutil.WaitChan(e.t, testutil.SetupTimeout, "the magnet's info", tor.GotInfo())
	return tor
}

// addPeers has tor connect to each address as an untrusted peer.
func addPeers(tor *torrent.Torrent, peers ...net.Addr) {
	var pis []torrent.PeerInfo
	for _, a := range peers {
		pis = append(pis, torrent.PeerInfo{Addr: a, Trusted: false})
	}
	tor.AddPeers(pis)
}

// url returns the URL of file i of tor on the test server.
func (e *env) url(tor *torrent.Torrent, i int) string {
	return e.srv.URL + "/stream/" + tor.InfoHash().HexString() + "/" + strconv.Itoa(i)
}

// get sends GET url with a Range header (none if rng is "") and returns the
// response, whose body the caller must close.
func (e *env) get(ctx context.Context, url, rng string) (*http.Response, error) {
	req, err := testutil.NewRequest(ctx, http.MethodGet, url, nil, "Range", rng)
	if err != nil {
		return nil, err
	}
	return e.srv.Client().Do(req)
}

// fetch is get that reads the whole body and checks the status.
func (e *env) fetch(ctx context.Context, url, rng string, want int) ([]byte, error) {
	resp, body, err := testutil.Fetch(ctx, e.srv.Client(), http.MethodGet, url, nil, "Range", rng)
	if resp != nil && resp.StatusCode != want {
		return body, fmt.Errorf("GET %s (Range %q): status %d; want %d (body %.100q)", url, rng, resp.StatusCode, want, body)
	}
	return body, err
}

// fetchInto is fetch for a 206 response of exactly len(buf) bytes, read
// into buf: it allocates no body.
func (e *env) fetchInto(ctx context.Context, url, rng string, buf []byte) error {
	resp, err := e.get(ctx, url, rng)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent {
		return fmt.Errorf("GET %s (Range %q): status %d; want 206", url, rng, resp.StatusCode)
	}
	if n, err := io.ReadFull(resp.Body, buf); err != nil {
		return fmt.Errorf("GET %s (Range %q): reading body after %d bytes: %w", url, rng, n, err)
	}
	if n, _ := resp.Body.Read(make([]byte, 1)); n != 0 {
		return fmt.Errorf("GET %s (Range %q): body longer than %d bytes", url, rng, len(buf))
	}
	return nil
}

// fetchAsync runs fetch in a goroutine bounded by transferTimeout and the
// test's context; the result arrives on the returned channel.
func (e *env) fetchAsync(url, rng string, want int) <-chan result {
	ctx, cancel := context.WithTimeout(e.t.Context(), transferTimeout)
	ch := make(chan result, 1)
	go func() {
		defer cancel()
		body, err := e.fetch(ctx, url, rng, want)
		ch <- result{body, err}
	}()
	return ch
}

// result is the outcome of fetchAsync.
type result struct {
	body []byte
	err  error
}

// waitResult waits for ch a little longer than fetchAsync's own bound.
func waitResult(t *testing.T, ch <-chan result) result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(transferTimeout + 10*time.Second):
		t.Fatalf("request still running after %v", transferTimeout)
		return result{}
	}
}

// seeder is a client seeding one torrent from files on disk, optionally
// through a storage wrapper.
type seeder struct {
	cl  *torrent.Client
	tor *torrent.Torrent
	mi  *metainfo.MetaInfo
}

// addr returns the address the seeder listens on.
func (s *seeder) addr() net.Addr { return s.cl.ListenAddrs()[0] }

// newSeeder seeds spec from files in a fresh directory with
// testutil.SeedDir, its storage wrapped by wrap if not nil. Client and
// storage are closed at the end of the test.
func newSeeder(t testing.TB, spec testutil.Spec, wrap func(storage.ClientImplCloser) storage.ClientImplCloser, opts ...func(*torrent.ClientConfig)) *seeder {
	t.Helper()
	dir := t.TempDir()
	s := testutil.SeedDir(t, dir, testutil.MakeTorrent(t, dir, spec), wrap, opts...)
	return &seeder{cl: s.Client, tor: s.Torrent, mi: s.MetaInfo}
}

// peerConnsTo returns how many of tor's peer connections are to host.
func peerConnsTo(tor *torrent.Torrent, host string) (n int) {
	for _, pc := range tor.PeerConns() {
		if h, _, err := net.SplitHostPort(pc.RemoteAddr.String()); err == nil && h == host {
			n++
		}
	}
	return n
}

// equal fails the test if got is not want, naming the first difference.
func equal(t testing.TB, what string, got, want []byte) {
	t.Helper()
	if !testutil.Equal(t, got, want) {
		t.Fatalf("%s: bytes differ", what)
	}
}
