package host

import (
	"errors"
	"net"
	"sync"
	"time"

	"github.com/anacrolix/dht/v2"
	"github.com/anacrolix/log"
	"github.com/anacrolix/torrent"
)

// DHTRetry is how long a DHT server of a client configured by Apply keeps
// the failure of its starting-nodes lookup before it looks them up again.
const DHTRetry = time.Minute

// noNode is the starting node a failed lookup gives the DHT server: one it
// never contacts, since its traversals drop an address with port 0
// (validNodeAddr in anacrolix/dht v2.23.0) before querying it.
var noNode = dht.NewAddr(&net.UDPAddr{IP: net.IPv4zero, Port: 0})

// errNoStartingNodes is what a lookup that found no node is logged with.
var errNoStartingNodes = errors.New("the lookup found none")

// backoffDHT makes each DHT server that cfg's client creates find its
// starting nodes through a startingNodes.
//
// v1.59.1's Torrent.dhtAnnouncer starts a new announce as soon as one fails
// (anacrolix/torrent issue 1029, fixed in v1.61.0 by a wait), and an
// announce fails at once when the server's routing table is empty and its
// StartingNodes lookup fails, as it does on a machine with no network or no
// DNS for the default bootstrap names. An offline client spins on it: about
// two CPU cores and one Warning line per turn, 10 MB/s of log. The server's
// table maintainer, meanwhile, bootstraps once a minute, and each failed
// bootstrap leaves a traversal goroutine behind for good (anacrolix/dht
// v2.23.0 does not stop it when the lookup fails).
//
// A startingNodes never fails: when the lookup fails or finds nothing, it
// returns noNode. The announce then succeeds without contacting anyone, and
// the announcer waits its usual five minutes (or until the torrent closes)
// before the next; the bootstrap succeeds the same way and the maintainer
// waits 30 minutes before the next. Nothing is sent, logged by the library
// or left running. The first failure of a series is logged once at Warning
// through the server's logger, and the recovery at Info.
//
// A ConfigureAnacrolixDhtServer already in cfg runs first, and the
// startingNodes wraps the StartingNodes it leaves.
func backoffDHT(cfg *torrent.ClientConfig) {
	prev := cfg.ConfigureAnacrolixDhtServer
	cfg.ConfigureAnacrolixDhtServer = func(sc *dht.ServerConfig) {
		if prev != nil {
			prev(sc)
		}
		if sc.StartingNodes == nil {
			return
		}
		sc.StartingNodes = newStartingNodes(sc.StartingNodes, sc.Logger, DHTRetry).get
	}
}

// startingNodes wraps a DHT server's starting-nodes lookup so that it
// never fails: a lookup that fails or finds no node returns noNode, and
// for the retry period after it, lookups return noNode at once without
// looking up. Safe for concurrent use.
type startingNodes struct {
	lookup dht.StartingNodesGetter // never changes
	logger log.Logger              // never changes; zero for none
	retry  time.Duration           // never changes

	mu      sync.Mutex // guards the fields below
	failing bool       // the last lookup failed
	retryAt time.Time  // no lookup before then
}

func newStartingNodes(lookup dht.StartingNodesGetter, logger log.Logger, retry time.Duration) *startingNodes {
	return &startingNodes{lookup: lookup, logger: logger, retry: retry}
}

// get is a dht.StartingNodesGetter. It looks up with no lock held, so
// concurrent calls after the retry period all look up.
func (s *startingNodes) get() ([]dht.Addr, error) {
	s.mu.Lock()
	cached := time.Now().Before(s.retryAt)
	s.mu.Unlock()
	if cached {
		return []dht.Addr{noNode}, nil
	}
	addrs, err := s.lookup()
	s.mu.Lock()
	wasFailing := s.failing
	s.failing = err != nil || len(addrs) == 0
	if s.failing {
		s.retryAt = time.Now().Add(s.retry)
	}
	failing := s.failing
	s.mu.Unlock()
	switch {
	case failing && !wasFailing:
		if err == nil {
			err = errNoStartingNodes
		}
		s.logf(log.Warning, "no DHT starting nodes (%v): the DHT finds no peers until they are found; looking again at most every %v", err, s.retry)
	case !failing && wasFailing:
		s.logf(log.Info, "found %d DHT starting nodes", len(addrs))
	}
	if failing {
		return []dht.Addr{noNode}, nil
	}
	return addrs, nil
}

func (s *startingNodes) logf(level log.Level, format string, args ...any) {
	if !s.logger.IsZero() {
		s.logger.Levelf(level, format, args...)
	}
}
