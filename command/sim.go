package command

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/foreshape/foreshape/sim"
	"github.com/hashicorp/cli"
	"github.com/hashicorp/go-hclog"
)

func init() {
	register("sim serve", func(m Meta) cli.Command { return &SimServeCommand{Meta: m} })
}

// defaultTruthWindow is how much virtual time of per-minute ground truth
// sim serve keeps by default: a week, far more than a test reads, and
// about 80 MB of the default scenario's records.
const defaultTruthWindow = 7 * 24 * time.Hour

// SimServeCommand serves a simulated Nomad cluster over HTTP.
type SimServeCommand struct{ Meta }

func (c *SimServeCommand) Synopsis() string {
	return "Serve a simulated Nomad cluster on an HTTP address"
}

func (c *SimServeCommand) Help() string {
	return strings.TrimSpace(`
Usage: foreshape sim serve [options]

  Serves a simulated Nomad cluster that answers Nomad's HTTP API, driven by
  real utilisation traces. Any Nomad client (the nomad CLI, foreshape's
  agent) can talk to it. Virtual time runs at -speed times wall time; with
  -speed 0 the clock only moves through POST /v1/sim/step?d=1m.

Options:

  -addr=127.0.0.1:4646   Address to listen on.
  -scenario=FILE|NAME    Scenario file (HCL), or the name of a bundled
                         scenario (default, maintenance, shared-data, and
                         the proof scenarios: maintenance-peak, surge-wave,
                         crossings, bursty, large).
                         Default: the bundled default scenario
                         (3 datacenters, 24 nodes).
  -speed=60              Virtual seconds per wall second, at most 100000;
                         0 steps manually.
  -seed=N                Override the scenario's seed.
  -data=DIR              Directory searched first for trace files named by
                         the scenario (such as ../shared/data), before the
                         bundled samples.
  -truth-window=168h     How much virtual time of per-minute ground truth
                         (GET /v1/sim/truth's node and job minutes) to
                         keep; older minutes are dropped as new ones come,
                         so that a long run's memory stays bounded (the
                         default scenario records about 11 MB a virtual
                         day). 0 keeps every minute.
  -log-level=info        Log level (trace, debug, info, warn, error).

Example:

  $ foreshape sim serve -addr 127.0.0.1:4646 -speed 60
  $ NOMAD_ADDR=http://127.0.0.1:4646 nomad node status
`)
}

func (c *SimServeCommand) Run(args []string) int {
	fs := c.FlagSet("sim serve", c.Help)
	addr := fs.String("addr", "127.0.0.1:4646", "")
	scenario := fs.String("scenario", "", "")
	speed := fs.Float64("speed", 60, "")
	seed := fs.Uint64("seed", 0, "")
	data := fs.String("data", "", "")
	level := fs.String("log-level", "info", "")
	window := fs.Duration("truth-window", defaultTruthWindow, "")
	if code, ok := c.Parse(fs, args, c.Help); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return c.UsageError("sim serve", "sim serve takes no arguments")
	}
	if *window < 0 {
		return c.UsageError("sim serve", fmt.Sprintf("-truth-window must not be negative (0 keeps every minute), got %s", *window))
	}
	if !(*speed >= 0 && *speed <= maxClockSpeed) {
		return c.UsageError("sim serve", fmt.Sprintf("-speed must not be negative, and at most %d (virtual seconds per wall second; 0 steps manually), got %g", maxClockSpeed, *speed))
	}
	lvl := hclog.LevelFromString(*level)
	if lvl == hclog.NoLevel {
		return c.UsageError("sim serve", fmt.Sprintf("-log-level %q is not one of trace, debug, info, warn, error", *level))
	}
	sc, err := loadScenario(*scenario)
	if err != nil {
		c.UI.Error(fmt.Sprintf("error: %v", err))
		return ExitInvalid
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "foreshape", Level: lvl, Output: c.Err})
	opts := sim.Options{Seed: *seed, Logger: log.Named("sim"), TruthWindow: *window}
	if *data != "" {
		st, err := os.Stat(*data)
		if err != nil || !st.IsDir() {
			c.UI.Error(fmt.Sprintf("error: -data %s is not a directory", *data))
			return ExitInvalid
		}
		opts.Traces.Data = os.DirFS(*data)
	}
	cluster, err := sim.New(sc, opts)
	if err != nil {
		msg := fmt.Sprintf("error: %v", err)
		if errors.Is(err, iofs.ErrNotExist) && *data == "" {
			msg += "\n\nThe scenario names a trace file that is not bundled: point -data at a directory\nthat holds it, such as ../shared/data."
		}
		c.UI.Error(msg)
		return ExitInvalid
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		c.UI.Error(fmt.Sprintf("error: listen: %v", err))
		return ExitInvalid
	}
	ctx, cancel := context.WithCancel(c.Ctx)
	defer cancel()
	srv := &http.Server{Handler: cluster.Handler(), ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	clock := "manual (POST /v1/sim/step?d=1m)"
	if *speed > 0 {
		clock = fmt.Sprintf("%gx wall time", *speed)
	}
	fmt.Fprintf(c.Out, "foreshape sim: serving Nomad API on http://%s\n", ln.Addr())
	fmt.Fprintf(c.Out, "  scenario: %s (%d node groups, %d jobs, seed %d)\n", sc.Name, len(sc.NodeGroups), len(sc.Jobs), seedOf(sc, *seed))
	fmt.Fprintf(c.Out, "  clock:    %s, virtual start %s\n", clock, sc.Start.Format(time.RFC3339))
	errc := make(chan error, 2)
	var clockDone sync.WaitGroup
	defer clockDone.Wait() // after cancel: the clock stops before the command returns
	go func() { errc <- srv.Serve(ln) }()
	if *speed > 0 {
		clockDone.Add(1)
		go func() {
			defer clockDone.Done()
			errc <- cluster.Run(ctx, *speed)
		}()
	}
	select {
	case <-ctx.Done():
	case err := <-errc:
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			c.UI.Error(fmt.Sprintf("error: %v", err))
			cancel()
			_ = srv.Close()
			return ExitInvalid
		}
	}
	cancel()
	shutdown, done := context.WithTimeout(context.Background(), 5*time.Second)
	defer done()
	if err := srv.Shutdown(shutdown); err != nil {
		_ = srv.Close()
	}
	fmt.Fprintln(c.Out, "foreshape sim: stopped")
	return ExitOK
}

// loadScenario reads a scenario file, or a bundled scenario by name when no
// such file exists.
func loadScenario(arg string) (*sim.Scenario, error) {
	if arg == "" {
		return sim.DefaultScenario(), nil
	}
	if _, err := os.Stat(arg); err != nil && !strings.ContainsRune(arg, os.PathSeparator) {
		name := strings.TrimSuffix(arg, ".hcl") + ".hcl"
		if _, err := iofs.Stat(sim.Scenarios(), name); err == nil {
			return sim.LoadScenario(sim.Scenarios(), name)
		}
		if errors.Is(err, iofs.ErrNotExist) {
			bundled, _ := iofs.Glob(sim.Scenarios(), "*.hcl")
			for i, b := range bundled {
				bundled[i] = strings.TrimSuffix(b, ".hcl")
			}
			slices.Sort(bundled)
			return nil, fmt.Errorf("load scenario: %q is neither a scenario file nor a bundled scenario (%s)", arg, strings.Join(bundled, ", "))
		}
	}
	return sim.LoadScenario(os.DirFS(filepath.Dir(arg)), filepath.Base(arg))
}

func seedOf(sc *sim.Scenario, override uint64) uint64 {
	if override != 0 {
		return override
	}
	return sc.Seed
}
