package reliability

// Real BitTorrent clients seeding on loopback (qBittorrent, aria2,
// Transmission), and a memtorrent leecher whose cache holds a quarter of
// the file. Once the whole file has passed through the cache the leecher
// has announced every piece, and a seeder sees another seed: libtorrent
// (qBittorrent) is told through lt_donthave which pieces are gone and keeps
// the connection; aria2 and Transmission close it, and the leecher dials
// them again when a read wants a piece no connected peer has (host.Client).
// Without either, the backward seeks below wait forever.

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"

	"github.com/memtorrent/memtorrent/internal/testutil"
	"github.com/memtorrent/memtorrent/storage/memory"
	"github.com/memtorrent/memtorrent/stream"
)

// seederProgram is a BitTorrent client program that the tests run as a
// seeder.
type seederProgram struct {
	name string // for messages, with the version tested
	// require fails or skips the test (requireProgram) when the program
	// is missing.
	require func(t *testing.T)
	// start starts the program seeding the torrents (files written by
	// writeTorrent) whose data is in dataDir, on 127.0.0.1 only, with no
	// DHT, local peer discovery, PEX or port mapping. It returns the
	// address the program takes peers on once every torrent is seeded.
	// The program is stopped at the end of the test.
	start func(t *testing.T, dataDir string, torrents ...string) *net.TCPAddr
}

// seekTimeout bounds the wait for the first byte of a read of evicted data:
// what a viewer waits after a seek.
const seekTimeout = 10 * time.Second

// TestRealSeeders runs each real seeder with seekAfterFullPass, over a
// file of 65 pieces of 256 KiB and one of 64 pieces of 1 MiB, and with
// ffmpegAfterFullPass.
func TestRealSeeders(t *testing.T) {
	for _, p := range []seederProgram{qbittorrentProgram, aria2Program, transmissionProgram} {
		t.Run(p.name, func(t *testing.T) {
			p.require(t)
			requireProgram(t, "ffmpeg", "ffmpeg")
			dataDir := t.TempDir()
			spec := testutil.Spec{Name: "movie.bin", PieceLength: pieceLength, Length: 16*mib + 4321, Seed: 11}
			mi := testutil.MakeTorrent(t, dataDir, spec)
			big := testutil.Spec{Name: "big.bin", PieceLength: mib, Length: 64 * mib, Seed: 13}
			bigMI := testutil.MakeTorrent(t, dataDir, big)
			media := makeMedia(t, dataDir, "clip.mp4")
			addr := p.start(t, dataDir, writeTorrent(t, mi), writeTorrent(t, bigMI), writeTorrent(t, media))
			// Each leecher has an address of its own, as distinct
			// users have: a seeder's memory of one address (Transmission
			// keys what it knows of a peer by IP) must not carry over.
			t.Run("seek", func(t *testing.T) {
				seekAfterFullPass(t, mi, testutil.Content(spec), addr, false, listenOn("127.0.0.41"))
			})
			// Added by magnet, as a user adds one to a server: its
			// first connection is made before the torrent has its info.
			t.Run("seek64x1MiB", func(t *testing.T) {
				seekAfterFullPass(t, bigMI, testutil.Content(big), addr, true, listenOn("127.0.0.42"))
			})
			t.Run("ffmpeg", func(t *testing.T) { ffmpegAfterFullPass(t, media, addr, listenOn("127.0.0.43")) })
		})
	}
}

