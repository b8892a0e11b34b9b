package testutil

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"

	"github.com/memtorrent/memtorrent/host"
	"github.com/memtorrent/memtorrent/internal/swarm"
	"github.com/memtorrent/memtorrent/storage/memory"
)

// Seeder is swarm.Seeder with the directory of its files.
type Seeder struct {
	*swarm.Seeder
	Dir string // holds the torrent's files, as MakeTorrent wrote them
}

// NewSeeder writes spec's files into a fresh tb.TempDir() with MakeTorrent
// and seeds them with SeedDir. Call it from the test goroutine.
func NewSeeder(tb testing.TB, spec Spec, opts ...func(*torrent.ClientConfig)) *Seeder {
	tb.Helper()
	dir := tb.TempDir()
	return SeedDir(tb, dir, MakeTorrent(tb, dir, spec), nil, opts...)
}

// SeedDir seeds mi, whose files are already in dir, with swarm.SeedDir
// from a client made by Config (opts applied); wrap, when not nil, wraps
// the file storage (to corrupt what the seeder serves, say). It fails the
// test if the seeder does not start (swarm.Seed's errors); the seeder is
// closed in tb.Cleanup. Call it from the test goroutine.
func SeedDir(tb testing.TB, dir string, mi *metainfo.MetaInfo, wrap func(storage.ClientImplCloser) storage.ClientImplCloser, opts ...func(*torrent.ClientConfig)) *Seeder {
	tb.Helper()
	s, err := swarm.SeedDir(tb.Context(), Config(tb, opts...), dir, mi, wrap)
	if err != nil {
		tb.Fatalf("starting the seeder: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("closing the seeder: %v", err)
		}
	})
	return &Seeder{Seeder: s, Dir: dir}
}

// NewLeecher returns a client made by Config (opts applied) whose default
// storage is st, closed in tb.Cleanup. The caller owns st: Client.Close does
// not close it, and neither does NewLeecher; close it in a tb.Cleanup
// registered before NewLeecher so that it runs after the client has closed.
// A nil st means the library's file storage in the configuration's DataDir.
// It fails the test if the client cannot be created. Call it from the test
// goroutine.
func NewLeecher(tb testing.TB, st storage.ClientImpl, opts ...func(*torrent.ClientConfig)) *torrent.Client {
	tb.Helper()
	cfg := Config(tb, opts...)
	if st != nil {
		cfg.DefaultStorage = st
	}
	return newClient(tb, "leecher", cfg)
}

// NewMemLeecher returns a loopback client over memory storage made from
// opts, wired by host.New so that evictions reach the client; Config(tb,
// cfgOpts...) is its configuration. Both are closed in tb.Cleanup, the
// storage last.
func NewMemLeecher(tb testing.TB, opts memory.Options, cfgOpts ...func(*torrent.ClientConfig)) *host.Client {
	tb.Helper()
	hc, err := host.New(Config(tb, cfgOpts...), opts)
	if err != nil {
		tb.Fatalf("creating memory leecher: %v", err)
	}
	tb.Cleanup(func() { hc.Close() })
	return hc
}

// newClient creates a client from cfg and closes it in tb.Cleanup.
func newClient(tb testing.TB, role string, cfg *torrent.ClientConfig) *torrent.Client {
	tb.Helper()
	cl, err := torrent.NewClient(cfg)
	if err != nil {
		tb.Fatalf("creating %s client: %v", role, err)
	}
	tb.Cleanup(func() { cl.Close() })
	return cl
}

// AddTorrent adds mi to cl with swarm.AddTorrent: it connects it to each
// seeder (as trusted peers) and waits for its info, without starting a
// download (call DownloadAll or read through a Reader). It fails the test
// on swarm.AddTorrent's errors. Call it from the test goroutine.
func AddTorrent(tb testing.TB, cl *torrent.Client, mi *metainfo.MetaInfo, seeders ...*Seeder) *torrent.Torrent {
	tb.Helper()
	ss := make([]*swarm.Seeder, len(seeders))
	for i, s := range seeders {
		ss[i] = s.Seeder
	}
	t, err := swarm.AddTorrent(tb.Context(), cl, mi, ss...)
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

// ReadAll reads r to its end and fails the test if that returns an error or
// takes longer than timeout. A reader from the torrent library (anything
// with SetContext, such as torrent.Reader) is given a context that ends at
// the deadline, so a stalled download fails the test instead of hanging it;
// its context is reset to context.Background() afterwards. Any other reader
// is read without a deadline. Call it from the test goroutine.
func ReadAll(tb testing.TB, timeout time.Duration, r io.Reader) []byte {
	tb.Helper()
	start := time.Now()
	if cr, ok := r.(interface{ SetContext(context.Context) }); ok {
		ctx, cancel := context.WithTimeout(tb.Context(), timeout)
		defer cancel()
		cr.SetContext(ctx)
		defer cr.SetContext(context.Background())
	}
	b, err := io.ReadAll(r)
	if err != nil {
		tb.Fatalf("reading after %v (%d bytes read): %v", time.Since(start).Round(time.Millisecond), len(b), err)
	}
	if d := time.Since(start); d > timeout {
		tb.Fatalf("reading took %v; want at most %v", d.Round(time.Millisecond), timeout)
	}
	return b
}

// ReadFile reads file f of a torrent through a new Reader, as ReadAll does
// (failing the test on error or after timeout), and closes the reader. It
// reads at most f.Length() bytes: in v1.59.1 a File's Reader does not stop
// at the end of its file but returns the following bytes of the torrent up
// to the end of the caller's buffer. Call it from the test goroutine.
func ReadFile(tb testing.TB, timeout time.Duration, f *torrent.File) []byte {
	tb.Helper()
	r := f.NewReader()
	defer r.Close()
	b := make([]byte, f.Length())
	if cr, ok := r.(interface{ SetContext(context.Context) }); ok {
		ctx, cancel := context.WithTimeout(tb.Context(), timeout)
		defer cancel()
		cr.SetContext(ctx)
	}
	start := time.Now()
	if n, err := io.ReadFull(r, b); err != nil {
		tb.Fatalf("reading %s after %v (%d bytes read): %v", f.DisplayPath(), time.Since(start).Round(time.Millisecond), n, err)
	}
	return b
}
