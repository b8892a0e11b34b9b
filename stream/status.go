package stream

import (
	"bytes"
	"cmp"
	"encoding/json"
	"maps"
	"net/http"
	"os"
	"runtime/metrics"
	"slices"
	"strconv"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"

	"github.com/memtorrent/memtorrent/host"
	"github.com/memtorrent/memtorrent/storage/memory"
)

// Status is the JSON of /status: the storage's figures and every torrent
// of the client.
type Status struct {
	Capacity int64 `json:"capacity"` // bytes the storage may hold
	Resident int64 `json:"resident"` // bytes the storage holds
	// The process beside the storage: its resident set (VmRSS, 0 where
	// /proc/self/statm does not exist), its live Go heap objects, and the
	// address space the storage mapped outside the Go heap for its blocks
	// (memory.Stats.Mapped). RSS is about the blocks in use plus the Go
	// heap plus the program's code.
	ProcessRSS   int64 `json:"processRSS"`
	GoHeap       int64 `json:"goHeap"`
	BlocksMapped int64 `json:"blocksMapped"`
	// Evictions counts pieces the storage evicted; EvictedUnverified those
	// of them evicted before their hash check (partly written, or whole
	// and waiting for the check), whose download is wasted
	// (memory.Stats.EvictedPartial and EvictedUnhashed).
	Evictions         int64 `json:"evictions"`
	EvictedUnverified int64 `json:"evictedUnverified"`
	Sessions          int   `json:"sessions"`       // sessions alive
	MaxSessions       int   `json:"maxSessions"`    // Options.MaxSessions
	ReadersCreated    int64 `json:"readersCreated"` // torrent readers created since New
	// Stalls counts torrent reads that waited longer than StallThreshold
	// for data; LongestReadWait is the longest single wait, in seconds.
	Stalls          int64   `json:"stalls"`
	LongestReadWait float64 `json:"longestReadWaitSeconds"`
	// Verify is Options.Verify. UnverifiedBytes counts the bytes served
	// before their piece passed its hash check (VerifyPlayhead), and
	// UnverifiedFailed the pieces that failed it after bytes of them were
	// served: the player got wrong bytes from each.
	Verify           string `json:"verify"`
	UnverifiedBytes  int64  `json:"unverifiedBytes"`
	UnverifiedFailed int64  `json:"unverifiedFailed"`
	// LeafVerifiedBytes counts the bytes of v2 and hybrid torrents served
	// before their piece's hash check, each 16 KiB block proven by its
	// BEP 52 hash (see host.Options.LeafHashes): verified, in either mode.
	LeafVerifiedBytes int64 `json:"leafVerifiedBytes"`
	// RefusedLeaves counts the reads that stopped at a 16 KiB block whose
	// bytes did not match its BEP 52 hash: a peer's corrupted block kept
	// from the player (memory.Stats.RefusedLeaves; a block read again
	// counts again).
	RefusedLeaves int64 `json:"refusedLeaves"`
	// Admission: Demand sums the playback rates of the playing sessions of
	// all torrents, in bytes per second, and DownloadRate their torrents'
	// download rates. Shortfall is by how much DownloadRate falls below
	// Demand while a playing session has less than 10 s buffered (0
	// otherwise); Overloaded is set when it or a torrent's shortfall is
	// above 0: the swarm does not carry every session. New sessions are
	// served all the same.
	Demand       float64         `json:"demand"`
	DownloadRate float64         `json:"downloadRate"`
	Shortfall    float64         `json:"shortfall"`
	Overloaded   bool            `json:"overloaded"`
	Torrents     []TorrentStatus `json:"torrents"` // by info hash
}

// StallThreshold is how long a torrent read must wait for data to count as
// a stall in Status.Stalls: far above a normal wait on loopback or a LAN
// (milliseconds), far below the 60 s stalls of anacrolix/torrent v1.59.1
// with its default keep-alive (docs/stalls.md).
const StallThreshold = 2 * time.Second

// recordWait records how long one torrent read waited. Lock-free.
func (h *Handler) recordWait(d time.Duration) {
	if d > StallThreshold {
		h.stalls.Add(1)
	}
	for {
		old := h.longestWait.Load()
		if int64(d) <= old || h.longestWait.CompareAndSwap(old, int64(d)) {
			return
		}
	}
}

