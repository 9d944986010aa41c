package command

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/guptarohit/asciigraph"
	"github.com/hashicorp/cli"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/policies"
)

func init() {
	register("forecast show", func(m Meta) cli.Command { return &ForecastShowCommand{Meta: m} })
}

// ForecastShowCommand charts one locality's forecast in the terminal.
type ForecastShowCommand struct{ Meta }

// The chart's largest size: a terminal's worth, with room to spare (a
// -width of 100000000 ran the machine out of memory).
const (
	maxChartWidth  = 1000
	maxChartHeight = 200
)

func (c *ForecastShowCommand) Synopsis() string {
	return "Chart a locality's forecast bands and headroom line"
}

func (c *ForecastShowCommand) Help() string {
	return strings.TrimSpace(`
Usage: foreshape forecast show [options] LOCALITY

  Charts the forecast of one locality (its path form, such as dc1/web,
  or a policy name) for one metric, one chart for each policy forecasting
  it. It prints the model that produced the forecast and why, and the
  locality's workload (diurnal, bursty or flat; CPU- or memory-bound, or
  balanced; disks read- or write-heavy, or balanced, when Prometheus
  reports reads and writes, else "not collected"); then the
  chart: the recent history, the median forecast, the planning quantile
  and the headroom line, with a legend; then, when one is predicted, the
  hotspot: when the planning quantile first crosses the line, how likely a
  crossing is, and the peak. One read on the nodes that stay while a drain
  of some of the locality's nodes runs says so on the line under it, as
  foreshape hotspots does. A series without a forecast yet says why:
  "warming up: 5 of 12 points, first forecast at T", stale, without data,
  or failed.

Options:

  -metric=NAME   cpu, memory, iops, or a metric the policy's
                 forecast.queries name; -metric= (empty) charts every
                 metric forecast. Default: cpu.
  -width=N       Chart width in columns, at most 1000. Default: 72.
  -height=N      Chart height in rows, 2 to 200. Default: 16.
` + clientFlagsHelp + `

Example:

  $ foreshape forecast show -metric cpu dc1/web
`)
}

func (c *ForecastShowCommand) Run(args []string) int {
	var cf clientFlags
	fs := c.FlagSet("forecast show", c.Help)
	cf.register(fs)
	metric := fs.String("metric", "cpu", "metric")
	width := fs.Int("width", 72, "chart width")
	height := fs.Int("height", 16, "chart height")
	if code, ok := c.Parse(fs, args, c.Help); !ok {
		return code
	}
	if fs.NArg() != 1 {
		return c.UsageError("forecast show", "forecast show takes exactly one LOCALITY, after the options")
	}
	if *width < 1 || *width > maxChartWidth {
		return c.UsageError("forecast show", fmt.Sprintf("-width must be 1 to %d columns, not %d", maxChartWidth, *width))
	}
	if *height < 2 || *height > maxChartHeight {
		return c.UsageError("forecast show", fmt.Sprintf("-height must be 2 to %d rows, not %d", maxChartHeight, *height))
	}
	if loc := fs.Arg(0); loc == "" || slices.Contains(strings.Split(loc, "/"), "") {
		return c.UsageError("forecast show", fmt.Sprintf("LOCALITY %q has an empty part: name it as dc1/web, or a policy", loc))
	}
	fcs, err := cf.client().Forecast(c.Ctx, fs.Arg(0), *metric)
	if err != nil {
		return c.apiError(err)
	}
	if cf.json {
		return c.printJSON(fcs)
	}
	for i, f := range fcs {
		if i > 0 {
			fmt.Fprintln(c.Out)
		}
		fmt.Fprint(c.Out, renderForecast(f, *width, *height))
	}
	return ExitOK
}

