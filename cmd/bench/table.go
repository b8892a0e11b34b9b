package main

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// writeTable writes rep as the human-readable table.
func writeTable(w io.Writer, rep *Report) error {
	m := rep.Machine
	fmt.Fprintf(w, "memtorrent bench, %s, %s\n", rep.Date, rep.Command)
	fmt.Fprintf(w, "machine: %d CPUs (GOMAXPROCS %d), %s, %s %s; load average %s at start, %s at end\n",
		m.CPUs, m.GOMAXPROCS, m.CPUModel, m.GoVersion, m.OS, m.LoadStart, m.LoadEnd)
	fmt.Fprintf(w, "%d run(s) per contestant, order rotated from run to run, all in one bench (streaming leechers in child processes); took %.0f s.\n",
		rep.Config.Runs, rep.Seconds)
	fmt.Fprintf(w, "%s.\n", wrap(rep.Clients, 100))
	fmt.Fprintf(w, "min / median / max over the runs; ratio = median / median of the case's reference row (marked *).\n")
	for _, sc := range rep.Scenarios {
		fmt.Fprintf(w, "\n== %s\n%s\n\n", sc.Name, wrap(sc.About, 100))
		writeCases(w, sc.Cases)
		if sc.Name == scenarioStreaming {
			writeStreamSummary(w, sc.Cases)
		}
		for _, n := range sc.Notes {
			fmt.Fprintf(w, "note: %s\n", wrap(n, 100))
		}
	}
	return nil
}

// writeCases writes one line per case and an aligned row per contestant.
func writeCases(w io.Writer, cases []Case) {
	head := []string{"contestant", "min", "median", "max", "ratio"}
	var rows [][]string
	for _, c := range cases {
		for _, r := range c.Results {
			name := "  " + r.Contestant
			if r.Contestant == c.Reference {
				name += " *"
			}
			ratio := "-"
			if r.Ratio != nil {
				ratio = strconv.FormatFloat(*r.Ratio, 'f', 2, 64)
			}
			rows = append(rows, []string{name, formatValue(r.Min), formatValue(r.Median), formatValue(r.Max), ratio})
		}
	}
	width := make([]int, len(head))
	for _, row := range append([][]string{head}, rows...) {
		for i, cell := range row {
			width[i] = max(width[i], len(cell))
		}
	}
	line := func(row []string) {
		fmt.Fprintf(w, "%-*s", width[0], row[0])
		for i := 1; i < len(row); i++ {
			fmt.Fprintf(w, "  %*s", width[i], row[i])
		}
		fmt.Fprintln(w)
	}
	line(head)
	k := 0
	for _, c := range cases {
		fmt.Fprintf(w, "%s [%s, %s is better]\n", c.Name, c.Unit, c.Better)
		for range c.Results {
			line(rows[k])
			k++
		}
	}
}

// formatValue prints v with three or four significant digits.
func formatValue(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 100 || a == 0:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}

// wrap breaks s into lines of at most width bytes at spaces.
func wrap(s string, width int) string {
	var b strings.Builder
	n := 0
	for i, word := range strings.Fields(s) {
		if i > 0 {
			if n+1+len(word) > width {
				b.WriteByte('\n')
				n = 0
			} else {
				b.WriteByte(' ')
				n++
			}
		}
		b.WriteString(word)
		n += len(word)
	}
	return b.String()
}

// streamSummary are the streaming metrics of the summary table, by key,
// with their column heads.
var streamSummary = []struct{ key, head string }{
	{"rss", "peak RSS MiB"},
	{"rss-over", "RSS - capacity"},
	{"seq", "MB/s"},
	{"ttfb", "TTFB ms"},
	{"back-latency", "seek back ms"},
	{"pressure-back-latency", "back after 2nd reader ms"},
	{"forward-latency", "seek fwd ms"},
	{"cold-back-latency", "cold back ms"},
	{"cpu", "CPU s/GiB"},
}

// writeStreamSummary writes the medians of the main streaming metrics as
// one Markdown table, a row per capacity and contestant.
func writeStreamSummary(w io.Writer, cases []Case) {
	byKey := map[string]*Case{}
	var groups []string // capacity keys, in order
	for i := range cases {
		c := &cases[i]
		byKey[c.Key] = c
		if metric, g, ok := strings.Cut(c.Key, "/"); ok && metric == "rss" {
			groups = append(groups, g)
		}
	}
	fmt.Fprintf(w, "\nmedians:\n\n| capacity | contestant |")
	for _, m := range streamSummary {
		fmt.Fprintf(w, " %s |", m.head)
	}
	fmt.Fprintf(w, "\n|---|---|%s\n", strings.Repeat("---:|", len(streamSummary)))
	for _, g := range groups {
		for _, r := range byKey["rss/"+g].Results {
			fmt.Fprintf(w, "| %s | %s |", g, r.Contestant)
			for _, m := range streamSummary {
				v := "-"
				if c := byKey[m.key+"/"+g]; c != nil {
					if res := c.result(r.Contestant); res != nil {
						v = formatValue(res.Median)
					}
				}
				fmt.Fprintf(w, " %s |", v)
			}
			fmt.Fprintln(w)
		}
	}
	fmt.Fprintln(w)
}
