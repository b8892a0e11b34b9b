package reliability

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/Shopify/toxiproxy/v2/toxics"
	"github.com/rs/zerolog"
)

// line is what a proxy does to one seeder's TCP connections: the network
// between a far-away seeder and the leecher. The leecher knows only the
// proxy's address, and uTP is off, so every byte passes the proxy.
type line struct {
	latency time.Duration // round trip, half each way
	jitter  time.Duration // plus or minus, on each packet of each way
	rate    int64         // bytes per second from the seeder to the leecher; 0 is unlimited
	// stallAt and stallFor: from stallAt after the scenario's start, the
	// line delivers nothing towards the leecher for stallFor; the
	// connections stay open and what the seeder sends is held, as on a
	// congested link. stallFor 0 means never.
	stallAt, stallFor time.Duration
}

func (l line) String() string {
	s := fmt.Sprintf("%v±%v", l.latency, l.jitter)
	if l.rate > 0 {
		s += fmt.Sprintf(", %d KB/s", l.rate/1000)
	}
	if l.stallFor > 0 {
		s += fmt.Sprintf(", stalled %v at %v", l.stallFor, l.stallAt)
	}
	return s
}

// stallToxicType is the toxiproxy type name of stallToxic.
const stallToxicType = "memtorrent_stall"

var registerStallToxic sync.Once

// stallToxic holds every chunk that passes it between From and Until (Unix
// milliseconds) until Until, keeping the order and the connection.
// toxiproxy's own timeout toxic drops the data instead, and a bandwidth
// toxic of rate 0 is unlimited.
type stallToxic struct {
	From  int64 `json:"from"`
	Until int64 `json:"until"`
}

func (s *stallToxic) Pipe(stub *toxics.ToxicStub) {
	from, until := time.UnixMilli(s.From), time.UnixMilli(s.Until)
	for {
		select {
		case <-stub.Interrupt:
			return
		case c := <-stub.Input:
			if c == nil {
				stub.Close()
				return
			}
			if now := time.Now(); !now.Before(from) && now.Before(until) {
				timer := time.NewTimer(until.Sub(now))
				select {
				case <-timer.C:
				case <-stub.Interrupt:
					timer.Stop()
					stub.Output <- c
					return
				}
			}
			stub.Output <- c
		}
	}
}

// startLine starts a proxy on 127.0.0.1 to upstream that behaves as l,
// its stall counted from origin, and returns its address. The proxy stops
// at the end of the test.
func startLine(t *testing.T, name string, l line, upstream net.Addr, origin time.Time) *net.TCPAddr {
	t.Helper()
	registerStallToxic.Do(func() {
		toxics.Register(stallToxicType, new(stallToxic))
		// toxiproxy's toxics log through zerolog's global logger.
		zerolog.SetGlobalLevel(zerolog.WarnLevel)
	})
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	p := toxiproxy.NewProxy(srv, name, "127.0.0.1:0", upstream.String())
	if err := p.Start(); err != nil {
		t.Fatalf("starting the proxy of %s: %v", name, err)
	}
	t.Cleanup(p.Stop)
	add := func(typ, stream string, attrs string) {
		t.Helper()
		js := fmt.Sprintf(`{"name":%q,"type":%q,"stream":%q,"attributes":{%s}}`, typ+"_"+stream, typ, stream, attrs)
		if _, err := p.Toxics.AddToxicJson(strings.NewReader(js)); err != nil {
			t.Fatalf("proxy of %s: adding toxic %s: %v", name, js, err)
		}
	}
	half, jitter := l.latency.Milliseconds()/2, l.jitter.Milliseconds()
	for _, dir := range []string{"upstream", "downstream"} {
		if half > 0 || jitter > 0 {
			add("latency", dir, fmt.Sprintf(`"latency":%d,"jitter":%d`, half, jitter))
		}
	}
	if l.rate > 0 {
		add("bandwidth", "downstream", fmt.Sprintf(`"rate":%d`, max(1, l.rate/1000)))
	}
	if l.stallFor > 0 {
		from := origin.Add(l.stallAt)
		add(stallToxicType, "downstream", fmt.Sprintf(`"from":%d,"until":%d`, from.UnixMilli(), from.Add(l.stallFor).UnixMilli()))
	}
	addr, err := net.ResolveTCPAddr("tcp", p.Listen)
	if err != nil {
		t.Fatalf("proxy of %s listens on %q: %v", name, p.Listen, err)
	}
	return addr
}
