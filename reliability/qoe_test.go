package reliability

// The QoE harness (issues 20 and 21): real seeders, each behind a proxy
// that makes its line slow, far and uneven (qoeline_test.go), a player
// model per viewer (qoeplayer_test.go), a trace of who holds the requests
// of the piece a stalled player waits for (qoetrace_test.go, -qoe.trace),
// and two contestants over the same
// swarm: memtorrent (host.New over 64 MiB of memory, stream.Handler) and
// the anacrolix baseline (a torrent.Reader over file storage served by
// http.ServeContent). What a viewer feels is reported side by side:
// startup, stalls, rebuffering, seek times, downloaded/delivered, memory.
//
//	go test ./reliability -run 'TestQoE$' -qoe -v -timeout 30m                     # issue 21's scenario
//	go test ./reliability -run 'TestQoE$' -qoe -qoe.scenario=three -v -timeout 30m # issue 20's
//
// -qoe.hybrid plays a scenario with hybrid v1+v2 torrents (qoehybrid_test.go).
//
// TestQoEShort is the short variant CI runs on every change.

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"

	"github.com/memtorrent/memtorrent/host"
	"github.com/memtorrent/memtorrent/internal/testutil"
	"github.com/memtorrent/memtorrent/stream"
)

var (
	qoeFull        = flag.Bool("qoe", false, "TestQoE: run the full scenario (minutes; skipped otherwise)")
	qoeScenarioArg = flag.String("qoe.scenario", "single", "TestQoE: single (issue 21), big (issue 22), start (startup and a jump, 20 s), two, three, two-torrents (issue 20)")
	qoeContestants = flag.String("qoe.contestants", "memtorrent,anacrolix", "TestQoE, TestQoEShort: contestants, in order")
	qoeTrace       = flag.Bool("qoe.trace", false, "TestQoE, TestQoEShort: at each stall, log who holds the requests of the playhead's piece")
	qoePiece       = flag.String("qoe.piece", "1MiB", "TestQoE: the torrents' piece length (1MiB, 2MiB, 8MiB, 16MiB)")
	qoeVerify      = flag.String("qoe.verify", stream.VerifyPlayhead, "TestQoE, TestQoEShort: memtorrent's stream.Options.Verify (strict, playhead); TestQoEShort: strict unless given")
	qoeSize        = flag.String("qoe.size", "", "TestQoE: the length of a single-file scenario's file (256MiB, 512MiB); default the scenario's")
	qoeStallAt     = flag.Duration("qoe.stall.at", 0, "TestQoE: when the stalled line stops delivering (default: the scenario's)")
	qoeStallFor    = flag.Duration("qoe.stall.for", 0, "TestQoE: how long the stalled line stops delivering (default: the scenario's; 0 with -qoe.stall.at: no stall)")
	qoeJumpOff     = flag.Int64("qoe.jumpoff", 0, "TestQoE: MiB added to each jump's target: with big pieces, a jump into the middle of a piece (the scenarios' 50 % lands on a piece's first byte)")
	qoeEarly       = flag.Bool("qoe.early", true, "TestQoE: with -qoe.leafhashes, the host fetches the chunks at a read in the middle of a piece itself (false: host.Options.NoEarlyFetch)")
	qoeTopUp       = flag.Bool("qoe.topup", true, "TestQoE: with -qoe.leafhashes, the tap tops up request queues (false: host.Options.NoTopUp)")
	qoeLeafHashes  = flag.Bool("qoe.leafhashes", true, "TestQoE: memtorrent with leaf hashes (host.Options.LeafHashes, -leaf-hashes, the serve binary's default) in v1 scenarios too (false: without the tap on its connections); hybrid scenarios always")
	qoeHybrid      = flag.Bool("qoe.hybrid", false, "TestQoE: hybrid v1+v2 torrents of the same data (single-file scenarios), memtorrent with leaf hashes (qoehybrid_test.go)")
)

const (
	qoeRate     = 500_000  // bytes per second of media: 4 Mbit/s
	qoeCapacity = 64 * mib // memtorrent's memory
)

