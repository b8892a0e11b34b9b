package host

import "time"

// SetSilentPeerTimeout changes c's SilentPeerTimeout, so that a test can
// tell what another rule does from what that one does.
func SetSilentPeerTimeout(c *Client, d time.Duration) {
	c.reqs.mu.Lock()
	defer c.reqs.mu.Unlock()
	c.reqs.silent = d
}
