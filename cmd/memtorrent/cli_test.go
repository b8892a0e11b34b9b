package main

import (
	"errors"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"

	"github.com/memtorrent/memtorrent/internal/testutil"
)

// TestBadInput runs the binary on bad input: each run must exit with status
// 2 after one line on stderr that names the problem.
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.torrent")
	if err := os.WriteFile(garbage, []byte("not bencode"), 0o644); err != nil {
		t.Fatal(err)
	}
	bigPieces := writeTorrentFile(t, dir, 4<<20)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyAddr := busy.Addr().String()
	busyPort := strconv.Itoa(busy.Addr().(*net.TCPAddr).Port)
	const ih = "0123456789abcdef0123456789abcdef01234567"
	for _, tc := range []struct {
		name string
		args []string
		want string // in the message
	}{
		{"no command", nil, "missing command"},
		{"unknown command", []string{"play"}, `unknown command "play"`},
		{"unknown flag", []string{"serve", "-bogus", ih}, "flag provided but not defined: -bogus"},
		{"unknown demo flag", []string{"demo", "--peer-port", "1"}, "flag provided but not defined: -peer-port"},
		{"bad size", []string{"serve", "-capacity", "lots", ih}, `invalid value "lots" for flag -capacity`},
		{"zero capacity", []string{"serve", "-capacity", "0", ih}, "-capacity must be more than 0"},
		{"bad verify", []string{"serve", "-verify", "sometimes", ih}, `-verify "sometimes": want playhead or strict`},
		{"bad log level", []string{"demo", "-log-level", "loud"}, "-log-level"},
		{"exposed without protection", []string{"serve", "-listen", "0.0.0.0:0"}, "-listen 0.0.0.0:0 is reachable from other machines"},
		{"wildcard port without protection", []string{"serve", "-listen", ":0"}, "-listen :0 is reachable from other machines"},
		{"bad allow", []string{"serve", "-allow", "10.0.0.0/33"}, "-allow"},
		{"bad auth", []string{"serve", "-auth", "nopassword"}, "-auth must be user:password"},
		{"missing torrent file", []string{"serve", filepath.Join(dir, "nope.torrent")}, "reading torrent file " + filepath.Join(dir, "nope.torrent")},
		{"unreadable torrent file", []string{"serve", garbage}, "reading torrent file " + garbage},
		{"invalid magnet", []string{"serve", "magnet:?xt=urn:btih:zz"}, "invalid magnet URI"},
		{"magnet without hash", []string{"serve", "magnet:?dn=x"}, "invalid magnet URI"},
		{"zero info hash", []string{"serve", strings.Repeat("0", 40)}, "invalid info hash"},
		{"capacity below a piece", []string{"serve", "-capacity", "1MiB", bigPieces}, "-capacity 1.0 MiB is smaller than one piece of " + bigPieces},
		{"serve capacity below a block", []string{"serve", "-listen", "127.0.0.1:0", "-capacity", "1KiB", ih}, "-capacity 1.0 KiB: host: making memory storage: memory: invalid options: capacity 1024 is smaller than one block"},
		{"demo capacity below a block", []string{"demo", "-listen", "127.0.0.1:0", "-capacity", "1KiB", "-size", "1MiB"}, "-capacity 1.0 KiB is smaller than one piece"},
		{"missing demo file", []string{"demo", "-file", filepath.Join(dir, "nope.mp4")}, "-file: open " + filepath.Join(dir, "nope.mp4")},
		{"demo file is a directory", []string{"demo", "-file", dir}, "is not a regular file"},
		{"demo with arguments", []string{"demo", "x.mp4"}, "demo takes no arguments"},
		{"HTTP port in use", []string{"demo", "-listen", busyAddr, "-size", "1MiB"}, "listening on " + busyAddr + ": address already in use"},
		{"peer port in use", []string{"serve", "-listen", "127.0.0.1:0", "-peer-port", busyPort, ih}, "peer port " + busyPort},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(binary(t), tc.args...)
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 {
				t.Errorf("exit: %v; want exit status 2\nstderr: %s", err, stderr.String())
			}
			msg := stderr.String()
			if strings.Count(msg, "\n") != 1 || !strings.HasPrefix(msg, "memtorrent: ") {
				t.Errorf("stderr %q; want one line starting memtorrent: ", msg)
			}
			if !strings.Contains(msg, tc.want) {
				t.Errorf("stderr %q; want it to contain %q", msg, tc.want)
			}
		})
	}
}

