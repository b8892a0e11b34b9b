// Package swarm is the loopback swarm that memtorrent's tests, benchmarks
// and demo share: deterministic data (Source, Data), torrents built from it
// or from files (Spec, FileMetaInfo), seeders serving files or generated
// data (Seed, SeedDir, SeedSource), and leechers joining them (AddTorrent).
//
// Every function returns an error instead of failing a test;
// internal/testutil wraps them for testing.TB. Every client made from
// Config runs on 127.0.0.1 with a kernel-chosen port and no DHT, trackers,
// PEX, uTP, IPv6, UPnP, webtorrent or webseeds, with memtorrent's
// recommended settings (host.Apply).
//
// The waits (Seed, AddTorrent, Wait) end with an error when their context
// ends or after their timeout. Sources, Specs and Seeders are safe for
// concurrent use; the package has no package-level mutable state.
package swarm
