package host

import "time"

// SetSilentPeerTimeout changes c's SilentPeerTimeout, so that a test can
// tell what another rule does from what that one does.
func SetSilentPeerTimeout(c *Client, d time.Duration) {
	c.reqs.mu.Lock()
	defer c.reqs.mu.Unlock()
	c.reqs.silent = d
}

// StarvationTests returns how many times c's redialer has tested whether
// a torrent is starved (each walks the torrent's pieces).
func (c *Client) StarvationTests() int64 { return c.redial.tests.Load() }
