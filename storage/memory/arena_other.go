//go:build !unix

package memory

import "errors"

// sysMap reports that this system has no anonymous mmap: blocks come from
// the Go heap.
func sysMap(int) ([]byte, error) { return nil, errors.ErrUnsupported }

func sysUnmap([]byte) {}

func sysRelease([]byte) {}