// qoePlayer is the player of both issues: 500 KB/s, first frame after 2 s
// buffered, play again after 1 s, a 30 s buffer.
func qoePlayer(duration time.Duration, seeks ...seek) playerOptions {
	return playerOptions{rate: qoeRate, startAfter: 2 * time.Second, resumeAfter: time.Second,
		bufferMax: 30 * time.Second, duration: duration, seeks: seeks}
}

// The scripted seeks.
func seekBack(at, d time.Duration) seek {
	return seek{at: at, name: fmt.Sprintf("back %v", d), to: func(played, _ int64) int64 { return played - int64(d.Seconds()*qoeRate) }}
}

func seekTo(at time.Duration, percent int64) seek {
	name := fmt.Sprintf("to %d%%", percent)
	if *qoeJumpOff > 0 {
		name += fmt.Sprintf("+%dMiB", *qoeJumpOff)
	}
	return seek{at: at, name: name, to: func(_, size int64) int64 { return size*percent/100 + *qoeJumpOff*mib }}
}

// qoeSeeder is a seeder program behind a line.
type qoeSeeder struct {
	name    string
	program seederProgram
	line    line
}

// viewer is one player of a scenario.
type viewer struct {
	torrent, file int
	offset        time.Duration // start, from the scenario's start
	player        playerOptions
}

// qoeScenario is a swarm, its lines and its viewers.
type qoeScenario struct {
	name     string
	torrents []testutil.Spec
	seeders  []qoeSeeder
	viewers  []viewer
	verify   string // memtorrent's stream.Options.Verify; "" is the library's default
	// hybrid: the torrents are hybrid v1+v2 torrents (hybridMetaInfo)
	// and memtorrent fetches leaf hashes (see hybridScenario).
	hybrid bool
}