// TorrentStatus is the JSON of /status/{infohash}: one torrent.
type TorrentStatus struct {
	InfoHash      string           `json:"infoHash"`
	Name          string           `json:"name"`
	GotInfo       bool             `json:"gotInfo"`
	Length        int64            `json:"length"`      // bytes in the torrent
	PieceLength   int64            `json:"pieceLength"` // bytes per piece
	Pieces        PieceCounts      `json:"pieces"`
	Capacity      int64            `json:"capacity"`      // bytes the storage may hold, for all torrents
	ResidentBytes int64            `json:"residentBytes"` // bytes the storage holds for this torrent
	Lookbehind    LookbehindStatus `json:"lookbehind"`
	BytesReadData int64            `json:"bytesReadData"` // piece data received from peers
	DownloadRate  float64          `json:"downloadRate"`  // bytes per second, over about the last second
	// Demand sums the playback rates of the torrent's playing sessions,
	// in bytes per second; Shortfall is by how much DownloadRate falls
	// below it while one of them has less than 10 s buffered, 0 otherwise.
	Demand         float64         `json:"demand"`
	Shortfall      float64         `json:"shortfall"`
	ReadersCreated int64           `json:"readersCreated"`
	Sessions       []SessionStatus `json:"sessions"` // by id
	// Peers are the torrent's connections as Options.Watchdog sees them
	// (none without one), HasPiece for the piece the longest waiting
	// session waits for, if any.
	Peers []host.PeerState `json:"peers"`
}

// PieceCounts counts the torrent's pieces by the storage's state (a piece
// counts in every state it is in). All zero but Total when the torrent's
// storage is not the Handler's memory client.
type PieceCounts struct {
	Total      int `json:"total"`
	Resident   int `json:"resident"`   // holding at least one block
	Complete   int `json:"complete"`   // verified and held whole
	Lookbehind int `json:"lookbehind"` // in the lookbehind set
	Window     int `json:"window"`     // in a session's reader window
	Pinned     int `json:"pinned"`     // in a head/tail pin
}

// LookbehindStatus are the torrent's lookbehind figures (memory.LookbehindStats).
type LookbehindStatus struct {
	Protected     int   `json:"protected"`
	Resident      int   `json:"resident"`
	ResidentBytes int64 `json:"residentBytes"`
	Hits          int64 `json:"hits"`
	Misses        int64 `json:"misses"`
}

// SessionStatus is one playback session.
type SessionStatus struct {
	ID          uint64  `json:"id"`
	Client      string  `json:"client"` // ?session= value, or remote IP and User-Agent
	File        int     `json:"file"`
	Path        string  `json:"path"`
	Position    int64   `json:"position"`  // the reader's position in the file
	Readahead   int64   `json:"readahead"` // bytes
	Requests    int64   `json:"requests"`  // requests served
	Seeks       int64   `json:"seeks"`     // reader moves between and within requests
	Busy        bool    `json:"busy"`      // serving a request now
	IdleSeconds float64 `json:"idleSeconds"`
	// The sharing rule's view of the session: the media its player holds
	// ahead of the playhead, in seconds (-1 before the first read); its
	// playback rate in bytes per second, learned from the player's reads
	// (RateLearned) or assumed until then; and its class at the last move
	// of the playhead, ShareNeedy, ShareAhead or ShareWellAhead (empty
	// before the first read).
	BufferedSeconds float64 `json:"bufferedSeconds"`
	PlaybackRate    float64 `json:"playbackRate"`
	RateLearned     bool    `json:"rateLearned"`
	Share           string  `json:"share"`
	// A read of the session waiting for a piece: the piece (-1: none),
	// for how long, and, once it has waited WatchAfter, why and what was
	// done (Options.Watchdog; see host.Reason).
	WaitPiece   int     `json:"waitPiece"`
	WaitSeconds float64 `json:"waitSeconds"`
	WaitReason  string  `json:"waitReason,omitempty"`
	WaitAction  string  `json:"waitAction,omitempty"`
}

