package main

import (
	"log/slog"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/storage"

	"github.com/memtorrent/memtorrent/host"
	"github.com/memtorrent/memtorrent/internal/swarm"
)

// This file builds the torrent clients' configurations. Every client, the
// demo's seeder too, gets memtorrent's recommended settings (host.Apply):
// among them the fix for the 60 s read stalls of v1.59.1.

// serveClientConfig returns the configuration of serve's client: the
// library defaults (DHT unless cfg.DHT is false, trackers, PEX, uTP) on
// cfg.PeerPort, storing in st, uploading as cfg.Upload says, logging to
// logger at its level.
func serveClientConfig(cfg config, st storage.ClientImpl, logger *slog.Logger) *torrent.ClientConfig {
	c := torrent.NewDefaultClientConfig()
	if cfg.loopback {
		host.Loopback(c)
	}
	c.ListenPort = cfg.PeerPort
	c.Seed = cfg.Upload
	c.NoUpload = !cfg.Upload
	if !cfg.DHT {
		c.NoDHT = true
	}
	c.DefaultStorage = st
	host.UseLogger(c, logger)
	host.Apply(c)
	return c
}

// loopbackClientConfig returns the configuration of demo's clients:
// swarm.Config's loopback-only client (127.0.0.1 on a kernel-chosen port, no
// DHT, trackers, PEX, uTP, IPv6, UPnP, webtorrent or webseeds, plaintext,
// host.Apply), storing in st and logging to logger as serve's client does.
func loopbackClientConfig(st storage.ClientImpl, logger *slog.Logger) *torrent.ClientConfig {
	c := swarm.Config("", logger)
	host.UseLogger(c, logger)
	c.DefaultStorage = st
	return c
}
