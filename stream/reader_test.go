package stream

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/anacrolix/torrent"

	"github.com/memtorrent/memtorrent/internal/testutil"
	"github.com/memtorrent/memtorrent/storage/memory"
)

// readerStopEnv names, in the child process of TestReaderStop, the way to
// try to end a waiting torrent.Reader read.
const readerStopEnv = "MEMTORRENT_READER_STOP"

// readerStopWindow is how long the child gives a read to return after a
// way that should not end it was tried.
const readerStopWindow = time.Second

// TestReaderStop records what ends a Read of a plain torrent.Reader over
// memory.Client (capped storage) that waits for data, in anacrolix/torrent
// v1.59.1: only the data arriving. Cancelling the reader's context or
// dropping the torrent makes reader.readAt retry forever (the goroutine
// spins), and Reader.Close from another goroutine does not wake it. Each
// way runs in a child process, which exits with the read still stuck. When
// a future version changes one of these, this test fails: update the
// package doc, and ReadPiece may no longer be needed.
func TestReaderStop(t *testing.T) {
	if way := os.Getenv(readerStopEnv); way != "" {
		readerStopChild(t, way)
		return
	}
	for _, c := range []struct {
		way     string
		returns bool
	}{
		{"data", true},
		{"cancel", false},
		{"drop", false},
		{"close", false},
	} {
		t.Run(c.way, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), transferTimeout)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestReaderStop$", "-test.v")
			cmd.Env = append(os.Environ(), readerStopEnv+"="+c.way)
			out, err := cmd.CombinedOutput()
			var result string
			for sc := bufio.NewScanner(bytes.NewReader(out)); sc.Scan(); {
				if r, ok := strings.CutPrefix(sc.Text(), "READ "); ok {
					result = r
				}
			}
			if result == "" {
				t.Fatalf("child (%v) reported nothing; output:\n%s", err, out)
			}
			t.Logf("%s: read %s", c.way, result)
			if returned := strings.HasPrefix(result, "returned"); returned != c.returns {
				t.Errorf("%s: read %s; want returned=%v (anacrolix/torrent changed: see the test's doc)", c.way, result, c.returns)
			}
		})
	}
}

// readerStopChild starts a Read that waits for data, tries way, reports on
// stdout whether the read returned within readerStopWindow and how much CPU
// the process used meanwhile, and exits.
func readerStopChild(t *testing.T, way string) {
	mem, err := memory.New(memory.Options{Capacity: 4 * mib})
	if err != nil {
		t.Fatal(err)
	}
	quiet := func(cfg *torrent.ClientConfig) { cfg.Slogger = slog.New(slog.DiscardHandler) }
	cl := testutil.NewLeecher(t, mem, quiet)
	spec := testutil.Spec{Name: "stuck.mkv", Length: 4 * mib, PieceLength: pieceLength, Seed: 23}
	var seeder *testutil.Seeder
	if way == "data" {
		seeder = testutil.NewSeeder(t, spec, quiet)
	}
	mi, err := spec.MetaInfo()
	if err != nil {
		t.Fatal(err)
	}
	tor := testutil.AddTorrent(t, cl, mi)
	r := tor.Files()[0].NewReader()
	ctx, cancel := context.WithCancel(context.Background())
	r.SetContext(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := r.Read(make([]byte, 100))
		done <- err
	}()
	testutil.WaitFor(t, transferTimeout, "the read to want its piece", func() bool {
		return tor.Piece(0).State().Priority == torrent.PiecePriorityNow
	})
	cpu0 := testutil.CPUTime(t)
	switch way {
	case "data":
		tor.AddClientPeer(seeder.Client)
	case "cancel":
		cancel()
	case "drop":
		tor.Drop()
	case "close":
		r.Close()
	default:
		t.Fatalf("unknown way %q", way)
	}
	// The data ends the read as soon as it arrives, which on a loaded
	// machine may take more than readerStopWindow; the other ways get the
	// window to show that the read stays stuck.
	window := readerStopWindow
	if way == "data" {
		window = transferTimeout
	}
	timer := time.NewTimer(window)
	select {
	case err := <-done:
		fmt.Printf("READ returned (%v)\n", err)
	case <-timer.C:
		fmt.Printf("READ stuck %v later, the process used %v of CPU meanwhile\n", window, testutil.CPUTime(t)-cpu0)
	}
	os.Stdout.Sync()
	syscall.Exit(0) // the stuck read cannot be ended: leave without clean-ups
}
