package host_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"

	"github.com/memtorrent/memtorrent/internal/blocking"
	"github.com/memtorrent/memtorrent/internal/testutil"
	"github.com/memtorrent/memtorrent/storage/memory"
)

// TestShrinkWaitingDoesNotStallClient: a SetCapacity shrink that has to wait
// for pinned pieces must not hold a lock that the torrent client waits on.
// v1.59.1 calls OpenTorrent under the client lock when a magnet's metadata
// arrives; if OpenTorrent queued behind the shrink, the whole client would
// stop until the shrink timed out (a minute here). The pins are released
// only after the magnet's info has arrived, so a regression fails the test
// at its timeout instead of passing slowly.
func TestShrinkWaitingDoesNotStallClient(t *testing.T) {
	const pl = 64 << 10
	hc := testutil.NewMemLeecher(t, memory.Options{Capacity: 4 * pl, WaitTimeout: time.Minute})

	// Four complete pieces of a torrent opened on the storage directly,
	// each pinned by a hash in flight.
	info := &metainfo.Info{Name: "pinned", PieceLength: pl, Length: 4 * pl, Pieces: make([]byte, 4*metainfo.HashSize)}
	ti, err := hc.Storage.OpenTorrent(context.Background(), info, metainfo.Hash{1})
	if err != nil {
		t.Fatalf("OpenTorrent: %v", err)
	}
	tt := storage.Torrent{TorrentImpl: ti}
	var writers []*blocking.Writer
	hashes := make(chan error, 4)
	for i := range 4 {
		p := tt.Piece(info.Piece(i))
		if _, err := p.WriteAt(make([]byte, pl), 0); err != nil {
			t.Fatalf("WriteAt(%d): %v", i, err)
		}
		if err := p.MarkComplete(); err != nil {
			t.Fatalf("MarkComplete(%d): %v", i, err)
		}
		w := blocking.New()
		writers = append(writers, w)
		go func() { _, err := p.WriteTo(w); hashes <- err }()
		testutil.WaitChan(t, 10*time.Second, "the hash to start", w.Started)
	}
	release := func() {
		for _, w := range writers {
			select {
			case <-w.Release:
			default:
				close(w.Release)
			}
		}
	}
	defer release()

	shrunk := make(chan error, 1)
	go func() { shrunk <- hc.Storage.SetCapacity(2 * pl) }()
	// The shrink is waiting once it has lowered the admission limit: the
	// reported capacity follows the published one only at the end, so wait
	// for a write to find no room instead.
	testutil.WaitFor(t, 10*time.Second, "the shrink to wait for space", func() bool {
		return hc.Storage.Stats().WriteWaits > 0
	})

	// A magnet's metadata arrives while the shrink waits.
	seeder := testutil.NewSeeder(t, testutil.Spec{PieceLength: pl, Length: 4 * pl, Seed: 7})
	tor, _ := hc.Torrent.AddTorrentInfoHash(seeder.MetaInfo.HashInfoBytes())
	tor.AddClientPeer(seeder.Client)
	testutil.WaitChan(t, 30*time.Second, "the magnet's info while a shrink waits", tor.GotInfo())
	hc.Torrent.Torrents() // the client lock is free

	release()
	if err := <-shrunk; err != nil {
		t.Errorf("SetCapacity after the pins ended: %v", err)
	}
	for range 4 {
		if err := <-hashes; err != nil && !errors.Is(err, memory.ErrClosed) {
			t.Errorf("WriteTo: %v", err)
		}
	}
	if s := hc.Storage.Stats(); s.Capacity != 2*pl || s.Resident > s.Capacity {
		t.Errorf("after the shrink: Capacity %d, Resident %d; want %d and Resident <= Capacity", s.Capacity, s.Resident, 2*pl)
	}
}
