package memory

import (
	"sync"

	"github.com/anacrolix/torrent/metainfo"
	"go.uber.org/atomic"
)

// notifier reports evicted complete pieces to the torrent client from its
// own goroutine, in batches, outside every lock of this package: the client
// calls us under its lock, so calling it back from there would deadlock.
type notifier struct {
	c    *Client       // never changes
	wake chan struct{} // never changes; capacity 1
	quit chan struct{} // never changes; closed by stop
	wg   sync.WaitGroup

	sent atomic.Int64 // pieces reported

	mu      sync.Mutex // guards pending
	pending []pendingPiece
}

type pendingPiece struct {
	ih    metainfo.Hash
	index int
}

func (n *notifier) start(c *Client) {
	n.c = c
	n.wake = make(chan struct{}, 1)
	n.quit = make(chan struct{})
	n.wg.Add(1)
	go n.run()
}

// add queues piece index of ih for a completion update. Never blocks.
func (n *notifier) add(ih metainfo.Hash, index int) {
	n.mu.Lock()
	n.pending = append(n.pending, pendingPiece{ih, index})
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

func (n *notifier) stop() {
	close(n.quit)
	n.wg.Wait()
}

func (n *notifier) run() {
	defer n.wg.Done()
	var batch []pendingPiece
	for {
		select {
		case <-n.quit:
			return
		case <-n.wake:
		}
		n.mu.Lock()
		batch, n.pending = n.pending, batch[:0]
		n.mu.Unlock()
		n.flush(batch)
	}
}

// flush tells the bound torrent client to re-read the completion of each
// piece of batch. Without a bound client the batch is dropped: the client
// then finds out when a read of the piece fails.
func (n *notifier) flush(batch []pendingPiece) {
	cl := n.c.bound.Load()
	if cl == nil {
		return
	}
	for len(batch) > 0 {
		ih := batch[0].ih
		t, ok := cl.Torrent(ih)
		rest := batch[:0]
		for _, pp := range batch {
			switch {
			case pp.ih != ih:
				rest = append(rest, pp)
			case ok:
				select {
				case <-n.quit:
					return
				default:
				}
				t.Piece(pp.index).UpdateCompletion()
				n.sent.Inc()
			}
		}
		batch = rest
	}
}
