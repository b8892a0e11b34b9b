package host_test

import (
	"fmt"
	"testing"

	"github.com/memtorrent/memtorrent/internal/testutil"
	"github.com/memtorrent/memtorrent/storage/memory"
)

// TestV1591UpdateCompletionAfterDropPanics is the canary of the ordering of
// drops with eviction reports: in v1.59.1 a completion update of a torrent
// that was dropped while another torrent shares its request order (every
// torrent of a memory.Client does: they report one Capacity) panics inside
// the client. When this test fails, the library no longer panics there.
func TestV1591UpdateCompletionAfterDropPanics(t *testing.T) {
	hc := testutil.NewMemLeecher(t, memory.Options{Capacity: 8 << 20})
	var mis [2]*testutil.Seeder
	for i := range mis {
		mis[i] = testutil.NewSeeder(t, testutil.Spec{PieceLength: 64 << 10, Length: 1 << 20, Seed: int64(i + 1)})
	}
	a := testutil.AddTorrent(t, hc.Torrent, mis[0].MetaInfo)
	testutil.AddTorrent(t, hc.Torrent, mis[1].MetaInfo)
	a.Drop()
	got := func() (v any) {
		defer func() { v = recover() }()
		a.Piece(0).UpdateCompletion()
		return nil
	}()
	if got == nil {
		t.Fatal("UpdateCompletion of a dropped torrent did not panic: the library fixed it; host's drop ordering may go")
	}
	if s := fmt.Sprint(got); s != "Key should have been added already" {
		t.Logf("panic: %v", s)
	}
}
