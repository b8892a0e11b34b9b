package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	g "github.com/anacrolix/generics"
	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"

	"github.com/memtorrent/memtorrent/host"
	"github.com/memtorrent/memtorrent/internal/testutil"
)

// This file is the bench's loopback swarm: the non-test counterpart of
// internal/testutil's helpers, which fail a testing.TB instead of
// returning errors. The data and torrents come from testutil.Spec, so the
// bench and the tests use the same bytes.

// setupTimeout bounds the steps that move no piece data.
const setupTimeout = 30 * time.Second

// clientConfig returns the configuration of every client of the bench:
// loopback only (127.0.0.1, kernel-chosen port, no DHT, trackers, PEX, uTP,
// IPv6, UPnP, webtorrent or webseeds), plaintext, and memtorrent's
// recommended settings (which raise MaxAllocPeerRequestDataPerConn to 16 MiB
// against the v1.59.1 upload deadlock). st is the client's storage; the
// caller closes it after the client.
func clientConfig(st storage.ClientImpl, logger *slog.Logger) *torrent.ClientConfig {
	cfg := torrent.NewDefaultClientConfig()
	host.Loopback(cfg)
	cfg.DefaultStorage = st
	cfg.Slogger = logger
	applySettings(cfg)
	return cfg
}

// clientsAbout describes clientConfig for the report.
func clientsAbout() string {
	return fmt.Sprintf("every torrent client, seeder or leecher, of every contestant: anacrolix/torrent v1.59.1 "+
		"on 127.0.0.1 only (TCP, plaintext, no DHT, trackers, PEX, uTP or UPnP), MaxAllocPeerRequestDataPerConn %d MiB, "+
		"host.Apply (KeepAliveTimeout %v against the lost-wake-up stall of v1.59.1, docs/stalls.md)",
		host.MaxAllocPeerRequestDataPerConn>>20, keepAliveTimeout)
}

// applySettings applies memtorrent's recommended client settings, the same
// for every contestant, so that no contestant suffers the 60-second stalls
// of v1.59.1 (see package host and docs/stalls.md).
func applySettings(cfg *torrent.ClientConfig) {
	host.Apply(cfg)
}

const keepAliveTimeout = host.KeepAliveTimeout

