package memory_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/anacrolix/torrent/storage"
	test_storage "github.com/anacrolix/torrent/storage/test"
	"github.com/anacrolix/torrent/test"

	"github.com/memtorrent/memtorrent/storage/memory"
)

// TestLeecherStorage runs the torrent library's own seeder->leecher suite
// (file and mmap seeders, responsive or not, many readahead settings) with
// this storage as the leecher's.
//
// The suite configures its seeders with MaxAllocPeerRequestDataPerConn = 4,
// which in v1.59.1 deadlocks a seeder's upload now and then (the request
// server blocks on a reservation that only a request it will never read
// could release; shared/notes pitfall 1), whatever the leecher's storage:
// the suite then hangs forever (seen once in about 20 runs here). So the
// suite runs in a child process with a deadline; a child that hangs with a
// seeder blocked in alloclim.(*Reservation).Wait is taken for that library
// deadlock and run again, at most three times; any other failure or hang
// fails the test.
func TestLeecherStorage(t *testing.T) {
	if os.Getenv(librarySuiteEnv) == "1" {
		runLibrarySuite(t)
		return
	}
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestLeecherStorage$", "-test.v", "-test.timeout=5m")
		cmd.Env = append(os.Environ(), librarySuiteEnv+"=1")
		cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGQUIT) } // dumps goroutines
		cmd.WaitDelay = 30 * time.Second
		out, err := cmd.CombinedOutput()
		hung := ctx.Err() != nil
		cancel()
		switch {
		case err == nil:
			t.Logf("library suite passed (attempt %d): %d subtests", attempt, bytes.Count(out, []byte("--- PASS")))
			return
		case hung && bytes.Contains(out, []byte("alloclim.(*Reservation).Wait")) && attempt < 3:
			t.Logf("attempt %d: the library's seeder hit its own upload deadlock; running the suite again", attempt)
		default:
			t.Fatalf("library suite failed (attempt %d, hung %v): %v\n%s", attempt, hung, err, lastLines(out, 200))
		}
	}
}

const librarySuiteEnv = "MEMTORRENT_LIBRARY_SUITE"

func runLibrarySuite(t *testing.T) {
	test.TestLeecherStorage(t, test.LeecherStorageTestCase{
		Name: "Memory",
		Factory: func(string) storage.ClientImplCloser {
			c, err := memory.New(memory.Options{Capacity: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			return c
		},
	})
}

// lastLines returns the last n lines of b.
func lastLines(b []byte, n int) []byte {
	lines := bytes.Split(b, []byte("\n"))
	return bytes.Join(lines[max(0, len(lines)-n):], []byte("\n"))
}

// BenchmarkPieceMarkComplete runs the library's storage benchmark:
// concurrent 16 KiB writes per 2 MiB piece, MarkComplete, WriteTo.
func BenchmarkPieceMarkComplete(b *testing.B) {
	for _, bc := range []struct {
		name     string
		capacity int64 // of the storage
		pass     int64 // what the benchmark is told; 0 = no eviction expected
	}{
		{"fits", 64 << 20, 0},
		{"evicting", 8 << 20, 8 << 20},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c, err := memory.New(memory.Options{Capacity: bc.capacity})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			b.ReportAllocs()
			test_storage.BenchmarkPieceMarkComplete(b, c, test_storage.DefaultPieceSize, test_storage.DefaultNumPieces, bc.pass)
		})
	}
}
