package memory

import "math/bits"

// lruHeap is an indexed 4-ary min-heap of pieces of one torrent by last
// use. Each piece in it knows its position (piece.hpos), so that a piece can
// be removed or moved when its last use changes in O(log n). Four children
// make the heap half as deep as a binary one and keep siblings in one or
// two cache lines.
type lruHeap []heapEntry

type heapEntry struct {
	key int64 // the piece's lastUse as of its last push or fix
	idx int32 // the piece's index in Torrent.pieces
}

// top returns the piece used least recently and its last use.
func (h lruHeap) top() (idx int32, key int64, ok bool) {
	if len(h) == 0 {
		return 0, 0, false
	}
	return h[0].idx, h[0].key, true
}

// push adds p with key.
func (h *lruHeap) push(ps []piece, p *piece, key int64) {
	*h = append(*h, heapEntry{key: key, idx: int32(p.index)})
	h.up(ps, int32(len(*h)-1))
}

// remove takes the entry at pos out and returns the entries it looked at.
func (h *lruHeap) remove(ps []piece, pos int32) int64 {
	last := int32(len(*h) - 1)
	if pos != last {
		(*h)[pos] = (*h)[last]
		ps[(*h)[pos].idx].hpos = pos
	}
	*h = (*h)[:last]
	if pos == last {
		return 1
	}
	return 1 + h.up(ps, pos) + h.down(ps, pos)
}

// fix sets the key of the entry at pos and restores the heap order.
func (h *lruHeap) fix(ps []piece, pos int32, key int64) {
	(*h)[pos].key = key
	h.up(ps, pos)
	h.down(ps, pos)
}

// up moves the entry at pos towards the root while it is smaller than its
// parent, and returns the entries it looked at.
func (h lruHeap) up(ps []piece, pos int32) int64 {
	x := h[pos]
	var n int64
	for pos > 0 {
		parent := (pos - 1) / 4
		n++
		if h[parent].key <= x.key {
			break
		}
		h[pos] = h[parent]
		ps[h[pos].idx].hpos = pos
		pos = parent
	}
	h[pos] = x
	ps[x.idx].hpos = pos
	return n
}

// down moves the entry at pos away from the root while a child is smaller,
// and returns the entries it looked at.
func (h lruHeap) down(ps []piece, pos int32) int64 {
	x := h[pos]
	size := int32(len(h))
	var n int64
	for {
		first := 4*pos + 1
		if first >= size {
			break
		}
		least := first
		for c := first + 1; c < min(first+4, size); c++ {
			if h[c].key < h[least].key {
				least = c
			}
		}
		n += int64(min(first+4, size) - first)
		if h[least].key >= x.key {
			break
		}
		h[pos] = h[least]
		ps[h[pos].idx].hpos = pos
		pos = least
	}
	h[pos] = x
	ps[x.idx].hpos = pos
	return n
}

// indexSet is a set of piece indices with the lowest member at or above an
// index, and the highest at or below one, in O(log64 n): a bitset with a
// summary bitset above it (a bit per non-zero word), and so on up to one
// word.
type indexSet struct {
	levels [][]uint64 // levels[0] holds a bit per piece
	len    int
}

func (s *indexSet) init(n int) {
	s.levels = s.levels[:0]
	for {
		words := (max(n, 1) + 63) / 64
		s.levels = append(s.levels, make([]uint64, words))
		if words == 1 {
			return
		}
		n = words
	}
}

func (s *indexSet) add(i int) {
	s.len++
	for _, words := range s.levels {
		w := i / 64
		was := words[w]
		words[w] |= 1 << (i % 64)
		if was != 0 {
			return
		}
		i = w
	}
}

func (s *indexSet) remove(i int) {
	s.len--
	for _, words := range s.levels {
		w := i / 64
		words[w] &^= 1 << (i % 64)
		if words[w] != 0 {
			return
		}
		i = w
	}
}

// next returns the lowest member >= i, adding the words it read to
// *examined.
func (s *indexSet) next(i int, examined *int64) (int, bool) {
	lvl := 0
	for {
		words := s.levels[lvl]
		w := i / 64
		if w >= len(words) {
			return 0, false
		}
		*examined++
		if m := words[w] & (^uint64(0) << (i % 64)); m != 0 {
			i = w*64 + bits.TrailingZeros64(m)
			for lvl > 0 {
				lvl--
				*examined++
				i = i*64 + bits.TrailingZeros64(s.levels[lvl][i])
			}
			return i, true
		}
		if lvl == len(s.levels)-1 {
			return 0, false
		}
		lvl++
		i = w + 1
	}
}

// prev returns the highest member <= i, adding the words it read to
// *examined.
func (s *indexSet) prev(i int, examined *int64) (int, bool) {
	lvl := 0
	for {
		if i < 0 {
			return 0, false
		}
		words := s.levels[lvl]
		w := i / 64
		*examined++
		if m := words[w] & (^uint64(0) >> (63 - i%64)); m != 0 {
			i = w*64 + 63 - bits.LeadingZeros64(m)
			for lvl > 0 {
				lvl--
				*examined++
				i = i*64 + 63 - bits.LeadingZeros64(s.levels[lvl][i])
			}
			return i, true
		}
		if lvl == len(s.levels)-1 {
			return 0, false
		}
		lvl++
		i = w - 1
	}
}
