package command

import (
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"runtime/pprof"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/cli"
	"github.com/hashicorp/go-hclog"
	"github.com/schollz/progressbar/v3"

	"github.com/foreshape/foreshape/proof"
	"github.com/foreshape/foreshape/proof/report"
	"github.com/foreshape/foreshape/sim"
)

func init() {
	register("sim run", func(m Meta) cli.Command { return &SimRunCommand{Meta: m} })
}

// SimRunCommand compares controllers over a scenario in virtual time.
type SimRunCommand struct{ Meta }

func (c *SimRunCommand) Synopsis() string {
	return "Compare foreshape with reactive controllers over a scenario"
}

func (c *SimRunCommand) Help() string {
	return strings.TrimSpace(`
Usage: foreshape sim run -scenario FILE|NAME [options]

  Runs each controller over its own copy of a simulated cluster in virtual
  time, with the same move requests arriving at the same virtual times (the
  scenario's drain events and migration waves), and scores each from the
  simulator's ground truth. Controllers:

    none       moves start as requested, all at once
    throttle   a per-locality cap on concurrent moves; moves into or out of
               a locality wait while its current utilisation is over the line
    reactive   throttle, plus a target-value autoscaler on current
               utilisation with a cooldown
    foreshape  foreshape's own shaper and coordinator, with its forecasts
    oracle     the same, fed the simulator's true future

  Metrics: congestion_node_minutes, overload_node_minutes,
  unplaced_alloc_minutes, migrations_completed, migration_p50_s,
  migration_p95_s, slo_violation_minutes, reserved_idle_pct, scale_actions,
  node_hours (docs/proof.md defines each). The same scenario and seed give
  the same output, byte for byte.

Options:

  -scenario=FILE|NAME   Scenario file (HCL), or the name of a bundled
                        scenario (maintenance-peak, surge-wave, crossings,
                        bursty, large; or default, maintenance, and
                        shared-data, whose traces -data names). Required.
  -data=DIR             Directory searched first for the scenario's trace
                        files (such as ../shared/data).
  -controllers=LIST     Comma-separated controllers to run. Default: all.
  -seed=N               Override the scenario's seed (0, the default,
                        keeps the scenario's own).
  -format=text          Output format: text or json.
  -report=DIR           Also write report.md, report.html and the plots
                        (PNG and SVG) to DIR.
  -parallel=N           Controllers run at once. Default: the CPUs Go may use.
  -spread-by-use        foreshape and oracle spread reading each task group's
                        own use besides what allocations hold
                        (migrate.spread_by_use; foreshape reads allocation
                        stats, oracle the truth). Default: off.
  -log-level=warn       Log level (trace, debug, info, warn, error).
  -cpuprofile=FILE      Write a Go CPU profile of the run to FILE (for
                        go tool pprof).

Example:

  $ foreshape sim run -scenario maintenance-peak -format json
  $ foreshape sim run -scenario surge-wave -controllers none,throttle -report reports/surge-wave
`)
}

