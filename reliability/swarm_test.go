package reliability

import (
	"context"
	"expvar"
	"flag"
	"fmt"
	"io"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
	pp "github.com/anacrolix/torrent/peer_protocol"
	"golang.org/x/time/rate"

	"github.com/memtorrent/memtorrent/host"
	"github.com/memtorrent/memtorrent/internal/testutil"
	"github.com/memtorrent/memtorrent/storage/memory"
)

var swarmRuns = flag.Int("swarm.runs", 0, "TestSwarmRefusedRequests: runs of each leecher kind (0 skips the measurement)")

// TestSwarmRefusedRequests measures, in a loopback swarm of one seeder
// and three leechers (memtorrent with a cache of a quarter of the file, an
// anacrolix leecher on disk and qBittorrent), how many requests of other
// peers the memtorrent leecher refuses because it announced the piece and
// evicted it since: once with the library's behaviour alone (the client
// told of evictions, nothing else: "before") and once with host.New
// (lt_donthave to qBittorrent, the seed guard: "after"). The seeder
// uploads at most 8 MiB/s in all and qBittorrent downloads at most 1 MiB/s, so the leechers trade pieces among
// themselves. A measurement, not a check: its numbers depend on timing.
//
//	go test ./reliability -run TestSwarmRefusedRequests -swarm.runs 3 -v
func TestSwarmRefusedRequests(t *testing.T) {
	if *swarmRuns == 0 {
		t.Skip("set -swarm.runs to measure")
	}
	requireProgram(t, "qbittorrent-nox", "qbittorrent-nox")
	for run := range *swarmRuns {
		for _, after := range []bool{false, true} {
			name := map[bool]string{false: "before", true: "after"}[after] + "/" + strconv.Itoa(run)
			t.Run(name, func(t *testing.T) {
				refused, uploaded, told := swarmRun(t, after)
				t.Logf("%s: memtorrent refused %d requests for evicted pieces, uploaded %d bytes, sent %d lt_donthave",
					name, refused, uploaded, told)
			})
		}
	}
}

// refusals is the library's count, for the whole process, of peer
// requests refused because the piece is not there: requests for a piece
// the client no longer counts complete (v1.59.1 closes the connection:
// expvar requestsReceivedForMissingPieces) and requests whose data could
// not be read from storage (rejected or choked: expvar torrent "peer
// request data read failures"). Only the memtorrent leecher evicts.
func refusals() int64 {
	var n int64
	if v, ok := expvar.Get("requestsReceivedForMissingPieces").(*expvar.Int); ok {
		n += v.Value()
	}
	if m, ok := expvar.Get("torrent").(*expvar.Map); ok {
		if v, ok := m.Get("peer request data read failures").(*expvar.Int); ok {
			n += v.Value()
		}
	}
	return n
}

