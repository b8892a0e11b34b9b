package server

import (
	"context"
	"errors"

	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"
	"github.com/dustin/go-humanize"

	"github.com/memtorrent/memtorrent/storage/memory"
)

// ErrPieceTooLarge is wrapped by the errors of a torrent whose one piece,
// in whole storage blocks, does not fit in the capacity: the storage could
// hold nothing of it. The APIs answer it with 507.
var ErrPieceTooLarge = errors.New("pieces larger than the capacity")

// pieceTooLargeError is an error wrapping ErrPieceTooLarge whose text names
// the capacity, the torrent and its piece length.
type pieceTooLargeError struct{ msg string }

func (e pieceTooLargeError) Error() string { return e.msg }
func (e pieceTooLargeError) Unwrap() error { return ErrPieceTooLarge }

// CheckPieceFits returns an error wrapping ErrPieceTooLarge when one piece
// of info, the torrent called name, does not fit in capacity, in whole
// storage blocks.
func CheckPieceFits(name string, info *metainfo.Info, capacity int64) error {
	const block = memory.DefaultBlockSize
	need := (info.PieceLength + block - 1) / block * block
	if need > capacity {
		return pieceTooLargeError{"capacity " + humanize.IBytes(uint64(capacity)) + " is smaller than one piece of " +
			name + " (" + humanize.IBytes(uint64(info.PieceLength)) + ")"}
	}
	return nil
}

// checkedStorage is the memory storage behind a check that each torrent's
// piece fits in the capacity: a torrent added by magnet URI or info hash
// whose info shows pieces too large would otherwise fetch its metadata
// again and again, the client retrying after every failed OpenTorrent
// (a quirk of anacrolix/torrent v1.59.1). Its fields never change; it is
// safe for concurrent use.
type checkedStorage struct {
	*memory.Client
	capacity int64
	// reject is told of each failed check; it is called under the torrent
	// client's lock.
	reject func(metainfo.Hash, error)
}

var _ storage.ClientImplCloser = checkedStorage{}

func (s checkedStorage) OpenTorrent(ctx context.Context, info *metainfo.Info, ih metainfo.Hash) (storage.TorrentImpl, error) {
	if info != nil {
		if err := CheckPieceFits(info.BestName(), info, s.capacity); err != nil {
			s.reject(ih, err)
			return storage.TorrentImpl{}, err
		}
	}
	return s.Client.OpenTorrent(ctx, info, ih)
}
