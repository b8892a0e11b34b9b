package swarm_test

import (
	"bytes"
	"io"
	"path/filepath"
	"testing"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"

	"github.com/memtorrent/memtorrent/internal/swarm"
	"github.com/memtorrent/memtorrent/internal/testutil"
)

func TestMain(m *testing.M) { testutil.VerifyTestMain(m) }

// TestSeedSource downloads from a seeder of generated data into a leecher
// made from Config, and checks the bytes and that Close releases
// everything (goleak in TestMain).
func TestSeedSource(t *testing.T) {
	spec := swarm.Spec{Name: "a.bin", Length: 3<<20 + 5, PieceLength: 256 << 10, Seed: 9}
	s, err := swarm.SeedSource(t.Context(), swarm.Config(t.TempDir(), nil), spec)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	}()
	magnet, err := s.Magnet()
	if err != nil {
		t.Fatal(err)
	}
	m, err := metainfo.ParseMagnetUri(magnet)
	if err != nil {
		t.Fatalf("parsing the seeder's magnet %q: %v", magnet, err)
	}
	if got, want := m.Params.Get("x.pe"), s.Client.ListenAddrs()[0].String(); m.InfoHash != s.MetaInfo.HashInfoBytes() || got != want {
		t.Errorf("magnet %q: info hash %s, x.pe %q; want %s, %q", magnet, m.InfoHash, got, s.MetaInfo.HashInfoBytes(), want)
	}
	cl, err := torrent.NewClient(swarm.Config(t.TempDir(), nil))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	tor, err := swarm.AddTorrent(t.Context(), cl, s.MetaInfo, s)
	if err != nil {
		t.Fatal(err)
	}
	r := tor.NewReader()
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Equal(t, got, swarm.Data(spec.Seed, spec.Length))
}

// TestFileMetaInfo checks that a torrent built from a file written by
// WriteFiles is the Spec's own.
func TestFileMetaInfo(t *testing.T) {
	spec := swarm.Spec{Name: "b.bin", Length: 1<<20 + 3, PieceLength: 64 << 10, Seed: 4}
	dir := t.TempDir()
	if err := swarm.WriteFiles(dir, spec); err != nil {
		t.Fatal(err)
	}
	got, err := swarm.FileMetaInfo(filepath.Join(dir, spec.Name), spec.Name, spec.PieceLength)
	if err != nil {
		t.Fatal(err)
	}
	want, err := spec.MetaInfo()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.InfoBytes, want.InfoBytes) {
		t.Errorf("FileMetaInfo's info differs from the Spec's")
	}
	if _, err := swarm.FileMetaInfo(filepath.Join(dir, "missing"), "x", 1<<14); err == nil {
		t.Error("FileMetaInfo of a missing file: no error")
	}
	if _, err := swarm.FileMetaInfo(filepath.Join(dir, spec.Name), "x", 0); err == nil {
		t.Error("FileMetaInfo with piece length 0: no error")
	}
}
