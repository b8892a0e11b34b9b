package main

import (
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	g "github.com/anacrolix/generics"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"

	"github.com/memtorrent/memtorrent/internal/baseline"
	"github.com/memtorrent/memtorrent/internal/testutil"
	"github.com/memtorrent/memtorrent/storage/memory"
)

// The storage scenario calls the storages directly, as the torrent client
// would but without one: 16 KiB WriteAt calls as peers' chunks arrive, and
// WriteTo into SHA-1 as the client's piece hashers do.

// hashers is the number of goroutines hashing pieces, the client's default
// PieceHashersPerTorrent.
const hashers = 2

// storageBench holds what the storage cases share. Its fields never change
// between start and close, except digest.
type storageBench struct {
	cfg    config
	logger *slog.Logger
	src    []byte // written over and over: byte x of a torrent is src[x%len(src)]
	dst    []byte // memmove's destination, faulted in once

	digestMu sync.Mutex // guards digest
	digest   *[sha1.Size]byte
}

func (b *storageBench) name() string    { return scenarioStorage }
func (b *storageBench) notes() []string { return nil }

// start makes the source blocks and memmove's destination, and faults the
// destination in so that the first measured run does not pay for it.
func (b *storageBench) start(context.Context) error {
	b.src = testutil.Data(6, 1<<20)
	b.dst = make([]byte, b.cfg.StorageSize)
	for i := 0; i < len(b.dst); i += 4096 {
		b.dst[i] = 1
	}
	return nil
}

func (b *storageBench) close() error {
	b.src, b.dst = nil, nil
	return nil
}

func (b *storageBench) about() string {
	return fmt.Sprintf("%s per case in %s pieces, written in 16 KiB WriteAt calls straight into the storage "+
		"(no torrent client) and hashed with WriteTo into SHA-1 by %d goroutines; rewrites write the same blocks again "+
		"(for the scaling cases, after an untimed first pass). memtorrent's capacity is above the data "+
		"except under eviction; the baseline (one global mutex) makes each piece on first write; memmove copies the same "+
		"blocks into a buffer faulted in once, the physical limit. Every run starts on a fresh storage after a GC that "+
		"returns free memory to the OS, so memtorrent and the baseline pay first-touch page faults as a new process would.",
		ibytes(b.cfg.StorageSize), ibytes(b.cfg.PieceLength), hashers)
}

// groups returns the storage cases.
func (b *storageBench) groups() []group {
	logger := b.logger
	size, pl := b.cfg.StorageSize, b.cfg.PieceLength
	memtorrent := func(capacity int64) func() (storage.ClientImplCloser, error) {
		return func() (storage.ClientImplCloser, error) {
			return memory.New(memory.Options{Capacity: capacity, Logger: logger})
		}
	}
	newBaseline := func() (storage.ClientImplCloser, error) { return baseline.New(), nil }
	roomy := size + pl // capacity above the data

	gs := []group{{
		metrics: []metric{
			{key: "write", name: "16 KiB block writes into fresh memory, 1 writer", unit: "MB/s", higher: true},
			{key: "rewrite", name: "16 KiB block rewrites (memory already faulted in), 1 writer", unit: "MB/s", higher: true},
			{key: "hash", name: fmt.Sprintf("piece hash reads (WriteTo into SHA-1), %d hashers", hashers), unit: "MB/s", higher: true},
		},
		contestants: []contestant{
			{"memtorrent", b.writeHash(memtorrent(roomy))},
			{"baseline", b.writeHash(newBaseline)},
			{"memmove", b.memmoveWriteHash},
		},
	}}

	evictCap := max(pl, size/4/pl*pl)
	gs = append(gs, group{
		metrics: []metric{{key: "evict", name: fmt.Sprintf("16 KiB block writes under eviction (capacity %s = 1/4 of the data)", ibytes(evictCap)), unit: "MB/s", higher: true}},
		contestants: []contestant{
			{"memtorrent", b.evictingWrites(memtorrent(evictCap))},
			{"memmove", b.memmoveRing(evictCap)},
		},
	})

	for k := 1; k <= b.cfg.MaxTorrents; k *= 2 {
		gs = append(gs, group{
			key:     strconv.Itoa(k),
			metrics: []metric{{key: "scale", name: fmt.Sprintf("16 KiB block rewrites, %d torrent(s) x 1 writer each", k), unit: "MB/s", higher: true}},
			contestants: []contestant{
				{"memtorrent", b.parallelWrites(k, memtorrent(roomy+int64(k)*pl))},
				{"baseline", b.parallelWrites(k, newBaseline)},
			},
		})
	}
	return gs
}

