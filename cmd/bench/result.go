package main

import (
	"context"
	"fmt"
	"math"
	"slices"
)

// Report is everything one bench run measured; -json prints it as is.
type Report struct {
	Date      string     `json:"date"` // UTC, RFC 3339
	Command   string     `json:"command"`
	Machine   machine    `json:"machine"`
	Config    configJSON `json:"config"`
	Seconds   float64    `json:"seconds"` // wall time of the whole bench
	Clients   string     `json:"clients"` // the torrent clients' configuration
	Scenarios []Scenario `json:"scenarios"`
	// Series are the resident-memory samples of the streaming scenario,
	// one per contestant (its first run), for the plot.
	Series []Series `json:"series,omitempty"`
}

// Scenario is one family of measurements, such as "storage".
type Scenario struct {
	Name  string   `json:"name"`
	About string   `json:"about"` // what was measured and how, one paragraph
	Cases []Case   `json:"cases"`
	Notes []string `json:"notes,omitempty"`
}

// Case is one metric measured for several contestants in the same runs.
type Case struct {
	Key       string   `json:"key"` // stable identifier, e.g. "write" or "contains/2"
	Name      string   `json:"name"`
	Unit      string   `json:"unit"`
	Better    string   `json:"better"`    // "higher" or "lower"
	Reference string   `json:"reference"` // the contestant Ratio divides by
	Results   []Result `json:"results"`
}

// Result is one contestant's values of a Case, one per run.
type Result struct {
	Contestant string    `json:"contestant"`
	Values     []float64 `json:"values"`
	Min        float64   `json:"min"`
	Median     float64   `json:"median"`
	Max        float64   `json:"max"`
	// Ratio is Median divided by the reference contestant's Median; absent
	// when the reference median is zero.
	Ratio *float64 `json:"ratio,omitempty"`
}

// Series is a time series of memory figures sampled during one run.
type Series struct {
	Contestant string   `json:"contestant"`
	Capacity   int64    `json:"capacity"`
	Points     []Sample `json:"points"`
}

// Sample is one point of a Series.
type Sample struct {
	Seconds  float64 `json:"t"`        // since the run started
	Resident int64   `json:"resident"` // memory.Stats.Resident
	Heap     int64   `json:"heap"`     // Go heap objects, with garbage not yet swept
	Live     int64   `json:"live"`     // Go heap marked live by the last GC
	RSS      int64   `json:"rss"`      // process VmRSS
}

// metric names one figure a contestant's run produces.
type metric struct {
	key    string
	name   string
	unit   string
	higher bool // higher is better
}

// contestant is one side of a comparison. run measures it once and returns
// a value for every metric of its group, in the group's order.
type contestant struct {
	name string
	run  func(ctx context.Context, run int) ([]float64, error)
}

// group is a set of contestants measured on the same metrics in the same
// runs. The first contestant is the reference of every ratio.
type group struct {
	key         string // prefix of each case key; may be empty
	name        string // prefix of each case name; may be empty
	metrics     []metric
	contestants []contestant
}

// caseName returns the name of the case of metric m: the group's name, the
// metric's, or both.
func (g group) caseName(m int) string {
	switch met := g.metrics[m].name; {
	case g.name == "":
		return met
	case met == "":
		return g.name
	default:
		return g.name + ": " + met
	}
}

// steps is the number of contestant runs of g, for the progress bar.
func (g group) steps(runs int) int { return runs * len(g.contestants) }

// measure runs every contestant of g runs times, rotating the order from
// one run to the next so that no contestant always goes first (or always
// follows the same one), and returns one Case per metric.
func (g group) measure(ctx context.Context, runs int, p *progress) ([]Case, error) {
	n := len(g.contestants)
	values := make([][][]float64, n) // [contestant][metric][run]
	for i := range values {
		values[i] = make([][]float64, len(g.metrics))
	}
	for r := range runs {
		for k := range n {
			i := (k + r) % n
			c := g.contestants[i]
			p.describe(fmt.Sprintf("%s: %s, run %d/%d", g.caseName(0), c.name, r+1, runs))
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			settle()
			got, err := c.run(ctx, r)
			if err != nil {
				return nil, fmt.Errorf("%s, %s, run %d: %w", g.caseName(0), c.name, r+1, err)
			}
			if len(got) != len(g.metrics) {
				panic(fmt.Sprintf("bench: %s returned %d values for %d metrics", c.name, len(got), len(g.metrics)))
			}
			for m, v := range got {
				values[i][m] = append(values[i][m], v)
			}
			p.step()
		}
	}
	cases := make([]Case, len(g.metrics))
	for m, met := range g.metrics {
		cs := Case{Key: met.key, Name: g.caseName(m), Unit: met.unit, Better: "lower", Reference: g.contestants[0].name}
		if g.key != "" {
			cs.Key = met.key + "/" + g.key
		}
		if met.higher {
			cs.Better = "higher"
		}
		for i, c := range g.contestants {
			cs.Results = append(cs.Results, summarize(c.name, values[i][m]))
		}
		ref := cs.Results[0].Median
		for i := range cs.Results {
			if ref != 0 && !math.IsNaN(ref) {
				r := cs.Results[i].Median / ref
				cs.Results[i].Ratio = &r
			}
		}
		cases[m] = cs
	}
	return cases, nil
}

// summarize returns the min, median and max of values.
func summarize(name string, values []float64) Result {
	s := slices.Clone(values)
	slices.Sort(s)
	res := Result{Contestant: name, Values: values}
	if len(s) == 0 {
		return res
	}
	res.Min, res.Max = s[0], s[len(s)-1]
	if n := len(s); n%2 == 1 {
		res.Median = s[n/2]
	} else {
		res.Median = (s[n/2-1] + s[n/2]) / 2
	}
	return res
}

// mbps returns bytes per second in MB/s (10^6 bytes), the unit of every
// throughput in the report.
func mbps(bytes int64, seconds float64) float64 {
	return float64(bytes) / max(seconds, 1e-9) / 1e6
}

// mib returns bytes in MiB.
func mib(bytes int64) float64 { return float64(bytes) / (1 << 20) }
