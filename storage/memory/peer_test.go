package memory_test

import (
	"testing"

	"github.com/anacrolix/torrent/storage"
	test_storage "github.com/anacrolix/torrent/storage/test"
	"github.com/anacrolix/torrent/test"

	"github.com/memtorrent/memtorrent/storage/memory"
)

// TestLeecherStorage runs the torrent library's own seeder->leecher suite
// (file and mmap seeders, responsive or not, many readahead settings) with
// this storage as the leecher's.
func TestLeecherStorage(t *testing.T) {
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
