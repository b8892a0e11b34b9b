package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/storage"

	"github.com/memtorrent/memtorrent/internal/swarm"
	"github.com/memtorrent/memtorrent/storage/memory"
)

// swarmBench downloads one torrent over loopback from a seeder into each
// contestant storage. Its fields never change after start.
type swarmBench struct {
	cfg    config
	logger *slog.Logger
	seed   *swarm.Seeder // nil until start
	dir    string        // the seeder's files; "" until start
}

func (b *swarmBench) name() string    { return scenarioSwarm }
func (b *swarmBench) notes() []string { return nil }

// start starts the seeder: the anacrolix file storage with part files, its
// file in cfg.TmpDir.
func (b *swarmBench) start(ctx context.Context) error {
	spec := swarm.Spec{Name: "swarm.bin", Length: b.cfg.SwarmSize, PieceLength: b.cfg.PieceLength, Seed: 2}
	mi, err := spec.MetaInfo()
	if err != nil {
		return err
	}
	if b.dir, err = os.MkdirTemp(b.cfg.TmpDir, "memtorrent-bench-seed-"); err != nil {
		return fmt.Errorf("creating the seeder's directory: %w", err)
	}
	if err := swarm.WriteFiles(b.dir, spec); err != nil {
		return err
	}
	b.seed, err = swarm.SeedDir(ctx, swarm.Config(b.dir, b.logger), b.dir, mi, nil)
	if err != nil {
		return fmt.Errorf("starting the swarm seeder: %w", err)
	}
	return nil
}

func (b *swarmBench) close() error {
	var errs []error
	if b.seed != nil {
		errs = append(errs, b.seed.Close())
	}
	if b.dir != "" {
		errs = append(errs, os.RemoveAll(b.dir))
	}
	return errors.Join(errs...)
}

func (b *swarmBench) about() string {
	return fmt.Sprintf("A %s torrent in %s pieces downloaded with DownloadAll over TCP on 127.0.0.1 from a seeder "+
		"in the same process (anacrolix file storage with part files, no hash check, its file in %s), "+
		"timed from connecting the peer to Complete. CPU is getrusage user+sys of the whole process "+
		"(seeder and leecher) over the same interval, per GiB downloaded. memtorrent's capacity is above the "+
		"torrent size; file and mmap are the anacrolix storages in a fresh directory in %s (the client's default "+
		"file storage: sqlite piece completion, part files).",
		ibytes(b.cfg.SwarmSize), ibytes(b.cfg.PieceLength), b.cfg.TmpDir, b.cfg.TmpDir)
}

func (b *swarmBench) groups() []group {
	size, pl := b.cfg.SwarmSize, b.cfg.PieceLength
	inDir := func(open func(dir string) storage.ClientImplCloser) func() (storage.ClientImplCloser, string, error) {
		return func() (storage.ClientImplCloser, string, error) {
			dir, err := os.MkdirTemp(b.cfg.TmpDir, "memtorrent-bench-leech-")
			if err != nil {
				return nil, "", fmt.Errorf("creating the leecher's directory: %w", err)
			}
			return open(dir), dir, nil
		}
	}
	return []group{{
		name: fmt.Sprintf("download %s", ibytes(size)),
		metrics: []metric{
			{key: "download", name: "throughput", unit: "MB/s", higher: true},
			{key: "cpu", name: "CPU (process, seeder + leecher)", unit: "cpu-s/GiB"},
		},
		contestants: []contestant{
			{"memtorrent", b.download(func() (storage.ClientImplCloser, string, error) {
				st, err := memory.New(memory.Options{Capacity: size + 4*pl})
				return st, "", err
			})},
			{"file (tmpfs)", b.download(inDir(storage.NewFile))},
			{"mmap (tmpfs)", b.download(inDir(storage.NewMMap))},
		},
	}}
}

// download returns a run that downloads the seeder's torrent into a fresh
// client over a fresh storage from open, which may return a directory to
// remove afterwards.
func (b *swarmBench) download(open func() (storage.ClientImplCloser, string, error)) func(context.Context, int) ([]float64, error) {
	return func(ctx context.Context, _ int) (_ []float64, err error) {
		st, dir, err := open()
		if err != nil {
			return nil, err
		}
		defer func() {
			err = errors.Join(err, st.Close())
			if dir != "" {
				err = errors.Join(err, os.RemoveAll(dir))
			}
		}()
		cfg := swarm.Config("", b.logger)
		cfg.DefaultStorage = st
		cl, err := torrent.NewClient(cfg)
		if err != nil {
			return nil, fmt.Errorf("creating the leecher: %w", err)
		}
		defer func() { err = errors.Join(append([]error{err}, cl.Close()...)...) }()
		// Connect only once the clock runs: AddTorrent without seeders.
		t, err := swarm.AddTorrent(ctx, cl, b.seed.MetaInfo)
		if err != nil {
			return nil, err
		}

		cpu0, err := cpuTime()
		if err != nil {
			return nil, err
		}
		start := time.Now()
		t.AddClientPeer(b.seed.Client)
		t.DownloadAll()
		if err := swarm.Wait(ctx, b.cfg.Timeout, "the download", t.Complete().On()); err != nil {
			return nil, fmt.Errorf("downloading (%s of %s done): %w",
				ibytes(t.BytesCompleted()), ibytes(b.cfg.SwarmSize), err)
		}
		d := time.Since(start)
		cpu1, err := cpuTime()
		if err != nil {
			return nil, err
		}
		gib := float64(b.cfg.SwarmSize) / (1 << 30)
		return []float64{mbps(b.cfg.SwarmSize, d.Seconds()), (cpu1 - cpu0).Seconds() / gib}, nil
	}
}
