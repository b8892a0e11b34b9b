package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// This file reads what the process costs: CPU time from getrusage, resident
// memory from /proc/self/status, and the Go heap from runtime/metrics. All
// figures are process-wide: the seeder and the leecher of a swarm download
// run in one process, so their costs add up; the streaming leecher runs in
// a process of its own and reads its own.

// cpuTime returns the user plus system CPU time the process has used.
func cpuTime() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// procStatus returns the named fields of /proc/self/status in bytes (the
// file gives them in kB).
func procStatus(names ...string) (map[string]int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return nil, fmt.Errorf("reading process status: %w", err)
	}
	out := make(map[string]int64, len(names))
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		for _, want := range names {
			if name != want {
				continue
			}
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("parsing %s in process status: %w", name, err)
			}
			out[name] = kb << 10
		}
	}
	for _, want := range names {
		if _, ok := out[want]; !ok {
			return nil, fmt.Errorf("process status has no %s", want)
		}
	}
	return out, nil
}

// heapSampler reads the Go heap without stopping the world. It is not
// safe for concurrent use.
type heapSampler struct {
	s []metrics.Sample
}

func newHeapSampler() *heapSampler {
	return &heapSampler{s: []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/gc/heap/live:bytes"},
	}}
}

// read returns the bytes of heap objects, live and not yet swept, and the
// bytes the last GC marked live.
func (h *heapSampler) read() (objects, live int64) {
	metrics.Read(h.s)
	v := func(i int) int64 {
		if h.s[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return int64(h.s[i].Value.Uint64())
	}
	return v(0), v(1)
}

// settle collects garbage and returns freed memory to the OS, so that every
// measured run starts from the same clean heap instead of inheriting the
// pages of the run before.
func settle() {
	runtime.GC()
	debug.FreeOSMemory()
}

// machine describes where the bench ran.
type machine struct {
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	CPUModel   string `json:"cpu_model"`
	GoVersion  string `json:"go_version"`
	OS         string `json:"os"`
	LoadStart  string `json:"load_start"` // /proc/loadavg before the first scenario
	LoadEnd    string `json:"load_end"`   // and after the last
}

func describeMachine() machine {
	return machine{
		CPUs:       runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		CPUModel:   cpuModel(),
		GoVersion:  runtime.Version(),
		OS:         runtime.GOOS + "/" + runtime.GOARCH,
		LoadStart:  loadAverage(),
	}
}

// cpuModel returns the first "model name" of /proc/cpuinfo, or "unknown".
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for line := range strings.Lines(string(b)) {
		if name, value, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(name) == "model name" {
			return strings.TrimSpace(value)
		}
	}
	return "unknown"
}

// loadAverage returns the 1, 5 and 15 minute load averages, or "unknown".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
