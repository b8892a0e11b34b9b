package memory

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"
)

func TestNewRejectsBadOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"zero capacity", Options{}, "capacity 0"},
		{"negative capacity", Options{Capacity: -1}, "capacity -1"},
		{"block not power of two", Options{Capacity: 1 << 20, BlockSize: 5000}, "block size 5000"},
		{"block too small", Options{Capacity: 1 << 20, BlockSize: 1024}, "block size 1024"},
		{"capacity below a block", Options{Capacity: 1000}, "smaller than one block"},
		{"negative wait", Options{Capacity: 1 << 20, WaitTimeout: -1}, "wait timeout"},
		{"lookbehind share above 1", Options{Capacity: 1 << 20, LookbehindShare: 1.5}, "lookbehind share 1.5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(tc.opts)
			if err == nil {
				c.Close()
				t.Fatalf("New(%+v): got nil error; want one containing %q", tc.opts, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrInvalidOptions) {
				t.Errorf("New(%+v): got %q; want it to contain %q and wrap ErrInvalidOptions", tc.opts, err, tc.want)
			}
		})
	}
}

func TestOpenTorrentRejectsBadInput(t *testing.T) {
	c := newTestClient(t, Options{Capacity: 1 << 20})
	for _, tc := range []struct {
		name string
		info *metainfo.Info
		want string
	}{
		{"nil info", nil, "nil info"},
		{"zero piece length", testInfo(0, 1, 10), "piece length 0"},
		{"piece above capacity", testInfo(2<<20, 1, 2<<20), "exceeds capacity"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.OpenTorrent(context.Background(), tc.info, metainfo.Hash{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("OpenTorrent: got %v; want an error containing %q", err, tc.want)
			}
		})
	}
	if got := c.Stats().Torrents; got != 0 {
		t.Errorf("Torrents after failed opens: got %d; want 0", got)
	}
}

func TestReadWriteRoundTrip(t *testing.T) {
	c := newTestClient(t, Options{Capacity: 4 << 20})
	// 100000-byte pieces: blocks do not divide pieces, and the last piece is short.
	info := testInfo(100000, 3, 250000)
	tt0, err := c.OpenTorrent(context.Background(), info, ihOf(1))
	if err != nil {
		t.Fatal(err)
	}
	tt := storage.Torrent{TorrentImpl: tt0}
	for i := range 3 {
		writePiece(t, tt, info, 1, i)
	}
	// Reads across block boundaries, at odd offsets and sizes.
	for _, tc := range []struct {
		piece   int
		off     int64
		size    int
		wantN   int
		wantErr error
	}{
		{0, 0, 100000, 100000, nil},
		{0, 16383, 2, 2, nil},
		{1, 99990, 10, 10, nil},
		{2, 49990, 20, 10, io.EOF},
		{2, 50000, 1, 0, io.EOF},
	} {
		b := make([]byte, tc.size)
		n, err := tt.Piece(info.Piece(tc.piece)).PieceImpl.ReadAt(b, tc.off)
		if n != tc.wantN || !errors.Is(err, tc.wantErr) && err != tc.wantErr {
			t.Errorf("ReadAt(piece %d, off %d, %d bytes): got (%d, %v); want (%d, %v)", tc.piece, tc.off, tc.size, n, err, tc.wantN, tc.wantErr)
			continue
		}
		if err := checkPattern(b[:n], 1, int64(tc.piece)*100000+tc.off); err != nil {
			t.Errorf("ReadAt(piece %d, off %d): %v", tc.piece, tc.off, err)
		}
	}
	var buf bytes.Buffer
	n, err := tt.Piece(info.Piece(2)).WriteTo(&buf)
	if n != 50000 || err != nil {
		t.Fatalf("WriteTo(piece 2): got (%d, %v); want (50000, nil)", n, err)
	}
	if err := checkPattern(buf.Bytes(), 1, 200000); err != nil {
		t.Errorf("WriteTo(piece 2): %v", err)
	}
}

