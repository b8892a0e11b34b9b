package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/memtorrent/memtorrent/host"
)

// scenario is one family of measurements: it starts what its groups share
// (a seeder, buffers), measures them, and closes.
type scenario interface {
	name() string
	about() string
	groups() []group
	start(ctx context.Context) error
	notes() []string // read after the groups ran
	close() error
}

// run measures every scenario cfg asks for and writes the report: the
// table, or JSON with cfg.JSON, and the plot to cfg.Plot.
func run(ctx context.Context, cfg config) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	out, progressW, logW := cfg.Out, cfg.Progress, cfg.Log
	if out == nil {
		out = io.Discard
	}
	if progressW == nil {
		progressW = io.Discard
	}
	if logW == nil {
		logW = io.Discard
	}
	logger := newLogger(cfg.Verbose, logW)
	began := time.Now()
	rep := &Report{
		Date:    began.UTC().Format(time.RFC3339),
		Command: cfg.Command,
		Machine: describeMachine(),
		Config:  cfg.json(),
		Clients: clientsAbout(),
	}

	var stream *streamBench
	var scens []scenario
	for _, name := range cfg.Scenarios {
		switch name {
		case scenarioStreaming:
			stream = newStreamBench(cfg, logger, logW)
			scens = append(scens, stream)
		case scenarioSwarm:
			scens = append(scens, &swarmBench{cfg: cfg, logger: logger})
		}
	}
	total := 0
	for _, s := range scens {
		for _, g := range s.groups() {
			total += g.steps(cfg.Runs)
		}
	}
	p := newProgress(progressW, total)
	for _, s := range scens {
		sc, err := measureScenario(ctx, s, cfg.Runs, p)
		if err != nil {
			p.finish()
			return fmt.Errorf("%s: %w", s.name(), err)
		}
		rep.Scenarios = append(rep.Scenarios, sc)
	}
	p.finish()
	if stream != nil {
		rep.Series = stream.takeSeries()
	}
	rep.Seconds = time.Since(began).Seconds()
	rep.Machine.LoadEnd = loadAverage()

	if cfg.JSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return fmt.Errorf("writing the JSON report: %w", err)
		}
	} else if err := writeTable(out, rep); err != nil {
		return fmt.Errorf("writing the table: %w", err)
	}
	if cfg.Plot != "" {
		if err := writePlot(cfg.Plot, rep); err != nil {
			return fmt.Errorf("drawing %s: %w", cfg.Plot, err)
		}
	}
	return nil
}

// clientsAbout describes the torrent clients for the report.
func clientsAbout() string {
	return fmt.Sprintf("every torrent client, seeder or leecher, of every contestant: anacrolix/torrent v1.59.1 "+
		"from swarm.Config: 127.0.0.1 only (TCP, plaintext, no DHT, trackers, PEX, uTP or UPnP) and host.Apply "+
		"(MaxAllocPeerRequestDataPerConn %d MiB, KeepAliveTimeout %v against the lost-wake-up stall of v1.59.1, docs/stalls.md)",
		host.MaxAllocPeerRequestDataPerConn>>20, host.KeepAliveTimeout)
}

// newLogger returns the logger of the torrent clients: Warn and up to w
// when verbose, nothing otherwise.
func newLogger(verbose bool, w io.Writer) *slog.Logger {
	if !verbose {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// measureScenario starts s, measures its groups and closes it.
func measureScenario(ctx context.Context, s scenario, runs int, p *progress) (_ Scenario, err error) {
	p.describe(s.name() + ": setting up")
	if err := s.start(ctx); err != nil {
		return Scenario{}, errors.Join(err, s.close())
	}
	defer func() { err = errors.Join(err, s.close()) }()
	sc := Scenario{Name: s.name(), About: s.about()}
	for _, g := range s.groups() {
		cases, err := g.measure(ctx, runs, p)
		if err != nil {
			return Scenario{}, err
		}
		sc.Cases = append(sc.Cases, cases...)
	}
	sc.Notes = s.notes()
	return sc, nil
}

// progress is the progress bar: one step per contestant run. It is not safe
// for concurrent use.
type progress struct {
	bar *progressbar.ProgressBar
}

func newProgress(w io.Writer, total int) *progress {
	return &progress{bar: progressbar.NewOptions(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetVisibility(w != io.Discard),
		progressbar.OptionSetWidth(30),
		progressbar.OptionShowCount(),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionSetPredictTime(false),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetRenderBlankState(true),
	)}
}

func (p *progress) describe(s string) { p.bar.Describe(s) }
func (p *progress) step()             { p.bar.Add(1) }
func (p *progress) finish()           { p.bar.Finish() }
