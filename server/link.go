package server

import (
	"io"
	"net/url"
	"strings"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
)

// This file reads what a client names a torrent by: a link (magnet URI or
// info hash) or an uploaded .torrent.

// parseLink returns the spec of a link a client sent: a magnet URI with a
// v1 info hash, or an info hash (40 hex digits or 32 base32 characters).
// Anything else, http URLs and file paths included, is errBadLink: the
// server never fetches or opens what a client names.
func parseLink(link string) (*torrent.TorrentSpec, error) {
	link = strings.TrimSpace(link)
	switch {
	case strings.HasPrefix(strings.ToLower(link), "magnet:"):
		spec, err := torrent.TorrentSpecFromMagnetUri(link)
		if err != nil || spec.InfoHash.IsZero() {
			return nil, errBadLink
		}
		return spec, nil
	case IsInfoHash(link):
		spec := &torrent.TorrentSpec{}
		// The client panics on a zero info hash (FuzzLink found it).
		if err := spec.InfoHash.FromHexString(link); err != nil || spec.InfoHash.IsZero() {
			return nil, errBadLink
		}
		return spec, nil
	case len(link) == 32:
		spec, err := torrent.TorrentSpecFromMagnetUri("magnet:?xt=urn:btih:" + url.QueryEscape(link))
		if err != nil || spec.InfoHash.IsZero() {
			return nil, errBadLink
		}
		return spec, nil
	}
	return nil, errBadLink
}

// readTorrentFile returns the spec and info of a v1 .torrent read from r.
func readTorrentFile(r io.Reader) (*torrent.TorrentSpec, *metainfo.Info, error) {
	mi, err := metainfo.Load(io.LimitReader(r, maxTorrentFile))
	if err != nil {
		return nil, nil, errBadLink
	}
	info, err := mi.UnmarshalInfo()
	if err != nil {
		return nil, nil, errBadLink
	}
	if err := ValidateInfo(&info, DefaultInfoLimits); err != nil {
		return nil, nil, err
	}
	spec, err := torrent.TorrentSpecFromMetaInfoErr(mi)
	if err != nil {
		return nil, nil, errBadLink
	}
	return spec, &info, nil
}

// IsInfoHash reports whether s is a v1 info hash in hex: 40 hex digits.
func IsInfoHash(s string) bool {
	if len(s) != 40 {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
			return false
		}
	}
	return true
}
