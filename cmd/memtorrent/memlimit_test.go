package main

import "testing"

func TestMemoryLimit(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "GOMEMLIMIT" {
				return v
			}
			return ""
		}
	}
	perCapacity := int64(0)
	if !offHeapBlocks {
		perCapacity = 1
	}
	for _, tc := range []struct {
		name     string
		capacity int64
		env      string
		want     int64
		set      bool
	}{
		{"32MiB", 32 << 20, "", heapAllowance + perCapacity*(32<<20), true},
		{"1GiB", 1 << 30, "", heapAllowance + perCapacity*(1<<30), true},
		{"GOMEMLIMIT set", 32 << 20, "200MiB", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, set := memoryLimit(tc.capacity, env(tc.env))
			if got != tc.want || set != tc.set {
				t.Errorf("memoryLimit(%d, GOMEMLIMIT=%q): got (%d, %v); want (%d, %v)", tc.capacity, tc.env, got, set, tc.want, tc.set)
			}
		})
	}
}
