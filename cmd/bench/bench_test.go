package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/memtorrent/memtorrent/internal/testutil"
)

func TestMain(m *testing.M) {
	if params, ok := leecherParams(); ok {
		// The streaming scenario runs this test binary as its leecher.
		os.Exit(runLeecher(params, os.Stdin, os.Stdout, os.Stderr))
	}
	testutil.VerifyTestMain(m)
}

// tinyConfig runs every scenario on a few pieces, so that the whole bench
// takes seconds even under -race.
func tinyConfig(t *testing.T) config {
	cfg := defaultConfig()
	cfg.Runs = 2
	cfg.PieceLength = 64 << 10
	cfg.SwarmSize = 1 << 20
	cfg.StreamSize = 4 << 20
	cfg.Capacities = []int64{512 << 10, 1 << 20}
	cfg.ReadaheadCap = 256 << 10
	cfg.SeekBack = 128 << 10
	cfg.Timeout = time.Minute
	cfg.TmpDir = t.TempDir()
	return cfg
}

// TestRunTiny runs every scenario at a tiny size and checks the JSON report
// has every scenario and case, with one value per run, and that the table
// and both plot formats can be made from it.
func TestRunTiny(t *testing.T) {
	cfg := tinyConfig(t)
	var out bytes.Buffer
	cfg.JSON = true
	cfg.Out = &out
	cfg.Plot = filepath.Join(t.TempDir(), "bench.svg")
	if err := run(t.Context(), cfg); err != nil {
		t.Fatalf("run: %v", err)
	}

	var rep Report
	dec := json.NewDecoder(&out)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("decoding the JSON report: %v", err)
	}
	var names []string
	for _, sc := range rep.Scenarios {
		names = append(names, sc.Name)
		if len(sc.Cases) == 0 {
			t.Errorf("scenario %s has no case", sc.Name)
		}
		if sc.About == "" {
			t.Errorf("scenario %s does not say what it measured", sc.Name)
		}
		keys := map[string]bool{}
		for _, c := range sc.Cases {
			if keys[c.Key] {
				t.Errorf("scenario %s: case key %q twice", sc.Name, c.Key)
			}
			keys[c.Key] = true
			checkCase(t, sc.Name, c, cfg.Runs)
		}
	}
	if !slices.Equal(names, allScenarios) {
		t.Errorf("scenarios %q; want %q", names, allScenarios)
	}
	if got, want := len(rep.Series), 2*len(cfg.Capacities); got != want {
		t.Errorf("%d memory series; want %d (lookbehind on and off at each capacity)", got, want)
	}
	for _, s := range rep.Series {
		if len(s.Points) == 0 {
			t.Errorf("series %s has no point", s.Contestant)
		}
		for _, p := range s.Points {
			if p.Resident > s.Capacity {
				t.Fatalf("series %s: resident %d above capacity %d at %.3f s", s.Contestant, p.Resident, s.Capacity, p.Seconds)
			}
		}
	}

	var table bytes.Buffer
	if err := writeTable(&table, &rep); err != nil {
		t.Fatalf("writeTable: %v", err)
	}
	if !strings.Contains(table.String(), "| capacity | contestant | peak RSS MiB |") {
		t.Errorf("the table has no streaming summary:\n%s", table.String())
	}
	for _, name := range allScenarios {
		if !strings.Contains(table.String(), "== "+name+"\n") {
			t.Errorf("the table has no section %q:\n%s", name, table.String())
		}
	}

	png := filepath.Join(t.TempDir(), "bench.png")
	if err := writePlot(png, &rep); err != nil {
		t.Fatalf("writePlot(%s): %v", png, err)
	}
	for _, name := range []string{cfg.Plot, png} {
		fi, err := os.Stat(name)
		if err != nil || fi.Size() < 1000 {
			t.Errorf("plot %s: %v, %d bytes; want a drawing", name, err, fi.Size())
		}
	}
	svg, _ := os.ReadFile(cfg.Plot)
	if !bytes.Contains(svg, []byte("<svg")) {
		t.Errorf("%s is not an SVG", cfg.Plot)
	}
}