// writeHash returns a run that writes StorageSize bytes into a fresh
// storage from open, then hashes every piece.
func (b *storageBench) writeHash(open func() (storage.ClientImplCloser, error)) func(context.Context, int) ([]float64, error) {
	return func(ctx context.Context, _ int) (_ []float64, err error) {
		st, err := open()
		if err != nil {
			return nil, err
		}
		defer func() { err = errors.Join(err, st.Close()) }()
		info := benchInfo(b.cfg.StorageSize, b.cfg.PieceLength)
		ti, err := st.OpenTorrent(ctx, info, infoHash(0))
		if err != nil {
			return nil, err
		}
		defer func() { err = errors.Join(err, ti.Close()) }()

		start := time.Now()
		if err := writePieces(ti, info, b.src, false); err != nil {
			return nil, err
		}
		write := time.Since(start)
		start = time.Now()
		if err := writePieces(ti, info, b.src, false); err != nil {
			return nil, err
		}
		rewrite := time.Since(start)
		start = time.Now()
		sum, err := hashPieces(ti, info)
		if err != nil {
			return nil, err
		}
		hash := time.Since(start)
		if err := b.checkDigest(sum); err != nil {
			return nil, err
		}
		return []float64{mbps(info.Length, write.Seconds()), mbps(info.Length, rewrite.Seconds()), mbps(info.Length, hash.Seconds())}, nil
	}
}

// memmoveWriteHash copies the same blocks into dst, twice, and hashes its
// pieces: the physical limit of writeHash. dst was faulted in before, so
// both copies are rewrites.
func (b *storageBench) memmoveWriteHash(context.Context, int) ([]float64, error) {
	size, pl := b.cfg.StorageSize, b.cfg.PieceLength
	var copies [2]time.Duration
	for i := range copies {
		start := time.Now()
		for off := int64(0); off < size; off += chunkSize {
			copy(b.dst[off:min(off+chunkSize, size)], chunkAt(b.src, off))
		}
		copies[i] = time.Since(start)
	}

	start := time.Now()
	n := int((size + pl - 1) / pl)
	sums := make([][sha1.Size]byte, n)
	parallel(hashers, n, func(i int) error {
		sums[i] = sha1.Sum(b.dst[int64(i)*pl : min(int64(i+1)*pl, size)])
		return nil
	})
	hash := time.Since(start)
	if err := b.checkDigest(xorSums(sums)); err != nil {
		return nil, err
	}
	return []float64{mbps(size, copies[0].Seconds()), mbps(size, copies[1].Seconds()), mbps(size, hash.Seconds())}, nil
}

// evictingWrites returns a run that writes StorageSize bytes into a fresh
// storage from open whose capacity is below that, marking each piece
// complete once written, as the client does after a hash passes.
func (b *storageBench) evictingWrites(open func() (storage.ClientImplCloser, error)) func(context.Context, int) ([]float64, error) {
	return func(ctx context.Context, _ int) (_ []float64, err error) {
		st, err := open()
		if err != nil {
			return nil, err
		}
		defer func() { err = errors.Join(err, st.Close()) }()
		info := benchInfo(b.cfg.StorageSize, b.cfg.PieceLength)
		ti, err := st.OpenTorrent(ctx, info, infoHash(0))
		if err != nil {
			return nil, err
		}
		defer func() { err = errors.Join(err, ti.Close()) }()
		start := time.Now()
		if err := writePieces(ti, info, b.src, true); err != nil {
			return nil, err
		}
		d := time.Since(start)
		if mc, ok := st.(*memory.Client); ok {
			s := mc.Stats()
			if s.Evictions == 0 {
				return nil, fmt.Errorf("wrote %s into a capacity of %s without evicting", ibytes(info.Length), ibytes(s.Capacity))
			}
			if s.Resident > s.Capacity {
				return nil, fmt.Errorf("resident %d above capacity %d", s.Resident, s.Capacity)
			}
		}
		return []float64{mbps(info.Length, d.Seconds())}, nil
	}
}

// memmoveRing copies the same blocks into a ring of capacity bytes: the
// physical limit of evictingWrites.
func (b *storageBench) memmoveRing(capacity int64) func(context.Context, int) ([]float64, error) {
	return func(context.Context, int) ([]float64, error) {
		size := b.cfg.StorageSize
		ring := b.dst[:capacity]
		start := time.Now()
		for off := int64(0); off < size; off += chunkSize {
			at := off % capacity
			copy(ring[at:min(at+chunkSize, capacity)], chunkAt(b.src, off))
		}
		return []float64{mbps(size, time.Since(start).Seconds())}, nil
	}
}

