package host_test

import (
	"fmt"

	"github.com/anacrolix/torrent"
	pp "github.com/anacrolix/torrent/peer_protocol"

	"github.com/memtorrent/memtorrent/host"
)

func Example() {
	cfg := torrent.NewDefaultClientConfig()
	host.Apply(cfg)
	fmt.Println("keep-alive:", cfg.KeepAliveTimeout)
	fmt.Println("upload buffers per connection (MiB):", cfg.MaxAllocPeerRequestDataPerConn>>20)

	// What a Transmission 3.00 peer advertises, as the client would see it.
	hs := pp.ExtendedHandshakeMessage{V: "Transmission 3.00", Reqq: 512}
	cfg.Callbacks.ReadExtendedHandshake(nil, &hs)
	fmt.Println("requests queued at most:", hs.Reqq)
	// Output:
	// keep-alive: 1s
	// upload buffers per connection (MiB): 16
	// requests queued at most: 500
}