// writeTorrentFile writes a .torrent of one piece of pieceLength bytes
// into dir and returns its path.
func writeTorrentFile(t *testing.T, dir string, pieceLength int64) string {
	t.Helper()
	info := metainfo.Info{Name: "big.mkv", Length: pieceLength, PieceLength: pieceLength, Pieces: make([]byte, 20)}
	b, err := bencode.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "big.torrent")
	testutil.WriteTorrentFile(t, path, &metainfo.MetaInfo{InfoBytes: b})
	return path
}

// TestParseArgs checks the flags and their defaults.
func TestParseArgs(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want config
	}{
		{"serve defaults", []string{"serve", "a.torrent"}, config{
			Command: "serve", Sources: []string{"a.torrent"}, Capacity: 256 << 20, Listen: "127.0.0.1:8080",
			Readahead: 32 << 20, Verify: "playhead", LogLevel: slog.LevelWarn, PeerPort: 42069, Upload: true, DemoSize: 64 << 20,
			Idle: 5 * time.Minute, InfoTimeout: 30 * time.Second,
		}},
		{"serve flags after arguments", []string{"serve", "a.torrent", "--capacity", "1GiB", "b.torrent", "-upload=false",
			"-peer-port", "0", "-lookbehind", "64MB", "-readahead", "8MiB", "-verify", "strict", "-log-level", "debug", "-listen", ":9000",
			"-allow", "192.168.0.0/16, 10.1.2.3,::1", "-auth", "kodi:pass:word", "-token", "0123456789abcdef_-", "-idle", "90s",
			"-metadata-timeout", "5s", "-offline"}, config{
			Command: "serve", Sources: []string{"a.torrent", "b.torrent"}, Capacity: 1 << 30, Listen: ":9000",
			Lookbehind: 64e6, Readahead: 8 << 20, Verify: "strict", LogLevel: slog.LevelDebug, PeerPort: 0, Upload: false, DemoSize: 64 << 20,
			Allow: []netip.Prefix{netip.MustParsePrefix("192.168.0.0/16"), netip.MustParsePrefix("10.1.2.3/32"), netip.MustParsePrefix("::1/128")},
			Auth:  "kodi:pass:word", Token: "0123456789abcdef_-", Idle: 90 * time.Second, InfoTimeout: 5 * time.Second, Offline: true,
		}},
		{"lookbehind off", []string{"serve", "-lookbehind", "off", "x"}, config{
			Command: "serve", Sources: []string{"x"}, Capacity: 256 << 20, Listen: "127.0.0.1:8080", Lookbehind: -1,
			Readahead: 32 << 20, Verify: "playhead", LogLevel: slog.LevelWarn, PeerPort: 42069, Upload: true, DemoSize: 64 << 20,
			Idle: 5 * time.Minute, InfoTimeout: 30 * time.Second,
		}},
		{"demo", []string{"demo", "--file", "m.mp4", "-capacity", "64M"}, config{
			Command: "demo", Capacity: 64e6, Listen: "127.0.0.1:8080", Readahead: 32 << 20, Verify: "playhead", LogLevel: slog.LevelWarn,
			PeerPort: 42069, Upload: true, DemoFile: "m.mp4", DemoSize: 64 << 20,
			Idle: 5 * time.Minute, InfoTimeout: 30 * time.Second,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseArgs(tc.args, io.Discard)
			if err != nil {
				t.Fatalf("parseArgs: %v", err)
			}
			if !equalConfig(got, tc.want) {
				t.Errorf("got %+v; want %+v", got, tc.want)
			}
		})
	}
	if _, err := parseArgs([]string{"serve", "-h"}, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("serve -h: got %v; want flag.ErrHelp", err)
	}
}

func equalConfig(a, b config) bool {
	return strings.Join(a.Sources, "\x00") == strings.Join(b.Sources, "\x00") &&
		a.Command == b.Command && a.Capacity == b.Capacity && a.Listen == b.Listen &&
		a.Lookbehind == b.Lookbehind && a.Readahead == b.Readahead && a.LogLevel == b.LogLevel &&
		a.PeerPort == b.PeerPort && a.Upload == b.Upload && a.DemoFile == b.DemoFile && a.DemoSize == b.DemoSize &&
		slices.Equal(a.Allow, b.Allow) && a.Auth == b.Auth && a.Token == b.Token && a.Idle == b.Idle &&
		a.InfoTimeout == b.InfoTimeout && a.Offline == b.Offline && a.Verify == b.Verify
}
