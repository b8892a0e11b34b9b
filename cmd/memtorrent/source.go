package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"

	"github.com/memtorrent/memtorrent/server"
)

// errBadInput is wrapped by the errors of run that come from what the user
// gave (a source, a flag value, a port): main exits with status 2 on them.
var errBadInput = errors.New("bad input")

// badInputError is an error caused by the user's input.
type badInputError struct{ err error }

func (e badInputError) Error() string   { return e.err.Error() }
func (e badInputError) Unwrap() []error { return []error{e.err, errBadInput} }

// badInput returns a formatted error that wraps errBadInput.
func badInput(format string, args ...any) error {
	return badInputError{fmt.Errorf(format, args...)}
}

// parseSource returns the torrent spec of a .torrent file, a magnet URI or
// a hex info hash, and the torrent's info when s is a .torrent file. Every
// error wraps errBadInput.
func parseSource(s string) (*torrent.TorrentSpec, *metainfo.Info, error) {
	switch {
	case strings.HasPrefix(strings.ToLower(s), "magnet:"):
		spec, err := torrent.TorrentSpecFromMagnetUri(s)
		if err != nil {
			return nil, nil, badInput("invalid magnet URI %q: %v", s, err)
		}
		if spec.InfoHash.IsZero() {
			return nil, nil, badInput("invalid magnet URI %q: no BitTorrent v1 info hash (xt=urn:btih:...)", s)
		}
		return spec, nil, nil
	case server.IsInfoHash(s):
		spec := &torrent.TorrentSpec{}
		if err := spec.InfoHash.FromHexString(s); err != nil {
			return nil, nil, badInput("invalid info hash %q: %v", s, err)
		}
		if spec.InfoHash.IsZero() {
			return nil, nil, badInput("invalid info hash %q: all zeros", s)
		}
		return spec, nil, nil
	}
	mi, err := metainfo.LoadFromFile(s)
	if err != nil {
		return nil, nil, badInput("reading torrent file %s: %v", s, err)
	}
	info, err := mi.UnmarshalInfo()
	if err != nil {
		return nil, nil, badInput("reading torrent file %s: info: %v", s, err)
	}
	if !info.HasV1() {
		return nil, nil, badInput("reading torrent file %s: not a BitTorrent v1 torrent", s)
	}
	spec, err := torrent.TorrentSpecFromMetaInfoErr(mi)
	if err != nil {
		return nil, nil, badInput("reading torrent file %s: %v", s, err)
	}
	return spec, &info, nil
}
