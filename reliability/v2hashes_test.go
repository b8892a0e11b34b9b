package reliability

import (
	"bytes"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/anacrolix/torrent"
	pp "github.com/anacrolix/torrent/peer_protocol"

	"github.com/memtorrent/memtorrent/internal/testutil"
)

// hashesCrashEnv makes the test binary run TestV1591HashesMessageCrashes's
// victim instead of the test.
const hashesCrashEnv = "MEMTORRENT_HASHES_VICTIM"

// TestV1591HashesMessageCrashes is a canary: in anacrolix/torrent v1.59.1
// one BEP 52 "hashes" message (type 22) from any peer, on a v1 torrent,
// panics the client's read loop (PeerConn.onReadHashes ->
// Torrent.getFileByPiecesRoot -> Option.Unwrap of a v1 file's unset pieces
// root: "not set"), and nothing recovers it: the whole process dies. The
// victim is a leecher in a child process (this test binary, run again).
// Without host.Apply's ReadMessage callback it must die (else upstream
// fixed it and the workaround can go); with it, it must live.
func TestV1591HashesMessageCrashes(t *testing.T) {
	if mode := os.Getenv(hashesCrashEnv); mode != "" {
		hashesVictim(t, mode == "applied")
		return
	}
	for _, applied := range []bool{false, true} {
		mode := map[bool]string{false: "plain", true: "applied"}[applied]
		t.Run(mode, func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestV1591HashesMessageCrashes$", "-test.count=1")
			cmd.Env = append(os.Environ(), hashesCrashEnv+"="+mode)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			died := err != nil && strings.Contains(out.String(), "panic: not set")
			switch {
			case !applied && !died:
				t.Fatalf("a client without the workaround survived a hashes message (exit %v): upstream may have fixed it\n%s", err, tail(out.String(), 2000))
			case applied && err != nil:
				t.Fatalf("a client with host.Apply failed after a hashes message: %v\n%s", err, tail(out.String(), 2000))
			}
		})
	}
}

// hashesVictim adds a v1 torrent to a leecher (configured by
// testutil.Config, with host.Apply's ReadMessage callback removed unless
// applied), connects to it as a plain peer and sends one hashes message;
// it returns (and the child passes) only if the leecher survives it for a
// while.
func hashesVictim(t *testing.T, applied bool) {
	spec := testutil.Spec{Name: "v1.bin", PieceLength: pieceLength, Length: 2 * mib, Seed: 5}
	mi, err := spec.MetaInfo()
	if err != nil {
		t.Fatal(err)
	}
	cl := testutil.NewLeecher(t, nil, func(cfg *torrent.ClientConfig) {
		cfg.AlwaysWantConns = true
		if !applied {
			cfg.Callbacks.ReadMessage = nil
		}
	})
	tor := testutil.AddTorrent(t, cl, mi)
	conn, err := net.Dial("tcp", cl.ListenAddrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ih := tor.InfoHash()
	hs := append([]byte("\x13BitTorrent protocol"), make([]byte, 8)...)
	hs = append(hs, ih[:]...)
	hs = append(hs, []byte("-XX0000-000000000000")...)
	if _, err := conn.Write(hs); err != nil {
		t.Fatal(err)
	}
	reply := make([]byte, len(hs))
	conn.SetDeadline(time.Now().Add(testutil.SetupTimeout))
	if _, err := io.ReadFull(conn, reply); err != nil {
		t.Fatalf("reading the leecher's handshake: %v", err)
	}
	msg, err := pp.Message{Type: pp.Hashes, Length: 1, Hashes: [][32]byte{{}}}.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(msg); err != nil {
		t.Fatal(err)
	}
	// The panic, if any, comes at once; a read waits for it.
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	io.Copy(io.Discard, conn)
}

// tail returns the last n bytes of s.
func tail(s string, n int) string { return s[max(0, len(s)-n):] }