func TestOutOfRangeAndMissingData(t *testing.T) {
	c := newTestClient(t, Options{Capacity: 1 << 20})
	tt, info := openTest(t, c, 1, 64<<10, 4)
	p := tt.Piece(info.Piece(0)).PieceImpl // unwrapped: the client's wrapper panics on some of these
	if _, err := p.WriteAt(make([]byte, 10), 64<<10-5); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("WriteAt past the end: got %v; want ErrOutOfRange", err)
	}
	if _, err := p.WriteAt(make([]byte, 10), -1); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("WriteAt at -1: got %v; want ErrOutOfRange", err)
	}
	if _, err := p.ReadAt(make([]byte, 10), 64<<10+1); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("ReadAt past the end: got %v; want ErrOutOfRange", err)
	}
	// Nothing written: an error, never (0, nil).
	n, err := p.ReadAt(make([]byte, 10), 0)
	if n != 0 || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("ReadAt of unwritten data: got (%d, %v); want (0, ErrUnexpectedEOF)", n, err)
	}
	// A hole: bytes before it, then an error.
	b := make([]byte, 16<<10)
	fill(b, 1, 0)
	if _, err := p.WriteAt(b, 0); err != nil {
		t.Fatal(err)
	}
	n, err = p.ReadAt(make([]byte, 32<<10), 0)
	if n != 16<<10 || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("ReadAt over a hole: got (%d, %v); want (16384, ErrUnexpectedEOF)", n, err)
	}
	var buf bytes.Buffer
	if n, err := p.(io.WriterTo).WriteTo(&buf); n != 16<<10 || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("WriteTo of a partial piece: got (%d, %v); want (16384, ErrUnexpectedEOF)", n, err)
	}
	// A write that leaves a gap inside a block: its bytes are readable, the
	// gap is not.
	if _, err := p.WriteAt([]byte{1, 2, 3}, 16<<10+100); err != nil {
		t.Fatal(err)
	}
	b3 := make([]byte, 3)
	if n, err := p.ReadAt(b3, 16<<10+100); n != 3 || err != nil || !bytes.Equal(b3, []byte{1, 2, 3}) {
		t.Errorf("ReadAt of bytes after a gap: got (%d, %v, %v); want (3, nil, [1 2 3])", n, err, b3)
	}
	if n, err := p.ReadAt(make([]byte, 10), 16<<10+95); n != 0 || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("ReadAt starting in the gap: got (%d, %v); want (0, ErrUnexpectedEOF)", n, err)
	}
	if err := p.MarkComplete(); err == nil {
		t.Errorf("MarkComplete of a partial piece: got nil; want an error")
	}
	if cpl := p.Completion(); !cpl.Ok || cpl.Complete {
		t.Errorf("Completion of a partial piece: got %+v; want {Ok: true, Complete: false}", cpl)
	}
}

func TestCompletionLifecycle(t *testing.T) {
	c := newTestClient(t, Options{Capacity: 1 << 20})
	tt, info := openTest(t, c, 1, 64<<10, 4)
	p := tt.Piece(info.Piece(1))
	if got := p.Completion(); got != (storage.Completion{Ok: true}) {
		t.Errorf("Completion of an unknown piece: got %+v; want {Ok: true}", got)
	}
	writePiece(t, tt, info, 1, 1)
	if err := p.MarkComplete(); err != nil {
		t.Fatalf("MarkComplete: %v", err)
	}
	if got := p.Completion(); got != (storage.Completion{Ok: true, Complete: true}) {
		t.Errorf("Completion after MarkComplete: got %+v; want complete", got)
	}
	if err := p.MarkNotComplete(); err != nil {
		t.Fatal(err)
	}
	if got := p.Completion(); got.Complete {
		t.Errorf("Completion after MarkNotComplete: got %+v; want incomplete", got)
	}
	// MarkNotComplete is a flag here (no OnUnverifiedFailure set): the
	// bytes stay (TestHashFailureForgetsBytes covers a torrent that reads
	// incomplete pieces).
	if err := p.MarkComplete(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.WriteAt([]byte{1}, 0); err != nil {
		t.Fatal(err)
	}
	if got := p.Completion(); got.Complete {
		t.Errorf("Completion after a rewrite: got %+v; want incomplete", got)
	}
}

func TestPieceHandleDoesNotAllocate(t *testing.T) {
	c := newTestClient(t, Options{Capacity: 1 << 20})
	tt, info := openTest(t, c, 1, 64<<10, 4)
	mp := info.Piece(2)
	allocs := testing.AllocsPerRun(100, func() {
		_ = tt.TorrentImpl.PieceWithHash(mp, noHash).Completion()
	})
	if allocs != 0 {
		t.Errorf("PieceWithHash+Completion: got %v allocs; want 0", allocs)
	}
	capFn := *tt.Capacity
	if n, capped := capFn(); n != 1<<20 || !capped {
		t.Errorf("Capacity(): got (%d, %v); want (%d, true)", n, capped, 1<<20)
	}
}

// TestOutOfOrderSmallWrites writes a piece in 2-byte chunks in a shuffled
// order (the library's own suite uses 2-byte chunks): the piece becomes
// whole and readable only when every byte has arrived.
func TestOutOfOrderSmallWrites(t *testing.T) {
	c := newTestClient(t, Options{Capacity: 1 << 20})
	const pl = 5000
	info := testInfo(pl, 1, pl)
	ti, err := c.OpenTorrent(context.Background(), info, ihOf(1))
	if err != nil {
		t.Fatal(err)
	}
	st := storage.Torrent{TorrentImpl: ti}
	p := st.Piece(info.Piece(0))
	var offs []int64
	for off := int64(0); off < pl; off += 2 {
		offs = append(offs, off)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	rng.Shuffle(len(offs), func(i, j int) { offs[i], offs[j] = offs[j], offs[i] })
	want := make([]byte, pl)
	fill(want, 1, 0)
	for k, off := range offs {
		if _, err := p.WriteAt(want[off:off+2], off); err != nil {
			t.Fatal(err)
		}
		if k == len(offs)-2 {
			if err := p.MarkComplete(); err == nil {
				t.Errorf("MarkComplete one chunk short: got nil; want an error")
			}
		}
	}
	var got bytes.Buffer
	if _, err := p.WriteTo(&got); err != nil {
		t.Fatalf("WriteTo after every chunk: %v", err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Errorf("WriteTo: bytes differ from what was written")
	}
	if err := p.MarkComplete(); err != nil {
		t.Errorf("MarkComplete: %v", err)
	}
}
