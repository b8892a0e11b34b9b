//go:build unix && !linux

package memory

// adviseNoHuge does nothing where the kernel has no transparent huge pages
// to keep out (see arena_linux.go).
func adviseNoHuge([]byte) {}
