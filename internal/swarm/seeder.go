package swarm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"

	g "github.com/anacrolix/generics"
	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"
)

// Seeder is a client seeding one complete torrent. Its fields never change
// after Seed; the client and torrent are safe for concurrent use as the
// library documents.
type Seeder struct {
	Client   *torrent.Client
	Torrent  *torrent.Torrent
	MetaInfo *metainfo.MetaInfo

	st storage.ClientImplCloser // closed by Close, after the client
}

// Seed starts a seeding client from cfg (Seed set, DefaultStorage st),
// adds mi and waits until the torrent is complete. The Seeder owns st:
// Close closes it after the client, and Seed closes both if it fails. It
// returns an error if the client cannot be created, the torrent cannot be
// added, or the torrent is not complete within SetupTimeout or before ctx
// ends (the error then holds the client's status).
func Seed(ctx context.Context, cfg *torrent.ClientConfig, st storage.ClientImplCloser, mi *metainfo.MetaInfo) (*Seeder, error) {
	cfg.Seed = true
	cfg.DefaultStorage = st
	cl, err := torrent.NewClient(cfg)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("creating the seeder: %w", err), st.Close())
	}
	s := &Seeder{Client: cl, MetaInfo: mi, st: st}
	s.Torrent, err = cl.AddTorrent(mi)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("seeder: adding the torrent: %w", err), s.Close())
	}
	if err := Wait(ctx, SetupTimeout, "the seeder's torrent to be complete", s.Torrent.Complete().On()); err != nil {
		return nil, errors.Join(fmt.Errorf("%w; client status:\n%s", err, Status(cl)), s.Close())
	}
	return s, nil
}

// SeedDir seeds mi, whose files are already in dir (as WriteFiles writes
// them), over FileStorage(dir); wrap, when not nil, wraps that storage (to
// corrupt what the seeder serves, say). Errors are those of Seed.
func SeedDir(ctx context.Context, cfg *torrent.ClientConfig, dir string, mi *metainfo.MetaInfo, wrap func(storage.ClientImplCloser) storage.ClientImplCloser) (*Seeder, error) {
	st := FileStorage(dir, cfg.Slogger)
	if wrap != nil {
		st = wrap(st)
	}
	return Seed(ctx, cfg, st, mi)
}

// SeedSource seeds spec's content from its Source: no file, and no memory
// that grows with the torrent, so the seeder adds nothing to the process's
// RSS but a client. Errors are those of Spec.MetaInfo and Seed.
func SeedSource(ctx context.Context, cfg *torrent.ClientConfig, spec Spec) (*Seeder, error) {
	mi, err := spec.MetaInfo()
	if err != nil {
		return nil, err
	}
	return Seed(ctx, cfg, SourceStorage(spec.Source()), mi)
}

// Magnet returns a magnet URI of the seeder's torrent whose x.pe names the
// seeder's listening address, so that a client with no DHT or tracker finds
// it. It returns an error if the metainfo's info does not decode.
func (s *Seeder) Magnet() (string, error) {
	info, err := s.MetaInfo.UnmarshalInfo()
	if err != nil {
		return "", fmt.Errorf("magnet of the seeder's torrent: %w", err)
	}
	return s.MetaInfo.Magnet(nil, &info).String() + "&x.pe=" + url.QueryEscape(s.Client.ListenAddrs()[0].String()), nil
}

// Close stops the seeder's client, then closes its storage. It returns the
// storage's error.
func (s *Seeder) Close() error {
	s.Client.Close() // always returns nil in v1.59.1
	return s.st.Close()
}

// FileStorage returns the anacrolix file storage of the files in dir, with
// part files: it infers completion from the full-size files, so a seeder
// over it starts complete without hashing anything. logger may be nil.
func FileStorage(dir string, logger *slog.Logger) storage.ClientImplCloser {
	return storage.NewFileOpts(storage.NewFileClientOpts{
		ClientBaseDir: dir,
		UsePartFiles:  g.Some(true),
		Logger:        logger,
	})
}

// AddTorrent adds mi to cl, has it connect to each seeder (as trusted
// peers) and waits for its info. It does not start a download. It returns
// an error if the torrent cannot be added, or if its info is missing after
// SetupTimeout or when ctx ends (the error then holds cl's status).
func AddTorrent(ctx context.Context, cl *torrent.Client, mi *metainfo.MetaInfo, seeders ...*Seeder) (*torrent.Torrent, error) {
	t, err := cl.AddTorrent(mi)
	if err != nil {
		return nil, fmt.Errorf("adding the torrent: %w", err)
	}
	for _, s := range seeders {
		t.AddClientPeer(s.Client)
	}
	if err := Wait(ctx, SetupTimeout, "the torrent's info", t.GotInfo()); err != nil {
		return nil, fmt.Errorf("%w; client status:\n%s", err, Status(cl))
	}
	return t, nil
}

// Status returns cl's status page, for error messages.
func Status(cl *torrent.Client) string {
	var buf bytes.Buffer
	cl.WriteStatus(&buf)
	return buf.String()
}

// SourceStorage returns a read-only storage that serves every piece of any
// torrent opened on it, complete, from src, the torrent's whole content. It
// holds no data; writes and MarkNotComplete fail. It is safe for concurrent
// use.
func SourceStorage(src *Source) storage.ClientImplCloser {
	return sourceStorage{src}
}

type sourceStorage struct {
	src *Source // never changes
}

func (s sourceStorage) OpenTorrent(_ context.Context, info *metainfo.Info, _ metainfo.Hash) (storage.TorrentImpl, error) {
	if n := info.TotalLength(); n != s.src.Size() {
		return storage.TorrentImpl{}, fmt.Errorf("swarm: source storage of %d bytes opened for torrent %q of %d", s.src.Size(), info.Name, n)
	}
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
	src         *Source
	off, length int64 // the piece in the torrent
}

var errReadOnly = errors.New("swarm: the source storage is read-only")

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
