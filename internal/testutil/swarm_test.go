package testutil

import (
	"testing"
	"time"

	"github.com/anacrolix/torrent/storage"
)

// transferTimeout bounds one whole download in these tests: generous for
// -race on a shared 2-core machine, and above the 60 s stall in the notes
// so that a stall shows as a slow run rather than a failure.
const transferTimeout = 2 * time.Minute

func fileStorage(t *testing.T) storage.ClientImplCloser {
	return storage.NewFileOpts(storage.NewFileClientOpts{ClientBaseDir: t.TempDir()})
}

// boltStorage is for torrents with empty files: the default (mmap) file
// storage of v1.59.1 fails to write them ("invalid argument") and then
// disables the download.
func boltStorage(t *testing.T) storage.ClientImplCloser {
	return storage.NewBoltDB(t.TempDir())
}

func TestSwarm(t *testing.T) {
	for _, tc := range []struct {
		name    string
		spec    Spec
		storage func(*testing.T) storage.ClientImplCloser
	}{
		{"single file", Spec{Name: "movie.mkv", PieceLength: 1 << 20, Length: 32 << 20, Seed: 1}, fileStorage},
		{"multi file", Spec{Name: "album", PieceLength: 256 << 10, Seed: 2, Files: []File{
			{Path: "a.bin", Length: 3<<20 + 12345},
			{Path: "sub/dir/b.bin", Length: 100},
			{Path: "sub/c.bin", Length: 5<<20 - 7},
		}}, fileStorage},
		{"empty files", Spec{Name: "with empty", PieceLength: 64 << 10, Seed: 3, Files: []File{
			{Path: "empty0", Length: 0},
			{Path: "a", Length: 100 << 10},
			{Path: "empty1", Length: 0},
			{Path: "b", Length: 1},
			{Path: "empty2", Length: 0},
		}}, boltStorage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seeder := NewSeeder(t, tc.spec)
			st := tc.storage(t)
			t.Cleanup(func() { st.Close() }) // registered first, so it runs after the client closes
			leecher := NewLeecher(t, st)

			start := time.Now()
			tor := AddTorrent(t, leecher, seeder.MetaInfo, seeder)
			r := tor.NewReader()
			defer r.Close()
			got := ReadAll(t, transferTimeout, r)
			d := time.Since(start)
			Equal(t, got, Content(tc.spec))
			t.Logf("%d bytes in %d-byte pieces: %v (%.0f MB/s)",
				len(got), tc.spec.PieceLength, d.Round(time.Millisecond), float64(len(got))/d.Seconds()/1e6)

			if tc.spec.Files != nil {
				for i, f := range tor.Files() {
					Equal(t, ReadFile(t, transferTimeout, f), FileContent(tc.spec, i))
				}
			}
		})
	}
}

func TestWaitFor(t *testing.T) {
	n := 0
	WaitFor(t, time.Second, "the third call", func() bool { n++; return n == 3 })
	if n != 3 {
		t.Errorf("cond called %d times; want 3", n)
	}
	ch := make(chan struct{})
	close(ch)
	WaitChan(t, time.Second, "a closed channel", ch)
}
