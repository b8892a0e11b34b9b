package host

import (
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/anacrolix/dht/v2"
	"github.com/anacrolix/log"

	"go.uber.org/goleak"
)

var errNothingResolved = errors.New("nothing resolved")

// recordHandler is an anacrolix/log Handler that keeps the messages.
type recordHandler struct{ msgs *[]string }

func (h recordHandler) Handle(r log.Record) {
	*h.msgs = append(*h.msgs, r.Level.LogString()+" "+r.Msg.String())
}

// TestStartingNodes checks the lookups and results of a startingNodes over
// a lookup that fails locally, as dht.GlobalBootstrapAddrs does with no DNS,
// then succeeds, finds nothing and fails again: it never fails, gives noNode
// for a failure, looks up again only after the retry period, and logs the
// start and end of each series of failures once.
func TestStartingNodes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		node := dht.NewAddr(&net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 6881})
		var (
			calls atomic.Int64
			addrs []dht.Addr
			err   error
		)
		var msgs []string
		logger := log.NewLogger()
		logger.SetHandlers(recordHandler{&msgs})
		s := newStartingNodes(func() ([]dht.Addr, error) {
			calls.Add(1)
			return addrs, err
		}, logger.WithFilterLevel(log.Debug), time.Minute)

		steps := []struct {
			name      string
			addrs     []dht.Addr
			err       error
			after     time.Duration // since the previous step
			wantNode  bool          // the real node, not noNode
			wantCalls int64
			wantLog   string // the message logged, if any
		}{
			{"fails", nil, errNothingResolved, 0, false, 1, "WRN no DHT starting nodes (nothing resolved)"},
			{"cached", nil, errNothingResolved, time.Second, false, 1, ""},
			{"cached until the retry", nil, errNothingResolved, 58 * time.Second, false, 1, ""},
			{"fails again", nil, errNothingResolved, time.Second, false, 2, ""},
			{"found", []dht.Addr{node}, nil, time.Minute, true, 3, "INF found 1 DHT starting nodes"},
			{"not cached", []dht.Addr{node}, nil, 0, true, 4, ""},
			{"finds none", nil, nil, 0, false, 5, "WRN no DHT starting nodes (the lookup found none)"},
			{"cached after none", []dht.Addr{node}, nil, 0, false, 5, ""},
		}
		for _, st := range steps {
			time.Sleep(st.after)
			addrs, err = st.addrs, st.err
			msgs = nil
			got, gotErr := s.get()
			if gotErr != nil {
				t.Errorf("%s: got error %v; want nil", st.name, gotErr)
			}
			want := noNode
			if st.wantNode {
				want = node
			}
			if len(got) != 1 || got[0].String() != want.String() {
				t.Errorf("%s: got %v; want [%v]", st.name, got, want)
			}
			if n := calls.Load(); n != st.wantCalls {
				t.Errorf("%s: lookups: got %d; want %d", st.name, n, st.wantCalls)
			}
			switch {
			case st.wantLog == "" && len(msgs) != 0:
				t.Errorf("%s: logged %q; want nothing", st.name, msgs)
			case st.wantLog != "" && (len(msgs) != 1 || !strings.HasPrefix(msgs[0], st.wantLog)):
				t.Errorf("%s: logged %q; want one message starting %q", st.name, msgs, st.wantLog)
			}
		}
	})
}

// TestNoNodeIsNeverContacted checks what the workaround relies on, on a
// DHT server of anacrolix/dht v2.23.0 on 127.0.0.1 whose starting nodes
// lookup fails: given noNode, a bootstrap and an announce succeed at once
// and query no one, and nothing is left running after Close. If this
// fails, anacrolix/dht changed: revisit backoffDHT.
func TestNoNodeIsNeverContacted(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent()) // earlier tests may leave the library's goroutines
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64
	s, err := dht.NewServer(&dht.ServerConfig{
		Conn:       pc,
		NoSecurity: true,
		StartingNodes: newStartingNodes(func() ([]dht.Addr, error) {
			calls.Add(1)
			return nil, errNothingResolved
		}, log.Logger{}, time.Minute).get,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	stats, err := s.Bootstrap()
	if err != nil {
		t.Errorf("Bootstrap: %v; want nil", err)
	}
	if stats.NumAddrsTried != 0 {
		t.Errorf("Bootstrap tried %d addresses; want 0", stats.NumAddrsTried)
	}
	a, err := s.AnnounceTraversal([20]byte{1}, dht.AnnouncePeer(dht.AnnouncePeerOpts{Port: 6881}))
	if err != nil {
		t.Fatalf("AnnounceTraversal: %v; want nil", err)
	}
	defer a.Close()
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	for done := false; !done; {
		select {
		case _, ok := <-a.Peers:
			done = !ok
		case <-timer.C:
			t.Fatal("announce with noNode still running after 10 s; want it to end at once")
		}
	}
	if n := s.Stats().OutboundQueriesAttempted; n != 0 {
		t.Errorf("queries sent: got %d; want 0", n)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("lookups: got %d; want 1 (the second within the retry period)", n)
	}
}
