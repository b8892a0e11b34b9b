package memory

// This file computes the capacity reported to the torrent client, less
// what lookbehind and pins hold.

// lookbehindLimit is the most bytes lookbehind pieces may hold across the
// Client: Options.LookbehindShare of the capacity, less the bytes of every
// readahead, so that readahead always fits.
func (c *Client) lookbehindLimit() int64 {
	capacity := c.budget.capacity.Load()
	limit := int64(float64(capacity) * c.lookbehindShare)
	var readaheads int64
	for _, t := range *c.torrents.Load() {
		readaheads += t.readaheadBytes.Load()
	}
	return max(0, min(limit, capacity-readaheads))
}

// updateReported recomputes the capacity reported to the torrent client:
// the capacity less what lookbehind and pins hold, never below half the
// capacity (so requests never stop, and readaheads always fit).
func (c *Client) updateReported() {
	capacity := c.budget.capacity.Load()
	held := c.pinnedBytes.Load()
	var lb int64
	for _, t := range *c.torrents.Load() {
		lb += t.lbBytes.Load()
	}
	held += min(lb, c.lookbehindLimit())
	c.reported.Store(max(capacity-held, capacity/2))
}
