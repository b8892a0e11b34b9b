package reliability

import (
	"context"
	"net/http"
	"net/netip"
	"slices"
	"testing"

	g "github.com/anacrolix/generics"
	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"

	"github.com/memtorrent/memtorrent/internal/testutil"
	"github.com/memtorrent/memtorrent/stream"
)

// corruptStorage wraps a seeder's storage so that reads of the pieces bad
// selects return every byte inverted: the seeder uploads wrong data for
// them while its metainfo, and so the piece hashes, are right. Completion
// and writes pass through.
type corruptStorage struct {
	storage.ClientImplCloser
	bad func(piece int) bool // never changes
}

func (s corruptStorage) OpenTorrent(ctx context.Context, info *metainfo.Info, ih metainfo.Hash) (storage.TorrentImpl, error) {
	ti, err := s.ClientImplCloser.OpenTorrent(ctx, info, ih)
	if err != nil {
		return ti, err
	}
	inner := ti
	ti.PieceWithHash = func(p metainfo.Piece, h g.Option[[]byte]) storage.PieceImpl {
		var pi storage.PieceImpl
		if inner.PieceWithHash != nil {
			pi = inner.PieceWithHash(p, h)
		} else {
			pi = inner.Piece(p)
		}
		if s.bad(p.Index()) {
			return corruptPiece{pi}
		}
		return pi
	}
	ti.Piece = nil
	// A whole-torrent reader would bypass the pieces; the file storage of
	// v1.59.1 has none, and the seeder must not get one through us.
	ti.NewReader = nil
	return ti, nil
}

// corruptPiece inverts every byte it reads. Embedding the interface hides
// the inner piece's optional interfaces (io.WriterTo, Flusher), so the
// client reads through ReadAt.
type corruptPiece struct{ storage.PieceImpl }

func (p corruptPiece) ReadAt(b []byte, off int64) (int, error) {
	n, err := p.PieceImpl.ReadAt(b, off)
	for i := range b[:n] {
		b[i] ^= 0xff
	}
	return n, err
}

// bannedIPs returns the client's banned IPs, sorted and without
// duplicates, IPv4 ones in dotted form. In v1.59.1 one peer can appear
// twice in Client.BadPeerIPs: a failed piece with a single untrusted
// contributor bans the connection's 16-byte net.IP ("::ffff:127.0.0.2"),
// and smart banning (blocks that differ from a piece that later passed)
// bans its 4-byte netip.Addr ("127.0.0.2"); the map holds both.
func bannedIPs(cl *torrent.Client) []string {
	var ips []string
	for _, s := range cl.BadPeerIPs() {
		if a, err := netip.ParseAddr(s); err == nil {
			s = a.Unmap().String()
		}
		ips = append(ips, s)
	}
	slices.Sort(ips)
	return slices.Compact(ips)
}

// TestCorruptingPeer streams a file through the Handler while a peer
// serves wrong bytes for every odd piece. The leecher first has only the
// bad peer, so that it provably downloads a bad piece from it; once the
// library has banned it a good seeder is added and the stream must finish
// with the exact bytes, the bad peer gone and never let back in.
//
// The library bans by IP (Client.BadPeerIPs), and only untrusted peers:
// the bad seeder listens on 127.0.0.2 and both seeders are added with
// Trusted false (Torrent.AddClientPeer would make them trusted).
func TestCorruptingPeer(t *testing.T) {
	const badHost = "127.0.0.2"
	spec := testutil.Spec{Name: "movie.mkv", PieceLength: pieceLength, Length: 4*mib + 12345, Seed: 101}
	want := testutil.Content(spec)
	e := newEnv(t, 16*mib, stream.Options{})

	bad := newSeeder(t, spec, func(st storage.ClientImplCloser) storage.ClientImplCloser {
		return corruptStorage{st, func(i int) bool { return i%2 == 1 }}
	}, listenOn(badHost))
	tor := e.add(bad.mi, bad.addr())
	res := e.fetchAsync(e.url(tor, 0), "", http.StatusOK)

	testutil.WaitFor(t, transferTimeout, "the leecher to ban "+badHost, func() bool {
		return slices.Equal(bannedIPs(e.cl), []string{badHost})
	})
	testutil.WaitFor(t, testutil.SetupTimeout, "the banned peer's connection to close", func() bool {
		return peerConnsTo(tor, badHost) == 0
	})

	good := newSeeder(t, spec, nil)
	addPeers(tor, good.addr())
	// Asking again for the banned peer must not reconnect it.
	addPeers(tor, bad.addr())

	r := waitResult(t, res)
	if r.err != nil {
		t.Fatalf("streaming beside a corrupting peer: %v", r.err)
	}
	equal(t, "streamed file", r.body, want)

	if got := bannedIPs(e.cl); !slices.Equal(got, []string{badHost}) {
		t.Errorf("banned IPs %q; want [%s] (the good seeder must not be banned)", got, badHost)
	}
	if n := peerConnsTo(tor, badHost); n != 0 {
		t.Errorf("%d connections to the banned peer; want 0", n)
	}
	st := tor.Stats()
	dirtiedBad, dirtiedGood, readData := st.PiecesDirtiedBad, st.PiecesDirtiedGood, st.BytesReadData
	if n := dirtiedBad.Int64(); n == 0 {
		t.Errorf("PiecesDirtiedBad %d; want > 0", n)
	}
	if gs := good.tor.Stats(); gs.BytesWrittenData.Int64() == 0 {
		t.Errorf("the good seeder uploaded %d bytes; want > 0", gs.BytesWrittenData.Int64())
	}
	t.Logf("pieces dirtied good %d, bad %d; bytes from peers %d",
		dirtiedGood.Int64(), dirtiedBad.Int64(), readData.Int64())
}
