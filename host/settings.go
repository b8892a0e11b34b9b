package host

import (
	"time"

	"github.com/anacrolix/torrent"
	pp "github.com/anacrolix/torrent/peer_protocol"
)

// This file is memtorrent's recommended configuration (Apply). Each
// setting works around a defect of v1.59.1 that was reproduced on loopback;
// docs/stalls.md has the evidence for the first one.
//
// KeepAliveTimeout (one second instead of one minute). Each peer
// connection's message writer (peerConnMsgWriter.run) first fills its buffer
// under the client lock, then, in a separate step, subscribes to its wake-up
// condition and sleeps. A change made by another goroutine between those two
// steps (a chunk read for upload becoming ready, or a request update being
// scheduled) broadcasts to nobody and is lost; while a request update is
// pending, later ones do not even broadcast. The only other thing that
// wakes the writer is its keep-alive timer, which fires KeepAliveTimeout
// after the connection's last write: with the default of one minute a
// stream can wait 60 s for data the seeder has ready (docs/stalls.md has
// how often). One second bounds each such wait to at most a second and costs
// a 4-byte keep-alive per second on a connection that is wanted but idle.
//
// MaxAllocPeerRequestDataPerConn (16 MiB instead of 1 MiB). A connection
// serves peer requests from one goroutine that blocks on a per-connection
// allocation limit; space is released only when data is sent, and the
// requests holding it are never read while that goroutine is blocked, so
// uploading to a peer stops for good once the peer has more than the limit
// outstanding. 16 MiB is the 1024 requests of 16 KiB the client lets a peer
// queue, so a reservation never waits. The cost is up to 16 MiB of upload
// buffers per connection with a slow peer.
//
// A cap of 500 on each peer's advertised request queue. Transmission 3.00
// advertises reqq 512 but rejects the 512th outstanding request, after which
// a v1.59.1 leecher stops requesting from it and waits for an unchoke that
// never comes. Apply lowers the reqq of every extended handshake received to
// MaxPeerRequests, through Callbacks.ReadExtendedHandshake, which the client
// calls before it copies reqq into PeerConn.PeerMaxRequests.
//
// No busy loop when the DHT cannot start. v1.59.1 announces each torrent to
// the DHT again as soon as an announce fails, and with no network (no DNS
// for the bootstrap names) every announce fails at once: an offline client
// spins, about two CPU cores and 10 MB/s of Warning lines. Apply wraps
// cfg.ConfigureAnacrolixDhtServer so that a failed lookup of a DHT server's
// starting nodes gives the server a node it never contacts instead of an
// error, and is not repeated for DHTRetry: the announce then succeeds
// without sending anything and the client waits its usual five minutes
// before the next (see backoffDHT in dht.go).
//
// Apply changes only these fields (KeepAliveTimeout,
// MaxAllocPeerRequestDataPerConn, Callbacks.ReadExtendedHandshake and
// ConfigureAnacrolixDhtServer) and leaves networking, storage, logging and
// the rest as the caller set them; UseLogger is the fix for logging.

const (
	// KeepAliveTimeout bounds how long a lost wake-up of a connection's
	// message writer can stall a transfer (see above).
	KeepAliveTimeout = time.Second

	// MaxAllocPeerRequestDataPerConn lets a peer's 1024 queued requests of
	// 16 KiB all hold their upload buffers at once, so that the v1.59.1
	// request server never blocks (see above).
	MaxAllocPeerRequestDataPerConn = 16 << 20

	// MaxPeerRequests is the largest request queue Apply lets a peer
	// advertise (BEP 10 "reqq"); Transmission 3.00 advertises 512 but
	// accepts only 511.
	MaxPeerRequests = 500
)

// Apply sets in cfg the values that memtorrent recommends: KeepAliveTimeout,
// MaxAllocPeerRequestDataPerConn, a ReadExtendedHandshake callback that
// caps a peer's advertised request queue at MaxPeerRequests, and a
// ConfigureAnacrolixDhtServer that keeps a failed lookup of DHT starting
// nodes from failing the announces, and a ReadMessage callback that ignores
// BEP 52 hash messages, one of which panics v1.59.1 (see
// ignoreHashMessages). A callback already in
// cfg.Callbacks.ReadExtendedHandshake, cfg.Callbacks.ReadMessage or
// cfg.ConfigureAnacrolixDhtServer is kept and runs first, so the cap and the workaround hold whatever it does. Call Apply once per configuration,
// before torrent.NewClient; calling it again only wraps the callbacks once
// more.
func Apply(cfg *torrent.ClientConfig) {
	cfg.KeepAliveTimeout = KeepAliveTimeout
	cfg.MaxAllocPeerRequestDataPerConn = MaxAllocPeerRequestDataPerConn
	cfg.Callbacks.ReadExtendedHandshake = after(cfg.Callbacks.ReadExtendedHandshake, func(_ *torrent.PeerConn, msg *pp.ExtendedHandshakeMessage) {
		capRequestQueue(msg)
	})
	backoffDHT(cfg)
	ignoreHashMessages(cfg)
}

// capRequestQueue lowers msg's advertised request queue to MaxPeerRequests.
// A zero reqq (not advertised) is left alone: the client then keeps its own
// default of 250.
func capRequestQueue(msg *pp.ExtendedHandshakeMessage) {
	if msg.Reqq > MaxPeerRequests {
		msg.Reqq = MaxPeerRequests
	}
}