// seekAfterFullPass streams the whole of mi's only file (content) from the
// seeder at addr through a cache of a quarter of it, then reads one piece
// at each of three evicted offsets (the start of the second piece, a
// quarter, a half): each must be exact and its first byte must come within
// seekTimeout. With magnet, the leecher is given only the info hash and
// addr, and gets the info from the seeder.
func seekAfterFullPass(t *testing.T, mi *metainfo.MetaInfo, content []byte, addr net.Addr, magnet bool, cfgOpts ...func(*torrent.ClientConfig)) {
	e := newEnv(t, int64(len(content))/4, stream.Options{}, cfgOpts...)
	var tor *torrent.Torrent
	if magnet {
		tor = e.addMagnet(mi.HashInfoBytes(), addr)
	} else {
		tor = e.add(mi, addr)
	}
	url := e.url(tor, 0)
	start := time.Now()
	body, err := e.fetch(t.Context(), url, "", http.StatusOK)
	if err != nil {
		t.Fatalf("streaming the whole file: %v", err)
	}
	equal(t, "whole file", body, content)
	t.Logf("whole file (%d bytes) in %v", len(body), time.Since(start).Round(time.Millisecond))
	waitEvicted(t, e, tor, 1)

	pl := tor.Info().PieceLength
	for _, off := range []int64{pl, int64(len(content)) / 4, int64(len(content)) / 2} {
		want := content[off:min(off+pl, int64(len(content)))]
		peers := len(tor.PeerConns())
		first, total := timedRange(t, e, url, off, want)
		t.Logf("Range at %d: first byte %v, %d bytes %v (peers connected before: %d, after: %d)",
			off, first.Round(time.Millisecond), len(want), total.Round(time.Millisecond), peers, len(tor.PeerConns()))
		if first > seekTimeout {
			t.Errorf("Range at %d: first byte after %v; want within %v", off, first.Round(time.Millisecond), seekTimeout)
		}
	}
}

// ffmpegAfterFullPass has ffmpeg decode the whole of media's only file from
// the seeder at addr through a cache of a quarter of it, then seek five
// times, backwards into evicted data first, each decoding a second without
// an error.
func ffmpegAfterFullPass(t *testing.T, mi *metainfo.MetaInfo, addr net.Addr, cfgOpts ...func(*torrent.ClientConfig)) {
	info, err := mi.UnmarshalInfo()
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, info.TotalLength()/4, stream.Options{}, cfgOpts...)
	tor := e.add(mi, addr)
	url := e.url(tor, 0)
	start := time.Now()
	run(t, 3*time.Minute, "ffmpeg", "-v", "error", "-threads", "1", "-i", url, "-f", "null", "-")
	t.Logf("ffmpeg decoded %d bytes in %v; then %s", info.TotalLength(), time.Since(start).Round(time.Millisecond), holders(e, tor, 1))
	waitEvicted(t, e, tor, 1)
	for _, ss := range []float64{1, 10, 4, 16, 7} {
		start := time.Now()
		// No bound on the time: Transmission answers slowly through a
		// small cache (TestTransmissionThroughput); 30 s were seen here.
		run(t, 3*time.Minute, "ffmpeg", "-v", "error", "-threads", "1", "-ss", fmt.Sprint(ss), "-i", url, "-t", "1", "-f", "null", "-")
		t.Logf("ffmpeg -ss %v: %v (peers connected: %d)", ss, time.Since(start).Round(time.Millisecond), len(tor.PeerConns()))
	}
}

// waitEvicted waits until the leecher no longer counts piece i complete:
// the storage reports evictions asynchronously. On a timeout it says what
// holds the piece: the storage's view of every piece and the sessions.
func waitEvicted(t *testing.T, e *env, tor *torrent.Torrent, i int) {
	t.Helper()
	const timeout = 10 * time.Second
	deadline := time.Now().Add(timeout)
	evicted := func() bool { return !tor.Piece(i).State().Complete }
	testutil.WaitFor(t, 2*timeout, "the eviction wait's deadline", func() bool {
		return evicted() || time.Now().After(deadline)
	})
	if !evicted() {
		t.Fatalf("piece %d still complete after %v: %s", i, timeout, holders(e, tor, i))
	}
}

// holders describes what may keep piece i of tor resident: the storage's
// state of every piece, the piece's priority and the handler's sessions.
func holders(e *env, tor *torrent.Torrent, i int) string {
	var states []memory.PieceState
	if mt, ok := e.mem.Torrent(tor.InfoHash()); ok {
		states = mt.AppendPieceStates(nil)
	}
	var sessions []string
	for _, ts := range e.h.Status().Torrents {
		for _, s := range ts.Sessions {
			sessions = append(sessions, fmt.Sprintf("%d@%d(busy %v, readahead %d)", s.ID, s.Position, s.Busy, s.Readahead))
		}
	}
	return fmt.Sprintf("storage piece states %v (bits: resident, complete, lookbehind, readahead, playhead, pinned); piece %d priority %v; sessions %v",
		states, i, tor.Piece(i).State().Priority, sessions)
}