// Status returns the figures of /status. It calls into the torrent client
// and the storage, never under the Handler's locks.
func (h *Handler) Status() Status {
	st := h.mem.Stats()
	ts := h.cl.Torrents()
	slices.SortFunc(ts, func(a, b *torrent.Torrent) int {
		ia, ib := a.InfoHash(), b.InfoHash()
		return bytes.Compare(ia[:], ib[:])
	})
	s := Status{
		Capacity:          st.Capacity,
		Resident:          st.Resident,
		ProcessRSS:        processRSS(),
		GoHeap:            goHeap(),
		BlocksMapped:      st.Mapped,
		Evictions:         st.Evictions,
		EvictedUnverified: st.EvictedPartial + st.EvictedUnhashed,
		MaxSessions:       h.opts.MaxSessions,
		ReadersCreated:    h.readers.Load(),
		Stalls:            h.stalls.Load(),
		LongestReadWait:   time.Duration(h.longestWait.Load()).Seconds(),
		Verify:            h.opts.Verify,
		UnverifiedBytes:   h.unverifiedBytes.Load(),
		LeafVerifiedBytes: h.leafVerifiedBytes.Load(),
		RefusedLeaves:     st.RefusedLeaves,
		UnverifiedFailed:  h.unverifiedFails.Load(),
		Torrents:          make([]TorrentStatus, 0, len(ts)),
	}
	h.mu.Lock()
	s.Sessions = len(h.sessions)
	h.mu.Unlock()
	var playing []demand
	for _, t := range ts {
		tst, d := h.torrentStatus(t, st.Capacity)
		s.Torrents = append(s.Torrents, tst)
		playing = append(playing, d...)
		s.Demand += tst.Demand
		s.DownloadRate += tst.DownloadRate
		s.Overloaded = s.Overloaded || tst.Shortfall > 0
	}
	s.Shortfall = shortfall(s.DownloadRate, playing)
	s.Overloaded = s.Overloaded || s.Shortfall > 0
	return s
}

// TorrentStatus returns the figures of /status/{infohash}, or false if the
// client has no such torrent.
func (h *Handler) TorrentStatus(ih metainfo.Hash) (TorrentStatus, bool) {
	t, ok := h.cl.Torrent(ih)
	if !ok {
		return TorrentStatus{}, false
	}
	ts, _ := h.torrentStatus(t, h.mem.Stats().Capacity)
	return ts, true
}

// torrentStatus returns t's figures and the demands of its playing
// sessions.
func (h *Handler) torrentStatus(t *torrent.Torrent, capacity int64) (TorrentStatus, []demand) {
	ih := t.InfoHash()
	ts := TorrentStatus{InfoHash: ih.HexString(), Name: t.Name(), Capacity: capacity, Sessions: []SessionStatus{}, Peers: []host.PeerState{}}
	if info := t.Info(); info != nil {
		ts.GotInfo = true
		ts.Length = info.TotalLength()
		ts.PieceLength = info.PieceLength
		ts.Pieces.Total = info.NumPieces()
	}
	stats := t.Stats()
	ts.BytesReadData = stats.BytesReadData.Int64()
	if mt, ok := h.mem.Torrent(ih); ok {
		for _, p := range mt.AppendPieceStates(nil) {
			ts.Pieces.Resident += bit(p, memory.PieceResident)
			ts.Pieces.Complete += bit(p, memory.PieceComplete)
			ts.Pieces.Lookbehind += bit(p, memory.PieceLookbehind)
			ts.Pieces.Window += bit(p, memory.PieceReadahead)
			ts.Pieces.Pinned += bit(p, memory.PiecePinned)
		}
		mst := mt.Stats()
		ts.ResidentBytes = mst.ResidentBytes
		lb := mst.Lookbehind
		ts.Lookbehind = LookbehindStatus{lb.Protected, lb.Resident, lb.ResidentBytes, lb.Hits, lb.Misses}
	}
	now := time.Now()
	piece, longest := -1, time.Duration(0)
	var playing []demand
	h.mu.Lock()
	ts.DownloadRate = h.rates[ih].rate
	ts.ReadersCreated = h.readersBy[ih]
	for _, s := range h.sessions {
		if s.key.t != t {
			continue
		}
		ss := SessionStatus{
			ID:        s.id,
			Client:    s.key.client,
			File:      s.key.file,
			Path:      s.file.DisplayPath(),
			Position:  s.position.Load(),
			Readahead: s.raBytes.Load(),
			Requests:  s.requests.Load(),
			Seeks:     s.seeks.Load(),
			Busy:      s.busy,

			BufferedSeconds: -1,
			PlaybackRate:    s.rate.Load(),
			RateLearned:     s.learned.Load(),
			Share:           s.share.Load(),
		}
		if b := s.buffered.Load(); b != bufferedUnknownNs {
			ss.BufferedSeconds = time.Duration(b).Seconds()
			if s.busy {
				playing = append(playing, demand{rate: ss.PlaybackRate, buffered: time.Duration(b)})
			}
		}
		if !s.busy {
			ss.IdleSeconds = now.Sub(s.lastUsed).Seconds()
		}
		ss.WaitPiece = -1
		if w := s.wait; !w.since.IsZero() {
			ss.WaitPiece, ss.WaitSeconds = w.piece, now.Sub(w.since).Seconds()
			ss.WaitReason, ss.WaitAction = string(w.reason), w.action
			if d := now.Sub(w.since); d > longest {
				piece, longest = w.piece, d
			}
		}
		ts.Sessions = append(ts.Sessions, ss)
	}
	h.mu.Unlock()
	for _, d := range playing {
		ts.Demand += d.rate
	}
	ts.Shortfall = shortfall(ts.DownloadRate, playing)
	if h.opts.Watchdog != nil {
		ts.Peers = h.opts.Watchdog.Peers(t, piece)
	}
	slices.SortFunc(ts.Sessions, func(a, b SessionStatus) int { return cmp.Compare(a.ID, b.ID) })
	return ts, playing
}

