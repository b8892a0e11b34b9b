package testutil

import (
	"github.com/memtorrent/memtorrent/host"
	"github.com/memtorrent/memtorrent/storage/memory"

	"bytes"
	"context"
	"io"
	"testing"
	"time"

	g "github.com/anacrolix/generics"
	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"
)

// Seeder is a client seeding one complete torrent from files on disk.
// Its fields never change after NewSeeder; the client and torrent are safe
// for concurrent use as the library documents.
type Seeder struct {
	Client   *torrent.Client
	Torrent  *torrent.Torrent
	MetaInfo *metainfo.MetaInfo
	Dir      string // holds the torrent's files, as MakeTorrent wrote them
}

// NewSeeder writes spec's files into a fresh tb.TempDir() with MakeTorrent
// and seeds them with SeedDir. Call it from the test goroutine.
func NewSeeder(tb testing.TB, spec Spec, opts ...func(*torrent.ClientConfig)) *Seeder {
	tb.Helper()
	dir := tb.TempDir()
	return SeedDir(tb, dir, MakeTorrent(tb, dir, spec), nil, opts...)
}

// SeedDir seeds mi, whose files are already in dir, from a client made by
// Config (with Seed set, then opts applied) over the anacrolix file
// storage; wrap, when not nil, wraps that storage (to corrupt what the
// seeder serves, say). The storage uses part files, which makes it infer
// completion from the full-size files: the seeder starts complete without
// hashing anything. It fails the test if the client cannot be created or
// the torrent added, or if the torrent is not complete within
// SetupTimeout. The client and storage are closed in tb.Cleanup. Call it
// from the test goroutine.
func SeedDir(tb testing.TB, dir string, mi *metainfo.MetaInfo, wrap func(storage.ClientImplCloser) storage.ClientImplCloser, opts ...func(*torrent.ClientConfig)) *Seeder {
	tb.Helper()
	cfg := Config(tb, append([]func(*torrent.ClientConfig){func(cfg *torrent.ClientConfig) {
		cfg.Seed = true
	}}, opts...)...)
	st := storage.NewFileOpts(storage.NewFileClientOpts{
		ClientBaseDir: dir,
		UsePartFiles:  g.Some(true),
		Logger:        cfg.Slogger,
	})
	if wrap != nil {
		st = wrap(st)
	}
	tb.Cleanup(func() {
		if err := st.Close(); err != nil {
			tb.Errorf("closing seeder storage: %v", err)
		}
	})
	cfg.DefaultStorage = st
	cl := newClient(tb, "seeder", cfg)
	t, err := cl.AddTorrent(mi)
	if err != nil {
		tb.Fatalf("seeder: adding torrent: %v", err)
	}
	if !waitChan(SetupTimeout, t.Complete().On()) {
		tb.Fatalf("timed out after %v waiting for the seeder's torrent to be complete; client status:\n%s",
			SetupTimeout, status(cl))
	}
	return &Seeder{Client: cl, Torrent: t, MetaInfo: mi, Dir: dir}
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

// AddTorrent adds mi to cl, has it connect to each seeder (as trusted
// peers) and waits for its info. It does not start a download: call
// DownloadAll or read through a Reader. It fails the test if the torrent
// cannot be added or its info is missing after SetupTimeout. Call it from
// the test goroutine.
func AddTorrent(tb testing.TB, cl *torrent.Client, mi *metainfo.MetaInfo, seeders ...*Seeder) *torrent.Torrent {
	tb.Helper()
	t, err := cl.AddTorrent(mi)
	if err != nil {
		tb.Fatalf("adding torrent: %v", err)
	}
	for _, s := range seeders {
		t.AddClientPeer(s.Client)
	}
	if !waitChan(SetupTimeout, t.GotInfo()) {
		tb.Fatalf("timed out after %v waiting for the torrent's info; client status:\n%s",
			SetupTimeout, status(cl))
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

// status returns cl's status page, for failure messages.
func status(cl *torrent.Client) string {
	var buf bytes.Buffer
	cl.WriteStatus(&buf)
	return buf.String()
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
