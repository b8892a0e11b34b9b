package lookbehind_test

import (
	"fmt"
	"time"

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
	budget, err := lookbehind.Budget(30*time.Second, 1_000_000)
	if err != nil {
		fmt.Println(err)
		return
	}
	r, err := lookbehind.Window(file, 100*mib, budget)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("budget %d bytes: protect pieces [%d, %d)\n", budget, r.Begin, r.End)

	set, err := lookbehind.New(175)
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := set.ReplaceRange(r.Begin, r.End); err != nil {
		fmt.Println(err)
		return
	}
	// The storage reports what it holds, and what reads found.
	_ = set.MarkResident(26, 4*mib)
	_ = set.MarkResident(27, 4*mib)
	set.RecordHit()

	fmt.Println("piece 20 protected:", set.Contains(20), "piece 27 protected:", set.Contains(27))
	fmt.Printf("%+v\n", set.Stats())
	// Output:
	// budget 30000000 bytes: protect pieces [20, 27)
	// piece 20 protected: true piece 27 protected: false
	// {Protected:7 Resident:1 ResidentBytes:4194304 Hits:1 Misses:0}
}
