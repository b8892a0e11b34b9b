//go:build unix

package memory

import "golang.org/x/sys/unix"

// sysMap maps n bytes of zeroed, private, anonymous memory outside the Go
// heap, in small pages.
func sysMap(n int) ([]byte, error) {
	b, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return nil, err
	}
	adviseNoHuge(b)
	return b, nil
}

// sysUnmap unmaps memory from sysMap. It cannot fail for a whole mapping
// that sysMap returned, so its error is dropped.
func sysUnmap(b []byte) { _ = unix.Munmap(b) }

// sysRelease returns the pages of b to the OS; b stays mapped and reads as
// zeros (Linux) or as its old or zeroed contents (other systems, where the
// kernel reclaims lazily). It only fails for a misaligned b, which the
// arena never passes, so its error is dropped.
func sysRelease(b []byte) { _ = unix.Madvise(b, unix.MADV_DONTNEED) }
