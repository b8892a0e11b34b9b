package memory_test

import (
	"context"
	"fmt"
	"log"

	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"

	"github.com/memtorrent/memtorrent/lookbehind"
	"github.com/memtorrent/memtorrent/storage/memory"
)

// ExampleTorrent shows the per-torrent API a playback session uses: a
// reader window at the playhead, the lookbehind behind it, and the stats.
func ExampleTorrent() {
	mem, err := memory.New(memory.Options{Capacity: 8 << 20})
	if err != nil {
		log.Fatal(err)
	}
	defer mem.Close()

	// The torrent client opens torrents; here we do it by hand.
	const pieceLength = 1 << 20
	info := &metainfo.Info{Name: "film", PieceLength: pieceLength, Length: 16 << 20, Pieces: make([]byte, 16*metainfo.HashSize)}
	ih := metainfo.Hash{1}
	ti, err := mem.OpenTorrent(context.Background(), info, ih)
	if err != nil {
		log.Fatal(err)
	}
	st := storage.Torrent{TorrentImpl: ti}
	chunk := make([]byte, 16<<10)
	for i := range 6 { // pieces 0..5 downloaded and verified
		p := st.Piece(info.Piece(i))
		for off := int64(0); off < pieceLength; off += int64(len(chunk)) {
			p.WriteAt(chunk, off)
		}
		p.MarkComplete()
	}

	// The session: playhead at 5 MiB, 2 MiB readahead, 2 MiB lookbehind.
	t, _ := mem.Torrent(ih)
	w := t.NewReadahead()
	defer w.Close()
	playhead := int64(5 << 20)
	w.Set(playhead, 2<<20)
	behind, _ := lookbehind.Pieces(lookbehind.File{PieceLength: pieceLength, TorrentLength: info.Length, Length: info.Length}, playhead, 2<<20)
	t.SetLookbehindRange(behind.Begin, behind.End)

	fmt.Println("lookbehind pieces:", behind.Begin, "to", behind.End-1)
	held := t.AppendPieceStates(nil) // kept behind the playhead: lookbehind and complete
	const kept = memory.PieceLookbehind | memory.PieceComplete
	fmt.Println("piece 4 available for a backward seek:", held[4]&kept == kept)
	fmt.Println("piece 1 available for a backward seek:", held[1]&kept == kept)

	// Seek back to 3.5 MiB: the window moves onto protected, held pieces.
	w.Set(3<<20+1<<19, 2<<20)
	s := t.LookbehindStats()
	fmt.Printf("protected %d, resident %d, hits %d, misses %d\n", s.Protected, s.Resident, s.Hits, s.Misses)
	// Output:
	// lookbehind pieces: 3 to 4
	// piece 4 available for a backward seek: true
	// piece 1 available for a backward seek: false
	// protected 2, resident 2, hits 2, misses 0
}