func bit(p, b memory.PieceState) int {
	if p&b != 0 {
		return 1
	}
	return 0
}

// serveStatus serves /status.
func (h *Handler) serveStatus(w http.ResponseWriter, r *http.Request) {
	h.writeJSON(w, h.Status())
}

// serveTorrentStatus serves /status/{infohash}.
func (h *Handler) serveTorrentStatus(w http.ResponseWriter, r *http.Request) {
	var ih metainfo.Hash
	if err := ih.FromHexString(r.PathValue("infohash")); err != nil {
		notFound(w)
		return
	}
	ts, ok := h.TorrentStatus(ih)
	if !ok {
		notFound(w)
		return
	}
	h.writeJSON(w, ts)
}

func (h *Handler) writeJSON(w http.ResponseWriter, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		h.log.Error("stream: encoding status", "err", err)
		httpError(w, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(append(b, '\n'))
}

// rateSample is the last download figure of a torrent.
type rateSample struct {
	at    time.Time
	bytes int64   // BytesReadData at at
	rate  float64 // bytes per second between the previous sample and this one
}

// next returns the sample of bytes at at that follows r.
func (r rateSample) next(at time.Time, bytes int64) rateSample {
	n := rateSample{at: at, bytes: bytes}
	if d := at.Sub(r.at).Seconds(); !r.at.IsZero() && d > 0 && bytes >= r.bytes {
		n.rate = float64(bytes-r.bytes) / d
	}
	return n
}

// sample records every torrent's BytesReadData at now, for download rates,
// and forgets the figures of torrents the client no longer has.
func (h *Handler) sample(now time.Time) {
	ts := h.cl.Torrents()
	read := make(map[metainfo.Hash]int64, len(ts))
	for _, t := range ts {
		st := t.Stats()
		read[t.InfoHash()] = st.BytesReadData.Int64()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	// A torrent added since the snapshot may have sessions already.
	live := func(ih metainfo.Hash) bool {
		if _, ok := read[ih]; ok {
			return true
		}
		return slices.ContainsFunc(h.sessions, func(s *session) bool { return s.key.ih == ih })
	}
	maps.DeleteFunc(h.rates, func(ih metainfo.Hash, _ rateSample) bool { return !live(ih) })
	maps.DeleteFunc(h.readersBy, func(ih metainfo.Hash, _ int64) bool { return !live(ih) })
	for ih, b := range read {
		h.rates[ih] = h.rates[ih].next(now, b)
	}
}

// processRSS returns the process's resident set in bytes from
// /proc/self/statm, or 0 where it cannot be read.
func processRSS() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := bytes.Fields(b)
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseInt(string(f[1]), 10, 64)
	if err != nil {
		return 0
	}
	return pages * int64(os.Getpagesize())
}

// goHeap returns the bytes of Go heap objects, live or not yet swept,
// without stopping the world (runtime/metrics, unlike ReadMemStats).
func goHeap() int64 {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(sample)
	if sample[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return int64(sample[0].Value.Uint64())
}
