package main

import (
	"log/slog"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/storage"

	"github.com/memtorrent/memtorrent/settings"
)

// This file builds the torrent clients' configurations. Every client, the
// demo's seeder too, gets memtorrent's recommended settings (settings.Apply):
// among them the fix for the 60 s read stalls of v1.59.1.

// serveClientConfig returns the configuration of serve's client: the
// library defaults (DHT, trackers, PEX, uTP) on cfg.PeerPort, storing in st,
// uploading as cfg.Upload says.
func serveClientConfig(cfg config, st storage.ClientImpl, logger *slog.Logger) *torrent.ClientConfig {
	c := torrent.NewDefaultClientConfig()
	if cfg.loopback {
		loopbackNetwork(c)
	}
	c.ListenPort = cfg.PeerPort
	c.Seed = cfg.Upload
	c.NoUpload = !cfg.Upload
	c.DefaultStorage = st
	c.Slogger = logger
	settings.Apply(c)
	return c
}

// loopbackClientConfig returns the configuration of demo's clients:
// 127.0.0.1 on a kernel-chosen port, no DHT, trackers, PEX, uTP, IPv6,
// UPnP, webtorrent or webseeds, plaintext, storing in st.
func loopbackClientConfig(st storage.ClientImpl, logger *slog.Logger) *torrent.ClientConfig {
	c := torrent.NewDefaultClientConfig()
	loopbackNetwork(c)
	c.DefaultStorage = st
	c.Slogger = logger
	settings.Apply(c)
	return c
}

// loopbackNetwork makes c use 127.0.0.1 only.
func loopbackNetwork(c *torrent.ClientConfig) {
	c.ListenHost = func(string) string { return "127.0.0.1" }
	c.ListenPort = 0
	c.NoDHT = true
	c.PeriodicallyAnnounceTorrentsToDht = false
	c.DisableTrackers = true
	c.DisablePEX = true
	c.DisableUTP = true
	c.DisableIPv6 = true
	c.NoDefaultPortForwarding = true
	c.DisableWebtorrent = true
	c.DisableWebseeds = true
	c.DisableAcceptRateLimiting = true
	c.HeaderObfuscationPolicy = torrent.HeaderObfuscationPolicy{}
}
