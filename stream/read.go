package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/anacrolix/torrent"
)

// content is the io.ReadSeeker ServeContent reads for one request. Seek
// only moves its cursor; Read moves the session's playhead when needed.
type content struct {
	size int64           // never changes
	s    *session        // never changes; nil for HEAD, which never reads
	ctx  context.Context // never changes; the request's, also ended by Close

	mu   sync.Mutex // guards the fields below; ServeContent reads multiple ranges from a goroutine of its own
	pos  int64
	done bool
	err  error // a failure of the storage itself
}

var errFinished = errors.New("stream: request finished")

func (c *content) Seek(offset int64, whence int) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = c.pos + offset
	case io.SeekEnd:
		abs = c.size + offset
	default:
		return 0, fmt.Errorf("stream: seek: bad whence %d", whence)
	}
	if abs < 0 {
		return 0, fmt.Errorf("stream: seek to negative offset %d", abs)
	}
	c.pos = abs
	return abs, nil
}

func (c *content) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.done:
		return 0, errFinished
	case c.pos >= c.size:
		return 0, io.EOF
	case c.s == nil:
		return 0, errors.New("stream: read without a session")
	}
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	// Stop at the end of the file: the next file's bytes follow in the torrent.
	p = p[:min(int64(len(p)), c.size-c.pos)]
	n, err := c.s.readAt(c.ctx, p, c.pos)
	c.pos += int64(n)
	if err != nil && err != io.EOF && !errors.Is(err, ErrDropped) && c.ctx.Err() == nil && c.err == nil {
		c.err = err
	}
	return n, err
}

// finish ends reading, waiting for a read in flight (the request's context
// must be done, so that it returns), and returns the storage's failure if
// any.
func (c *content) finish() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.done = true
	return c.err
}

// ErrDropped is the error of ReadPiece, and of a stream read, when the
// torrent was dropped from its client before the data came.
var ErrDropped = errors.New("stream: torrent dropped")

// ReadPiece reads the bytes of t at off (an offset in the whole torrent)
// into p once the piece holding off is complete, waiting for it while ctx
// lasts. It reads at most up to the end of that piece, so n may be less
// than len(p) with a nil error; it returns (0, nil) only for an empty p.
//
// ReadPiece never blocks inside the torrent client: it waits on the
// torrent's piece state changes (Torrent.SubscribePieceStateChanges) and
// reads the piece from the torrent's storage (Piece.Storage) once the
// client holds it complete. So, unlike a torrent.Reader in
// anacrolix/torrent v1.59.1 over capped storage such as memory.Client
// (see the package doc), it returns ctx's error as soon as ctx ends, and
// ErrDropped as soon as t is dropped. A piece the storage lost between the
// client's completion and the read (an eviction) is waited for again: the
// storage must report the loss to the client, as memory.Client does once
// bound to it. It does not prioritise anything: the pieces must be wanted
// (by piece, file or reader priorities, as the Handler's sessions set them),
// or the wait lasts until ctx ends.
//
// It fails at once when t has no info yet or off is outside the torrent.
// It is safe for concurrent use.
func ReadPiece(ctx context.Context, t *torrent.Torrent, p []byte, off int64) (int, error) {
	return readPiece(ctx, t, p, off, true)
}

// pieceSpan returns the piece that holds the torrent offset off, off as an
// offset in that piece, and p cut to the piece's end. It fails when t has no
// info yet or off is outside the torrent.
func pieceSpan(t *torrent.Torrent, p []byte, off int64) (int, int64, []byte, error) {
	info := t.Info()
	if info == nil {
		return 0, 0, nil, fmt.Errorf("stream: reading torrent %s, whose info has not arrived", t.InfoHash().HexString())
	}
	if total := info.TotalLength(); off < 0 || off >= total {
		return 0, 0, nil, fmt.Errorf("stream: reading at offset %d, outside the torrent's %d bytes", off, total)
	}
	i := int(off / info.PieceLength)
	off -= int64(i) * info.PieceLength
	return i, off, p[:min(int64(len(p)), info.Piece(i).Length()-off)], nil
}

// readPiece is ReadPiece. A read of a complete piece that fails is waited
// for again when lost is true (the storage reports lost pieces to the
// client) and is an error otherwise.
func readPiece(ctx context.Context, t *torrent.Torrent, p []byte, off int64, lost bool) (int, error) {
	if t == nil {
		return 0, errors.New("stream: ReadPiece of a nil torrent")
	}
	i, off, p, err := pieceSpan(t, p, off)
	if err != nil || len(p) == 0 {
		return 0, err
	}
	piece := t.Piece(i)
	// The first look needs no subscription (the piece is usually there);
	// a subscription taken before a look sees every change after it.
	var changes <-chan torrent.PieceStateChange
	for {
		select {
		case <-t.Closed():
			return 0, ErrDropped
		default:
		}
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if piece.State().Complete {
			n, err := piece.Storage().ReadAt(p, off)
			if n > 0 {
				return n, nil
			}
			if !lost {
				return 0, fmt.Errorf("stream: reading piece %d of complete torrent data: %w", i, err)
			}
		}
		if changes == nil {
			sub := t.SubscribePieceStateChanges()
			defer sub.Close() // once: changes is set from now on
			changes = sub.Values
			continue
		}
		if err := waitChange(ctx, t, changes, i); err != nil {
			return 0, err
		}
	}
}

// waitChange waits for a change of piece i's state on changes, for ctx's
// end or for t's drop.
func waitChange(ctx context.Context, t *torrent.Torrent, changes <-chan torrent.PieceStateChange, i int) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.Closed():
			return ErrDropped
		case c, ok := <-changes:
			switch {
			case !ok: // the torrent closed its publisher
				return ErrDropped
			case c.Index == i:
				return nil
			}
		}
	}
}