// checkCase checks one case of the report.
func checkCase(t *testing.T, scenario string, c Case, runs int) {
	t.Helper()
	if c.Key == "" || c.Name == "" || c.Unit == "" {
		t.Errorf("%s: case %+v lacks a key, a name or a unit", scenario, c)
	}
	if c.Better != "higher" && c.Better != "lower" {
		t.Errorf("%s: %s: better %q; want higher or lower", scenario, c.Name, c.Better)
	}
	if len(c.Results) < 2 || c.Results[0].Contestant != c.Reference {
		t.Errorf("%s: %s: results %+v; want at least two, the reference %q first", scenario, c.Name, c.Results, c.Reference)
		return
	}
	for _, r := range c.Results {
		if len(r.Values) != runs {
			t.Errorf("%s: %s: %s has %d values; want %d", scenario, c.Name, r.Contestant, len(r.Values), runs)
		}
		if !(r.Min <= r.Median && r.Median <= r.Max) || r.Min < 0 {
			t.Errorf("%s: %s: %s: min %v, median %v, max %v", scenario, c.Name, r.Contestant, r.Min, r.Median, r.Max)
		}
	}
	if r := c.Results[0].Ratio; r != nil && *r != 1 {
		t.Errorf("%s: %s: the reference's ratio is %v; want 1", scenario, c.Name, *r)
	}
}

func TestFlags(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string // in stderr
	}{
		{"help", []string{"-h"}, 0, "Usage of bench"},
		{"bad size", []string{"-swarm-size", "lots"}, 2, `not a size: "lots"`},
		{"bad capacities", []string{"-capacities", "64MiB,lots"}, 2, `not a size: "lots"`},
		{"negative runs", []string{"-runs", "0"}, 2, "-runs 0: want at least 1"},
		{"odd piece length", []string{"-piece-length", "100KB"}, 2, "-piece-length 98 KiB: want a multiple of 16 KiB"},
		{"unknown scenario", []string{"-scenarios", "swarm,warp"}, 2, `unknown scenario "warp"`},
		{"small capacity", []string{"-capacities", "64MiB,4MiB"}, 2, "-capacities 4.0 MiB: want between 8 pieces"},
		{"plot format", []string{"-plot", "out.pdf"}, 2, "want a file ending in .svg or .png"},
		{"stray argument", []string{"swarm"}, 2, "unexpected arguments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := runMain(context.Background(), tc.args, &stdout, &stderr)
			if code != tc.wantCode || !strings.Contains(stderr.String(), tc.wantErr) {
				t.Errorf("runMain(%q) = %d with stderr %q; want %d and %q", tc.args, code, stderr.String(), tc.wantCode, tc.wantErr)
			}
			if stdout.Len() > 0 {
				t.Errorf("runMain(%q) wrote %q to stdout; want nothing", tc.args, stdout.String())
			}
		})
	}
}

func TestParseFlagsSizes(t *testing.T) {
	cfg, err := parseFlags([]string{"-scenarios", "swarm,streaming", "-capacities", "32MiB,128MiB", "-piece-length", "256KiB", "-runs", "5"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.Scenarios, []string{scenarioStreaming, scenarioSwarm}; !slices.Equal(got, want) {
		t.Errorf("scenarios %q; want %q (the fixed order)", got, want)
	}
	if !slices.Equal(cfg.Capacities, []int64{32 << 20, 128 << 20}) || cfg.PieceLength != 256<<10 || cfg.Runs != 5 {
		t.Errorf("got capacities %d, piece length %d, runs %d; want [%d %d], %d, 5", cfg.Capacities, cfg.PieceLength, cfg.Runs, 32<<20, 128<<20, 256<<10)
	}
}

func TestSummarize(t *testing.T) {
	for _, tc := range []struct {
		in               []float64
		min, median, max float64
	}{
		{[]float64{3}, 3, 3, 3},
		{[]float64{5, 1, 3}, 1, 3, 5},
		{[]float64{4, 1, 3, 2}, 1, 2.5, 4},
	} {
		r := summarize("x", tc.in)
		if r.Min != tc.min || r.Median != tc.median || r.Max != tc.max {
			t.Errorf("summarize(%v) = %v / %v / %v; want %v / %v / %v", tc.in, r.Min, r.Median, r.Max, tc.min, tc.median, tc.max)
		}
	}
}

func TestGroupRotatesOrder(t *testing.T) {
	var order []string
	c := func(name string) contestant {
		return contestant{name, func(context.Context, int) ([]float64, error) {
			order = append(order, name)
			return []float64{float64(len(order))}, nil
		}}
	}
	g := group{name: "g", metrics: []metric{{key: "k", unit: "u"}}, contestants: []contestant{c("a"), c("b"), c("c")}}
	cases, err := g.measure(t.Context(), 3, newProgress(io.Discard, g.steps(3)))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "b", "c", "b", "c", "a", "c", "a", "b"}; !slices.Equal(order, want) {
		t.Errorf("order %q; want %q", order, want)
	}
	if got := cases[0].Results[1].Values; !slices.Equal(got, []float64{2, 4, 9}) {
		t.Errorf("b's values %v; want [2 4 9] (in run order)", got)
	}
}
