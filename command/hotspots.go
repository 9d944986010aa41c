package command

import (
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/cli"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/plugins/source"
)

func init() {
	register("hotspots", func(m Meta) cli.Command { return &HotspotsCommand{Meta: m} })
}

// HotspotsCommand lists predicted hotspots.
type HotspotsCommand struct{ Meta }

func (c *HotspotsCommand) Synopsis() string {
	return "List localities predicted to cross their headroom"
}

func (c *HotspotsCommand) Help() string {
	return strings.TrimSpace(`
Usage: foreshape hotspots [options]

  Lists every locality and metric whose planning quantile crosses the
  policy's headroom line within the forecast horizon: when it first crosses,
  how likely the crossing is, and the peak predicted value. Hotspots are
  predicted for CPU and memory, which have a headroom line; when none is,
  it says so, and lists the CPU and memory series that have no forecast
  yet, and so no hotspot either, with why (warming up, stale).

  Inside the window of a drain of some of a locality's nodes (a schedule
  with nodes), a hotspot is read on the nodes that stay: the locality's
  percent is measured over all its ready nodes, the drained ones too while
  they are up, so it is multiplied by what the rest's share of the capacity
  is. Such a hotspot says so on a line under the table.

Options:
` + clientFlagsHelp + `

Example:

  $ foreshape hotspots
  Policy  Locality  Metric  At                    Probability  Line  Peak
  web     dc1/web   cpu     2026-01-01T10:15:00Z  0.93         80    91.2
`)
}

func (c *HotspotsCommand) Run(args []string) int {
	var cf clientFlags
	fs := c.FlagSet("hotspots", c.Help)
	cf.register(fs)
	if code, ok := c.Parse(fs, args, c.Help); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return c.UsageError("hotspots", "hotspots takes no arguments")
	}
	cl := cf.client()
	hs, err := cl.Hotspots(c.Ctx)
	if err != nil {
		return c.apiError(err)
	}
	if cf.json {
		return c.printJSON(hs)
	}
	if len(hs) == 0 {
		return c.noHotspots(cl)
	}
	w := c.table()
	fmt.Fprintln(w, "Policy\tLocality\tMetric\tAt\tProbability\tLine\tPeak")
	for _, h := range hs {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%.2f\t%.4g\t%.4g\n", cell(h.Policy), cell(h.Locality), cell(h.Metric),
			h.At.Format(time.RFC3339), h.Probability, h.Line, h.Peak)
	}
	w.Flush()
	for _, h := range hs {
		if h.Detail != "" {
			fmt.Fprintf(c.Out, "  %s %s %s: %s\n", cell(h.Policy), cell(h.Locality), cell(h.Metric), oneLine(h.Detail))
		}
	}
	return ExitOK
}

// maxUnforecast bounds the series without a forecast noHotspots lists;
// foreshape status lists them all.
const maxUnforecast = 10

// noHotspots says that no hotspot is predicted, and, when some CPU or
// memory series (the metrics with a headroom line, the only ones a hotspot
// is predicted for) has no forecast to predict one from, which and why: an
// agent that had forecast nothing yet, or had no policy, also answered
// "No hotspots predicted.".
func (c *HotspotsCommand) noHotspots(cl *api.Client) int {
	fcs, err := cl.Forecasts(c.Ctx)
	if err != nil {
		return c.apiError(err)
	}
	if len(fcs) == 0 {
		pols, err := cl.Policies(c.Ctx)
		switch {
		case err != nil:
			return c.apiError(err)
		case len(pols) == 0:
			fmt.Fprintln(c.Out, "No hotspots predicted: the agent has no policy, so it forecasts nothing.")
		default:
			fmt.Fprintln(c.Out, "No hotspots predicted: the leader has published no forecast yet.")
		}
		return ExitOK
	}
	ready := 0
	var none []api.Forecast
	for _, f := range fcs {
		switch {
		case f.Metric != source.CPUPercent && f.Metric != source.MemoryPercent:
		case f.Ready():
			ready++
		default:
			none = append(none, f)
		}
	}
	switch {
	case len(none) == 0:
		fmt.Fprintln(c.Out, "No hotspots predicted.")
		return ExitOK
	case ready == 0:
		fmt.Fprintln(c.Out, "No hotspots predicted: no CPU or memory series has a forecast yet, so none has a hotspot:")
	default:
		forecasts, have := "forecasts", "have"
		if ready == 1 {
			forecasts = "forecast"
		}
		if len(none) == 1 {
			have = "has"
		}
		fmt.Fprintf(c.Out, "No hotspots predicted by %d CPU or memory %s; %d series %s no forecast yet, so no hotspot either:\n",
			ready, forecasts, len(none), have)
	}
	w := c.table()
	for i, f := range none {
		if i == maxUnforecast {
			break
		}
		fmt.Fprintf(w, "  %s\t%s\n", cell(f.Series), oneLine(f.Note))
	}
	w.Flush()
	if n := len(none) - maxUnforecast; n > 0 {
		fmt.Fprintf(c.Out, "  … and %d more: foreshape status lists them\n", n)
	}
	return ExitOK
}
