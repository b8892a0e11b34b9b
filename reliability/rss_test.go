//go:build linux

package reliability

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anacrolix/torrent"

	"github.com/memtorrent/memtorrent/internal/testutil"
)

// TestLeecherPeakRSS streams a 256 MiB file through a 32 MiB capacity in a
// leecher process of its own, built without -race, from a seeder in this
// process: the file in ten Range requests in shuffled order (ten seeks),
// every byte checked. The leecher's peak RSS (VmHWM) must stay within
// capacity + rssOverhead. It measures memory, not time: load on the
// machine slows it but does not fail it.
func TestLeecherPeakRSS(t *testing.T) {
	const (
		capacity = 32 * mib
		size     = 256 * mib
	)
	hwm := streamInChild(t, leecherRun{capacity: capacity, size: size, seeks: 10})
	t.Logf("leecher VmHWM %.1f MiB at capacity %d MiB, %d MiB file: capacity + %.1f MiB",
		float64(hwm)/mib, capacity/mib, size/mib, float64(hwm-capacity)/mib)
	if hwm > capacity+rssOverhead {
		t.Errorf("leecher VmHWM %.1f MiB; want <= capacity %d MiB + %d MiB", float64(hwm)/mib, capacity/mib, rssOverhead/mib)
	}
}

// leecherRun is one measured run of streamInChild.
type leecherRun struct {
	capacity, size int64
	seeks          int
	memLimit       int64  // leecher's -memlimit; 0 sets none
	heapProfile    string // leecher's -heap-profile; "" writes none
	bin            string // leecher binary; "" builds ./leecher
	downstream     int    // leechers in this process that download from the leecher
	seeders        int    // seeders the leecher downloads from; 0 means 1
}

// TestLeecherPeakRSSTable measures the leecher's peak RSS at 32, 64 and
// 256 MiB capacity with a 512 MiB file, without a memory limit and with
// memtorrent serve's, for the README. It runs only when RSS_TABLE is set
// (it takes minutes); RSS_LEECHER names a leecher binary to measure
// instead of building ./leecher (a build of an older tree, say), and
// RSS_PROFILE_DIR makes each run write a heap profile there.
func TestLeecherPeakRSSTable(t *testing.T) {
	if os.Getenv("RSS_TABLE") == "" {
		t.Skip("set RSS_TABLE=1 to measure the table")
	}
	for _, capacity := range []int64{32 * mib, 64 * mib, 256 * mib} {
		for _, limit := range []int64{0, 64 * mib} {
			t.Run(fmt.Sprintf("capacity=%dMiB/memlimit=%dMiB", capacity/mib, limit/mib), func(t *testing.T) {
				r := leecherRun{capacity: capacity, size: 512 * mib, seeks: 10, memLimit: limit, bin: os.Getenv("RSS_LEECHER")}
				if d := os.Getenv("RSS_PROFILE_DIR"); d != "" {
					r.heapProfile = filepath.Join(d, fmt.Sprintf("heap-%d-%d.pprof", capacity/mib, limit/mib))
				}
				hwm := streamInChild(t, r)
				t.Logf("VmHWM %.1f MiB = capacity + %.1f MiB", float64(hwm)/mib, float64(hwm-capacity)/mib)
			})
		}
	}
	for _, limit := range []int64{0, 64 * mib} {
		t.Run(fmt.Sprintf("capacity=64MiB/seeders=8/memlimit=%dMiB", limit/mib), func(t *testing.T) {
			r := leecherRun{capacity: 64 * mib, size: 512 * mib, seeks: 10, memLimit: limit, bin: os.Getenv("RSS_LEECHER"), seeders: 8}
			if d := os.Getenv("RSS_PROFILE_DIR"); d != "" {
				r.heapProfile = filepath.Join(d, fmt.Sprintf("heap-seeders-8-%d.pprof", limit/mib))
			}
			hwm := streamInChild(t, r)
			t.Logf("VmHWM %.1f MiB = capacity + %.1f MiB", float64(hwm)/mib, float64(hwm-r.capacity)/mib)
		})
	}
	for _, n := range []int{1, 8} {
		for _, limit := range []int64{0, 64 * mib} {
			// A 48 MiB file stays whole in the cache once streamed; then n
			// leechers download it from the leecher.
			t.Run(fmt.Sprintf("capacity=64MiB/uploading-to=%d/memlimit=%dMiB", n, limit/mib), func(t *testing.T) {
				r := leecherRun{capacity: 64 * mib, size: 48 * mib, seeks: 10, memLimit: limit, bin: os.Getenv("RSS_LEECHER"), downstream: n}
				if d := os.Getenv("RSS_PROFILE_DIR"); d != "" {
					r.heapProfile = filepath.Join(d, fmt.Sprintf("heap-upload-%d-%d.pprof", n, limit/mib))
				}
				hwm := streamInChild(t, r)
				t.Logf("VmHWM %.1f MiB = 48 MiB file + %.1f MiB", float64(hwm)/mib, float64(hwm-r.size)/mib)
			})
		}
	}
}

