package host

import "github.com/anacrolix/torrent"

// Loopback confines a client to 127.0.0.1, for demos, tests and
// benchmarks: it listens on a kernel-chosen port, uses no DHT, trackers,
// PEX, uTP, IPv6, port mapping, webtorrent or webseeds, does not
// rate-limit accepted connections, and skips header obfuscation (plaintext
// connections). It changes nothing else; combine it with Apply.
func Loopback(cfg *torrent.ClientConfig) {
	cfg.ListenHost = func(string) string { return "127.0.0.1" }
	cfg.ListenPort = 0
	cfg.NoDHT = true
	cfg.PeriodicallyAnnounceTorrentsToDht = false
	cfg.DisableTrackers = true
	cfg.DisablePEX = true
	cfg.DisableUTP = true
	cfg.DisableIPv6 = true
	cfg.NoDefaultPortForwarding = true
	cfg.DisableWebtorrent = true
	cfg.DisableWebseeds = true
	cfg.DisableAcceptRateLimiting = true
	cfg.HeaderObfuscationPolicy = torrent.HeaderObfuscationPolicy{}
}