// newLogger returns the logger of the torrent clients: Warn and up to w
// when verbose, nothing otherwise.
func newLogger(verbose bool, w io.Writer) *slog.Logger {
	if !verbose {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// seeder is a client seeding one complete torrent.
type seeder struct {
	client *torrent.Client          // never changes
	mi     *metainfo.MetaInfo       // never changes
	st     storage.ClientImplCloser // never changes
	dir    string                   // the torrent's files, removed by close; "" for none
}

// newFileSeeder writes spec's content into a new directory under tmpDir
// and seeds it with the anacrolix file storage and part files, which infer
// completion from the full-size file: the seeder starts complete without
// hashing anything.
func newFileSeeder(ctx context.Context, tmpDir string, spec testutil.Spec, logger *slog.Logger) (_ *seeder, err error) {
	mi, err := spec.MetaInfo()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(tmpDir, "memtorrent-bench-seed-")
	if err != nil {
		return nil, fmt.Errorf("creating the seeder's directory: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	if err := writeContent(filepath.Join(dir, spec.Name), spec); err != nil {
		return nil, err
	}
	st := storage.NewFileOpts(storage.NewFileClientOpts{
		ClientBaseDir: dir,
		UsePartFiles:  g.Some(true),
		Logger:        logger,
	})
	s, err := startSeeder(ctx, st, mi, logger)
	if err != nil {
		return nil, err
	}
	s.dir = dir
	return s, nil
}

// newSourceSeeder seeds spec from its generated content, with no file and
// no memory: a seeder whose data does not count in the process's RSS.
func newSourceSeeder(ctx context.Context, spec testutil.Spec, logger *slog.Logger) (*seeder, error) {
	mi, err := spec.MetaInfo()
	if err != nil {
		return nil, err
	}
	return startSeeder(ctx, sourceStorage{spec.Source()}, mi, logger)
}

// startSeeder starts a seeding client over st, adds mi and waits until the
// torrent is complete. It closes st if it fails.
func startSeeder(ctx context.Context, st storage.ClientImplCloser, mi *metainfo.MetaInfo, logger *slog.Logger) (*seeder, error) {
	cfg := clientConfig(st, logger)
	cfg.Seed = true
	cl, err := torrent.NewClient(cfg)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("creating the seeder: %w", err)
	}
	s := &seeder{client: cl, mi: mi, st: st}
	t, err := cl.AddTorrent(mi)
	if err != nil {
		s.close()
		return nil, fmt.Errorf("seeder: adding the torrent: %w", err)
	}
	if err := waitDone(ctx, setupTimeout, t.Complete().On()); err != nil {
		s.close()
		return nil, fmt.Errorf("waiting for the seeder's torrent to be complete: %w", err)
	}
	return s, nil
}

// close stops the seeder and removes its files.
func (s *seeder) close() error {
	errs := append(s.client.Close(), s.st.Close())
	if s.dir != "" {
		errs = append(errs, os.RemoveAll(s.dir))
	}
	return errors.Join(errs...)
}

// addTorrent adds the seeder's torrent to cl, connects it to the seeder and
// waits for its info. It starts no download.
func (s *seeder) addTorrent(ctx context.Context, cl *torrent.Client) (*torrent.Torrent, error) {
	t, err := cl.AddTorrent(s.mi)
	if err != nil {
		return nil, fmt.Errorf("adding the torrent: %w", err)
	}
	t.AddClientPeer(s.client)
	if err := waitDone(ctx, setupTimeout, t.GotInfo()); err != nil {
		return nil, fmt.Errorf("waiting for the torrent's info: %w", err)
	}
	return t, nil
}

// waitDone waits until done is closed, ctx ends or timeout passes.
func waitDone(ctx context.Context, timeout time.Duration, done <-chan struct{}) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return fmt.Errorf("timed out after %v", timeout)
	}
}

// writeContent writes spec's content to a new file name.
func writeContent(name string, spec testutil.Spec) error {
	f, err := os.Create(name)
	if err != nil {
		return fmt.Errorf("creating the seeder's file: %w", err)
	}
	if _, err := io.Copy(f, spec.Source().NewReader()); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", name, err)
	}
	return nil
}

// sourceStorage is a read-only storage serving every piece, complete, from
// a generated stream. It holds no data and is safe for concurrent use.
type sourceStorage struct {
	src *testutil.Source // never changes
}

func (s sourceStorage) OpenTorrent(context.Context, *metainfo.Info, metainfo.Hash) (storage.TorrentImpl, error) {
	return storage.TorrentImpl{
		Piece: func(p metainfo.Piece) storage.PieceImpl {
			return sourcePiece{src: s.src, off: p.Offset(), length: p.Length()}
		},
		Close: func() error { return nil },
	}, nil
}

func (sourceStorage) Close() error { return nil }

// sourcePiece is one piece of a sourceStorage.
type sourcePiece struct {
	src         *testutil.Source
	off, length int64 // the piece in the torrent
}

var errReadOnly = errors.New("bench: the seeder's storage is read-only")

func (p sourcePiece) ReadAt(b []byte, off int64) (int, error) {
	if off < 0 || off >= p.length {
		return 0, io.EOF
	}
	short := int64(len(b)) > p.length-off
	if short {
		b = b[:p.length-off]
	}
	n, err := p.src.ReadAt(b, p.off+off)
	if err == nil && short {
		err = io.EOF
	}
	return n, err
}

func (sourcePiece) WriteAt([]byte, int64) (int, error) { return 0, errReadOnly }
func (sourcePiece) MarkComplete() error                { return nil }
func (sourcePiece) MarkNotComplete() error             { return errReadOnly }
func (sourcePiece) Completion() storage.Completion {
	return storage.Completion{Ok: true, Complete: true}
}
