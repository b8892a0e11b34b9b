package stream_test

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	g "github.com/anacrolix/generics"
	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"

	"github.com/memtorrent/memtorrent/host"
	"github.com/memtorrent/memtorrent/storage/memory"
	"github.com/memtorrent/memtorrent/stream"
)

// Example embeds the Handler in an HTTP server in front of a torrent client
// whose pieces live in 2 MiB of memory, and plays a 6 MiB file of a
// loopback swarm through it: whole, then a range, as a player would.
func Example() {
	// A seeder and the leecher's torrent; see swarm below.
	cl, mem, ih, data, cleanup := swarm()
	defer cleanup()

	h, err := stream.New(cl, mem, stream.Options{})
	if err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(h) // or http.ListenAndServe(addr, h)
	defer srv.Close()
	defer h.Close() // before the server: it ends the streams in flight

	resp, err := srv.Client().Get(srv.URL + "/stream/" + ih + "/0")
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.Status, resp.Header.Get("Content-Type"), bytes.Equal(body, data))

	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/stream/"+ih+"/path/movie.mkv", nil)
	req.Header.Set("Range", "bytes=1000-1999")
	resp, err = srv.Client().Do(req)
	if err != nil {
		log.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.Status, resp.Header.Get("Content-Range"), bytes.Equal(body, data[1000:2000]))

	st, _ := h.TorrentStatus(metainfo.NewHashFromHex(ih))
	fmt.Println(st.Name, "sessions:", len(st.Sessions), "readers:", st.ReadersCreated)
	// Output:
	// 200 OK video/x-matroska true
	// 206 Partial Content bytes 1000-1999/6291456 true
	// movie.mkv sessions: 1 readers: 1
}

// swarm starts a seeder of a 6 MiB file and a leecher over memory storage
// that has the torrent, and returns the leecher, its storage, the info hash,
// the file's bytes and a function that closes everything.
func swarm() (*torrent.Client, *memory.Client, string, []byte, func()) {
	dir, err := os.MkdirTemp("", "memtorrent-stream-example")
	if err != nil {
		log.Fatal(err)
	}
	data := make([]byte, 6<<20)
	rand.NewChaCha8([32]byte{1}).Read(data)
	if err := os.WriteFile(filepath.Join(dir, "movie.mkv"), data, 0o644); err != nil {
		log.Fatal(err)
	}
	info := metainfo.Info{PieceLength: 256 << 10}
	if err := info.BuildFromFilePath(filepath.Join(dir, "movie.mkv")); err != nil {
		log.Fatal(err)
	}
	mi := &metainfo.MetaInfo{}
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

	seedCfg := config()
	seedCfg.Seed = true
	seedStorage := storage.NewFileOpts(storage.NewFileClientOpts{ClientBaseDir: dir, UsePartFiles: g.Some(true)})
	seedCfg.DefaultStorage = seedStorage
	seeder, err := torrent.NewClient(seedCfg)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := seeder.AddTorrent(mi); err != nil {
		log.Fatal(err)
	}

	hc, err := host.New(config(), memory.Options{Capacity: 2 << 20})
	if err != nil {
		log.Fatal(err)
	}
	leecher, mem := hc.Torrent, hc.Storage
	t, err := leecher.AddTorrent(mi)
	if err != nil {
		log.Fatal(err)
	}
	t.AddClientPeer(seeder)
	return leecher, mem, t.InfoHash().HexString(), data, func() {
		hc.Close()
		seeder.Close()
		seedStorage.Close()
		os.RemoveAll(dir)
	}
}
