package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"
	"github.com/dustin/go-humanize"
	"github.com/memtorrent/memtorrent/storage/memory"
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
	case isInfoHash(s):
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

// isInfoHash reports whether s is 40 hex digits.
func isInfoHash(s string) bool {
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

// checkPieceFits returns an error wrapping errBadInput when one piece of
// info, in whole storage blocks, does not fit in capacity: the storage
// could hold nothing of the torrent.
func checkPieceFits(name string, info *metainfo.Info, capacity int64) error {
	const block = memory.DefaultBlockSize
	need := (info.PieceLength + block - 1) / block * block
	if need > capacity {
		return badInput("-capacity %s is smaller than one piece of %s (%s)",
			humanize.IBytes(uint64(capacity)), name, humanize.IBytes(uint64(info.PieceLength)))
	}
	return nil
}

// checkedStorage is the memory storage behind a check that each torrent's
// piece fits in the capacity: a torrent added by magnet URI or info hash
// whose info shows pieces too large would otherwise fetch its metadata
// again and again, the client retrying after every failed OpenTorrent.
// Its fields never change; it is safe for concurrent use.
type checkedStorage struct {
	*memory.Client
	capacity int64
	failed   chan error // the first failed check; buffered, one slot
	// reject, if not nil, is told of each failed check; it is called
	// under the torrent client's lock.
	reject func(metainfo.Hash, error)
}

var _ storage.ClientImplCloser = checkedStorage{}

func (s checkedStorage) OpenTorrent(ctx context.Context, info *metainfo.Info, ih metainfo.Hash) (storage.TorrentImpl, error) {
	if info != nil {
		if err := checkPieceFits(info.BestName(), info, s.capacity); err != nil {
			select {
			case s.failed <- err:
			default:
			}
			if s.reject != nil {
				s.reject(ih, err)
			}
			return storage.TorrentImpl{}, err
		}
	}
	return s.Client.OpenTorrent(ctx, info, ih)
}
