package testutil

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
)

func TestMain(m *testing.M) { VerifyTestMain(m) }

func TestDataDeterministic(t *testing.T) {
	a, b := Data(7, 1000), Data(7, 1000)
	if !bytes.Equal(a, b) {
		t.Fatal("Data(7, 1000) differs between calls")
	}
	if bytes.Equal(Data(7, 64), Data(8, 64)) {
		t.Error("seeds 7 and 8 give the same bytes")
	}
	if got := Data(7, 10); !bytes.Equal(got, a[:10]) {
		t.Errorf("Data(7, 10) = %x; want the prefix %x of Data(7, 1000)", got, a[:10])
	}
}

func TestSourceReadAt(t *testing.T) {
	const size = 1000
	want := Data(3, size)
	src := NewSource(3, size)
	for _, tc := range []struct {
		name    string
		off     int64
		n       int
		wantN   int
		wantErr error
	}{
		{"aligned", 8, 64, 64, nil},
		{"unaligned start", 3, 20, 20, nil},
		{"inside one word", 9, 3, 3, nil},
		{"unaligned end", 16, 13, 13, nil},
		{"to the end", 990, 10, 10, nil},
		{"past the end", 995, 10, 5, io.EOF},
		{"at the end", size, 1, 0, io.EOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := make([]byte, tc.n)
			n, err := src.ReadAt(p, tc.off)
			if n != tc.wantN || err != tc.wantErr {
				t.Fatalf("ReadAt(%d bytes, %d) = %d, %v; want %d, %v", tc.n, tc.off, n, err, tc.wantN, tc.wantErr)
			}
			Equal(t, p[:n], want[tc.off:tc.off+int64(n)])
		})
	}
	got, err := io.ReadAll(src.NewReader())
	if err != nil {
		t.Fatal(err)
	}
	Equal(t, got, want)
}

// recorder catches Errorf calls of the helper under test.
type recorder struct {
	testing.TB
	msg string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
}

func TestEqual(t *testing.T) {
	want := Data(1, 200<<10)
	for _, tc := range []struct {
		name    string
		got     []byte
		wantMsg string
	}{
		{"equal", bytes.Clone(want), ""},
		{"differs", func() []byte { b := bytes.Clone(want); b[150000] ^= 1; return b }(),
			"data differs at offset 150000"},
		{"short", want[:100], "data length: got 100; want 204800"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &recorder{TB: t}
			ok := Equal(r, tc.got, want)
			if ok != (tc.wantMsg == "") || !strings.HasPrefix(r.msg, tc.wantMsg) {
				t.Errorf("Equal = %v with message %q; want a message starting %q", ok, r.msg, tc.wantMsg)
			}
		})
	}
}

func BenchmarkData(b *testing.B) {
	p := make([]byte, 1<<20)
	src := NewSource(1, int64(len(p)))
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		src.ReadAt(p, 0)
	}
}