// parallelWrites returns a run that opens k torrents sharing StorageSize
// bytes in a fresh storage from open, writes them once, and times writing
// them again, each torrent from its own goroutine. The first pass faults
// the memory in: page faults serialise in the kernel and would hide the
// storages' own locking.
func (b *storageBench) parallelWrites(k int, open func() (storage.ClientImplCloser, error)) func(context.Context, int) ([]float64, error) {
	return func(ctx context.Context, _ int) (_ []float64, err error) {
		st, err := open()
		if err != nil {
			return nil, err
		}
		defer func() { err = errors.Join(err, st.Close()) }()
		pl := b.cfg.PieceLength
		info := benchInfo(max(pl, b.cfg.StorageSize/int64(k)/pl*pl), pl)
		tis := make([]storage.TorrentImpl, k)
		for i := range tis {
			if tis[i], err = st.OpenTorrent(ctx, info, infoHash(i)); err != nil {
				return nil, err
			}
			defer func() { err = errors.Join(err, tis[i].Close()) }()
		}
		write := func(i int) error { return writePieces(tis[i], info, b.src, false) }
		if err := parallel(k, k, write); err != nil {
			return nil, err
		}
		start := time.Now()
		if err := parallel(k, k, write); err != nil {
			return nil, err
		}
		return []float64{mbps(int64(k)*info.Length, time.Since(start).Seconds())}, nil
	}
}

// checkDigest compares sum with the digest of the first run: every
// contestant must have stored the same bytes.
func (b *storageBench) checkDigest(sum [sha1.Size]byte) error {
	b.digestMu.Lock()
	defer b.digestMu.Unlock()
	if b.digest == nil {
		b.digest = &sum
		return nil
	}
	if *b.digest != sum {
		return fmt.Errorf("the pieces read back hash to %x; other runs got %x", sum, *b.digest)
	}
	return nil
}

// benchInfo returns the info of a single-file torrent of size bytes. Its
// piece hashes are zeros: nothing here checks them.
func benchInfo(size, pieceLength int64) *metainfo.Info {
	n := (size + pieceLength - 1) / pieceLength
	return &metainfo.Info{Name: "bench", PieceLength: pieceLength, Length: size, Pieces: make([]byte, n*sha1.Size)}
}

// infoHash returns a distinct info hash for torrent i.
func infoHash(i int) metainfo.Hash {
	var h metainfo.Hash
	h[0], h[1], h[2] = byte(i), byte(i>>8), 0xbe
	return h
}

// chunkAt returns the 16 KiB of src written at torrent offset off, a
// multiple of chunkSize.
func chunkAt(src []byte, off int64) []byte {
	at := off % int64(len(src))
	return src[at : at+chunkSize]
}

// pieceOf returns the storage's handle of piece i, as the client gets it.
func pieceOf(ti storage.TorrentImpl, info *metainfo.Info, i int) storage.PieceImpl {
	if ti.PieceWithHash != nil {
		return ti.PieceWithHash(info.Piece(i), g.None[[]byte]())
	}
	return ti.Piece(info.Piece(i))
}

// writePieces writes every piece in 16 KiB WriteAt calls, in order, and
// marks each complete after its last write if complete is set.
func writePieces(ti storage.TorrentImpl, info *metainfo.Info, src []byte, complete bool) error {
	for i := range info.NumPieces() {
		p := pieceOf(ti, info, i)
		mp := info.Piece(i)
		for off := int64(0); off < mp.Length(); off += chunkSize {
			c := chunkAt(src, mp.Offset()+off)[:min(chunkSize, mp.Length()-off)]
			if _, err := p.WriteAt(c, off); err != nil {
				return fmt.Errorf("writing piece %d at %d: %w", i, off, err)
			}
		}
		if complete {
			if err := p.MarkComplete(); err != nil {
				return fmt.Errorf("marking piece %d complete: %w", i, err)
			}
		}
	}
	return nil
}

// hashPieces hashes every piece through its io.WriterTo with hashers
// goroutines and returns the XOR of the sums.
func hashPieces(ti storage.TorrentImpl, info *metainfo.Info) ([sha1.Size]byte, error) {
	sums := make([][sha1.Size]byte, info.NumPieces())
	err := parallel(hashers, len(sums), func(i int) error {
		p := pieceOf(ti, info, i)
		w, ok := p.(io.WriterTo)
		if !ok {
			return fmt.Errorf("piece %d: %T has no WriteTo", i, p)
		}
		h := sha1.New()
		n, err := w.WriteTo(h)
		if err != nil {
			return fmt.Errorf("hashing piece %d: %w", i, err)
		}
		if n != info.Piece(i).Length() {
			return fmt.Errorf("hashing piece %d: WriteTo wrote %d bytes; want %d", i, n, info.Piece(i).Length())
		}
		h.Sum(sums[i][:0])
		return nil
	})
	return xorSums(sums), err
}

func xorSums(sums [][sha1.Size]byte) (x [sha1.Size]byte) {
	for _, s := range sums {
		for j := range x {
			x[j] ^= s[j]
		}
	}
	return x
}

// parallel calls f(0), ..., f(n-1) from workers goroutines and returns the
// errors joined. It returns when every call has.
func parallel(workers, n int, f func(i int) error) error {
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		mu   sync.Mutex // guards errs
		errs []error
	)
	for range min(workers, n) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				if err := f(i); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
