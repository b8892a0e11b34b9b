package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"

	"github.com/memtorrent/memtorrent/internal/swarm"
	"github.com/memtorrent/memtorrent/server"
	"github.com/memtorrent/memtorrent/storage/memory"
)

// This file is the leecher process of the streaming scenario: the bench
// runs its own executable again with leecherEnv set, so that the peak RSS
// it measures is the leecher's alone. The leecher is what a media server
// embedding memtorrent runs: a torrent client over memory storage
// (package server) on 127.0.0.1. It prints the HTTP
// address on standard output, serves until its standard input closes,
// and exits.

// leecherEnv holds the leecher's parameters, JSON-encoded.
const leecherEnv = "MEMTORRENT_BENCH_LEECHER"

// leecherConfig is what the bench tells its leecher.
type leecherConfig struct {
	MetaInfo     string `json:"metainfo"` // path of the .torrent
	Seeder       string `json:"seeder"`   // host:port
	Capacity     int64  `json:"capacity"`
	NoLookbehind bool   `json:"no_lookbehind"`
	ReadaheadCap int64  `json:"readahead_cap"`
	Verbose      bool   `json:"verbose"`
}

// leecherReport is what the leecher answers on /bench/mem.
type leecherReport struct {
	VmHWM      int64    `json:"vmhwm"`      // peak RSS, bytes
	Downloaded int64    `json:"downloaded"` // the torrent's BytesReadData
	Samples    []Sample `json:"samples"`
}

// leecherParams returns the raw parameters when this process is a leecher.
func leecherParams() (string, bool) {
	return os.LookupEnv(leecherEnv)
}

// runLeecher runs the leecher process and returns its exit status.
func runLeecher(raw string, stdin io.Reader, stdout, stderr io.Writer) int {
	if err := leech(raw, stdin, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "bench leecher:", err)
		return 1
	}
	return 0
}

func leech(raw string, stdin io.Reader, stdout, stderr io.Writer) (err error) {
	var p leecherConfig
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		return fmt.Errorf("parsing %s: %w", leecherEnv, err)
	}
	logger := newLogger(p.Verbose, stderr)
	mi, err := metainfo.LoadFromFile(p.MetaInfo)
	if err != nil {
		return err
	}
	seeder, err := net.ResolveTCPAddr("tcp", p.Seeder)
	if err != nil {
		return fmt.Errorf("seeder address: %w", err)
	}
	cfg := server.Config{Client: swarm.Config("", logger), Capacity: p.Capacity, Readahead: p.ReadaheadCap, Logger: logger}
	if p.NoLookbehind {
		cfg.Lookbehind = -1
	}
	s, err := server.New(cfg)
	if err != nil {
		return fmt.Errorf("creating the media server: %w", err)
	}
	hc := s.Host()
	t, err := swarm.AddTorrent(context.Background(), hc.Torrent, mi)
	if err != nil {
		s.Close()
		return err
	}
	t.AddPeers([]torrent.PeerInfo{{Addr: seeder, Trusted: true}})

	smp := startSampler(hc.Storage)
	defer smp.stop()
	mux := http.NewServeMux()
	mux.Handle("/", s.Handler())
	mux.HandleFunc("GET /bench/missing", func(w http.ResponseWriter, r *http.Request) {
		from, err1 := strconv.ParseInt(r.FormValue("from"), 10, 64)
		to, err2 := strconv.ParseInt(r.FormValue("to"), 10, 64)
		if err := errors.Join(err1, err2); err != nil || from < 0 || to <= from || to > t.Length() {
			http.Error(w, fmt.Sprintf("bad range [%s, %s)", r.FormValue("from"), r.FormValue("to")), http.StatusBadRequest)
			return
		}
		json.NewEncoder(w).Encode(missingBytes(hc.Storage, t, from, to))
	})
	mux.HandleFunc("GET /bench/mem", func(w http.ResponseWriter, r *http.Request) {
		samples := smp.stop()
		st, err := procStatus("VmHWM")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		json.NewEncoder(w).Encode(leecherReport{VmHWM: st["VmHWM"], Downloaded: downloaded(t), Samples: samples})
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.Close()
		return err
	}
	srv := &http.Server{Handler: mux}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintln(stdout, ln.Addr())

	io.Copy(io.Discard, stdin) // until the bench closes it
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = s.Shutdown(ctx, srv)
	if e := <-served; !errors.Is(e, http.ErrServerClosed) {
		err = errors.Join(err, e)
	}
	return err
}

// missingBytes returns the bytes of t's pieces holding [from, to) that the
// storage does not hold complete.
func missingBytes(mem *memory.Client, t *torrent.Torrent, from, to int64) int64 {
	mt, ok := mem.Torrent(t.InfoHash())
	if !ok {
		return to - from
	}
	states := mt.AppendPieceStates(nil)
	pl := t.Info().PieceLength
	var n int64
	for i := from / pl; i <= (to-1)/pl && int(i) < len(states); i++ {
		if states[i]&memory.PieceComplete == 0 {
			n += min(pl, t.Length()-i*pl)
		}
	}
	return n
}

// sampleInterval is how often the leecher samples its memory.
const sampleInterval = 20 * time.Millisecond

// sampler records a Client's resident bytes, the Go heap and the RSS every
// sampleInterval from its own goroutine, until stopped.
type sampler struct {
	stopOnce sync.Once
	done     chan struct{}
	finished chan struct{}
	samples  []Sample // written by the goroutine until finished closes
}

func startSampler(mem *memory.Client) *sampler {
	s := &sampler{done: make(chan struct{}), finished: make(chan struct{})}
	go func() {
		defer close(s.finished)
		heap := newHeapSampler()
		start := time.Now()
		tick := time.NewTicker(sampleInterval)
		defer tick.Stop()
		for {
			h, live := heap.read()
			var rss int64
			if st, err := procStatus("VmRSS"); err == nil {
				rss = st["VmRSS"]
			}
			s.samples = append(s.samples, Sample{
				Seconds:  time.Since(start).Seconds(),
				Resident: mem.Stats().Resident,
				Heap:     h,
				Live:     live,
				RSS:      rss,
			})
			select {
			case <-s.done:
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// stop ends the sampling, waits for the goroutine and returns the samples.
// It is idempotent and safe for concurrent use.
func (s *sampler) stop() []Sample {
	s.stopOnce.Do(func() { close(s.done) })
	<-s.finished
	return s.samples
}

// downloaded returns the torrent's BytesReadData.
func downloaded(t *torrent.Torrent) int64 {
	st := t.Stats()
	return st.BytesReadData.Int64()
}
