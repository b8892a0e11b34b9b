package host

import (
	"errors"
	"fmt"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"
	"go.uber.org/atomic"

	"github.com/memtorrent/memtorrent/storage/memory"
)

// Client is an anacrolix torrent client whose default storage is a
// memtorrent memory.Client, wired so that the torrent client learns of every
// evicted complete piece (it caches completion, and would otherwise go on
// serving and announcing the piece). Both fields are set by New and never
// change; use them directly. A Client is safe for concurrent use.
type Client struct {
	Torrent *torrent.Client
	Storage *memory.Client

	bound atomic.Pointer[torrent.Client] // Torrent, once it exists
}

// New makes the memory storage from opts, sets it as cfg.DefaultStorage and
// makes the torrent client from cfg. opts.OnEvict, if set, still runs, after
// the client has been told. Apply cfg first for memtorrent's recommended
// configuration. New returns the error of memory.New or torrent.NewClient,
// wrapped, and leaves nothing running when it fails.
func New(cfg *torrent.ClientConfig, opts memory.Options) (*Client, error) {
	return NewWrapped(cfg, opts, nil)
}

// NewWrapped is New with the storage the torrent client sees made by wrap
// from the memory storage (to check or count what the client opens, say).
// A nil wrap is New.
func NewWrapped(cfg *torrent.ClientConfig, opts memory.Options, wrap func(*memory.Client) storage.ClientImpl) (*Client, error) {
	c := &Client{}
	next := opts.OnEvict
	opts.OnEvict = func(ih metainfo.Hash, pieces []int) {
		c.evicted(ih, pieces)
		if next != nil {
			next(ih, pieces)
		}
	}
	mem, err := memory.New(opts)
	if err != nil {
		return nil, fmt.Errorf("host: making memory storage: %w", err)
	}
	cfg.DefaultStorage = mem
	if wrap != nil {
		cfg.DefaultStorage = wrap(mem)
	}
	cl, err := torrent.NewClient(cfg)
	if err != nil {
		mem.Close()
		return nil, fmt.Errorf("host: making torrent client: %w", err)
	}
	c.Torrent, c.Storage = cl, mem
	c.bound.Store(cl)
	return c, nil
}

// evicted tells the torrent client to read the completion of each piece
// again; memory calls it from its worker, outside its locks.
func (c *Client) evicted(ih metainfo.Hash, pieces []int) {
	cl := c.bound.Load()
	if cl == nil {
		return
	}
	t, ok := cl.Torrent(ih)
	if !ok {
		return
	}
	for _, i := range pieces {
		t.Piece(i).UpdateCompletion()
	}
}

// Close closes the torrent client, then the storage (the torrent client
// does not close its DefaultStorage). It returns the errors of both, joined.
// Safe to call more than once.
func (c *Client) Close() error {
	var errs []error
	errs = append(errs, c.Torrent.Close()...)
	errs = append(errs, c.Storage.Close())
	return errors.Join(errs...)
}
