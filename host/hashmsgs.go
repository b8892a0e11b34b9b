package host

import (
	"github.com/anacrolix/torrent"
	pp "github.com/anacrolix/torrent/peer_protocol"
)

// ignoreHashMessages makes the client ignore the BEP 52 hash messages
// (hash request, hashes, hash reject: types 21-23) that peers send, by
// turning them into keep-alives in a Callbacks.ReadMessage callback, which
// v1.59.1 runs on every decoded message before it acts on it. A callback
// already in cfg runs first.
//
// Why: v1.59.1 handles a "hashes" message from any peer, whatever the
// torrent, in PeerConn.onReadHashes, which panics on a v1 torrent (it
// unwraps the unset v2 pieces root of its files), on a pieces root the
// torrent lacks (nil file), on an index past the file's pieces and on
// proof layers (read in the source); nothing recovers the read loop, so
// one 50-byte message ends the process (the v1 case:
// reliability.TestV1591HashesMessageCrashes). The cost:
// the client neither answers v2 peers' hash requests nor learns piece
// layers from peers, which only a v2 torrent added without its piece
// layers (by magnet) needs; a hybrid torrent is verified by its v1 hashes
// and a .torrent carries its piece layers. The host's own hash requests
// (Options.LeafHashes: block hashes, and a magnet's piece layers) read
// the replies on the connection itself, before the client (leaftap.go).
func ignoreHashMessages(cfg *torrent.ClientConfig) {
	cfg.Callbacks.ReadMessage = after(cfg.Callbacks.ReadMessage, func(_ *torrent.PeerConn, msg *pp.Message) {
		switch msg.Type {
		case pp.HashRequest, pp.Hashes, pp.HashReject:
			if !msg.Keepalive {
				*msg = pp.Message{Keepalive: true}
			}
		}
	})
}