// qoeScenarios are TestQoE's, by -qoe.scenario.
func qoeScenarios() map[string]qoeScenario {
	movie := testutil.Spec{Name: "movie.bin", PieceLength: mib, Length: 200 * mib, Seed: 21}
	files := testutil.Spec{Name: "series", PieceLength: mib, Seed: 20, Files: []testutil.File{
		{Path: "e1.bin", Length: 100 * mib}, {Path: "e2.bin", Length: 100 * mib}, {Path: "e3.bin", Length: 100 * mib}}}
	other := testutil.Spec{Name: "other.bin", PieceLength: mib, Length: 100 * mib, Seed: 22}
	first := testutil.Spec{Name: "first.bin", PieceLength: mib, Length: 100 * mib, Seed: 23}
	lines := func(rates ...int64) []qoeSeeder {
		return []qoeSeeder{
			{"qBittorrent", qbittorrentProgram, line{latency: 50 * time.Millisecond, jitter: 10 * time.Millisecond, rate: rates[0]}},
			{"aria2", aria2Program, line{latency: 80 * time.Millisecond, jitter: 20 * time.Millisecond, rate: rates[1]}},
			{"Transmission", transmissionProgram, line{latency: 120 * time.Millisecond, jitter: 30 * time.Millisecond, rate: rates[2]}},
		}
	}
	const watch = 90 * time.Second
	single := []qoeSeeder{
		{"qBittorrent", qbittorrentProgram, line{latency: 50 * time.Millisecond, jitter: 10 * time.Millisecond, rate: 400_000,
			stallAt: 40 * time.Second, stallFor: 30 * time.Second}},
		{"aria2", aria2Program, line{latency: 100 * time.Millisecond, jitter: 30 * time.Millisecond, rate: 300_000}},
		{"Transmission", transmissionProgram, line{latency: 150 * time.Millisecond, jitter: 50 * time.Millisecond, rate: 300_000}},
		{"aria2 (poor line)", aria2Program, line{latency: 200 * time.Millisecond, jitter: 100 * time.Millisecond, rate: 16_000}},
	}
	return map[string]qoeScenario{
		// Issue 21: about 1 MB/s in all, the fastest line stalled for 30 s
		// at 40 s, three seeks.
		"single": {
			name:     "single",
			torrents: []testutil.Spec{movie},
			seeders:  single,
			viewers: []viewer{{player: qoePlayer(125*time.Second,
				seekBack(80*time.Second, 10*time.Second), seekTo(95*time.Second, 60), seekTo(110*time.Second, 30))}},
		},
		// Issue 22 (with -qoe.piece=16MiB or 8MiB): single's lines
		// without the stall, a 256 MiB file (issue 22's is 512 MiB), a
		// jump to 50 % at 40 s.
		"big": {
			name:     "big",
			torrents: []testutil.Spec{{Name: "big.bin", PieceLength: mib, Length: 256 * mib, Seed: 25}},
			seeders:  noStall(single),
			viewers:  []viewer{{player: qoePlayer(70*time.Second, seekTo(40*time.Second, 50))}},
		},
		// Startup and one seek, short enough to repeat (list a contestant
		// several times in -qoe.contestants): single's lines without the
		// stall, 20 s of play, a jump to 50 % at 10 s.
		"start": {
			name:     "start",
			torrents: []testutil.Spec{movie},
			seeders:  noStall(single),
			viewers:  []viewer{{player: qoePlayer(20*time.Second, seekTo(10*time.Second, 50))}},
		},
		// Issue 20: viewers 20 s apart on files of one torrent, lines of
		// 2x (two viewers) and 1.67x (three) what they play.
		"two": {
			name: "two", torrents: []testutil.Spec{files}, seeders: lines(800_000, 600_000, 600_000),
			viewers: []viewer{{file: 0, player: qoePlayer(watch)}, {file: 1, offset: 20 * time.Second, player: qoePlayer(watch)}},
		},
		"three": {
			name: "three", torrents: []testutil.Spec{files}, seeders: lines(1_000_000, 800_000, 700_000),
			viewers: []viewer{{file: 0, player: qoePlayer(watch)}, {file: 1, offset: 20 * time.Second, player: qoePlayer(watch)},
				{file: 2, offset: 40 * time.Second, player: qoePlayer(watch)}},
		},
		// Issue 20's variant: the viewers play files of different torrents.
		"two-torrents": {
			name: "two-torrents", torrents: []testutil.Spec{first, other}, seeders: lines(800_000, 600_000, 600_000),
			viewers: []viewer{{torrent: 0, player: qoePlayer(watch)}, {torrent: 1, offset: 20 * time.Second, player: qoePlayer(watch)}},
		},
	}
}

// noStall is a copy of seeders with no line stalled.
func noStall(seeders []qoeSeeder) []qoeSeeder {
	seeders = slices.Clone(seeders)
	for i := range seeders {
		seeders[i].line.stallAt, seeders[i].line.stallFor = 0, 0
	}
	return seeders
}

// qoeShortScenario is TestQoEShort's: 40 MiB, three real seeders and a
// poor line, the fastest line stalled for 15 s, two seeks, 45 s of play.
func qoeShortScenario() qoeScenario {
	s := qoeScenarios()["single"]
	s.name = "short"
	s.torrents = []testutil.Spec{{Name: "short.bin", PieceLength: mib, Length: 40 * mib, Seed: 24}}
	s.seeders = slices.Clone(s.seeders)
	s.seeders[0].line.stallAt, s.seeders[0].line.stallFor = 8*time.Second, 15*time.Second
	s.viewers = []viewer{{player: qoePlayer(45*time.Second, seekTo(28*time.Second, 60), seekBack(36*time.Second, 10*time.Second))}}
	return s
}

// TestQoE plays -qoe.scenario with each contestant and prints the table.
func TestQoE(t *testing.T) {
	if !*qoeFull {
		t.Skip("set -qoe to run the full QoE scenario (minutes)")
	}
	sc, ok := qoeScenarios()[*qoeScenarioArg]
	if !ok {
		t.Fatalf("-qoe.scenario=%q: no such scenario", *qoeScenarioArg)
	}
	sc = qoeFlags(t, sc)
	results := runQoE(t, sc, *qoeContestants)
	t.Logf("scenario %s:\n%s", sc.name, qoeTable(sc, results))
}

