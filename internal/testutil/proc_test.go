package testutil

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

func TestProcStatus(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skipf("no /proc (Linux only): %v", err)
	}
	if n, err := ProcStatus(os.Getpid(), "VmRSS"); err != nil || n <= 0 {
		t.Errorf("ProcStatus(self, VmRSS) = %d, %v; want > 0", n, err)
	}
	if _, err := ProcStatus(os.Getpid(), "NoSuchField"); err == nil || !strings.Contains(err.Error(), "has no NoSuchField") {
		t.Errorf("ProcStatus(self, NoSuchField): %v; want an error naming the field", err)
	}
}

// TestFetchAndCheck serves a Source, then the same bytes with one changed:
// the first check passes, the second names the byte.
func TestFetchAndCheck(t *testing.T) {
	const size = 3<<20 + 123
	src := NewSource(7, size)
	bad := int64(2<<20 + 5)
	for _, tc := range []struct {
		name    string
		corrupt bool
		want    string
	}{
		{"exact", false, ""},
		{"one byte changed", true, "byte 2097157:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var rs io.ReadSeeker = io.NewSectionReader(src, 0, size)
				if tc.corrupt {
					b := make([]byte, size)
					src.ReadAt(b, 0)
					b[bad] ^= 1
					rs = strings.NewReader(string(b))
				}
				http.ServeContent(w, r, "f", time.Time{}, rs)
			}))
			defer srv.Close()
			err := FetchAndCheck(t.Context(), srv.URL, 1000, size, src)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("FetchAndCheck: %v", err)
			case tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)):
				t.Errorf("FetchAndCheck: %v; want an error starting %q", err, tc.want)
			}
		})
	}
}
