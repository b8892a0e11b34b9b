package lookbehind_test

import (
	"fmt"

	"github.com/memtorrent/memtorrent/lookbehind"
)

// A player is 100 MiB into the second file of a torrent with 4 MiB pieces,
// and wants the last 30 seconds of a 1 MB/s video kept in memory.
func Example() {
	const mib = 1 << 20
	file := lookbehind.File{
		PieceLength:   4 * mib,
		TorrentLength: 700 * mib,
		Offset:        10*mib + 512, // starts inside piece 2, after a small first file
		Length:        690*mib - 512,
	}
	const budget = 30 * 1_000_000 // 30 s at 1 MB/s
	r, err := lookbehind.Pieces(file, 100*mib, budget)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("protect pieces [%d, %d)\n", r.Begin, r.End)

	set, err := lookbehind.New(175)
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := set.ReplaceRange(r.Begin, r.End); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("piece 20 protected:", set.Contains(20), "piece 27 protected:", set.Contains(27), "count:", set.Count())
	// Output:
	// protect pieces [20, 27)
	// piece 20 protected: true piece 27 protected: false count: 7
}
