package server_test

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/anacrolix/torrent"

	"github.com/memtorrent/memtorrent/host"
	"github.com/memtorrent/memtorrent/server"
)

// Example embeds the whole media server: a torrent client over 64 MiB of
// memory, the stream handler, the APIs and the status pages, served by the
// program's own HTTP server. The client here stays on loopback
// (host.Loopback), so the example runs offline.
func Example() {
	cfg := torrent.NewDefaultClientConfig()
	host.Loopback(cfg)
	host.Apply(cfg)
	s, err := server.New(server.Config{Client: cfg, Capacity: 64 << 20})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	hs := httptest.NewServer(s.Handler()) // or http.ListenAndServe(addr, s.Handler())
	defer hs.Close()

	resp, err := http.Get(hs.URL + "/api/torrents")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Printf("%s %s", resp.Status, body)
	// Output: 200 OK []
}
