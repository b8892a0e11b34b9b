package reliability

// The memtorrent-process contestant of the QoE harness: `memtorrent serve`
// run as a user runs it, in a child process built without -race, so that
// the table's peak RSS is memtorrent's own and not the test process's
// (which holds the expected content and every other contestant).

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"

	"github.com/memtorrent/memtorrent/internal/testutil"
	"github.com/memtorrent/memtorrent/stream"
)

// rssOverhead is how far above the capacity a streaming leecher's peak
// RSS may go (issues 12 and 21): the Go heap, the runtime and the
// program's code.
const rssOverhead = 40 * mib

// memtorrentProcess is a `memtorrent serve` child process: the leecher of
// the memtorrent-process contestant.
type memtorrentProcess struct {
	child   *testutil.Child
	base    string            // the URL it prints once it listens
	streams map[string]string // the stream URLs it printed, by path
	hashes  []metainfo.Hash   // its torrents, in the scenario's order
	client  *http.Client
}

// Lines `memtorrent serve` prints on its standard output.
var (
	serveListenLine  = regexp.MustCompile(`^listening on (http://\S+)$`)
	serveTorrentLine = regexp.MustCompile(`^torrent .* \(([0-9a-f]{40}), [^)]*\)$`)
	serveStreamLine  = regexp.MustCompile(`^  stream: +(http://\S+)`)
)

// buildMemtorrent builds cmd/memtorrent without -race into a temporary
// directory of t and returns the binary's path.
func buildMemtorrent(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "memtorrent")
	out, err := exec.Command("go", "build", "-o", bin, "../cmd/memtorrent").CombinedOutput()
	if err != nil {
		t.Fatalf("go build ../cmd/memtorrent: %v\n%s", err, out)
	}
	return bin
}

// prepareMemtorrentProcess builds the binary, before the scenario's clock
// starts, and returns the contestant that runs it.
func prepareMemtorrentProcess(t *testing.T) contestant {
	bin := buildMemtorrent(t)
	return contestant{name: "memtorrent-process", start: func(t *testing.T, mis []*metainfo.MetaInfo, peers []net.Addr, o leecherOptions, _ ...func(*torrent.ClientConfig)) *qoeLeecher {
		return startMemtorrentProcess(t, bin, mis, peers, o)
	}}
}

// startMemtorrentProcess runs bin as `memtorrent serve -offline -capacity
// 64MiB -verify o.verify` (the binary's default when o.verify is "") with
// each torrent as a magnet URI whose x.pe name peers, waits until it
// printed the stream URLs of every torrent (it has their info), and
// returns it as a leecher. It passes -leaf-hashes=o.leafHashes; with true
// it gives each torrent's .torrent file before its magnet: the leaf hashes
// are checked against the piece layers, which a .torrent carries (a
// magnet's come from peers, after a round trip, docs/verify.md), and
// -offline takes peers only from a magnet's x.pe. At the end of the test
// it reads the
// process's peak RSS (VmHWM), sends SIGINT and fails the test unless the
// process exits with status 0. The client configuration options are the
// test process's (request tracing) and do not reach the child.
func startMemtorrentProcess(t *testing.T, bin string, mis []*metainfo.MetaInfo, peers []net.Addr, o leecherOptions) *qoeLeecher {
	t.Helper()
	args := []string{"serve", "-offline", "-capacity", strconv.Itoa(qoeCapacity), "-listen", "127.0.0.1:0", "-peer-port", "0",
		"-log-level", "warn"}
	if o.verify != "" {
		args = append(args, "-verify", o.verify)
	}
	args = append(args, "-leaf-hashes="+strconv.FormatBool(o.leafHashes), "-top-ups="+strconv.FormatBool(*qoeTopUp), "-early-fetch="+strconv.FormatBool(*qoeEarly))
	p := &memtorrentProcess{streams: map[string]string{}, client: &http.Client{Transport: &http.Transport{}}}
	for _, mi := range mis {
		info, err := mi.UnmarshalInfo()
		if err != nil {
			t.Fatal(err)
		}
		if o.leafHashes {
			args = append(args, writeTorrent(t, mi))
		}
		m := mi.Magnet(nil, &info)
		m.Params = url.Values{}
		for _, a := range peers {
			m.Params.Add("x.pe", a.String())
		}
		args = append(args, m.String())
		p.hashes = append(p.hashes, mi.HashInfoBytes())
	}
	cmd := exec.Command(bin, args...)
	stderr := &testutil.Buffer{}
	cmd.Stderr = stderr
	t.Cleanup(func() { // runs after the child's: the process has exited
		p.client.CloseIdleConnections()
		if t.Failed() {
			t.Logf("memtorrent serve stderr:\n%s", stderr.String())
		}
	})
	p.child = testutil.StartChild(t, cmd, nil)
	t.Cleanup(func() { // runs before the child's: the process still runs
		if hwm, err := testutil.ProcStatus(cmd.Process.Pid, "VmHWM"); err == nil {
			t.Logf("memtorrent serve: VmHWM %.1f MiB at capacity %d MiB (%+.1f MiB)",
				float64(hwm)/mib, qoeCapacity/mib, float64(hwm-qoeCapacity)/mib)
		}
		p.child.Stop(t, os.Interrupt, 30*time.Second)
	})
	p.base = p.child.WaitLine(t, serveListenLine)[1]
	p.waitStreams(t)
	return &qoeLeecher{child: p, resident: p.resident, served: p.served}
}

