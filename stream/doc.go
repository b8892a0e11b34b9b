// Package stream serves the files of torrents over HTTP while they download,
// for media players: it is the piece a media server embeds. A [Handler]
// reads through a *torrent.Client whose storage is a *memory.Client and
// turns each player's requests into a playback session that keeps one
// playhead with its piece priorities, one storage reader window, a
// lookbehind and head/tail pins for as long as the player keeps coming back.
//
// # Routes
//
//	GET|HEAD /stream/{infohash}/{fileIndex}   file by index in the torrent's file list
//	GET|HEAD /stream/{infohash}/path/{path...} file by its path inside the torrent
//	GET /status                               JSON: every torrent of the client ([Status])
//	GET /status/{infohash}                    JSON: one torrent ([TorrentStatus])
//	GET /metrics                              Prometheus text format, same figures
//	GET /playlist/{infohash}.m3u              M3U of the torrent's video and audio files
//
// {infohash} is the 40-digit hex v1 info hash. {path...} matches the file's
// path relative to the torrent (as (*torrent.File).DisplayPath returns it)
// or with the torrent's name in front ((*torrent.File).Path); nothing is
// ever looked up on a file system, so a path is either one of the torrent's
// files or 404. A torrent the client knows but whose info has not arrived
// yet is waited for, up to Options.InfoTimeout, then answered with 503 and
// Retry-After. Playlist entries are absolute URLs of the path route, built
// from the request's Host (https when the request came over TLS).
//
// # Serving
//
// Stream responses come from http.ServeContent over an io.ReadSeeker on the
// file, so Range (single and multiple ranges), If-Range, conditional
// requests, HEAD and Accept-Ranges are the standard library's. The Handler
// sets Content-Type from the file's extension itself ([MediaType]: a table
// of media types, then mime.TypeByExtension, then
// application/octet-stream), so ServeContent never sniffs and never reads
// the file's head for a request elsewhere.
// The ETag is the info hash and file index: torrent content never changes.
// Seeks by ServeContent only move a cursor; the session's playhead is moved
// when a read actually needs another position, so the size probe
// ServeContent makes on every request does not disturb the priorities.
//
// Every stream response, GET or HEAD, carries the DLNA headers TVs look for
// (transferMode.dlna.org: Streaming and contentFeatures.dlna.org with
// DLNA.ORG_OP=01, byte seeks supported), whether or not the request asked
// with getcontentFeatures.dlna.org: many renderers never ask, and the
// headers mean nothing to other clients.
//
// Reads honour the request's context: when the player closes the connection
// (or the torrent is dropped, or the Handler closed) the read waiting for
// data returns at once. The Handler reads with [ReadPiece], never through a
// torrent.Reader: it waits on the torrent's piece state changes with the
// request's context, reads a piece from the torrent's storage once the
// client holds it complete, and sets the piece priorities itself (see
// Readahead). A HEAD request creates no session and reads nothing; a GET
// that ServeContent answers without a body (304, 412, 416) reads nothing.
//
// # Stopping a torrent.Reader over memory.Client
//
// In anacrolix/torrent v1.59.1 nothing ends a torrent.Reader's Read that
// waits for data over capped storage, which memory.Client is, except the
// data arriving: when its context is cancelled, or the torrent dropped or
// its downloads disallowed, reader.readAt retries forever (the goroutine
// spins, logs three errors a round and its stack grows), and Reader.Close
// from another goroutine does not wake it (and breaks the Reader's
// contract: it is not safe for concurrent use). TestReaderStop checks each
// of these. So code reading memory.Client's torrents should not block in a
// torrent.Reader: wait for and read the data with ReadPiece, whose context
// ends the wait, and want the pieces through Piece.SetPriority,
// File.SetPriority or Torrent.DownloadPieces. A Reader whose reads are
// known complete (ReadPiece returned them, or Piece.State says Complete)
// returns at once, unless the storage evicts them in between.
//
// # Verified bytes
//
// Options.Verify says which bytes may reach a player. [VerifyStrict], the
// default, serves only pieces that passed their hash check, so the first
// byte of a piece waits for the whole piece. [VerifyPlayhead] serves the
// piece at the playhead, while it is incomplete, chunk by chunk as its
// bytes arrive (memory.Torrent.ReadUnverified, woken by
// memory.Torrent.Written); all other pieces stay verified-only. A piece
// served so that later fails its hash is counted in Status.UnverifiedFailed,
// logged at Warn, forgotten by the storage and kept wanted until it is
// downloaded again and verified; the player already got its wrong bytes.
// For a v2 or hybrid torrent, in either mode, the playhead's incomplete
// piece is also served 16 KiB block by block as each block is proven by
// its BEP 52 hash (memory.Torrent.ReadVerified; the hashes come from peers
// through host.Options.LeafHashes): verified bytes, counted in
// Status.LeafVerifiedBytes. Measurements: docs/verify.md.
//
// Every response with a status of 400 or more carries exactly
// http.StatusText of its status as body; what went wrong inside is logged,
// never sent. A 416 always carries Content-Range: bytes */size.
//
// # Sessions
//
// A session belongs to a client, a torrent and a file. The client is the
// value of the request's ?session= query parameter when present, otherwise
// its remote IP and User-Agent. A session keeps one playhead, its piece
// priorities, one memory.Readahead and its share of the torrent's lookbehind
// across the player's successive Range requests, so that a player sending
// many short requests does not churn piece priorities. A player that closes
// the connection before the end of its range (a seek elsewhere, a stop) has
// moved on: its session gives up its readahead (piece priorities and the
// storage window) and keeps its lookbehind and pins, and the next request
// that takes the session declares the window again at its first read.
// It ends after Options.IdleTimeout without a
// request (an idle reaper goroutine checks about once a second), when the
// Handler needs its place, or at Close.
//
// A session has one playhead, so it serves one request at a time. A request that finds every session of its key busy does
// not wait: it gets a session of its own (players often fetch an MP4's moov
// atom at the end of the file while the first connection is still open, and
// waiting for that connection could deadlock the player). Among idle
// sessions of its key a request takes the one whose playhead is nearest to
// the start of its range, so a head reader and a tail reader each keep
// their place. At most Options.MaxSessions sessions exist: when they are all taken
// the least recently used idle session is ended to make room, and when every
// one is busy the request gets 503 with Retry-After.
//
// # Readahead, lookbehind, pins
//
// Each session's readahead is
//
//	max(2 pieces, min(Options.ReadaheadCap, capacity/2/sessions, 60 s at Options.Bitrate or 30 s at the learned rate))
//
// (the bitrate term when a bitrate is given, else the learned rate's once
// learned), recomputed at the start of each request and at each move. A
// session learns its player's rate from the reads that did not wait for
// data (the player set their pace), over windows of 5 s, and estimates the
// media the player holds buffered: what it read since the last seek
// against the time since, at that rate (Options.Bitrate, or 4 Mbit/s,
// until learned). The pieces of the first 4 s of media from the playhead
// on are urgent, the rest of the readahead follows. Their priorities
// (Piece.SetPriority, the highest over the torrent's sessions,
// PiecePriorityNone again once no session wants a piece) come from the
// sharing rule between sessions (sharePriorities): the session closest to a
// stall, or with under 10 s buffered, gets PiecePriorityNow for its urgent
// pieces and PiecePriorityReadahead for the rest, as the torrent client
// gives a torrent.Reader's window and as a lone session always gets; a
// session with more yields (PiecePriorityNext and PiecePriorityHigh, or,
// over 25 s, PiecePriorityHigh and PiecePriorityNormal), so that the
// client, which requests higher priorities first across the torrents that
// share the storage's capacity, serves the neediest first. A read that
// waits over a second raises its session's urgent pieces to
// PiecePriorityNow at once. The readahead is declared to the storage as
// the session's memory.Readahead. The Handler owns the Piece.SetPriority of
// those pieces: a piece priority the application sets on them (or
// DownloadPieces) is overwritten; file priorities are independent. To
// fetch a file's head before a player asks, use Handler.Preload, which
// wants those pieces through the same rule (PiecePriorityReadahead, in
// order) and gives them back to the sessions when it ends. How the
// client then requests the urgent pieces, and what happens when they are
// late, is host's (host.Client). Status shows what the rule sees of each
// session (SessionStatus: buffered seconds, playback rate, class) and,
// per torrent and over all, the demand of the playing sessions against
// the measured download rate: a shortfall while one of them has under
// 10 s buffered means the swarm does not carry them all. A new session
// is served all the same; the shortfall is reported, not enforced.
// Whenever the playhead enters another piece the window moves and the
// session's lookbehind, lookbehind.Pieces of Options.LookbehindBytes split
// among the sessions, is recomputed; the Handler gives the storage the union
// of the lookbehinds of every session on the torrent. The playhead is where
// the session's last read ended: how far the player has fetched, a little
// ahead of what it shows.
//
// While a file has sessions its first and last min(2 MiB, 1% of capacity)
// bytes are pinned in the storage (container indexes: MP4 moov, MKV cues),
// once per file however many sessions play it. A pin the storage refuses
// for lack of budget is logged and skipped.
//
// # Concurrency
//
// A Handler is safe for concurrent use. Its locks are Handler.mu (sessions,
// per-torrent state, rates) and, per torrent with sessions, torState.mu,
// which serialises the lookbehind and pins given to the storage and is held
// across those calls into storage/memory (never into the torrent client),
// and torState.prioMu, which serialises the piece priorities and is held
// across Piece.SetPriority (which takes the client lock; the client never
// calls into the Handler, so no cycle). No two of them are ever held
// together, and no log call runs under any. A session's playhead is used
// only by the request that holds the session, which Handler.mu hands over.
//
// # Closing
//
// Close ends every session, cancels the reads of requests in flight, sets a
// past write deadline on their connections so a response blocked on a slow
// client ends too, waits for those requests to return and joins the
// Handler's goroutine. Requests after Close get 503. Close the Handler
// before shutting the HTTP server down: http.Server.Shutdown waits for
// streaming responses, which only the Handler can end.
package stream
