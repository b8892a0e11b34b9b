package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/dustin/go-humanize"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/memtorrent/memtorrent/server"
)

// This file reports on the terminal what the user waits for: a torrent's
// metadata, then the head of its main file. On a terminal it draws
// progress bars; otherwise it writes a line when a wait begins, every
// quietInterval while it lasts, and when it ends.

const (
	pollInterval  = 100 * time.Millisecond
	quietInterval = 10 * time.Second
)

// progress reports waits to w. It is used by one goroutine.
type progress struct {
	w    io.Writer // never changes
	term bool      // w is a terminal; never changes
}

func newProgress(cfg config) *progress {
	return &progress{w: cfg.Err, term: cfg.Terminal}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// start returns a progress bar of max (-1 for a spinner) described by
// desc when p draws bars; otherwise it writes line and returns nil.
func (p *progress) start(max int64, desc, line string, opts ...progressbar.Option) *progressbar.ProgressBar {
	if !p.term {
		fmt.Fprintln(p.w, line)
		return nil
	}
	opts = append(opts, progressbar.OptionSetWriter(p.w), progressbar.OptionSetDescription(desc), progressbar.OptionClearOnFinish())
	return progressbar.NewOptions64(max, opts...)
}

// exit removes bar, if not nil, from the terminal.
func (p *progress) exit(bar *progressbar.ProgressBar) {
	if bar != nil {
		bar.Exit()
	}
}

// waitInfo waits for t's metadata, an error on failed or the end of ctx.
func (p *progress) waitInfo(ctx context.Context, t *torrent.Torrent, failed <-chan error) error {
	select {
	case <-t.GotInfo():
		return nil
	default:
	}
	name := t.InfoHash().HexString()
	if n := t.Name(); n != "" && n != name {
		name = fmt.Sprintf("%s (%s)", n, name)
	}
	bar := p.start(-1, "fetching metadata of "+name, "fetching metadata of "+name, progressbar.OptionSpinnerType(14))
	defer p.exit(bar)
	start := time.Now()
	lastLine := start
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		select {
		case <-t.GotInfo():
			if bar != nil {
				bar.Finish()
			}
			fmt.Fprintf(p.w, "got metadata of %s in %v\n", t.Name(), time.Since(start).Round(time.Millisecond))
			return nil
		case err := <-failed:
			return err
		case <-ctx.Done():
			return ctx.Err()
		case now := <-tick.C:
			peers := t.Stats().ActivePeers
			if bar != nil {
				bar.Describe(fmt.Sprintf("fetching metadata of %s: %d peers", name, peers))
				bar.Add(1)
			} else if now.Sub(lastLine) >= quietInterval {
				lastLine = now
				fmt.Fprintf(p.w, "still fetching metadata of %s after %v: %d peers\n",
					name, now.Sub(start).Round(time.Second), peers)
			}
		}
	}
}

// buffer is s.Prebuffer of n bytes of t, shown as a progress bar or
// a line when it begins, every quietInterval while it lasts and when it ends.
func (p *progress) buffer(ctx context.Context, s *server.Server, t *torrent.Torrent, n int64) error {
	f := server.MainFile(t)
	if f == nil || n <= 0 {
		return nil
	}
	name := f.DisplayPath()
	var bar *progressbar.ProgressBar
	start := time.Now()
	var lastLine time.Time
	err := s.Prebuffer(ctx, t, n, pollInterval, func(done, total int64) {
		switch {
		case lastLine.IsZero():
			lastLine = time.Now()
			bar = p.start(total, "buffering "+name, fmt.Sprintf("buffering %s of %s", humanize.IBytes(uint64(total)), name),
				progressbar.OptionShowBytes(true), progressbar.OptionUseIECUnits(true))
		case bar == nil && time.Since(lastLine) >= quietInterval && done < total:
			lastLine = time.Now()
			fmt.Fprintf(p.w, "still buffering %s: %s of %s\n", name, humanize.IBytes(uint64(done)), humanize.IBytes(uint64(total)))
		}
		if bar != nil {
			bar.Set64(done)
		}
		if done >= total {
			if bar != nil {
				bar.Finish()
			}
			fmt.Fprintf(p.w, "buffered %s of %s in %v\n", humanize.IBytes(uint64(total)), name, time.Since(start).Round(time.Millisecond))
		}
	})
	p.exit(bar)
	return err
}
