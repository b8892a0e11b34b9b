// Command bench measures what only whole clients and processes show, side
// by side in one run: memtorrent streaming through stream.Handler in a
// leecher process of its own, and a loopback download into memtorrent
// against the anacrolix file and mmap storages. Each contestant runs
// several times, alternating the order, and the report gives min / median /
// max over the runs with the ratio of each median to the reference
// contestant's.
//
// Storage alone (writes, hash reads, eviction, many torrents) and the
// lookbehind set have Go benchmarks instead, compared across commits with
// benchstat:
//
//	go test -run '^$' -bench . -count 10 ./storage/memory ./lookbehind
//
// Usage:
//
//	go run ./cmd/bench [flags]
//
// Scenarios (-scenarios, all by default):
//
//	streaming   a file played over HTTP through stream.Handler, as a media
//	            player does (Range requests: sequential read, seeks back,
//	            a second reader, a forward seek), from a leecher in a child
//	            process at each of -capacities, lookbehind on and off: peak
//	            RSS of the leecher and peak RSS over capacity, throughput,
//	            time to first byte, seek latencies, CPU
//	swarm       a download over loopback into memtorrent, file storage on
//	            tmpfs and mmap storage: MB/s and CPU s/GiB
//
// The table goes to standard output, a progress bar to standard error.
// -json prints the report as JSON instead; -plot FILE.svg (or .png) draws
// memory over time while streaming and the download throughputs. Bad flags
// exit with status 2, a failed measurement with status 1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
)

func main() {
	if params, ok := leecherParams(); ok {
		// This process is a streaming leecher the bench started.
		os.Exit(runLeecher(params, os.Stdin, os.Stdout, os.Stderr))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := runMain(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// runMain runs the command with args and returns its exit status: 0, 1 when
// a measurement failed, 2 for bad flags.
func runMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errBadFlag): // the flag package has said what was wrong
		return 2
	case err != nil:
		fmt.Fprintf(stderr, "bench: %v\nrun 'bench -h' for the flags\n", err)
		return 2
	}
	cfg.Out, cfg.Progress, cfg.Log = stdout, stderr, stderr
	cfg.Command = strings.Join(append([]string{"bench"}, args...), " ")
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	return 0
}

// errBadFlag is wrapped by parseFlags' errors that the flag package has
// already reported, with the usage, on stderr.
var errBadFlag = errors.New("bad flag")

// parseFlags returns the configuration that args ask for. Usage and flag
// errors go to stderr. It returns flag.ErrHelp for -h, and an error
// wrapping errBadFlag for what the flag package rejected and reported.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	cfg := defaultConfig()
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Var(listFlag{&cfg.Scenarios}, "scenarios", "`LIST` of scenarios to run, comma-separated, from "+strings.Join(allScenarios, ","))
	fs.IntVar(&cfg.Runs, "runs", cfg.Runs, "runs of every contestant (min / median / max are over these)")
	fs.Var(sizeFlag{&cfg.PieceLength}, "piece-length", "piece length of every torrent, a `SIZE` that is a multiple of 16 KiB (sizes: 256MiB, 1GiB, 1.5GB, ...)")
	fs.Var(sizeFlag{&cfg.SwarmSize}, "swarm-size", "`SIZE` of the torrent the swarm scenario downloads")
	fs.Var(sizeFlag{&cfg.StreamSize}, "stream-size", "`SIZE` of the file the streaming scenario plays")
	fs.Var(sizesFlag{&cfg.Capacities}, "capacities", "memtorrent's capacities while streaming, a comma-separated `LIST` of sizes")
	fs.Var(sizeFlag{&cfg.ReadaheadCap}, "readahead-cap", "stream.Options.ReadaheadCap, the `SIZE` bounding a session's readahead")
	fs.Var(sizeFlag{&cfg.SeekBack}, "seek-back", "`SIZE` of the streaming backward seeks")
	fs.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "bound on one download or stream run")
	fs.StringVar(&cfg.TmpDir, "tmpdir", cfg.TmpDir, "directory for the swarm seeder's files and the file and mmap storages (tmpfs)")
	fs.BoolVar(&cfg.JSON, "json", false, "print the report as JSON instead of a table")
	fs.StringVar(&cfg.Plot, "plot", "", "draw resident memory over time and the throughputs into `FILE` (.svg or .png)")
	fs.BoolVar(&cfg.Verbose, "v", false, "show the torrent clients' warnings and errors on standard error")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return config{}, err
		}
		return config{}, fmt.Errorf("%w: %w", errBadFlag, err)
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if cfg.Plot != "" {
		if ext := plotFormat(cfg.Plot); ext == "" {
			return config{}, fmt.Errorf("-plot %q: want a file ending in .svg or .png", cfg.Plot)
		}
	}
	if err := cfg.validate(); err != nil {
		return config{}, err
	}
	// Run the scenarios in their fixed order, whatever the order asked.
	cfg.Scenarios = slices.DeleteFunc(slices.Clone(allScenarios), func(s string) bool { return !slices.Contains(cfg.Scenarios, s) })
	return cfg, nil
}
