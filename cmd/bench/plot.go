package main

import (
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// plotFormat returns "svg" or "png" for a file name with that extension,
// and "" for any other.
func plotFormat(name string) string {
	switch ext := strings.ToLower(filepath.Ext(name)); ext {
	case ".svg", ".png":
		return ext[1:]
	}
	return ""
}

// writePlot draws rep into the file name: memory over time while
// streaming, and the throughputs of the swarm scenario, as far as rep has
// them.
func writePlot(name string, rep *Report) error {
	var plots []*plot.Plot
	for _, c := range rep.Config.Capacities {
		p, err := memoryPlot(rep, c)
		if err != nil {
			return err
		}
		if p != nil {
			plots = append(plots, p)
		}
	}
	if p, err := swarmPlot(rep); err != nil {
		return err
	} else if p != nil {
		plots = append(plots, p)
	}
	if len(plots) == 0 {
		p := plot.New()
		p.Title.Text = "no scenario with a plot was run"
		plots = append(plots, p)
	}
	cols := min(2, len(plots))
	rows := (len(plots) + cols - 1) / cols
	w, h := vg.Length(cols)*6*vg.Inch, vg.Length(rows)*4*vg.Inch
	var c vg.CanvasWriterTo
	switch plotFormat(name) {
	case "svg":
		c = vgsvg.New(w, h)
	case "png":
		c = vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(110))}
	default:
		return fmt.Errorf("unknown plot format of %q: want .svg or .png", name)
	}
	dc := draw.New(c)
	grid := make([][]*plot.Plot, rows)
	for i := range grid {
		grid[i] = make([]*plot.Plot, cols)
	}
	for i, p := range plots {
		grid[i/cols][i%cols] = p
	}
	tiles := draw.Tiles{Rows: rows, Cols: cols, PadX: vg.Inch / 4, PadY: vg.Inch / 4,
		PadTop: vg.Inch / 8, PadBottom: vg.Inch / 8, PadLeft: vg.Inch / 8, PadRight: vg.Inch / 8}
	canvases := plot.Align(grid, tiles, dc)
	for i := range grid {
		for j, p := range grid[i] {
			if p != nil {
				p.Draw(canvases[i][j])
			}
		}
	}
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if _, err := c.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// memoryPlot draws the leecher's RSS (dotted) and memtorrent's resident
// bytes (solid) over the first streaming run of each contestant at
// capacity, and the capacity (dashed); nil if rep has no such run.
func memoryPlot(rep *Report, capacity int64) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("streaming %s into %s: leecher memory (first run)", ibytes(rep.Config.StreamSize), ibytes(capacity))
	p.X.Label.Text = "seconds"
	p.Y.Label.Text = "MiB"
	p.Y.Min = 0
	p.Legend.Top = true
	p.Legend.Left = true
	var end, top float64
	n := 0
	for _, s := range rep.Series {
		if s.Capacity != capacity {
			continue
		}
		res := make(plotter.XYs, len(s.Points))
		rss := make(plotter.XYs, len(s.Points))
		for j, pt := range s.Points {
			res[j] = plotter.XY{X: pt.Seconds, Y: mib(pt.Resident)}
			rss[j] = plotter.XY{X: pt.Seconds, Y: mib(pt.RSS)}
			end, top = max(end, pt.Seconds), max(top, mib(pt.RSS))
		}
		if err := addLine(p, rss, "RSS, "+strings.TrimPrefix(s.Contestant, ibytes(capacity)+", "), plotutil.Color(n), []vg.Length{vg.Points(1), vg.Points(2)}); err != nil {
			return nil, err
		}
		if err := addLine(p, res, "resident, "+strings.TrimPrefix(s.Contestant, ibytes(capacity)+", "), plotutil.Color(n), nil); err != nil {
			return nil, err
		}
		n++
	}
	if n == 0 {
		return nil, nil
	}
	c := mib(capacity)
	if err := addLine(p, plotter.XYs{{X: 0, Y: c}, {X: end, Y: c}}, "capacity", color.Black, []vg.Length{vg.Points(6), vg.Points(3)}); err != nil {
		return nil, err
	}
	p.Y.Max = 1.5 * max(top, c) // room for the legend
	return p, nil
}

func addLine(p *plot.Plot, xys plotter.XYs, label string, c color.Color, dashes []vg.Length) error {
	l, err := plotter.NewLine(xys)
	if err != nil {
		return fmt.Errorf("plotting %s: %w", label, err)
	}
	l.Color = c
	l.Dashes = dashes
	l.Width = vg.Points(1.2)
	p.Add(l)
	p.Legend.Add(label, l)
	return nil
}

// swarmPlot draws the median download throughput of each swarm
// contestant, with the min-max range as error bars.
func swarmPlot(rep *Report) (*plot.Plot, error) {
	c := findCase(rep, scenarioSwarm, "download")
	if c == nil {
		return nil, nil
	}
	p := plot.New()
	p.Title.Text = "swarm download over loopback (" + ibytes(rep.Config.SwarmSize) + ")"
	p.Y.Label.Text = "MB/s (median; whiskers min-max)"
	var names []string
	for _, r := range c.Results {
		names = append(names, r.Contestant)
	}
	err := addBars(p, []*Case{c}, names, vg.Points(40), func(i, _ int) float64 { return float64(i) }, false)
	if err != nil {
		return nil, err
	}
	p.NominalX(names...)
	return p, nil
}

// addBars adds a bar at pos(i, j) for contestant i in case j, its median,
// with the min-max range as whiskers; a contestant absent from a case gets
// no bar.
func addBars(p *plot.Plot, cases []*Case, contestants []string, width vg.Length, pos func(i, j int) float64, legend bool) error {
	for i, name := range contestants {
		first := true
		for j, c := range cases {
			r := c.result(name)
			if r == nil {
				continue
			}
			x := pos(i, j)
			bar, err := plotter.NewBarChart(plotter.Values{r.Median}, width)
			if err != nil {
				return fmt.Errorf("plotting %s: %w", name, err)
			}
			bar.XMin = x
			bar.Color = plotutil.Color(i)
			bar.LineStyle.Width = 0
			eb, err := plotter.NewYErrorBars(errorPoint{x: x, y: r.Median, lo: r.Median - r.Min, hi: r.Max - r.Median})
			if err != nil {
				return fmt.Errorf("plotting %s: %w", name, err)
			}
			p.Add(bar, eb)
			if legend && first {
				p.Legend.Add(name, bar)
				first = false
			}
		}
	}
	return nil
}

// errorPoint is one point with its error range, for plotter.NewYErrorBars.
type errorPoint struct{ x, y, lo, hi float64 }

func (e errorPoint) Len() int                       { return 1 }
func (e errorPoint) XY(int) (float64, float64)      { return e.x, e.y }
func (e errorPoint) YError(int) (low, high float64) { return e.lo, e.hi }

// findCase returns the case with key in scenario sc, or nil.
func findCase(rep *Report, sc, key string) *Case {
	for i := range rep.Scenarios {
		if rep.Scenarios[i].Name != sc {
			continue
		}
		for j := range rep.Scenarios[i].Cases {
			if c := &rep.Scenarios[i].Cases[j]; c.Key == key {
				return c
			}
		}
	}
	return nil
}

// result returns the contestant's result, or nil.
func (c *Case) result(contestant string) *Result {
	for i := range c.Results {
		if c.Results[i].Contestant == contestant {
			return &c.Results[i]
		}
	}
	return nil
}
