package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/memtorrent/memtorrent/internal/testutil"
)

// Limits of TestServeOfflineIdles (issue 11): v1.59.1 with no network spun
// on failed DHT announces, about 6 CPU-seconds and 76 MB of log in 20 s.
const (
	offlineIdle     = 20 * time.Second
	offlineMaxCPU   = 200 * time.Millisecond
	offlineMaxBytes = 10 << 10
)

// TestServeOfflineIdles runs the memtorrent binary serving a magnet in a
// network namespace that holds only loopback, as on a machine with no
// network: the DHT's bootstrap names cannot resolve (the resolver's address
// has no route) and nothing leaves the machine. Once the DHT has found no
// starting nodes, the server, idle for offlineIdle, must use less than
// offlineMaxCPU of CPU time and write less than offlineMaxBytes of log in
// all. It needs root (unshare -n) and ip; it skips without them, and fails
// under CI=true.
func TestServeOfflineIdles(t *testing.T) {
	unshare := testutil.RequireProgram(t, "unshare", "util-linux")
	testutil.RequireProgram(t, "ip", "iproute2")
	if out, err := exec.Command(unshare, "-n", "sh", "-c", "ip link set lo up").CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("unshare -n (needs root): %v: %s", err, out)
		}
		t.Skipf("unshare -n (needs root): %v: %s", err, out)
	}
	const magnet = "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&dn=offline.mkv"
	// sh sets up loopback and execs the server, which keeps sh's pid.
	cmd := exec.Command(unshare, "-n", "sh", "-c", `ip link set lo up && exec "$0" "$@"`,
		binary(t), "serve", "-listen", "127.0.0.1:0", "-peer-port", "0", magnet)
	stderr := &countingBuffer{}
	cmd.Stderr = stderr
	t.Cleanup(func() { // runs after the child's: the process has exited
		if t.Failed() {
			t.Logf("memtorrent stderr (%d bytes), start:\n%s", stderr.len(), stderr.head())
		}
	})
	s := &process{Child: testutil.StartChild(t, cmd, nil)}
	if line := s.waitLine(t, regexp.MustCompile(`^(.*)$`)); !strings.HasPrefix(line, "listening on ") {
		t.Fatalf("first line %q; want listening on ...", line)
	}
	// The lookup fails at once in the namespace: no route to any resolver.
	testutil.WaitFor(t, 30*time.Second, "the DHT to find no starting nodes", func() bool {
		return strings.Contains(stderr.head(), "starting nodes")
	})
	pid := cmd.Process.Pid
	cpu0 := cpuTime(t, pid)
	select {
	case <-s.Exited:
		t.Fatalf("memtorrent ended while idle: %v", s.Err())
	case <-time.After(offlineIdle):
	}
	cpu := cpuTime(t, pid) - cpu0
	logged := stderr.len()
	t.Logf("idle %v offline: %v of CPU, %d bytes of log in all", offlineIdle, cpu, logged)
	if cpu >= offlineMaxCPU {
		t.Errorf("CPU time idle for %v: got %v; want less than %v", offlineIdle, cpu, offlineMaxCPU)
	}
	if logged >= offlineMaxBytes {
		t.Errorf("log written: got %d bytes; want less than %d", logged, offlineMaxBytes)
	}
	s.stop(t, os.Interrupt, 10*time.Second)
}

// cpuTime returns the user and system CPU time of process pid so far, from
// /proc/<pid>/stat, in clock ticks of 1/100 s (USER_HZ on Linux).
func cpuTime(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command name, which is in parentheses: state is
	// field 3, utime 14 and stime 15.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		t.Fatalf("/proc/%d/stat: %q has too few fields", pid, s)
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			t.Fatalf("/proc/%d/stat: %q: %v", pid, s, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}

// countingBuffer is an io.Writer that counts what is written and keeps the
// first 64 KiB. Safe for concurrent use.
type countingBuffer struct {
	mu  sync.Mutex // guards the fields below
	n   int
	buf []byte
}

func (b *countingBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n += len(p)
	if room := 8<<10 - len(b.buf); room > 0 {
		b.buf = append(b.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (b *countingBuffer) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n
}

func (b *countingBuffer) head() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// TestDHTFlag checks -dht: on by default, -dht=false sets NoDHT in serve's
// client configuration, and demo (loopback only, no DHT) has no such flag.
func TestDHTFlag(t *testing.T) {
	for _, tc := range []struct {
		args      []string
		wantNoDHT bool
	}{
		{[]string{"serve", "x"}, false},
		{[]string{"serve", "-dht", "x"}, false},
		{[]string{"serve", "-dht=false", "x"}, true},
		{[]string{"serve", "x", "-dht=false"}, true},
	} {
		cfg, err := parseArgs(tc.args, io.Discard)
		if err != nil {
			t.Fatalf("parseArgs(%q): %v", tc.args, err)
		}
		if got := serveClientConfig(cfg, newLogger(cfg)).NoDHT; got != tc.wantNoDHT {
			t.Errorf("%q: NoDHT got %v; want %v", tc.args, got, tc.wantNoDHT)
		}
	}
	if _, err := parseArgs([]string{"demo", "-dht=false"}, io.Discard); err == nil {
		t.Error("demo -dht=false: got no error; want an unknown flag")
	}
}