// TestQoEShort is the short scenario (qoeShortScenario) with memtorrent:
// no stall may last over 10 s, and every byte must be exact.
func TestQoEShort(t *testing.T) {
	if testing.Short() {
		t.Skip("real seeders for about a minute")
	}
	sc := qoeShortScenario()
	const longest = 10 * time.Second
	names := "memtorrent"
	if flagSet("qoe.contestants") {
		names = *qoeContestants
	}
	if flagSet("qoe.verify") {
		sc.verify = *qoeVerify
	}
	results := runQoE(t, sc, names)
	t.Logf("scenario %s:\n%s", sc.name, qoeTable(sc, results))
	for _, r := range results {
		for i, v := range r.viewers {
			if v.longest > longest {
				t.Errorf("%s, viewer %d: longest stall %v; want at most %v", r.name, i+1, v.longest.Round(time.Millisecond), longest)
			}
		}
	}
}

// qoeFlags applies -qoe.piece, -qoe.stall.at, -qoe.stall.for and
// -qoe.verify to sc: the piece length of every torrent, the stall of the
// line that has one (or of the first line), memtorrent's verify mode.
func qoeFlags(t *testing.T, sc qoeScenario) qoeScenario {
	var piece int64
	if _, err := fmt.Sscanf(*qoePiece, "%dMiB", &piece); err != nil || piece <= 0 {
		t.Fatalf("-qoe.piece=%q: want a number of MiB, as 2MiB", *qoePiece)
	}
	sc.torrents = slices.Clone(sc.torrents)
	for i := range sc.torrents {
		sc.torrents[i].PieceLength = piece * mib
	}
	if *qoeSize != "" {
		var size int64
		if _, err := fmt.Sscanf(*qoeSize, "%dMiB", &size); err != nil || size <= 0 || len(sc.torrents) != 1 || len(sc.torrents[0].Files) > 0 {
			t.Fatalf("-qoe.size=%q: want a number of MiB, as 512MiB, for a scenario of one single-file torrent", *qoeSize)
		}
		sc.torrents[0].Length = size * mib
	}
	sc.seeders = slices.Clone(sc.seeders)
	for i := range sc.seeders {
		l := &sc.seeders[i].line
		if l.stallFor == 0 && !flagSet("qoe.stall.at") {
			continue
		}
		if flagSet("qoe.stall.at") {
			l.stallAt = *qoeStallAt
		}
		if flagSet("qoe.stall.for") {
			l.stallFor = *qoeStallFor
		}
		break
	}
	sc.verify = *qoeVerify
	t.Logf("scenario %s: %d MiB pieces, memtorrent -verify %s, torrent 1 of %d MiB", sc.name, piece, *qoeVerify, sc.torrents[0].Length/mib)
	for _, s := range sc.seeders {
		if s.line.stallFor > 0 {
			t.Logf("%s's line stalls at %v for %v", s.name, s.line.stallAt, s.line.stallFor)
		}
	}
	if *qoeHybrid {
		sc = hybridScenario(t, sc)
	}
	return sc
}

