package memory_test

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"

	g "github.com/anacrolix/generics"
	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"

	"github.com/memtorrent/memtorrent/host"
	"github.com/memtorrent/memtorrent/storage/memory"
)

// Example streams a generated 8 MiB torrent over loopback from a seeder on
// disk into a leecher whose pieces live in 2 MiB of memory, and checks the
// bytes.
func Example() {
	dir, err := os.MkdirTemp("", "memtorrent-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// A file and its torrent.
	data := make([]byte, 8<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	if err := os.WriteFile(filepath.Join(dir, "video.bin"), data, 0o644); err != nil {
		log.Fatal(err)
	}
	info := metainfo.Info{PieceLength: 256 << 10}
	if err := info.BuildFromFilePath(filepath.Join(dir, "video.bin")); err != nil {
		log.Fatal(err)
	}
	mi := metainfo.MetaInfo{}
	if mi.InfoBytes, err = bencode.Marshal(info); err != nil {
		log.Fatal(err)
	}

	config := func() *torrent.ClientConfig {
		cfg := torrent.NewDefaultClientConfig()
		host.Loopback(cfg) // 127.0.0.1 only: the example stays on the machine
		host.Apply(cfg)    // memtorrent's recommended settings
		cfg.Slogger = slog.New(slog.DiscardHandler)
		cfg.DataDir = dir
		return cfg
	}

	// The seeder serves the file from disk.
	seedCfg := config()
	seedCfg.Seed = true
	seedCfg.DefaultStorage = storage.NewFileOpts(storage.NewFileClientOpts{ClientBaseDir: dir, UsePartFiles: g.Some(true)})
	seeder, err := torrent.NewClient(seedCfg)
	if err != nil {
		log.Fatal(err)
	}
	defer seeder.Close()
	if _, err := seeder.AddTorrent(&mi); err != nil {
		log.Fatal(err)
	}

	// The leecher keeps at most 2 MiB of pieces in memory. host.New makes
	// the storage and the client and tells the client of every eviction.
	hc, err := host.New(config(), memory.Options{Capacity: 2 << 20})
	if err != nil {
		log.Fatal(err)
	}
	defer hc.Close() // the client, then the storage
	mem, leecher := hc.Storage, hc.Torrent

	t, err := leecher.AddTorrent(&mi)
	if err != nil {
		log.Fatal(err)
	}
	t.AddClientPeer(seeder)
	r := t.NewReader()
	defer r.Close()
	r.SetReadahead(1 << 20)
	got, err := io.ReadAll(r)
	if err != nil {
		log.Fatal(err)
	}
	s := mem.Stats()
	fmt.Printf("read %d bytes, identical: %v\n", len(got), bytes.Equal(got, data))
	fmt.Printf("resident within capacity: %v\n", s.Resident <= s.Capacity)
	// Output:
	// read 8388608 bytes, identical: true
	// resident within capacity: true
}