// streamInChild builds reliability/leecher without -race, seeds a file of
// r.size bytes from this process, has the leecher stream all of it in
// r.seeks Range requests in shuffled order, checks every byte, and returns
// the leecher's VmHWM in bytes, read before it exits.
func streamInChild(t *testing.T, r leecherRun) int64 {
	t.Helper()
	dir := t.TempDir()
	bin := r.bin
	if bin == "" {
		bin = filepath.Join(dir, "leecher")
		build := exec.Command("go", "build", "-o", bin, "./leecher")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build ./leecher: %v\n%s", err, out)
		}
	}
	spec := testutil.Spec{Name: "movie.mkv", Length: r.size, PieceLength: mib, Seed: 12}
	s := testutil.NewSeeder(t, spec)
	tf := filepath.Join(dir, "movie.torrent")
	f, err := os.Create(tf)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.MetaInfo.Write(f); err != nil {
		t.Fatal(err)
	}
	f.Close()

	peers := []string{s.Client.ListenAddrs()[0].String()}
	for range r.seeders - 1 {
		// More seeders of the same files.
		more := testutil.SeedDir(t, s.Dir, s.MetaInfo, nil)
		peers = append(peers, more.Client.ListenAddrs()[0].String())
	}
	args := []string{"-capacity", strconv.FormatInt(r.capacity, 10), "-torrent", tf, "-peer", strings.Join(peers, ","),
		"-memlimit", strconv.FormatInt(r.memLimit, 10)}
	if r.heapProfile != "" {
		args = append(args, "-heap-profile", r.heapProfile)
	}
	cmd := exec.Command(bin, args...)
	stderr := &testutil.Buffer{}
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // runs after the child's: the leecher has exited
		if t.Failed() {
			t.Logf("leecher stderr:\n%s", stderr.String())
		}
	})
	lines := testutil.StartChild(t, cmd, func() { stdin.Close() }).Lines
	var url, peer string
	select {
	case line, ok := <-lines:
		if !ok {
			t.Fatalf("leecher exited before printing its URL:\n%s", stderr.String())
		}
		f := strings.Fields(line)
		if len(f) != 4 || f[0] != "stream" || f[2] != "peer" {
			t.Fatalf("leecher printed %q; want \"stream <url> peer <address>\"", line)
		}
		url, peer = f[1], f[3]
	case <-time.After(time.Minute):
		t.Fatal("timed out waiting for the leecher's URL")
	}

	startRSS, err := testutil.ProcStatus(cmd.Process.Pid, "VmRSS")
	if err != nil {
		t.Fatal(err)
	}
	src := testutil.NewSource(spec.Seed, r.size)
	seg := r.size / int64(r.seeks)
	for i := range r.seeks {
		k := (i*7 + 3) % r.seeks // a permutation of the segments for seeks = 10
		lo, hi := int64(k)*seg, int64(k+1)*seg
		if k == r.seeks-1 {
			hi = r.size
		}
		ctx, cancel := context.WithTimeout(t.Context(), transferTimeout)
		err := testutil.FetchAndCheck(ctx, url, lo, hi, src)
		cancel()
		if err != nil {
			t.Fatalf("segment %d [%d, %d): %v", k, lo, hi, err)
		}
	}
	var downstream []*torrent.Torrent
	defer func() {
		var got int64
		for _, tor := range downstream {
			st := tor.Stats()
			got += st.BytesReadUsefulData.Int64()
		}
		if len(downstream) > 0 {
			t.Logf("%d leechers downloaded %.1f MiB from the leecher", len(downstream), float64(got)/mib)
		}
	}()
	for range r.downstream {
		// Leechers of the leecher: they download the file from it, all at
		// once, so that it uploads to all of them.
		cl := testutil.NewLeecher(t, nil)
		tor, err := cl.AddTorrent(s.MetaInfo)
		if err != nil {
			t.Fatal(err)
		}
		addr, err := net.ResolveTCPAddr("tcp", peer)
		if err != nil {
			t.Fatal(err)
		}
		tor.AddPeers([]torrent.PeerInfo{{Addr: addr, Trusted: true}})
		tor.DownloadAll()
		downstream = append(downstream, tor)
	}
	for i, tor := range downstream {
		testutil.WaitChan(t, transferTimeout, fmt.Sprintf("downstream leecher %d to complete", i), tor.Complete().On())
	}
	var end [3]int64
	for i, field := range []string{"VmHWM", "RssAnon", "RssFile"} {
		if end[i], err = testutil.ProcStatus(cmd.Process.Pid, field); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("leecher: VmRSS %.1f MiB before streaming; after: VmHWM %.1f MiB, RssAnon %.1f MiB, RssFile %.1f MiB",
		float64(startRSS)/mib, float64(end[0])/mib, float64(end[1])/mib, float64(end[2])/mib)
	return end[0]
}