// flagSet reports whether the flag called name was given.
func flagSet(name string) (set bool) {
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// contestant is a leecher with an HTTP server of its torrents' files.
type contestant struct {
	name string
	// start starts the leecher (its client configured by cfgOpts,
	// memtorrent's options by o), adds the torrents and has them connect
	// to peers.
	start func(t *testing.T, mis []*metainfo.MetaInfo, peers []net.Addr, o leecherOptions, cfgOpts ...func(*torrent.ClientConfig)) *qoeLeecher
	// prepare, if not nil, readies the contestant before its scenario's
	// clock starts and returns it with start set.
	prepare func(t *testing.T) contestant
}

// leecherOptions are the scenario's choices for memtorrent; the anacrolix
// baseline ignores them.
type leecherOptions struct {
	verify     string // stream.Options.Verify (-verify); "" the default
	leafHashes bool   // host.Options.LeafHashes (-leaf-hashes)
}

// qoeLeecher is a started contestant.
type qoeLeecher struct {
	srv      *httptest.Server
	torrents []*torrent.Torrent
	resident func() int64 // the storage's resident bytes; nil if it has no such figure
	// served, if not nil, returns the bytes the leecher served before
	// their piece's hash check: proven by their leaf hashes, and not
	// proven at all (stream.Status's LeafVerifiedBytes, UnverifiedBytes).
	served func() (leafVerified, unverified int64)
	// closed, if not nil, says which connections the host closed, by
	// rule (host.PeerStats).
	closed func() string
	// early, if not nil, returns the bytes the host's early fetch brought
	// (host/early.go), and those of them the leecher had already: part of
	// downloaded and wasted.
	early func() (n, wasted int64)
	child *memtorrentProcess // the leecher's child process (qoeprocess_test.go); nil: in the test process
}

// url is the URL of a file, for viewer v.
func (l *qoeLeecher) url(tor, file, v int) string {
	if l.child != nil {
		return l.child.url(tor, file, v)
	}
	return fmt.Sprintf("%s/stream/%s/%d?session=viewer%d", l.srv.URL, l.torrents[tor].InfoHash().HexString(), file, v)
}

// downloaded is the payload bytes the leecher read from peers, and those
// of them it did not want (chunks it had already: duplicates), the early
// fetch's included.
func (l *qoeLeecher) downloaded() (n, wasted int64) {
	if l.child != nil {
		return l.child.downloaded()
	}
	for _, t := range l.torrents {
		st := t.Stats()
		n += st.BytesReadData.Int64()
		wasted += st.BytesReadData.Int64() - st.BytesReadUsefulData.Int64()
	}
	if l.early != nil {
		en, ew := l.early()
		n, wasted = n+en, wasted+ew
	}
	return n, wasted
}

var contestants = map[string]contestant{
	"memtorrent":         {name: "memtorrent", start: startMemtorrent},
	"anacrolix":          {name: "anacrolix", start: startAnacrolix},
	"memtorrent-process": {name: "memtorrent-process", prepare: prepareMemtorrentProcess},
}

// startMemtorrent is host.New (host.NewWith with o.leafHashes) over
// qoeCapacity of memory and a stream.Handler with default options but
// Verify, as `memtorrent serve` runs.
func startMemtorrent(t *testing.T, mis []*metainfo.MetaInfo, peers []net.Addr, o leecherOptions, cfgOpts ...func(*torrent.ClientConfig)) *qoeLeecher {
	e := newEnvWith(t, qoeCapacity, host.Options{LeafHashes: o.leafHashes, NoTopUp: !*qoeTopUp, NoEarlyFetch: !*qoeEarly}, stream.Options{Verify: o.verify}, cfgOpts...)
	l := &qoeLeecher{srv: e.srv, resident: func() int64 { return e.mem.Stats().Resident },
		served: func() (int64, int64) {
			st := e.h.Status()
			return st.LeafVerifiedBytes, st.UnverifiedBytes
		},
		early: func() (int64, int64) {
			ls := e.hc.LeafHashStats()
			return ls.EarlyBytes, ls.EarlyLateBytes
		},
		closed: func() string {
			st := e.hc.PeerStats()
			ls := e.hc.LeafHashStats()
			return fmt.Sprintf("silent %d, stuck %d, late %d (top-ups %d; early chunks %d asked, %d written, %d late, %d rejected; %d requests recalled)", st.ClosedSilent, st.ClosedStuck, st.ClosedLate, ls.TopUps, ls.EarlyAsked, ls.EarlyWritten, ls.EarlyLate, ls.EarlyRejected, ls.EarlyRecalled)
		}}
	for _, mi := range mis {
		tor, err := e.cl.AddTorrent(mi)
		if err != nil {
			t.Fatal(err)
		}
		e.hc.AddPeers(tor, peerInfos(peers))
		testutil.WaitChan(t, testutil.SetupTimeout, "the torrent's info", tor.GotInfo())
		l.torrents = append(l.torrents, tor)
	}
	return l
}

// startAnacrolix is the baseline: the library's file storage in a
// temporary directory (storage.NewFile) and, per HTTP request, a
// torrent.Reader of the file with the library's defaults served by
// http.ServeContent.
func startAnacrolix(t *testing.T, mis []*metainfo.MetaInfo, peers []net.Addr, _ leecherOptions, cfgOpts ...func(*torrent.ClientConfig)) *qoeLeecher {
	st := storage.NewFile(t.TempDir())
	t.Cleanup(func() { st.Close() }) // after the client's
	cl := testutil.NewLeecher(t, st, cfgOpts...)
	l := &qoeLeecher{}
	for _, mi := range mis {
		tor, err := cl.AddTorrent(mi)
		if err != nil {
			t.Fatal(err)
		}
		tor.AddPeers(peerInfos(peers))
		testutil.WaitChan(t, testutil.SetupTimeout, "the torrent's info", tor.GotInfo())
		l.torrents = append(l.torrents, tor)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stream/{ih}/{file}", func(w http.ResponseWriter, r *http.Request) {
		var ih metainfo.Hash
		if err := ih.FromHexString(r.PathValue("ih")); err != nil {
			http.NotFound(w, r)
			return
		}
		tor, ok := cl.Torrent(ih)
		i, err := strconv.Atoi(r.PathValue("file"))
		if !ok || err != nil || i < 0 || i >= len(tor.Files()) {
			http.NotFound(w, r)
			return
		}
		rd := tor.Files()[i].NewReader()
		defer rd.Close()
		rd.SetContext(r.Context())
		http.ServeContent(w, r, "", time.Time{}, rd)
	})
	l.srv = httptest.NewServer(mux)
	t.Cleanup(l.srv.Close)
	return l
}