func (c *SimRunCommand) Run(args []string) int {
	fs := c.FlagSet("sim run", c.Help)
	scenario := fs.String("scenario", "", "")
	data := fs.String("data", "", "")
	controllers := fs.String("controllers", "", "")
	seed := fs.Uint64("seed", 0, "")
	format := fs.String("format", "text", "")
	reportDir := fs.String("report", "", "")
	parallel := fs.Int("parallel", 0, "")
	byUse := fs.Bool("spread-by-use", false, "")
	level := fs.String("log-level", "warn", "")
	cpuprofile := fs.String("cpuprofile", "", "")
	if code, ok := c.Parse(fs, args, c.Help); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return c.UsageError("sim run", "sim run takes no arguments")
	}
	if *scenario == "" {
		return c.UsageError("sim run", "-scenario is required (a file, or a bundled scenario name)")
	}
	if *format != "text" && *format != "json" {
		return c.UsageError("sim run", fmt.Sprintf("-format %q is not text or json", *format))
	}
	if *parallel < 0 {
		return c.UsageError("sim run", "-parallel must not be negative")
	}
	lvl := hclog.LevelFromString(*level)
	if lvl == hclog.NoLevel {
		return c.UsageError("sim run", fmt.Sprintf("-log-level %q is not one of trace, debug, info, warn, error", *level))
	}
	var names []string
	if *controllers != "" {
		for _, n := range strings.Split(*controllers, ",") {
			n = strings.TrimSpace(n)
			if !containsString(proof.Controllers(), n) {
				return c.UsageError("sim run", fmt.Sprintf("-controllers: unknown controller %q (have %s)", n, strings.Join(proof.Controllers(), ", ")))
			}
			names = append(names, n)
		}
	}
	sc, err := loadScenario(*scenario)
	if err != nil {
		c.UI.Error(fmt.Sprintf("error: %v", err))
		return ExitInvalid
	}
	if sc.Duration <= 0 {
		c.UI.Error(fmt.Sprintf("error: scenario %q has no duration to run", sc.Name))
		return ExitInvalid
	}
	cfg := proof.Config{
		Scenario: sc, Seed: *seed, Controllers: names, Parallel: *parallel, Params: proof.Params{SpreadByUse: *byUse},
		Logger: hclog.New(&hclog.LoggerOptions{Name: "foreshape", Level: lvl, Output: c.Err}),
	}
	if *data != "" {
		st, err := os.Stat(*data)
		if err != nil || !st.IsDir() {
			c.UI.Error(fmt.Sprintf("error: -data %s is not a directory", *data))
			return ExitInvalid
		}
		cfg.Traces.Data = os.DirFS(*data)
	}
	stop := func() {}
	if evalIsTerminal(c.Err) {
		cfg.Progress = &proof.Progress{}
		stop = progress(c.Err, cfg.Progress)
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			stop()
			c.UI.Error(fmt.Sprintf("error: -cpuprofile: %v", err))
			return ExitInvalid
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			stop()
			c.UI.Error(fmt.Sprintf("error: -cpuprofile: %v", err))
			return ExitInvalid
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	res, err := proof.RunComparison(c.Ctx, cfg)
	stop()
	if err != nil {
		msg := fmt.Sprintf("error: %v", err)
		if errors.Is(err, iofs.ErrNotExist) && *data == "" {
			msg += "\n\nThe scenario names a trace file that is not bundled: point -data at a directory\nthat holds it, such as ../shared/data."
		}
		c.UI.Error(msg)
		return ExitInvalid
	}
	if *reportDir != "" {
		if err := report.Write(*reportDir, res); err != nil {
			c.UI.Error(fmt.Sprintf("error: report: %v", err))
			return ExitInvalid
		}
	}
	if *format == "json" {
		b, err := res.JSON()
		if err != nil {
			c.UI.Error(fmt.Sprintf("error: %v", err))
			return ExitInvalid
		}
		fmt.Fprintln(c.Out, string(b))
		return ExitOK
	}
	printComparison(c.Out, sc, res)
	return ExitOK
}

// progress draws a bar of virtual minutes run until the returned function
// is called.
func progress(w io.Writer, p *proof.Progress) func() {
	bar := progressbar.NewOptions64(-1,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription("virtual minutes"),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionThrottle(100*time.Millisecond),
	)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			d, total := p.Done()
			if total > 0 && bar.GetMax64() != total {
				bar.ChangeMax64(total)
			}
			_ = bar.Set64(d)
			select {
			case <-done:
				_ = bar.Finish()
				return
			case <-t.C:
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// printComparison prints the metrics table (metrics down, controllers
// across) and the goal checks.
func printComparison(w io.Writer, sc *sim.Scenario, res *proof.Result) {
	fmt.Fprintf(w, "scenario %s (seed %d): %s of virtual time, %d move requests\n\n",
		res.Scenario, res.Seed, res.End.Sub(res.Start), len(res.Workload.Requests))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "metric\t")
	for _, r := range res.Runs {
		fmt.Fprintf(tw, "%s\t", r.Controller)
	}
	fmt.Fprintln(tw)
	for _, m := range proof.MetricNames {
		fmt.Fprintf(tw, "%s\t", m)
		for _, r := range res.Runs {
			fmt.Fprintf(tw, "%s\t", formatMetric(r.Metrics.Value(m)))
		}
		fmt.Fprintln(tw)
	}
	_ = tw.Flush()
	checks := proof.Checks(res)
	if len(checks) == 0 {
		return
	}
	fmt.Fprintln(w)
	for _, ch := range checks {
		mark := "ok  "
		switch {
		case !ch.Holds && ch.Warning:
			mark = "WARN"
		case !ch.Holds:
			mark = "MISS"
		}
		fmt.Fprintf(w, "%s %s: %s\n", mark, ch.Name, ch.Detail)
	}
}

func formatMetric(v float64) string {
	if v == float64(int64(v)) {
		return fmt.Sprintf("%d", int64(v))
	}
	return fmt.Sprintf("%.2f", v)
}

func containsString(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}
