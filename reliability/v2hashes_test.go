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
// victim is a leecher in a child process (this test binary, run again);
// the test fails when the child survives, i.e. when upstream fixed it.
func TestV1591HashesMessageCrashes(t *testing.T) {
	if os.Getenv(hashesCrashEnv) != "" {
		hashesVictim(t)
		return
	}
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestV1591HashesMessageCrashes$", "-test.count=1")
	cmd.Env = append(os.Environ(), hashesCrashEnv+"=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err == nil || !strings.Contains(out.String(), "panic: not set") {
		t.Fatalf("the leecher survived a hashes message (exit %v): upstream may have fixed it\n%s", err, tail(out.String(), 2000))
	}
	t.Logf("the leecher died: %v", err)
}

// hashesVictim adds a v1 torrent to a leecher, connects to it as a plain
// peer and sends one hashes message; it returns (and the child passes)
// only if the leecher survives it for a while.
func hashesVictim(t *testing.T) {
	spec := testutil.Spec{Name: "v1.bin", PieceLength: pieceLength, Length: 2 * mib, Seed: 5}
	mi, err := spec.MetaInfo()
	if err != nil {
		t.Fatal(err)
	}
	cl := testutil.NewLeecher(t, nil)
	tor := testutil.AddTorrent(t, cl, mi)
	tor.DownloadAll() // a client that wants nothing refuses connections
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
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.Copy(io.Discard, conn)
}

// tail returns the last n bytes of s.
func tail(s string, n int) string { return s[max(0, len(s)-n):] }
