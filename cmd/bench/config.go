package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
)

// Scenario names, in the order run runs them.
const (
	scenarioStreaming = "streaming"
	scenarioSwarm     = "swarm"
)

var allScenarios = []string{scenarioStreaming, scenarioSwarm}

// config is what one bench run measures and where it writes. Sizes are in
// bytes.
type config struct {
	Scenarios   []string // a subset of allScenarios, in that order
	Runs        int
	PieceLength int64

	SwarmSize int64 // the torrent downloaded by the swarm scenario

	StreamSize   int64   // the streamed file
	Capacities   []int64 // memtorrent's capacities while streaming, one group each
	ReadaheadCap int64   // stream.Options.ReadaheadCap
	SeekBack     int64   // how far the backward seeks jump

	Timeout time.Duration // bound on one download or stream run
	TmpDir  string        // where the swarm's seeder and file and mmap storages keep their files

	JSON    bool
	Plot    string // file to draw into, .svg or .png; "" for none
	Verbose bool   // torrent client logs (Warn and up) to Log

	Out      io.Writer // the table or the JSON
	Progress io.Writer // the progress bar; io.Discard for none
	Log      io.Writer // client logs when Verbose, and the leecher processes' standard error
	Command  string    // the command line, for the report
}

// defaultConfig returns the configuration of `go run ./cmd/bench`.
func defaultConfig() config {
	return config{
		Scenarios:    slices.Clone(allScenarios),
		Runs:         5,
		PieceLength:  1 << 20,
		SwarmSize:    256 << 20,
		StreamSize:   1 << 30,
		Capacities:   []int64{64 << 20, 256 << 20},
		ReadaheadCap: 32 << 20,
		SeekBack:     8 << 20,
		Timeout:      2 * time.Minute,
		TmpDir:       "/dev/shm",
	}
}

// chunkSize is the size of a block request between peers.
const chunkSize = 16 << 10

// validate returns an error naming every bad setting.
func (c config) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(c.Scenarios) == 0 {
		bad("no scenario chosen")
	}
	for _, s := range c.Scenarios {
		if !slices.Contains(allScenarios, s) {
			bad("unknown scenario %q (want some of %s)", s, strings.Join(allScenarios, ","))
		}
	}
	if c.Runs < 1 {
		bad("-runs %d: want at least 1", c.Runs)
	}
	pl := c.PieceLength
	if pl < chunkSize || pl%chunkSize != 0 || pl > 64<<20 {
		bad("-piece-length %s: want a multiple of 16 KiB between 16 KiB and 64 MiB", ibytes(pl))
	}
	if c.has(scenarioSwarm) && c.SwarmSize < pl {
		bad("-swarm-size %s: want at least one piece (%s)", ibytes(c.SwarmSize), ibytes(pl))
	}
	if c.has(scenarioStreaming) {
		if c.StreamSize < 16*pl {
			bad("-stream-size %s: want at least 16 pieces (%s)", ibytes(c.StreamSize), ibytes(16*pl))
		}
		if len(c.Capacities) == 0 {
			bad("-capacities: want at least one")
		}
		for _, cp := range c.Capacities {
			if cp < 8*pl || cp > c.StreamSize/4 {
				bad("-capacities %s: want between 8 pieces (%s) and a quarter of -stream-size (%s), so that the "+
					"forward seek lands on data never held", ibytes(cp), ibytes(8*pl), ibytes(c.StreamSize/4))
			}
		}
		if c.ReadaheadCap < 0 {
			bad("-readahead-cap %s: want a size", ibytes(c.ReadaheadCap))
		}
		if c.SeekBack < 1 || c.SeekBack > c.StreamSize/4 {
			bad("-seek-back %s: want between 1 byte and a quarter of -stream-size (%s)",
				ibytes(c.SeekBack), ibytes(c.StreamSize/4))
		}
	}
	if c.Timeout <= 0 {
		bad("-timeout %v: want a positive duration", c.Timeout)
	}
	return errors.Join(errs...)
}

// has reports whether scenario s was chosen.
func (c config) has(s string) bool { return slices.Contains(c.Scenarios, s) }

// configJSON is the configuration as the report states it.
type configJSON struct {
	Scenarios    []string `json:"scenarios"`
	Runs         int      `json:"runs"`
	PieceLength  int64    `json:"piece_length"`
	SwarmSize    int64    `json:"swarm_size"`
	StreamSize   int64    `json:"stream_size"`
	Capacities   []int64  `json:"capacities"`
	ReadaheadCap int64    `json:"readahead_cap"`
	SeekBack     int64    `json:"seek_back"`
	TmpDir       string   `json:"tmpdir"`
}

func (c config) json() configJSON {
	return configJSON{
		Scenarios: c.Scenarios, Runs: c.Runs, PieceLength: c.PieceLength, SwarmSize: c.SwarmSize,
		StreamSize: c.StreamSize, Capacities: c.Capacities, ReadaheadCap: c.ReadaheadCap,
		SeekBack: c.SeekBack, TmpDir: c.TmpDir,
	}
}

// sizeFlag is a flag.Value for a byte size such as "256MiB" or "1GB".
type sizeFlag struct{ p *int64 }

func (f sizeFlag) String() string {
	if f.p == nil {
		return ""
	}
	return ibytes(*f.p)
}

func (f sizeFlag) Set(s string) error {
	n, err := parseSize(s)
	if err != nil {
		return err
	}
	*f.p = n
	return nil
}

// parseSize parses a byte size such as "256MiB" or "1GB".
func parseSize(s string) (int64, error) {
	n, err := humanize.ParseBytes(s)
	if err != nil {
		return 0, fmt.Errorf("not a size: %q (want e.g. 256MiB, 1GiB, 512KiB)", s)
	}
	if n > 1<<50 {
		return 0, fmt.Errorf("size %q too large", s)
	}
	return int64(n), nil
}

// sizesFlag is a flag.Value for a comma-separated list of sizes.
type sizesFlag struct{ p *[]int64 }

func (f sizesFlag) String() string {
	if f.p == nil {
		return ""
	}
	var s []string
	for _, n := range *f.p {
		s = append(s, strings.ReplaceAll(ibytes(n), " ", ""))
	}
	return strings.Join(s, ",")
}

func (f sizesFlag) Set(s string) error {
	var out []int64
	for _, field := range strings.Split(s, ",") {
		if field = strings.TrimSpace(field); field == "" {
			continue
		}
		n, err := parseSize(field)
		if err != nil {
			return err
		}
		out = append(out, n)
	}
	*f.p = out
	return nil
}

// listFlag is a flag.Value for a comma-separated list.
type listFlag struct{ p *[]string }

func (f listFlag) String() string {
	if f.p == nil {
		return ""
	}
	return strings.Join(*f.p, ",")
}

func (f listFlag) Set(s string) error {
	var out []string
	for _, name := range strings.Split(s, ",") {
		if name = strings.TrimSpace(name); name != "" {
			out = append(out, name)
		}
	}
	*f.p = out
	return nil
}

// ibytes formats n bytes with binary units ("64 MiB").
func ibytes(n int64) string {
	if n < 0 {
		return "-" + humanize.IBytes(uint64(-n))
	}
	return humanize.IBytes(uint64(n))
}
