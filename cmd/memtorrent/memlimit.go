package main

import (
	"runtime"
	"runtime/debug"
)

// This file sets the server's soft memory limit. The library sets none
// (see the storage/memory package doc): a limit is the program's choice.

// heapAllowance is the Go heap the server lets itself grow to before the
// collector works harder: peer connections, upload buffers, HTTP copies and
// the torrent client's state, but not the piece data, whose blocks live
// outside the Go heap where mmap exists.
const heapAllowance = 64 << 20

// offHeapBlocks says whether storage/memory maps its blocks outside the Go
// heap on this system (it does where anonymous mmap exists, see its
// arena_unix.go); elsewhere the capacity is Go heap too.
const offHeapBlocks = runtime.GOOS != "windows" && runtime.GOOS != "plan9" &&
	runtime.GOOS != "js" && runtime.GOOS != "wasip1"

// memoryLimit returns the soft memory limit for a server of the given
// capacity, or false when the GOMEMLIMIT environment variable is set, which
// the runtime has already applied and the server leaves alone.
func memoryLimit(capacity int64, getenv func(string) string) (int64, bool) {
	if getenv("GOMEMLIMIT") != "" {
		return 0, false
	}
	if offHeapBlocks {
		return heapAllowance, true
	}
	return capacity + heapAllowance, true
}

// limitMemory sets the process's soft memory limit for cfg (see
// memoryLimit). With the limit the collector runs before the heap doubles
// past it, instead of at GOGC=100 alone; it is soft, so a heap that needs
// more still gets it, at the cost of more collections.
func limitMemory(cfg config, getenv func(string) string) {
	if limit, ok := memoryLimit(cfg.Capacity, getenv); ok {
		debug.SetMemoryLimit(limit)
	}
}
