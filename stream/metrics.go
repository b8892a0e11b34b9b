package stream

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric descriptions: the figures of Status, per torrent labelled with the
// info hash.
var (
	descCapacity = prometheus.NewDesc("memtorrent_storage_capacity_bytes",
		"Bytes of piece data the memory storage may hold.", nil, nil)
	descResident = prometheus.NewDesc("memtorrent_storage_resident_bytes",
		"Bytes of piece data the memory storage holds.", nil, nil)
	descProcessRSS = prometheus.NewDesc("memtorrent_process_resident_bytes",
		"Resident set of the process (VmRSS); 0 where /proc/self/statm does not exist.", nil, nil)
	descGoHeap = prometheus.NewDesc("memtorrent_go_heap_objects_bytes",
		"Bytes of Go heap objects, live or not yet swept.", nil, nil)
	descMapped = prometheus.NewDesc("memtorrent_storage_mapped_bytes",
		"Address space the memory storage mapped outside the Go heap for its blocks.", nil, nil)
	descEvictions = prometheus.NewDesc("memtorrent_storage_evictions_total",
		"Pieces the memory storage evicted.", nil, nil)
	descEvictedUnverified = prometheus.NewDesc("memtorrent_storage_evicted_unverified_total",
		"Pieces evicted before their hash check; their download is wasted.", nil, nil)
	descSessions = prometheus.NewDesc("memtorrent_stream_sessions",
		"Playback sessions alive.", nil, nil)
	descReaders = prometheus.NewDesc("memtorrent_stream_readers_created_total",
		"Playheads created, one per playback session.", nil, nil)
	descStalls = prometheus.NewDesc("memtorrent_stream_stalls_total",
		"Torrent reads that waited longer than StallThreshold for data.", nil, nil)
	descLongestWait = prometheus.NewDesc("memtorrent_stream_longest_read_wait_seconds",
		"The longest wait of one torrent read for data.", nil, nil)
	descUnverifiedBytes = prometheus.NewDesc("memtorrent_stream_unverified_bytes_total",
		"Bytes served before their piece passed its hash check (Verify playhead).", nil, nil)
	descLeafVerifiedBytes = prometheus.NewDesc("memtorrent_stream_leaf_verified_bytes_total",
		"Bytes of v2 and hybrid torrents served before their piece's hash check, each 16 KiB block proven by its BEP 52 hash.", nil, nil)
	descRefusedLeaves = prometheus.NewDesc("memtorrent_storage_refused_leaves_total",
		"Reads that stopped at a 16 KiB block of a v2 or hybrid torrent whose bytes did not match its BEP 52 hash: a peer's corrupted block kept from the player.", nil, nil)
	descUnverifiedFailed = prometheus.NewDesc("memtorrent_stream_unverified_failed_pieces_total",
		"Pieces that failed their hash check after bytes of them were served.", nil, nil)
	descDemand = prometheus.NewDesc("memtorrent_stream_demand_bytes_per_second",
		"Playback rates of the playing sessions of all torrents, summed.", nil, nil)
	descShortfall = prometheus.NewDesc("memtorrent_stream_shortfall_bytes_per_second",
		"By how much the torrents' download rates fall below their demand while a playing session has little buffered.", nil, nil)
	descOverloaded = prometheus.NewDesc("memtorrent_stream_overloaded",
		"1 when the swarm does not carry every playing session (a shortfall, overall or on a torrent).", nil, nil)

	descTorrentPieces = prometheus.NewDesc("memtorrent_torrent_pieces",
		"Pieces of the torrent by storage state; state=\"total\" counts all.", []string{"infohash", "state"}, nil)
	descTorrentResident = prometheus.NewDesc("memtorrent_torrent_resident_bytes",
		"Bytes the memory storage holds for the torrent.", []string{"infohash"}, nil)
	descTorrentSessions = prometheus.NewDesc("memtorrent_torrent_sessions",
		"Playback sessions on the torrent.", []string{"infohash"}, nil)
	descTorrentReaders = prometheus.NewDesc("memtorrent_torrent_readers_created_total",
		"Playheads created on the torrent, one per playback session.", []string{"infohash"}, nil)
	descLookbehindProtected = prometheus.NewDesc("memtorrent_torrent_lookbehind_pieces",
		"Pieces in the torrent's lookbehind set.", []string{"infohash"}, nil)
	descLookbehindResident = prometheus.NewDesc("memtorrent_torrent_lookbehind_resident_bytes",
		"Bytes held for the torrent's lookbehind pieces.", []string{"infohash"}, nil)
	descLookbehindHits = prometheus.NewDesc("memtorrent_torrent_lookbehind_hits_total",
		"Reads of lookbehind pieces served from memory.", []string{"infohash"}, nil)
	descLookbehindMisses = prometheus.NewDesc("memtorrent_torrent_lookbehind_misses_total",
		"Lookbehind pieces downloaded again.", []string{"infohash"}, nil)
	descReadData = prometheus.NewDesc("memtorrent_torrent_read_data_bytes_total",
		"Piece data received from peers.", []string{"infohash"}, nil)
	descRate = prometheus.NewDesc("memtorrent_torrent_download_rate_bytes_per_second",
		"Piece data received from peers per second, over about the last second.", []string{"infohash"}, nil)
	descTorrentPeers = prometheus.NewDesc("memtorrent_torrent_peers",
		"Connections of the torrent, as Options.Watchdog sees them.", []string{"infohash"}, nil)
	descPeerRequests = prometheus.NewDesc("memtorrent_peer_requests",
		"Our requests outstanding to the peer.", []string{"infohash", "addr", "client"}, nil)
	descPeerRate = prometheus.NewDesc("memtorrent_peer_download_rate_bytes_per_second",
		"Useful data received from the peer per second, over the connection's life.", []string{"infohash", "addr", "client"}, nil)
	descPeerState = prometheus.NewDesc("memtorrent_peer_state",
		"1 when the peer is in the state: peer_choking, peer_interested, interesting (it has a piece we want), has_piece (the piece waited for).",
		[]string{"infohash", "addr", "client", "state"}, nil)
	descTorrentDemand = prometheus.NewDesc("memtorrent_torrent_demand_bytes_per_second",
		"Playback rates of the torrent's playing sessions, summed.", []string{"infohash"}, nil)
	descTorrentShortfall = prometheus.NewDesc("memtorrent_torrent_shortfall_bytes_per_second",
		"By how much the torrent's download rate falls below its demand while a playing session has little buffered.", []string{"infohash"}, nil)
	descSessionBuffered = prometheus.NewDesc("memtorrent_session_buffered_seconds",
		"Media the session's player holds ahead of its playhead, estimated; absent before the first read.", []string{"infohash", "session"}, nil)
	descSessionRate = prometheus.NewDesc("memtorrent_session_playback_rate_bytes_per_second",
		"The session's playback rate, learned from its player's reads or assumed until then.", []string{"infohash", "session", "learned"}, nil)
	descSessionShare = prometheus.NewDesc("memtorrent_session_share",
		"1 for the sharing rule's class of the session at its last move: needy, ahead or wellAhead.", []string{"infohash", "session", "share"}, nil)
	descSessionWait = prometheus.NewDesc("memtorrent_session_wait_seconds",
		"How long the session's read has waited for a piece, with the Watchdog's reason (empty before WatchAfter).",
		[]string{"infohash", "session", "piece", "reason"}, nil)
)

