package host

// StarvationTests returns how many times c's redialer has tested whether
// a torrent is starved (each walks the torrent's pieces).
func (c *Client) StarvationTests() int64 { return c.redial.tests.Load() }
