package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
)

// content is the io.ReadSeeker ServeContent reads for one request. Seek
// only moves its cursor; Read moves the session's reader when needed.
type content struct {
	size int64           // never changes
	s    *session        // never changes; nil for HEAD, which never reads
	ctx  context.Context // never changes; the request's, also ended by Close

	mu   sync.Mutex // guards the fields below; ServeContent reads multiple ranges from a goroutine of its own
	pos  int64
	done bool
	err  error // a failure of the torrent reader itself
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
	// A torrent.Reader of a file reads on into the next file: stop at the end.
	p = p[:min(int64(len(p)), c.size-c.pos)]
	n, err := c.s.readAt(p, c.pos)
	c.pos += int64(n)
	if err != nil && err != io.EOF && c.ctx.Err() == nil && c.err == nil {
		c.err = err
	}
	return n, err
}

// finish ends reading, waiting for a read in flight (the request's context
// must be done, so that it returns), and returns the reader's failure if
// any.
func (c *content) finish() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.done = true
	return c.err
}

// read is s.reader.Read, ended by the context given to begin.
//
// In anacrolix/torrent v1.59.1 a Reader over capped storage (which
// memory.Client is) never returns once its wait for data fails: reader.readAt
// retries forever when hasStorageCap, and a cancelled context, a closed
// torrent or disallowed downloads make every retry fail at once, so the
// goroutine spins, logging three errors a round, and its stack grows without
// bound. The reader calls its context's Err only there, right after its wait
// for data ends, with no lock held and no deferred call between it and Read.
// So the context given to the reader (readContext) panics in Err, and read
// recovers that panic: the read ends at once with the context's error,
// leaving the reader as it was (same position, window prioritised).
func (s *session) read(p []byte) (n int, err error) {
	defer func() {
		if v := recover(); v != nil {
			a, ok := v.(abortedRead)
			if !ok {
				panic(v)
			}
			n, err = 0, a.err
		}
	}()
	return s.reader.Read(p)
}

// readContext is the context of a session's torrent reader for one request:
// the request's, which Close and the torrent's closing also end. Its Err
// panics with abortedRead once it is done (see session.read).
type readContext struct {
	context.Context
}

func (c readContext) Err() error {
	if err := c.Context.Err(); err != nil {
		panic(abortedRead{err})
	}
	return nil
}

// abortedRead is the panic of readContext.Err.
type abortedRead struct{ err error }