// collector exports Handler.Status to a registry the Handler owns.
type collector struct {
	h *Handler // never changes
}

var _ prometheus.Collector = (*collector)(nil)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		descCapacity, descResident, descProcessRSS, descGoHeap, descMapped, descEvictions, descEvictedUnverified, descSessions, descReaders, descStalls, descLongestWait, descUnverifiedBytes, descLeafVerifiedBytes, descRefusedLeaves, descUnverifiedFailed, descDemand, descShortfall, descOverloaded, descTorrentPieces, descTorrentResident,
		descTorrentSessions, descTorrentReaders, descLookbehindProtected, descLookbehindResident,
		descLookbehindHits, descLookbehindMisses, descReadData, descRate,
		descTorrentPeers, descPeerRequests, descPeerRate, descPeerState, descTorrentDemand, descTorrentShortfall,
		descSessionBuffered, descSessionRate, descSessionShare, descSessionWait,
	} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.h.Status()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge(descCapacity, float64(s.Capacity))
	gauge(descResident, float64(s.Resident))
	gauge(descProcessRSS, float64(s.ProcessRSS))
	gauge(descGoHeap, float64(s.GoHeap))
	gauge(descMapped, float64(s.BlocksMapped))
	counter(descEvictions, float64(s.Evictions))
	counter(descEvictedUnverified, float64(s.EvictedUnverified))
	gauge(descSessions, float64(s.Sessions))
	counter(descReaders, float64(s.ReadersCreated))
	counter(descStalls, float64(s.Stalls))
	gauge(descLongestWait, s.LongestReadWait)
	counter(descUnverifiedBytes, float64(s.UnverifiedBytes))
	counter(descLeafVerifiedBytes, float64(s.LeafVerifiedBytes))
	counter(descRefusedLeaves, float64(s.RefusedLeaves))
	counter(descUnverifiedFailed, float64(s.UnverifiedFailed))
	gauge(descDemand, s.Demand)
	gauge(descShortfall, s.Shortfall)
	gauge(descOverloaded, b2f(s.Overloaded))
	for _, t := range s.Torrents {
		ih := t.InfoHash
		for state, n := range map[string]int{
			"total": t.Pieces.Total, "resident": t.Pieces.Resident, "complete": t.Pieces.Complete,
			"lookbehind": t.Pieces.Lookbehind, "window": t.Pieces.Window, "pinned": t.Pieces.Pinned,
		} {
			gauge(descTorrentPieces, float64(n), ih, state)
		}
		gauge(descTorrentResident, float64(t.ResidentBytes), ih)
		gauge(descTorrentSessions, float64(len(t.Sessions)), ih)
		counter(descTorrentReaders, float64(t.ReadersCreated), ih)
		gauge(descLookbehindProtected, float64(t.Lookbehind.Protected), ih)
		gauge(descLookbehindResident, float64(t.Lookbehind.ResidentBytes), ih)
		counter(descLookbehindHits, float64(t.Lookbehind.Hits), ih)
		counter(descLookbehindMisses, float64(t.Lookbehind.Misses), ih)
		counter(descReadData, float64(t.BytesReadData), ih)
		gauge(descRate, float64(t.DownloadRate), ih)
		gauge(descTorrentPeers, float64(len(t.Peers)), ih)
		seen := make(map[[2]string]bool) // two connections to one address export once
		for _, p := range t.Peers {
			if seen[[2]string{p.Addr, p.Client}] {
				continue
			}
			seen[[2]string{p.Addr, p.Client}] = true
			gauge(descPeerRequests, float64(p.Requests), ih, p.Addr, p.Client)
			gauge(descPeerRate, p.DownloadRate, ih, p.Addr, p.Client)
			for state, on := range map[string]bool{
				"peer_choking": p.PeerChoking, "peer_interested": p.PeerInterested,
				"interesting": p.Interesting, "has_piece": p.HasPiece,
			} {
				gauge(descPeerState, b2f(on), ih, p.Addr, p.Client, state)
			}
		}
		gauge(descTorrentDemand, t.Demand, ih)
		gauge(descTorrentShortfall, t.Shortfall, ih)
		for _, ss := range t.Sessions {
			id := strconv.FormatUint(ss.ID, 10)
			if ss.BufferedSeconds >= 0 {
				gauge(descSessionBuffered, ss.BufferedSeconds, ih, id)
			}
			if ss.PlaybackRate > 0 {
				gauge(descSessionRate, ss.PlaybackRate, ih, id, strconv.FormatBool(ss.RateLearned))
			}
			if ss.Share != "" {
				gauge(descSessionShare, 1, ih, id, ss.Share)
			}
			if ss.WaitPiece >= 0 {
				gauge(descSessionWait, ss.WaitSeconds, ih, strconv.FormatUint(ss.ID, 10), strconv.Itoa(ss.WaitPiece), ss.WaitReason)
			}
		}
	}
}

// b2f is 1 for true, 0 for false.
func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
