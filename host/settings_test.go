package host_test

import (
	"bytes"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/anacrolix/torrent"
	pp "github.com/anacrolix/torrent/peer_protocol"

	"github.com/memtorrent/memtorrent/host"
	"github.com/memtorrent/memtorrent/internal/baseline"
	"github.com/memtorrent/memtorrent/internal/testutil"
)

func TestApplySetsValues(t *testing.T) {
	cfg := torrent.NewDefaultClientConfig()
	cfg.ListenPort = 4321
	host.Apply(cfg)
	if got, want := cfg.KeepAliveTimeout, host.KeepAliveTimeout; got != want {
		t.Errorf("KeepAliveTimeout: got %v; want %v", got, want)
	}
	if got, want := cfg.MaxAllocPeerRequestDataPerConn, host.MaxAllocPeerRequestDataPerConn; got != want {
		t.Errorf("MaxAllocPeerRequestDataPerConn: got %d; want %d", got, want)
	}
	if cfg.Callbacks.ReadExtendedHandshake == nil {
		t.Error("Callbacks.ReadExtendedHandshake: got nil; want the reqq cap")
	}
	if got, want := cfg.ListenPort, 4321; got != want {
		t.Errorf("ListenPort: got %d; want %d (Apply must leave other fields alone)", got, want)
	}
	// The bound on a lost writer wake-up must stay below what a player
	// buffers and what TestStreamsDoNotStall allows per read.
	if cfg.KeepAliveTimeout <= 0 || cfg.KeepAliveTimeout > 2*time.Second {
		t.Errorf("KeepAliveTimeout: got %v; want in (0, 2s]", cfg.KeepAliveTimeout)
	}
	// 1024 requests (the client's own queue) of 16 KiB.
	if cfg.MaxAllocPeerRequestDataPerConn < 1024*16<<10 {
		t.Errorf("MaxAllocPeerRequestDataPerConn: got %d; want at least %d", cfg.MaxAllocPeerRequestDataPerConn, 1024*16<<10)
	}
}

func TestApplyCapsRequestQueue(t *testing.T) {
	tests := []struct {
		reqq, want int
	}{
		{0, 0}, // not advertised: the client keeps its default
		{1, 1},
		{250, 250},
		{host.MaxPeerRequests, host.MaxPeerRequests},
		{511, host.MaxPeerRequests},
		{512, host.MaxPeerRequests}, // Transmission 3.00
		{1024, host.MaxPeerRequests},
	}
	for _, tt := range tests {
		for _, withPrev := range []bool{false, true} {
			t.Run(strconv.Itoa(tt.reqq)+map[bool]string{false: "", true: "/prev"}[withPrev], func(t *testing.T) {
				cfg := torrent.NewDefaultClientConfig()
				var prevSaw []int
				if withPrev {
					cfg.Callbacks.ReadExtendedHandshake = func(_ *torrent.PeerConn, msg *pp.ExtendedHandshakeMessage) {
						prevSaw = append(prevSaw, msg.Reqq)
					}
				}
				host.Apply(cfg)
				msg := pp.ExtendedHandshakeMessage{Reqq: tt.reqq}
				cfg.Callbacks.ReadExtendedHandshake(nil, &msg)
				if msg.Reqq != tt.want {
					t.Errorf("reqq after callback: got %d; want %d", msg.Reqq, tt.want)
				}
				if withPrev && (len(prevSaw) != 1 || prevSaw[0] != tt.reqq) {
					t.Errorf("previous callback saw %v; want [%d]", prevSaw, tt.reqq)
				}
			})
		}
	}
}

func TestApplyKeepsCapAfterPreviousCallback(t *testing.T) {
	cfg := torrent.NewDefaultClientConfig()
	cfg.Callbacks.ReadExtendedHandshake = func(_ *torrent.PeerConn, msg *pp.ExtendedHandshakeMessage) {
		msg.Reqq = 4096
	}
	host.Apply(cfg)
	msg := pp.ExtendedHandshakeMessage{Reqq: 100}
	cfg.Callbacks.ReadExtendedHandshake(nil, &msg)
	if got, want := msg.Reqq, host.MaxPeerRequests; got != want {
		t.Errorf("reqq: got %d; want %d", got, want)
	}
}

// reqqStatus matches the request-queue line of Client.WriteStatus:
// "reqq: <requests>+<cancelled>/(<nominal max>/<PeerMaxRequests>):...".
var reqqStatus = regexp.MustCompile(`reqq: \d+\+\d+/\(\d+/(\d+)\)`)

// TestApplyCapsPeerMaxRequests checks the cap on a real connection: an
// anacrolix seeder advertises reqq 1024, and the leecher's PeerConn must end
// up with PeerMaxRequests = MaxPeerRequests under Apply (and 1024 without).
// The value is read through Client.WriteStatus, which holds the client lock.
func TestApplyCapsPeerMaxRequests(t *testing.T) {
	spec := testutil.Spec{Name: "reqq.bin", Length: 1 << 20, PieceLength: 256 << 10}
	seeder := testutil.NewSeeder(t, spec)
	tests := []struct {
		name  string
		apply bool
		want  int
	}{
		{"Apply", true, host.MaxPeerRequests},
		{"default", false, 1024}, // what an anacrolix v1.59.1 peer advertises
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := baseline.New()
			t.Cleanup(func() { st.Close() })
			leecher := testutil.NewLeecher(t, st, func(cfg *torrent.ClientConfig) {
				if tt.apply {
					host.Apply(cfg)
				} else {
					// testutil.Config applies settings: take the cap off.
					cfg.Callbacks.ReadExtendedHandshake = nil
				}
				cfg.DropMutuallyCompletePeers = false // keep the connection to read its state
			})
			tor := testutil.AddTorrent(t, leecher, seeder.MetaInfo, seeder)
			tor.DownloadAll() // a torrent that wants nothing dials no peer
			want := strconv.Itoa(tt.want)
			var last string
			defer func() {
				if t.Failed() {
					t.Logf("last leecher status:\n%s", last)
				}
			}()
			testutil.WaitFor(t, 10*time.Second, "the leecher's PeerMaxRequests to be "+want, func() bool {
				var buf bytes.Buffer
				leecher.WriteStatus(&buf)
				last = buf.String()
				m := reqqStatus.FindStringSubmatch(last)
				return m != nil && m[1] == want
			})
		})
	}
}

func TestLoopback(t *testing.T) {
	cfg := torrent.NewDefaultClientConfig()
	host.Loopback(cfg)
	if got := cfg.ListenHost("tcp4"); got != "127.0.0.1" {
		t.Errorf("ListenHost: got %q; want 127.0.0.1", got)
	}
	if cfg.ListenPort != 0 || !cfg.NoDHT || !cfg.DisableTrackers || !cfg.DisablePEX || !cfg.DisableUTP ||
		!cfg.DisableIPv6 || !cfg.NoDefaultPortForwarding || !cfg.DisableWebtorrent || !cfg.DisableWebseeds {
		t.Errorf("Loopback left a network feature on: %+v", cfg)
	}
	if cfg.HeaderObfuscationPolicy.Preferred || cfg.HeaderObfuscationPolicy.RequirePreferred {
		t.Errorf("HeaderObfuscationPolicy: got %+v; want plaintext", cfg.HeaderObfuscationPolicy)
	}
}
