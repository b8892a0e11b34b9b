// Package server is memtorrent's media server, for a Go program to embed:
// a torrent client over capacity-bounded memory storage (host.New over
// storage/memory), the stream handler of package stream, a registry of the
// torrents, memtorrent's HTTP API, TorrServer's API (for Kodi and Lampa),
// access control, and status pages. Listening is the program's:
//
//	s, err := server.New(server.Config{Capacity: 512 << 20})
//	...
//	defer s.Close()
//	http.ListenAndServe("127.0.0.1:8080", s.Handler())
//
// # Routes
//
//	GET /                                  front page: the torrents, a form to add one
//	GET /ui/{infohash}[/state]             a torrent's status page, and its JSON
//	POST|GET /api/torrents[/{infohash}]    add (link or .torrent), list, describe ([Torrent])
//	DELETE /api/torrents/{infohash}        drop
//	GET /play?link=&index=                 add if needed, wait for the metadata, stream
//	GET /playlist/{infohash}.m3u           M3U of the PlayFiles, URLs with the token
//	GET /stream/{infohash}/...             package stream's file routes; /status, /metrics too
//	/stream?link=, /torrents, /cache, ...  TorrServer's API (docs/torrserver.md)
//
// A link is a magnet URI or an info hash; the server never fetches a URL
// or opens a path a client names. Torrents added over HTTP are dropped
// after Config.Idle without a request or a playback session; those of
// [Server.Add] and of the client directly ([Server.Host]) are kept.
//
// # Access
//
// With Config.Auth every request needs HTTP Basic credentials, except the
// URLs handed to players (stream, play, playlist), which may carry the
// server's token (?token=) instead; a wrong token is 403. Config.Allow
// limits the client addresses. Refusals carry only the status text.
// Wrong credentials or tokens from one address brake it ([LoginLimiter]:
// 429 for Config.AuthBan after Config.AuthFailures).
//
// Every route sits behind a [Guard] (docs/security.md): a Host that is
// neither an IP literal, localhost nor one of Config.Hostnames gets 403
// (DNS rebinding); a page of another origin may not POST or DELETE, nor
// add a torrent with a GET ([CheckAdd]), unless its origin is one of
// Config.CORSOrigins, which also get CORS answers; answers forbid framing.
// An uploaded .torrent passes [ValidateInfo] (400 or 413 naming the
// problem), and beyond Config.MaxTorrents adding gets 507.
//
// A Server is safe for concurrent use. Close ends the streams and closes
// the client and the storage; [Server.Shutdown] shuts an http.Server
// serving the Handler down together with the Server (the http.Server's
// Shutdown alone would wait for the streams).
package server
