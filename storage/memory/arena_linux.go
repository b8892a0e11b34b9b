package memory

import "golang.org/x/sys/unix"

// adviseNoHuge keeps transparent huge pages out of a chunk. With THP
// "always", a fault would bring in 2 MiB at once, and khugepaged would
// collapse a range around released blocks back into a resident huge page,
// undoing their release.
func adviseNoHuge(b []byte) { _ = unix.Madvise(b, unix.MADV_NOHUGEPAGE) }