// renderForecast draws history, median, planning quantile and headroom
// line; a forecast that is not ready says why. The agent's text is printed
// with its control characters escaped (cell, oneLine).
func renderForecast(f api.Forecast, width, height int) string {
	var b strings.Builder
	if !f.Ready() {
		fmt.Fprintf(&b, "%s  %s  policy %s\n", cell(f.Locality), cell(f.Metric), cell(f.Policy))
		fmt.Fprintf(&b, "no forecast yet: %s\n", oneLine(f.Note))
		if w := f.Workload; w != nil {
			fmt.Fprintf(&b, "workload: %s\n", describeWorkload(w))
		}
		return b.String()
	}
	fmt.Fprintf(&b, "%s  %s  policy %s  origin %s  step %s\n", cell(f.Locality), cell(f.Metric), cell(f.Policy), f.Origin.Format(time.RFC3339), cell(f.Step))
	fmt.Fprintf(&b, "model: %s\n", cell(f.Model))
	if f.Reason != "" {
		fmt.Fprintf(&b, "why:   %s\n", oneLine(f.Reason))
	}
	if w := f.Workload; w != nil {
		fmt.Fprintf(&b, "workload: %s\n", describeWorkload(w))
	}
	n := len(f.History) + len(f.Mean)
	if n == 0 {
		b.WriteString("(no data)\n")
		return b.String()
	}
	nan := func() []float64 {
		s := make([]float64, n)
		for i := range s {
			s[i] = math.NaN()
		}
		return s
	}
	hist, p50, plan, line := nan(), nan(), nan(), nan()
	for i, p := range f.History {
		hist[i] = p.Value
	}
	off := len(f.History)
	med := f.Band(0.5)
	if med == nil {
		med = f.Mean
	}
	top := f.Band(f.PlanningQuantile)
	for i := range f.Mean {
		p50[off+i] = med[i]
		if top != nil {
			plan[off+i] = top[i]
		}
	}
	if off > 0 && len(f.Mean) > 0 { // join the forecast to the last observation
		p50[off-1] = hist[off-1]
		if top != nil {
			plan[off-1] = hist[off-1]
		}
	}
	series := [][]float64{hist, p50}
	legends := []string{"history", "p50"}
	marks := []string{"─", "·"}
	chars := []asciigraph.CharSet{asciigraph.DefaultCharSet, asciigraph.CreateCharSet("·")}
	if top != nil {
		series = append(series, plan)
		legends = append(legends, policies.QuantileName(f.PlanningQuantile)+" (planning)")
		marks = append(marks, "^")
		chars = append(chars, asciigraph.CreateCharSet("^"))
	}
	if f.Line != nil {
		for i := range line {
			line[i] = *f.Line
		}
		series = append(series, line)
		legends = append(legends, fmt.Sprintf("headroom line %.4g", *f.Line))
		marks = append(marks, "=")
		chars = append(chars, asciigraph.CreateCharSet("="))
	}
	b.WriteString(asciigraph.PlotMany(series,
		// asciigraph draws Height+1 rows (0 to Height): -height N is N.
		asciigraph.Width(width), asciigraph.Height(height-1), asciigraph.Precision(1),
		asciigraph.SeriesChars(chars...)))
	b.WriteString("\n")
	// The legend is ours: the chart library's adds colour codes even when
	// the output is not a terminal.
	for i, l := range legends {
		if i > 0 {
			b.WriteString("   ")
		}
		fmt.Fprintf(&b, "%s %s", marks[i], l)
	}
	b.WriteString("\n")
	if h := f.Hotspot; h != nil {
		fmt.Fprintf(&b, "HOTSPOT: %s crosses %.4g at %s (probability %.2f, peak %.4g)\n",
			policies.QuantileName(h.Quantile), h.Line, h.At.Format(time.RFC3339), h.Probability, h.Peak)
		if h.Detail != "" {
			fmt.Fprintf(&b, "  %s\n", oneLine(h.Detail))
		}
	}
	return b.String()
}

// describeWorkload says what kind of demand a locality has:
// "diurnal (seasonal strength 0.62), cpu-bound, disks read-heavy; from 2 days of history".
func describeWorkload(w *api.Workload) string {
	var b strings.Builder
	b.WriteString(cell(w.Kind))
	switch w.Kind {
	case "diurnal":
		fmt.Fprintf(&b, " (seasonal strength %.2f)", w.SeasonalStrength)
	case "bursty":
		fmt.Fprintf(&b, " (%.1f%% of points are spikes)", 100*w.Spikiness)
	}
	fmt.Fprintf(&b, ", %s", cell(w.Bound))
	if w.IO != "" {
		fmt.Fprintf(&b, ", disks %s", cell(w.IO))
	} else {
		b.WriteString(", disk reads and writes not collected")
	}
	fmt.Fprintf(&b, "; from %d points since %s", w.Points, w.From.Format(time.RFC3339))
	return b.String()
}
