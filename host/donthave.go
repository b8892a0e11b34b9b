package host

import (
	"encoding/binary"

	"github.com/anacrolix/torrent"
	pp "github.com/anacrolix/torrent/peer_protocol"
)

// ExtensionDontHave is the name of the BEP 54 extension, lt_donthave: an
// extended message whose payload is the 4-byte big-endian index of a piece
// the sender no longer has. anacrolix/torrent v1.59.1 neither sends nor
// advertises it (upstream issue 726); libtorrent (qBittorrent, Deluge)
// advertises and honours it.
const ExtensionDontHave pp.ExtensionName = "lt_donthave"

// tellGone sends lt_donthave for each of pieces that the client no longer
// counts complete to each connection of t whose peer advertised the
// extension, and returns how many messages it queued.
//
// Why: once every piece of a torrent has passed through a bounded cache,
// the client has sent HAVE for all of them, and a seeder sees another
// seed and closes the connection as redundant (libtorrent's
// disconnect_if_redundant). On DONT_HAVE libtorrent clears the piece from
// its view of us and, if it counted us a seed, stops doing so
// (peer_connection::incoming_dont_have), so it neither drops us nor sends
// requests for the piece that we would have to refuse.
//
// What it cannot do in v1.59.1: the client remembers, per connection, the
// pieces it announced (PeerConn.sentHaves, unexported) and never announces
// one twice, so a piece told gone and later downloaded again is not
// announced again on that connection. The peer then believes we lack it:
// it only misses a source, it is never refused. A new connection carries
// the true bitfield.
//
// Costs: each message takes the client lock once. Call it outside every
// lock of ours, after UpdateCompletion (which is synchronous: when it
// returns, the client's cached completion is the storage's).
func tellGone(t *torrent.Torrent, pieces []int) (sent int) {
	gone := make([]int, 0, len(pieces))
	for _, i := range pieces {
		// The piece may have been downloaded again since the storage
		// reported it: then the peer's view of it is right.
		if !t.Piece(i).State().Complete {
			gone = append(gone, i)
		}
	}
	if len(gone) == 0 {
		return 0
	}
	var payload [4]byte
	for _, pc := range t.PeerConns() {
		for _, i := range gone {
			binary.BigEndian.PutUint32(payload[:], uint32(i))
			// The only error is a peer that did not advertise the
			// extension (or has not sent its extended handshake yet):
			// it gets nothing, and the next piece would fail the same way.
			if err := pc.WriteExtendedMessage(ExtensionDontHave, payload[:]); err != nil {
				break
			}
			sent++
		}
	}
	return sent
}
