package memory

import (
	"slices"
	"sync"

	"github.com/anacrolix/torrent/metainfo"
	"go.uber.org/atomic"
)

// notifier passes evicted complete pieces to Options.OnEvict from its own
// goroutine, in batches, outside every lock of this package: the torrent
// client calls us under its lock, so a hook that calls it back from there
// would deadlock.
type notifier struct {
	hook func(metainfo.Hash, []int) // never changes; may be nil
	wake chan struct{}              // never changes; capacity 1
	quit chan struct{}              // never changes; closed by stop
	wg   sync.WaitGroup

	sent atomic.Int64 // pieces passed to hook

	mu      sync.Mutex // guards pending
	pending []pendingPiece
}

type pendingPiece struct {
	ih    metainfo.Hash
	index int
}

func (n *notifier) start(hook func(metainfo.Hash, []int)) {
	n.hook = hook
	n.wake = make(chan struct{}, 1)
	n.quit = make(chan struct{})
	if hook == nil {
		return
	}
	n.wg.Add(1)
	go n.run()
}

// add queues piece index of ih for the hook. Never blocks.
func (n *notifier) add(ih metainfo.Hash, index int) {
	if n.hook == nil {
		return
	}
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
	var pieces []int
	for {
		select {
		case <-n.quit:
			return
		case <-n.wake:
		}
		n.mu.Lock()
		batch, n.pending = n.pending, batch[:0]
		n.mu.Unlock()
		pieces = n.flush(batch, pieces)
	}
}

// flush calls the hook once per torrent of batch, with that torrent's
// pieces in the order they were evicted, and returns the reused slice.
func (n *notifier) flush(batch []pendingPiece, pieces []int) []int {
	slices.SortStableFunc(batch, func(a, b pendingPiece) int {
		return slices.Compare(a.ih[:], b.ih[:])
	})
	for len(batch) > 0 {
		select {
		case <-n.quit:
			return pieces
		default:
		}
		ih := batch[0].ih
		pieces = pieces[:0]
		for len(batch) > 0 && batch[0].ih == ih {
			pieces = append(pieces, batch[0].index)
			batch = batch[1:]
		}
		n.hook(ih, pieces)
		n.sent.Add(int64(len(pieces)))
	}
	return pieces
}
