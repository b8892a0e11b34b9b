package host

import (
	"github.com/anacrolix/torrent"
	pp "github.com/anacrolix/torrent/peer_protocol"
)

// wire installs c's callbacks in cfg: one function per client event, run
// after those already in cfg (Apply's, a caller's), that hands the event to
// each part of c that follows it, always in this order: the peer log (the
// watchdog's view of connections), the request queues, the seed guard, the
// redialer. The client calls them all with its lock held; none of them
// takes that lock or waits.
func (c *Client) wire(cfg *torrent.ClientConfig) {
	cb := &cfg.Callbacks
	cb.PeerConnAdded = append(cb.PeerConnAdded, func(pc *torrent.PeerConn) {
		c.peers.connAdded(pc)
		c.guard.connAdded(pc)
		c.redial.connAdded(pc)
	})
	cb.ReadExtendedHandshake = after(cb.ReadExtendedHandshake, func(pc *torrent.PeerConn, msg *pp.ExtendedHandshakeMessage) {
		c.reqs.handshake(pc, msg)
		c.guard.extendedHandshake(pc, msg)
	})
	cb.ReadMessage = after(cb.ReadMessage, func(pc *torrent.PeerConn, msg *pp.Message) {
		c.peers.read(pc, msg)
		c.reqs.read(pc, msg)
	})
	cb.SentRequest = append(cb.SentRequest, func(e torrent.PeerRequestEvent) {
		c.peers.sent(e)
		c.reqs.sent(e)
	})
	cb.DeletedRequest = append(cb.DeletedRequest, func(e torrent.PeerRequestEvent) {
		c.peers.deleted(e)
		c.reqs.deleted(e)
	})
	cb.ReceivedUsefulData = append(cb.ReceivedUsefulData, c.peers.useful)
	cb.ReceivedRequested = append(cb.ReceivedRequested, func(e torrent.PeerMessageEvent) {
		c.reqs.received(e)
		c.redial.delivered(e.Peer)
	})
	cb.PeerClosed = append(cb.PeerClosed, func(p *torrent.Peer) {
		c.peers.closed(p)
		c.reqs.closed(p)
	})
	prevClosed := cb.PeerConnClosed
	cb.PeerConnClosed = func(pc *torrent.PeerConn) {
		if prevClosed != nil {
			prevClosed(pc)
		}
		c.guard.connClosed(pc)
		c.redial.connClosed(pc)
	}
}

// after returns a callback of the client's that calls prev, if there is
// one, then f: how a callback is added to one already in a configuration.
func after[M any](prev, f func(*torrent.PeerConn, M)) func(*torrent.PeerConn, M) {
	if prev == nil {
		return f
	}
	return func(pc *torrent.PeerConn, m M) {
		prev(pc, m)
		f(pc, m)
	}
}