// timedRange GETs len(want) bytes at off from url and compares them with
// want; it returns the time to the first byte of the body and to the last.
// It fails the test after transferTimeout.
func timedRange(t *testing.T, e *env, url string, off int64, want []byte) (first, total time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), transferTimeout)
	defer cancel()
	rng := fmt.Sprintf("bytes=%d-%d", off, off+int64(len(want))-1)
	start := time.Now()
	resp, err := e.get(ctx, url, rng)
	if err != nil {
		t.Fatalf("GET %s: %v", rng, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent {
		t.Fatalf("GET %s: status %d; want 206", rng, resp.StatusCode)
	}
	got := make([]byte, len(want))
	if _, err := io.ReadFull(resp.Body, got[:1]); err != nil {
		t.Fatalf("GET %s: first byte after %v: %v", rng, time.Since(start).Round(time.Millisecond), err)
	}
	first = time.Since(start)
	if n, err := io.ReadFull(resp.Body, got[1:]); err != nil {
		t.Fatalf("GET %s: reading after %d bytes and %v: %v", rng, n+1, time.Since(start).Round(time.Millisecond), err)
	}
	equal(t, "Range "+rng, got, want)
	return first, time.Since(start)
}

// run runs a program with a deadline and fails the test if it fails or
// writes to standard error (callers pass -v error, so anything there is an
// error).
func run(t *testing.T, timeout time.Duration, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr testutil.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil || stderr.String() != "" {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
}

// makeMedia encodes a 20 s H.264/AAC MP4 of about 5 MB with ffmpeg into
// dir/name and returns a metainfo for it (pieceLength pieces).
func makeMedia(t *testing.T, dir, name string) *metainfo.MetaInfo {
	t.Helper()
	path := filepath.Join(dir, name)
	run(t, 2*time.Minute, "ffmpeg", "-v", "error", "-threads", "1",
		"-f", "lavfi", "-i", "testsrc=duration=20:size=320x240:rate=25,noise=alls=30:allf=t",
		"-f", "lavfi", "-i", "sine", "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "2000k",
		"-c:a", "aac", "-shortest", path)
	return testutil.FileMetaInfo(t, path, pieceLength)
}

// writeTorrent writes mi to a .torrent file in a fresh directory and
// returns its path.
func writeTorrent(t *testing.T, mi *metainfo.MetaInfo) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), mi.HashInfoBytes().HexString()+".torrent")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := mi.Write(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// process is a program the test started; it is stopped (SIGTERM, then
// SIGKILL after 10 s) at the end of the test, and its output is logged if
// the test failed.
type process struct {
	name   string
	cmd    *exec.Cmd // started
	out    *testutil.Buffer
	exited chan error // receives the exit once
}

// startProcess starts cmd (its output captured) and stops it at the end
// of the test.
func startProcess(t *testing.T, name string, cmd *exec.Cmd) *process {
	t.Helper()
	p := &process{name: name, cmd: cmd, out: &testutil.Buffer{}, exited: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() { p.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.out.String())
		}
	})
	return p
}

// stop stops the process (SIGTERM, then SIGKILL after 10 s) and waits for
// it to exit; the clean-up of startProcess then has nothing left to do.
func (p *process) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	var err error
	select {
	case err = <-p.exited:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		err = <-p.exited
	}
	p.exited <- err
}

// waitFor is testutil.WaitFor that fails at once if the process exits.
func (p *process) waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, timeout, what, func() bool {
		select {
		case err := <-p.exited:
			p.exited <- err
			t.Fatalf("%s exited: %v\n%s", p.name, err, p.out.String())
		default:
		}
		return cond()
	})
}

// listening reports whether something accepts TCP connections at addr.
func listening(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// loopbackAddr is 127.0.0.1:port.
func loopbackAddr(port int) *net.TCPAddr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}
}

// itoa is strconv.Itoa, for argument lists.
func itoa(i int) string { return strconv.Itoa(i) }
