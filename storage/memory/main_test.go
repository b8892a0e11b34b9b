package memory_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/memtorrent/memtorrent/internal/testutil"
)

// TestMain runs the tests of both packages, memory and memory_test, and
// then checks that no goroutine is left.
func TestMain(m *testing.M) {
	testutil.VerifyTestMain(m,
		// The library's own suite (TestLeecherStorage) runs its clients with
		// uTP on; a uTP dial in flight when a client closes ends on its own
		// later. Our clients never use uTP.
		goleak.IgnoreAnyFunction("github.com/anacrolix/go-libutp.(*Conn).waitForConnect"),
		goleak.IgnoreAnyFunction("github.com/anacrolix/go-libutp.(*Conn).waitForConnect.func1"),
		goleak.IgnoreAnyFunction("github.com/anacrolix/torrent.(*Client).outgoingConnection"),
	)
}