func peerInfos(addrs []net.Addr) []torrent.PeerInfo {
	var pis []torrent.PeerInfo
	for _, a := range addrs {
		pis = append(pis, torrent.PeerInfo{Addr: a})
	}
	return pis
}

// qoeResult is what one contestant did in a scenario.
type qoeResult struct {
	name         string
	viewers      []viewerReport
	downloaded   int64
	wasted       int64  // of downloaded: chunks the leecher had already
	conns        string // connections made per line
	closed       string // connections the host closed, by rule (qoeLeecher.closed)
	peakResident int64  // of the storage; -1 unknown
	// Bytes served before their piece's hash check, proven by leaf hashes
	// and not proven (qoeLeecher.served); -1 unknown.
	leafVerified, unverified int64
	peakRSS                  int64 // of the test process, sampled
	load                     string
}

// runQoE seeds the scenario's torrents with its seeders, then plays its
// viewers once per contestant, each through fresh proxies, and returns
// the results in the order of names (comma-separated contestants).
func runQoE(t *testing.T, sc qoeScenario, names string) []qoeResult {
	for _, s := range sc.seeders {
		s.program.require(t)
	}
	dataDir := t.TempDir()
	var mis []*metainfo.MetaInfo
	var files []string
	for _, spec := range sc.torrents {
		var mi *metainfo.MetaInfo
		if sc.hybrid {
			mi = hybridMetaInfo(t, dataDir, spec)
		} else {
			mi = testutil.MakeTorrent(t, dataDir, spec)
		}
		mis = append(mis, mi)
		files = append(files, writeTorrent(t, mi))
	}
	// Each program seeds from a data directory of its own: two aria2c
	// in one directory would share their control files.
	upstreams := make([]net.Addr, len(sc.seeders))
	for i, s := range sc.seeders {
		dir := t.TempDir()
		for _, spec := range sc.torrents {
			if err := os.Symlink(dataDir+"/"+nameOf(spec), dir+"/"+nameOf(spec)); err != nil {
				t.Fatal(err)
			}
		}
		upstreams[i] = s.program.start(t, dir, files...)
		t.Logf("seeder %s at %v, line %v", s.name, upstreams[i], s.line)
	}
	var results []qoeResult
	for _, name := range strings.Split(names, ",") {
		c, ok := contestants[strings.TrimSpace(name)]
		if !ok {
			t.Fatalf("-qoe.contestants: no contestant %q", name)
		}
		t.Run(c.name, func(t *testing.T) {
			if c.prepare != nil {
				c = c.prepare(t)
			}
			results = append(results, playContestant(t, sc, c, mis, upstreams))
		})
	}
	return results
}

