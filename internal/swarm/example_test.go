package swarm_test

import (
	"fmt"

	"github.com/memtorrent/memtorrent/internal/swarm"
)

// A Spec fixes a torrent's content and so its info hash; its Source gives
// the bytes to compare downloads against.
func ExampleSpec() {
	spec := swarm.Spec{Name: "album", PieceLength: 16 << 10, Seed: 42, Files: []swarm.File{
		{Path: "a.flac", Length: 40 << 10},
		{Path: "cover/front.jpg", Length: 1000},
	}}
	mi, err := spec.MetaInfo()
	if err != nil {
		fmt.Println(err)
		return
	}
	info, _ := mi.UnmarshalInfo()
	fmt.Println(spec.TotalLength(), info.NumPieces(), spec.Source().Size())
	fmt.Println(mi.HashInfoBytes())
	fmt.Printf("%x\n", swarm.Data(42, 8))
	// Output:
	// 41960 3 41960
	// 97ba4888c89a1adc4eae79ad630792d5f4b13065
	// a5005ce4f787ea97
}