// waitStreams reads the process's output until it printed, for every
// torrent, its name line and a stream URL.
func (p *memtorrentProcess) waitStreams(t *testing.T) {
	t.Helper()
	named := map[string]bool{}
	streamed := map[string]bool{}
	timer := time.NewTimer(testutil.SetupTimeout)
	defer timer.Stop()
	for !p.printed(named, streamed) {
		select {
		case line, ok := <-p.child.Lines:
			if !ok {
				t.Fatal("memtorrent serve exited before printing its stream URLs")
			}
			if m := serveTorrentLine.FindStringSubmatch(line); m != nil {
				named[m[1]] = true
			}
			if m := serveStreamLine.FindStringSubmatch(line); m != nil {
				path := strings.TrimPrefix(m[1], p.base)
				p.streams[path] = m[1]
				if f := strings.Split(path, "/"); len(f) == 4 && f[1] == "stream" {
					streamed[f[2]] = true
				}
			}
		case <-timer.C:
			t.Fatalf("memtorrent serve printed no stream URL of some torrent in %v (torrents named: %v)", testutil.SetupTimeout, named)
		}
	}
	go func() { // the rest of the output, so that the process never blocks writing it
		for range p.child.Lines {
		}
	}()
}

// printed reports whether every torrent of p is in named and streamed.
func (p *memtorrentProcess) printed(named, streamed map[string]bool) bool {
	for _, ih := range p.hashes {
		if !named[ih.HexString()] || !streamed[ih.HexString()] {
			return false
		}
	}
	return true
}

// url is the stream URL the process printed for file of torrent tor, for
// viewer v; a file serve did not list (not a media file) has the same
// route.
func (p *memtorrentProcess) url(tor, file, v int) string {
	path := stream.FilePath(p.hashes[tor], file)
	u, ok := p.streams[path]
	if !ok {
		u = p.base + path
	}
	return fmt.Sprintf("%s?session=viewer%d", u, v)
}

// resident is the sum of the torrents' resident bytes, as the process's
// API reports them; -1 when it does not answer.
func (p *memtorrentProcess) resident() int64 {
	resp, err := p.client.Get(p.base + "/api/torrents")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var ts []struct {
		ResidentBytes int64 `json:"residentBytes"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&ts) != nil {
		return -1
	}
	var n int64
	for _, t := range ts {
		n += t.ResidentBytes
	}
	return n
}

// served is the bytes the process served before their piece's hash
// check, proven by leaf hashes and not proven, as its /status reports
// them; -1, -1 when it does not answer.
func (p *memtorrentProcess) served() (leafVerified, unverified int64) {
	resp, err := p.client.Get(p.base + "/status")
	if err != nil {
		return -1, -1
	}
	defer resp.Body.Close()
	var st stream.Status
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&st) != nil {
		return -1, -1
	}
	return st.LeafVerifiedBytes, st.UnverifiedBytes
}

// downloaded is the payload bytes the process read from peers, and those
// of them it did not want, as its TorrServer API's torrent list reports
// them; -1, -1 when it does not answer.
func (p *memtorrentProcess) downloaded() (n, wasted int64) {
	resp, err := p.client.Post(p.base+"/torrents", "application/json", strings.NewReader(`{"action": "list"}`))
	if err != nil {
		return -1, -1
	}
	defer resp.Body.Close()
	var ts []struct {
		Data   int64 `json:"bytes_read_data"`
		Useful int64 `json:"bytes_read_useful_data"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&ts) != nil {
		return -1, -1
	}
	for _, t := range ts {
		n += t.Data
		wasted += t.Data - t.Useful
	}
	return n, wasted
}

// client is the HTTP client of the leecher's players.
func (l *qoeLeecher) client() *http.Client {
	if l.child != nil {
		return l.child.client
	}
	return l.srv.Client()
}

// rss is the leecher's memory: the peak RSS (VmHWM) of its process when it
// runs in a child, else the test process's current RSS.
func (l *qoeLeecher) rss() (int64, error) {
	if l.child != nil {
		return testutil.ProcStatus(l.child.child.Cmd.Process.Pid, "VmHWM")
	}
	return testutil.ProcStatus(os.Getpid(), "VmRSS")
}

// TestQoEShortProcess is TestQoEShort's scenario with memtorrent serve in a
// child process: no stall may last over 10 s, every byte must be exact,
// and the process's peak RSS must stay within the capacity plus
// rssOverhead (issue 21).
func TestQoEShortProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("real seeders for about a minute")
	}
	sc := qoeShortScenario()
	const longest = 10 * time.Second
	results := runQoE(t, sc, "memtorrent-process")
	t.Logf("scenario %s:\n%s", sc.name, qoeTable(sc, results))
	for _, r := range results {
		for i, v := range r.viewers {
			if v.longest > longest {
				t.Errorf("%s, viewer %d: longest stall %v; want at most %v", r.name, i+1, v.longest.Round(time.Millisecond), longest)
			}
		}
		if _, err := os.Stat("/proc/self/status"); err != nil {
			continue // no /proc: the peak RSS is unknown
		}
		if r.peakRSS > qoeCapacity+rssOverhead {
			t.Errorf("%s: peak RSS %.1f MiB; want <= capacity %d MiB + %d MiB",
				r.name, float64(r.peakRSS)/mib, qoeCapacity/mib, rssOverhead/mib)
		}
	}
}