func nameOf(spec testutil.Spec) string {
	if spec.Name == "" {
		return "data"
	}
	return spec.Name
}

// playContestant plays sc's viewers with c, its peers sc's seeders behind
// fresh proxies.
func playContestant(t *testing.T, sc qoeScenario, c contestant, mis []*metainfo.MetaInfo, upstreams []net.Addr) qoeResult {
	origin := time.Now().Add(5 * time.Second) // proxies and the leecher start meanwhile
	var proxies []net.Addr
	names := map[string]string{}
	for i, s := range sc.seeders {
		a := startLine(t, s.name, s.line, upstreams[i], origin)
		proxies = append(proxies, a)
		names[a.String()] = s.name
	}
	holders := newRequestHolders(names)
	l := c.start(t, mis, proxies, leecherOptions{verify: sc.verify, leafHashes: sc.hybrid || *qoeLeafHashes}, holders.config)
	res := qoeResult{name: c.name, peakResident: -1, leafVerified: -1, unverified: -1, viewers: make([]viewerReport, len(sc.viewers))}
	load0, _ := os.ReadFile("/proc/loadavg")
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			if l.resident != nil {
				res.peakResident = max(res.peakResident, l.resident())
			}
			if rss, err := l.rss(); err == nil {
				res.peakRSS = max(res.peakRSS, rss)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	// The scenario's clock: the lines' stalls count from origin.
	if !waitUntil(t.Context(), origin) {
		t.Fatal("the test ended before the scenario began")
	}
	var wg sync.WaitGroup
	errs := make([]error, len(sc.viewers))
	for i, v := range sc.viewers {
		content := testutil.FileContent(sc.torrents[v.torrent], v.file)
		opts := v.player
		if *qoeTrace && l.child == nil {
			tor, file := l.torrents[v.torrent], v.file
			opts.onStall = func(pos int64) {
				t.Logf("%s viewer %d stalls at %v, file offset %d: %s", c.name, i+1, time.Since(origin).Round(100*time.Millisecond),
					pos, holders.describe(tor, tor.Files()[file].Offset()+pos))
			}
		}
		wg.Go(func() {
			if !waitUntil(t.Context(), origin.Add(v.offset)) { // the viewer's start in the scenario
				return
			}
			res.viewers[i], errs[i] = play(t.Context(), l.client(), l.url(v.torrent, v.file, i+1), content, opts)
		})
	}
	wg.Wait()
	close(stop)
	<-sampled
	load1, _ := os.ReadFile("/proc/loadavg")
	res.load = fmt.Sprintf("%s -> %s", strings.Join(strings.Fields(string(load0))[:3], " "), strings.Join(strings.Fields(string(load1))[:3], " "))
	res.downloaded, res.wasted = l.downloaded()
	if l.served != nil {
		res.leafVerified, res.unverified = l.served()
	}
	if sc.hybrid && sc.verify == stream.VerifyStrict && res.unverified != 0 {
		t.Errorf("%s: %d bytes of a hybrid torrent served unverified in strict mode; want 0", c.name, res.unverified)
	}
	res.conns = holders.connections()
	if l.closed != nil {
		res.closed = l.closed()
	}
	if *qoeTrace {
		t.Logf("%s: KB/s per line every %v from the leecher's start (%v before the scenario's):\n%s", c.name, timelineStep, origin.Sub(holders.start).Round(100*time.Millisecond), holders.timeline())
		t.Logf("%s: the torrent's first chunks, from the scenario's start:\n%s", c.name, holders.headStory(origin))
	}
	for i, err := range errs {
		if err != nil {
			t.Errorf("%s, viewer %d: %v", c.name, i+1, err)
		}
	}
	return res
}

// waitUntil waits until the clock reaches at; it returns false if ctx
// ends first.
func waitUntil(ctx context.Context, at time.Time) bool {
	timer := time.NewTimer(time.Until(at))
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// qoeTable formats results side by side, one column per contestant and
// viewer.
func qoeTable(sc qoeScenario, results []qoeResult) string {
	var b strings.Builder
	kind := "v1"
	if sc.hybrid {
		kind = "hybrid v1+v2"
	}
	var lines []string
	for _, s := range sc.seeders {
		lines = append(lines, fmt.Sprintf("%s (%v)", s.name, s.line))
	}
	fmt.Fprintf(&b, "%s torrents; lines: %s\n", kind, strings.Join(lines, "; "))
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	row := func(label string, cell func(r qoeResult, v int) string) {
		fmt.Fprint(w, label)
		for _, r := range results {
			for v := range sc.viewers {
				fmt.Fprint(w, "\t", cell(r, v))
			}
		}
		fmt.Fprintln(w)
	}
	sec := func(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }
	row("", func(r qoeResult, v int) string {
		if len(sc.viewers) == 1 {
			return r.name
		}
		return fmt.Sprintf("%s v%d (+%v)", r.name, v+1, sc.viewers[v].offset)
	})
	row("first byte", func(r qoeResult, v int) string { return sec(r.viewers[v].firstByte) })
	row("startup", func(r qoeResult, v int) string { return sec(r.viewers[v].startup) })
	row("stalls (total stalled)", func(r qoeResult, v int) string {
		return fmt.Sprintf("%d (%s)", r.viewers[v].stalls, sec(r.viewers[v].stalled))
	})
	row("rebuffering", func(r qoeResult, v int) string { return fmt.Sprintf("%.1f %%", 100*r.viewers[v].rebuffering()) })
	row("longest stall", func(r qoeResult, v int) string { return sec(r.viewers[v].longest) })
	row("stalls (began at, position, length)", func(r qoeResult, v int) string {
		if len(r.viewers[v].stallLog) == 0 {
			return "-"
		}
		return strings.Join(r.viewers[v].stallLog, "; ")
	})
	row("seeks", func(r qoeResult, v int) string {
		var s []string
		for i, d := range r.viewers[v].seeks {
			s = append(s, r.viewers[v].seekNames[i]+" "+sec(d))
		}
		if len(r.viewers[v].seekNames) > len(r.viewers[v].seeks) {
			s = append(s, r.viewers[v].seekNames[len(r.viewers[v].seeks)]+" never")
		}
		return strings.Join(s, ", ")
	})
	row("delivered", func(r qoeResult, v int) string { return fmt.Sprintf("%.1f MB", float64(r.viewers[v].delivered)/1e6) })
	row("downloaded / delivered", func(r qoeResult, _ int) string {
		var d int64
		for _, v := range r.viewers {
			d += v.delivered
		}
		if d == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f (%.1f MB)", float64(r.downloaded)/float64(d), float64(r.downloaded)/1e6)
	})
	row("of which duplicates", func(r qoeResult, _ int) string { return fmt.Sprintf("%.1f MB", float64(r.wasted)/1e6) })
	served := func(n int64) string {
		switch {
		case n < 0:
			return "-"
		case n == 0:
			return "0"
		}
		return fmt.Sprintf("%.2f MB", float64(n)/1e6)
	}
	row("served before the piece's hash: leaf-verified", func(r qoeResult, _ int) string { return served(r.leafVerified) })
	row("served before the piece's hash: unverified", func(r qoeResult, _ int) string { return served(r.unverified) })
	row("connections per line", func(r qoeResult, _ int) string { return r.conns })
	row("connections the host closed", func(r qoeResult, _ int) string { return r.closed })
	row("peak storage resident", func(r qoeResult, _ int) string {
		if r.peakResident < 0 {
			return "-"
		}
		return fmt.Sprintf("%d MiB", r.peakResident>>20)
	})
	row("peak RSS (test process; -process: child's)", func(r qoeResult, _ int) string { return fmt.Sprintf("%d MiB", r.peakRSS>>20) })
	row("load (1, 5, 15 min)", func(r qoeResult, _ int) string { return r.load })
	w.Flush()
	return b.String()
}
