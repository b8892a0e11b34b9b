package memory

import (
	"cmp"
	"os"
	"slices"
	"unsafe"

	"go.uber.org/atomic"
)

// chunkTarget is the size of one mapping of block memory. A mapping holds
// chunkTarget/blockSize blocks (at least one), so a 4 GiB capacity needs
// 4096 mappings, far below Linux's default vm.max_map_count of 65530, and a
// mapping costs one mmap per 64 blocks of 16 KiB. Chunks use small pages
// (see adviseNoHuge), so a block faults in no more than itself.
const chunkTarget = 1 << 20

// arena makes the blocks of a budget. Where the system has anonymous mmap
// (see arena_unix.go) blocks are carved from chunks mapped outside the Go
// heap, so the collector neither scans them nor counts them when it paces
// itself: a cache of N bytes costs N bytes of RSS, not the 2N that
// GOGC=100 allows a live heap of N. Elsewhere, and when a mapping fails,
// blocks come from make and are dropped for the collector.
//
// A block the budget does not keep is released: its pages are returned to
// the OS (madvise MADV_DONTNEED) and its slot is reused later; a chunk none
// of whose blocks is held is unmapped. After close, chunks are unmapped as
// soon as their last block is released, never before, so a block pinned by
// a read in flight stays mapped until the read ends.
//
// An arena is guarded by its budget's mu; only mapped may be read without it.
type arena struct {
	blockSize int64 // never changes
	chunkSize int64 // never changes; a multiple of blockSize
	// pageRelease says blocks are whole pages, so one block's pages can be
	// returned to the OS alone. Never changes.
	pageRelease bool
	// heapOnly makes every block come from the Go heap. Never changes after
	// init; set by benchmarks that compare the two kinds of block.
	heapOnly bool

	mapped atomic.Int64 // bytes of chunks mapped now, for Stats

	chunks []*chunk // mapped chunks, sorted by base address
	avail  []*chunk // chunks that may have a free slot; stale entries are skipped
	closed bool     // after close, released blocks unmap their chunk when it empties
}

// chunk is one mapping carved into blocks.
type chunk struct {
	mem    []byte
	base   uintptr // address of mem[0]
	held   int     // blocks handed out and not released
	carved int     // slots [0, carved) were handed out at least once
	free   []int32 // released slots below carved, pages already returned
	listed bool    // on arena.avail
}

func (a *arena) init(blockSize, capacity int64) {
	a.blockSize = blockSize
	// A small cache maps no more than it may hold; chunks never shrink
	// below a block.
	a.chunkSize = max(blockSize, min(chunkTarget, (capacity+blockSize-1)/blockSize*blockSize))
	a.pageRelease = blockSize%int64(os.Getpagesize()) == 0
}

// alloc returns a block: a released slot, a new slot of a chunk, or a slot
// of a new chunk; from the Go heap when no chunk can be mapped.
func (a *arena) alloc() []byte {
	for len(a.avail) > 0 {
		c := a.avail[len(a.avail)-1]
		if c.mem != nil {
			if slot, ok := c.take(a.chunkSize / a.blockSize); ok {
				c.held++
				return c.mem[int64(slot)*a.blockSize:][:a.blockSize:a.blockSize]
			}
		}
		c.listed = false
		a.avail[len(a.avail)-1] = nil
		a.avail = a.avail[:len(a.avail)-1]
	}
	if a.heapOnly {
		return make([]byte, a.blockSize)
	}
	mem, err := sysMap(int(a.chunkSize))
	if err != nil {
		return make([]byte, a.blockSize)
	}
	c := &chunk{mem: mem, base: uintptr(unsafe.Pointer(unsafe.SliceData(mem))), listed: true}
	i, _ := slices.BinarySearchFunc(a.chunks, c.base, func(c *chunk, base uintptr) int {
		return cmp.Compare(c.base, base)
	})
	a.chunks = slices.Insert(a.chunks, i, c)
	a.avail = append(a.avail, c)
	a.mapped.Add(a.chunkSize)
	c.carved, c.held = 1, 1
	return c.mem[:a.blockSize:a.blockSize]
}

// take returns a free slot of c, or false when c is full.
func (c *chunk) take(slots int64) (int32, bool) {
	if n := len(c.free); n > 0 {
		s := c.free[n-1]
		c.free = c.free[:n-1]
		return s, true
	}
	if int64(c.carved) < slots {
		c.carved++
		return int32(c.carved - 1), true
	}
	return 0, false
}

// release takes back a block nobody holds any longer. Its pages go back to
// the OS at once; the block must not be used after this call.
func (a *arena) release(buf []byte) {
	i, c := a.find(buf)
	if c == nil {
		return // from the heap: the collector takes it
	}
	c.held--
	if c.held == 0 {
		// Nothing in the chunk is held: unmap it whole.
		a.chunks = slices.Delete(a.chunks, i, i+1)
		a.unmap(c)
		return
	}
	if a.closed {
		return // unmapped with the chunk's last block
	}
	if a.pageRelease {
		sysRelease(buf)
	}
	slot := int32((uintptr(unsafe.Pointer(unsafe.SliceData(buf))) - c.base) / uintptr(a.blockSize))
	c.free = append(c.free, slot)
	if !c.listed {
		c.listed = true
		a.avail = append(a.avail, c)
	}
}

// close unmaps every chunk none of whose blocks is held; the others are
// unmapped when their last block is released.
func (a *arena) close() {
	a.closed = true
	a.avail = nil
	kept := a.chunks[:0]
	for _, c := range a.chunks {
		if c.held == 0 {
			a.unmap(c)
		} else {
			kept = append(kept, c)
		}
	}
	clear(a.chunks[len(kept):])
	a.chunks = kept
}

func (a *arena) unmap(c *chunk) {
	sysUnmap(c.mem)
	c.mem = nil // stale avail entries skip it
	c.free = nil
	a.mapped.Sub(a.chunkSize)
}

// find returns the chunk holding buf and its index in chunks, or nil when
// buf came from the Go heap.
func (a *arena) find(buf []byte) (int, *chunk) {
	p := uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	i, found := slices.BinarySearchFunc(a.chunks, p, func(c *chunk, p uintptr) int {
		return cmp.Compare(c.base, p)
	})
	if !found {
		i-- // the last chunk starting below p
	}
	if i < 0 || p-a.chunks[i].base >= uintptr(a.chunkSize) {
		return 0, nil
	}
	return i, a.chunks[i]
}
