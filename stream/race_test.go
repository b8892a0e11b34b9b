//go:build race

package stream

// raceSlowdown is how much slower the race detector makes the Handler's
// work per request (measured: about 5 times for 1,000 requests ending at
// once).
const raceSlowdown = 5
