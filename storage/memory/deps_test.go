package memory_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoClientDependency checks that the storage depends on the host's
// storage interface, not on its torrent client (none of the host's own
// storages does): what needs the client goes through Options.OnEvict.
func TestNoClientDependency(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == "github.com/anacrolix/torrent" {
			t.Errorf("storage/memory depends on %s; want only its storage and metainfo packages", dep)
		}
	}
}