// swarmRun runs the swarm once and returns the memtorrent leecher's
// refused requests, bytes uploaded and lt_donthave messages sent.
func swarmRun(t *testing.T, after bool) (refused, uploaded, told int64) {
	spec := testutil.Spec{Name: "swarm.bin", PieceLength: pieceLength, Length: 16 * mib, Seed: 77}
	seeder := newSeeder(t, spec, nil, func(cfg *torrent.ClientConfig) {
		cfg.UploadRateLimiter = rate.NewLimiter(8<<20, 256<<10)
	})
	seeder.tor.SetMaxEstablishedConns(16)
	// qBittorrent downloads at 1 MiB/s (loopback counts as LAN, whose
	// traffic it does not limit by default): it lags behind memtorrent
	// and asks it for pieces it announced long ago.
	q := runQBittorrent(t, t.TempDir(), false, "Session\\IgnoreLimitsOnLAN=false\nSession\\GlobalDLSpeedLimit=1024\n", writeTorrent(t, seeder.mi))
	// Peers that dial before it has the torrent are refused, and
	// anacrolix clients do not dial again.
	q.p.waitFor(t, testutil.SetupTimeout, "qBittorrent to be downloading", func() bool {
		list, err := q.torrents()
		return err == nil && len(list) == 1 && (list[0].State == "stalledDL" || list[0].State == "downloading")
	})
	seeder.tor.AddPeers([]torrent.PeerInfo{{Addr: q.addr}})

	other := testutil.NewLeecher(t, nil)
	otherTor := testutil.AddTorrent(t, other, seeder.mi)
	addPeers(otherTor, seeder.addr(), q.addr)
	otherTor.DownloadAll()

	// The reader moves forward only, so an evicted piece stays missing:
	// each request for one is refused (v1.59.1 closes the connection at
	// the first). Count them per client, as the leecher reads them.
	var evicted sync.Map // piece index -> true
	var mu sync.Mutex
	perClient := make(map[string]int)
	opts := memory.Options{Capacity: spec.Length / 4,
		OnEvict: func(_ metainfo.Hash, pieces []int) {
			for _, i := range pieces {
				evicted.Store(i, true)
			}
		}}
	countRequests := func(cfg *torrent.ClientConfig) {
		cfg.Callbacks.ReadMessage = func(pc *torrent.PeerConn, msg *pp.Message) {
			if msg.Type != pp.Request {
				return
			}
			if _, ok := evicted.Load(int(msg.Index)); !ok {
				return
			}
			name, _ := pc.PeerClientName.Load().(string)
			mu.Lock()
			perClient[name]++
			mu.Unlock()
		}
	}
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		t.Logf("requests for evicted pieces by client: %v", perClient)
	}()
	var cl *torrent.Client
	var hc *host.Client
	if after {
		hc = testutil.NewMemLeecher(t, opts, countRequests)
		cl = hc.Torrent
	} else {
		cl = plainMemLeecher(t, opts, countRequests)
	}
	tor := testutil.AddTorrent(t, cl, seeder.mi)
	addPeers(tor, seeder.addr(), q.addr, other.ListenAddrs()[0])

	before := refusals()
	r := tor.NewReader()
	defer r.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	r.SetContext(ctx)
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("memtorrent reading after %d bytes: %v", len(got), err)
	}
	equal(t, "memtorrent's read", got, testutil.Content(spec))
	var last string
	defer func() {
		if t.Failed() {
			t.Logf("last state: %s", last)
		}
	}()
	testutil.WaitFor(t, 3*time.Minute, "the anacrolix leecher and qBittorrent to complete", func() bool {
		list, err := q.torrents()
		last = fmt.Sprintf("qBittorrent %+v (%v); anacrolix leecher %d/%d bytes, peers %d; memtorrent peers %d",
			list, err, otherTor.BytesCompleted(), otherTor.Length(), len(otherTor.PeerConns()), len(tor.PeerConns()))
		return err == nil && len(list) == 1 && list[0].Progress == 1 && otherTor.Complete().Bool()
	})
	st := tor.Stats()
	refused = refusals() - before
	if hc != nil {
		told = hc.PeerStats().DontHaveSent
	}
	return refused, st.BytesWrittenData.Int64(), told
}

// plainMemLeecher is a loopback client over memory storage wired as the
// library alone allows: evicted pieces are reported to the client, and
// peers are told nothing. It is closed at the end of the test.
func plainMemLeecher(t *testing.T, opts memory.Options, cfgOpts ...func(*torrent.ClientConfig)) *torrent.Client {
	t.Helper()
	var cl *torrent.Client
	ready := make(chan struct{})
	next := opts.OnEvict
	opts.OnEvict = func(ih metainfo.Hash, pieces []int) {
		<-ready
		if tor, ok := cl.Torrent(ih); ok {
			for _, i := range pieces {
				tor.Piece(i).UpdateCompletion()
			}
		}
		if next != nil {
			next(ih, pieces)
		}
	}
	mem, err := memory.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mem.Close() })
	cl = testutil.NewLeecher(t, mem, cfgOpts...)
	close(ready)
	return cl
}
