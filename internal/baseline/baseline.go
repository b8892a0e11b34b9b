// Package baseline is the storage memtorrent is measured against: a plain
// map of piece buffers behind one global mutex, allocating each piece with
// make on first write, with no capacity and no eviction. It is what a first
// in-memory storage for anacrolix/torrent usually looks like, and the design
// whose global lock the C++ in-memory disk I/O shared. Use it only in
// benchmarks and comparisons.
package baseline

import (
	"context"
	"fmt"
	"io"
	"sync"

	g "github.com/anacrolix/generics"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"
)

// Client is the baseline storage. It is safe for concurrent use: every
// call of every torrent takes one mutex.
type Client struct {
	mu     sync.Mutex // guards everything below, for every torrent
	pieces map[pieceKey]*piece
}

type pieceKey struct {
	ih    metainfo.Hash
	index int
}

type piece struct {
	c        *Client // never changes
	length   int64   // never changes
	data     []byte  // guarded by c.mu; nil until the first write
	complete bool    // guarded by c.mu
}

var _ storage.ClientImplCloser = (*Client)(nil)

// New returns an empty baseline storage.
func New() *Client {
	return &Client{pieces: make(map[pieceKey]*piece)}
}

// OpenTorrent implements storage.ClientImpl. It never fails.
func (c *Client) OpenTorrent(_ context.Context, info *metainfo.Info, ih metainfo.Hash) (storage.TorrentImpl, error) {
	return storage.TorrentImpl{
		PieceWithHash: func(p metainfo.Piece, _ g.Option[[]byte]) storage.PieceImpl {
			k := pieceKey{ih, p.Index()}
			c.mu.Lock()
			defer c.mu.Unlock()
			pc, ok := c.pieces[k]
			if !ok {
				pc = &piece{c: c, length: p.Length()}
				c.pieces[k] = pc
			}
			return pc
		},
		Close: func() error {
			c.mu.Lock()
			defer c.mu.Unlock()
			for k := range c.pieces {
				if k.ih == ih {
					delete(c.pieces, k)
				}
			}
			return nil
		},
	}, nil
}

// Close drops every piece. It returns nil.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.pieces)
	return nil
}

// WriteAt copies b into the piece, allocating the piece on first write.
func (p *piece) WriteAt(b []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(b)) > p.length {
		return 0, fmt.Errorf("baseline: write [%d, %d) outside piece of length %d", off, off+int64(len(b)), p.length)
	}
	p.c.mu.Lock()
	defer p.c.mu.Unlock()
	if p.data == nil {
		p.data = make([]byte, p.length)
	}
	return copy(p.data[off:], b), nil
}

// ReadAt copies from the piece; io.ErrUnexpectedEOF when never written.
func (p *piece) ReadAt(b []byte, off int64) (int, error) {
	p.c.mu.Lock()
	defer p.c.mu.Unlock()
	if p.data == nil {
		return 0, io.ErrUnexpectedEOF
	}
	if off >= p.length {
		return 0, io.EOF
	}
	n := copy(b, p.data[off:])
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}

// WriteTo writes the whole piece to w, holding the global lock meanwhile.
func (p *piece) WriteTo(w io.Writer) (int64, error) {
	p.c.mu.Lock()
	defer p.c.mu.Unlock()
	if p.data == nil {
		return 0, io.ErrUnexpectedEOF
	}
	n, err := w.Write(p.data)
	return int64(n), err
}

// MarkComplete marks the piece complete.
func (p *piece) MarkComplete() error {
	p.c.mu.Lock()
	defer p.c.mu.Unlock()
	p.complete = true
	return nil
}

// MarkNotComplete marks the piece incomplete.
func (p *piece) MarkNotComplete() error {
	p.c.mu.Lock()
	defer p.c.mu.Unlock()
	p.complete = false
	return nil
}

// Completion is always Ok.
func (p *piece) Completion() storage.Completion {
	p.c.mu.Lock()
	defer p.c.mu.Unlock()
	return storage.Completion{Ok: true, Complete: p.complete}
}
