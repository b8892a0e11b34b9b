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

// Scenario names, in the order run runs them. Streaming goes first because
// its peak RSS is best measured before the other scenarios have grown the
// heap.
const (
	scenarioStreaming  = "streaming"
	scenarioStorage    = "storage"
	scenarioSwarm      = "swarm"
	scenarioLookbehind = "lookbehind"
)

var allScenarios = []string{scenarioStreaming, scenarioStorage, scenarioSwarm, scenarioLookbehind}

// config is what one bench run measures and where it writes. Sizes are in
// bytes.
type config struct {
	Scenarios   []string // a subset of allScenarios, in that order
	Runs        int
	PieceLength int64

	StorageSize int64 // bytes written per storage case
	MaxTorrents int   // the storage scaling case goes 1, 2, 4, ... up to this

	SwarmSize int64 // the torrent downloaded by the swarm scenario

	StreamSize int64 // the streamed file
	Capacity   int64 // memtorrent's capacity while streaming
	Readahead  int64 // the reader's readahead and the storage window
	SeekBack   int64 // how far the backward seek jumps

	LookbehindOps int // calls per lookbehind measurement

	Timeout time.Duration // bound on one download or stream run
	TmpDir  string        // where file and mmap storages keep their files

	JSON    bool
	Plot    string // file to draw into, .svg or .png; "" for none
	Verbose bool   // torrent client logs (Warn and up) to Log

	Out      io.Writer // the table or the JSON
	Progress io.Writer // the progress bar; io.Discard for none
	Log      io.Writer // client logs when Verbose
	Command  string    // the command line, for the report
}

// defaultConfig returns the configuration of `go run ./cmd/bench`: about
// 40 s of measuring on two busy cores (docs/bench.md).
func defaultConfig() config {
	return config{
		Scenarios:     slices.Clone(allScenarios),
		Runs:          5,
		PieceLength:   1 << 20,
		StorageSize:   256 << 20,
		MaxTorrents:   8,
		SwarmSize:     256 << 20,
		StreamSize:    1 << 30,
		Capacity:      64 << 20,
		Readahead:     16 << 20,
		SeekBack:      8 << 20,
		LookbehindOps: 1_000_000,
		Timeout:       2 * time.Minute,
		TmpDir:        "/dev/shm",
	}
}

// chunkSize is the size of a block request between peers, and so of every
// storage write the torrent client makes.
const chunkSize = 16 << 10

// validate returns an error naming the first bad setting.
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
	if c.has(scenarioStorage) {
		if c.MaxTorrents < 1 {
			bad("-max-torrents %d: want at least 1", c.MaxTorrents)
		} else if c.StorageSize < 4*pl || c.StorageSize < int64(c.MaxTorrents)*pl {
			bad("-storage-size %s: want at least 4 pieces and a piece per torrent (%s)",
				ibytes(c.StorageSize), ibytes(max(4, int64(c.MaxTorrents))*pl))
		}
	}
	if c.has(scenarioSwarm) && c.SwarmSize < pl {
		bad("-swarm-size %s: want at least one piece (%s)", ibytes(c.SwarmSize), ibytes(pl))
	}
	if c.has(scenarioStreaming) {
		switch {
		case c.StreamSize < 8*pl:
			bad("-stream-size %s: want at least 8 pieces (%s)", ibytes(c.StreamSize), ibytes(8*pl))
		case c.Readahead < pl:
			bad("-readahead %s: want at least one piece (%s)", ibytes(c.Readahead), ibytes(pl))
		case c.Capacity < c.Readahead+2*pl:
			bad("-capacity %s: want at least the readahead plus two pieces (%s)",
				ibytes(c.Capacity), ibytes(c.Readahead+2*pl))
		case c.Capacity > c.StreamSize/8:
			bad("-capacity %s: want at most an eighth of -stream-size (%s), so that the file's tail, "+
				"the quarter skipped by the forward seek and the middle do not all fit", ibytes(c.Capacity), ibytes(c.StreamSize/8))
		case c.SeekBack < 1 || c.SeekBack > c.StreamSize/4:
			bad("-seek-back %s: want between 1 byte and a quarter of -stream-size (%s)",
				ibytes(c.SeekBack), ibytes(c.StreamSize/4))
		}
	}
	if c.has(scenarioLookbehind) && c.LookbehindOps < 1 {
		bad("-lookbehind-ops %d: want at least 1", c.LookbehindOps)
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
	Scenarios     []string `json:"scenarios"`
	Runs          int      `json:"runs"`
	PieceLength   int64    `json:"piece_length"`
	StorageSize   int64    `json:"storage_size"`
	MaxTorrents   int      `json:"max_torrents"`
	SwarmSize     int64    `json:"swarm_size"`
	StreamSize    int64    `json:"stream_size"`
	Capacity      int64    `json:"capacity"`
	Readahead     int64    `json:"readahead"`
	SeekBack      int64    `json:"seek_back"`
	LookbehindOps int      `json:"lookbehind_ops"`
	TmpDir        string   `json:"tmpdir"`
}

func (c config) json() configJSON {
	return configJSON{
		Scenarios: c.Scenarios, Runs: c.Runs, PieceLength: c.PieceLength,
		StorageSize: c.StorageSize, MaxTorrents: c.MaxTorrents, SwarmSize: c.SwarmSize,
		StreamSize: c.StreamSize, Capacity: c.Capacity, Readahead: c.Readahead,
		SeekBack: c.SeekBack, LookbehindOps: c.LookbehindOps, TmpDir: c.TmpDir,
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
	n, err := humanize.ParseBytes(s)
	if err != nil {
		return fmt.Errorf("not a size: %q (want e.g. 256MiB, 1GiB, 512KiB)", s)
	}
	if n > 1<<50 {
		return fmt.Errorf("size %q too large", s)
	}
	*f.p = int64(n)
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
