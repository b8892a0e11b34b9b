package host_test

import (
	"crypto/sha256"
	"encoding/hex"
	"go/ast"
	"go/parser"
	"go/printer"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The canaries of this file fail when anacrolix/torrent changes code that a
// workaround of this package depends on, so that an upgrade shows which
// workaround to re-check and perhaps drop. Behavioural canaries live beside
// their workarounds (TestV1591RetriesDHTAnnounceAtOnce, TestV1591ReaderRetryMessages,
// TestV1591UpdateCompletionAfterDropPanics, stream's TestReaderStop).

// upstreamDir returns the directory of the anacrolix/torrent module this
// build uses.
func upstreamDir(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/anacrolix/torrent").Output()
	if err != nil {
		t.Fatalf("go list -m github.com/anacrolix/torrent: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// funcFingerprint returns the first 12 hex digits of the SHA-256 of the
// gofmt-printed source of function name (with receiver type recv, "" for
// none) in file of the upstream module, or "" if there is no such function.
func funcFingerprint(t *testing.T, file, recv, name string) string {
	t.Helper()
	path := filepath.Join(upstreamDir(t), file)
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, src, parser.SkipObjectResolution)
	if err != nil {
		t.Fatalf("parsing %s: %v", path, err)
	}
	for _, d := range f.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok || fd.Name.Name != name || receiverType(fd) != recv {
			continue
		}
		fd.Doc = nil
		var b strings.Builder
		if err := printer.Fprint(&b, fset, fd); err != nil {
			t.Fatalf("printing %s.%s: %v", recv, name, err)
		}
		sum := sha256.Sum256([]byte(b.String()))
		return hex.EncodeToString(sum[:])[:12]
	}
	return ""
}

func receiverType(fd *ast.FuncDecl) string {
	if fd.Recv == nil || len(fd.Recv.List) == 0 {
		return ""
	}
	typ := fd.Recv.List[0].Type
	if star, ok := typ.(*ast.StarExpr); ok {
		typ = star.X
	}
	if id, ok := typ.(*ast.Ident); ok {
		return id.Name
	}
	return "?"
}

// TestV1591WorkaroundCode fails when the upstream code behind a workaround
// changed. Re-check the workaround against the new code (the test that
// reproduces it, where there is one, says whether it is still needed), then
// update the fingerprint.
func TestV1591WorkaroundCode(t *testing.T) {
	for _, tc := range []struct {
		workaround       string
		file, recv, name string
		fingerprint      string
	}{
		{
			"Apply's 1 s KeepAliveTimeout: the message writer subscribes to its wake-up only after dropping the lock, so a wake-up in between is lost until the keep-alive timer (docs/stalls.md; reproducer: go test ./host -run TestStallRepro -stall.streams=200 -stall.keepalive=1m)",
			"peer-conn-msg-writer.go", "peerConnMsgWriter", "run", "395937b623dd",
		},
		{
			"Apply's 16 MiB MaxAllocPeerRequestDataPerConn: the request server blocks on the per-connection allocation limit and never reads the requests that would release it",
			"peerconn.go", "PeerConn", "peerRequestServer", "f33082ca97f7",
		},
		{
			"Apply's 16 MiB MaxAllocPeerRequestDataPerConn (the other half: the reservation wait)",
			"peerconn.go", "PeerConn", "servePeerRequest", "31326e7c6dd6",
		},
		{
			"Apply's reqq cap of 500 (Transmission 3.00 rejects its 512th request; the client then waits for an unchoke that never comes)",
			"peerconn.go", "PeerConn", "remoteRejectedRequest", "19affe781d90",
		},
		{
			"Client.Drop: a completion update of a dropped torrent whose request order is shared panics (Key should have been added already)",
			"torrent-piece-request-order.go", "Torrent", "updatePieceRequestOrderPiece", "3a1d6f446c47",
		},
		{
			"storage/memory's unknown completion of evicted pieces no readahead covers: a piece found incomplete starts a request update on every connection whose peer has it, even with requests outstanding, but a piece of unknown completion does not",
			"torrent.go", "Torrent", "onIncompletePiece", "74f0766b09c3",
		},
		{
			"storage/memory's unknown completion of evicted pieces (the other half: a piece of unknown completion is never requested, so it starts no update)",
			"piece.go", "Piece", "ignoreForRequests", "e51f56ddd9ac",
		},
		{
			"storage/memory's unknown completion of evicted pieces (the cost it avoids: an update that adds no request sets the connection's request budget, nominalMaxRequests, to one)",
			"requesting.go", "PeerConn", "applyRequestState", "139487e7fac7",
		},
		{
			"storage/memory's errors for missing data (io.ErrUnexpectedEOF, never (0, nil), which the wrapper panics on)",
			"storage/wrappers.go", "Piece", "ReadAt", "ef04dd16c9b3",
		},
		{
			"server's checkedStorage: a torrent whose storage fails to open forgets its metadata and fetches it again, for ever",
			"torrent.go", "Torrent", "maybeCompleteMetadata", "16485eae77e6",
		},
		{
			"Options.LeafHashes: the client asks peers only for piece-layer hashes, and only when it lacks them, so the host sends its own block-layer requests",
			"peerconn.go", "PeerConn", "requestMissingHashes", "224783a06395",
		},
		{
			"Options.LeafHashes: the client sets the v2 upgrade bit when it sends a hybrid torrent's v1 info hash, and a peer that answers with the v2 one upgrades the connection, which the host's tap recognises by that answer",
			"client.go", "Client", "initiateHandshakes", "fb85c3bedc42",
		},
		{
			"the tap's top-ups (topup.go): a connection plans new requests only when none is outstanding",
			"peerconn.go", "PeerConn", "isLowOnRequests", "eeea661b88ef",
		},
		{
			"the tap's top-ups (topup.go): a plan adds at most twice what the last one added, up to PeerMaxRequests",
			"peerconn.go", "PeerConn", "nominalMaxRequests", "aaa4f77c14c2",
		},
		{
			"the tap's top-ups (topup.go): a suggest message is a reason to plan again and nothing else, and a fast-extension message on a connection without the extension closes it",
			"peerconn.go", "PeerConn", "mainReadLoop", "437e9a30c3e7",
		},
		{
			"the early fetch (early.go): the client asks a piece's chunks in order from its first undirtied one, whatever offset a reader waits at",
			"torrent.go", "Torrent", "iterUndirtiedRequestIndexesInPiece", "a872c409e109",
		},
		{
			"the early fetch (early.go): among requests of equal priority the client asks the lowest request index first",
			"requesting.go", "desiredPeerRequests", "lessByValue", "32257055b9fd",
		},
		{
			"the early fetch (early.go): a chunk the client did not ask of a connection is an error that closes it, so the tap keeps the answers to its own requests from the client",
			"peerconn.go", "PeerConn", "checkReceivedChunk", "b0b104d0c51d",
		},
	} {
		got := funcFingerprint(t, tc.file, tc.recv, tc.name)
		if got != tc.fingerprint {
			t.Errorf("%s.%s in %s changed upstream (fingerprint %q, was %q): re-check %s",
				tc.recv, tc.name, tc.file, got, tc.fingerprint, tc.workaround)
		}
	}
}

// TestV1591HasNoDontHave fails once the library implements BEP 54 itself:
// then host's own lt_donthave sending must go, or peers get each message
// twice.
func TestV1591HasNoDontHave(t *testing.T) {
	dir := upstreamDir(t)
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(src), "lt_donthave") {
			t.Errorf("%s mentions lt_donthave: the library may now send it itself; re-check host's lt_donthave", filepath.Base(f))
		}
	}
}
