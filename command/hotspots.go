package command

import (
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/cli"
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
  how likely the crossing is, and the peak predicted value.

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
	hs, err := cf.client().Hotspots(c.Ctx)
	if err != nil {
		return c.apiError(err)
	}
	if cf.json {
		return c.printJSON(hs)
	}
	if len(hs) == 0 {
		fmt.Fprintln(c.Out, "No hotspots predicted.")
		return ExitOK
	}
	w := c.table()
	fmt.Fprintln(w, "Policy\tLocality\tMetric\tAt\tProbability\tLine\tPeak")
	for _, h := range hs {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%.2f\t%.4g\t%.4g\n", h.Policy, h.Locality, h.Metric,
			h.At.Format(time.RFC3339), h.Probability, h.Line, h.Peak)
	}
	w.Flush()
	return ExitOK
}
