package proof

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/sim"
)

// Log keys.
const (
	logKeyController = "controller"
	logKeyRequest    = "request"
	logKeyAlloc      = "alloc_id"
	logKeyNode       = "node"
	logKeyLocality   = "locality"
	logKeyReason     = "reason"
	logKeyCount      = "count"
	logKeyError      = "error"
)

// Controller acts on one simulated cluster, once per control cycle.
type Controller interface {
	// Step observes the cluster at virtual time now and acts, given the
	// requests that arrived since the previous cycle (in arrival order).
	// An error ends the controller's run.
	Step(ctx context.Context, now time.Time, arrived []Request) error
}

// Env is what a controller gets to act with. Every controller gets the same
// kind of Env over its own cluster.
type Env struct {
	// Scenario is the scenario as the simulator runs it: drain events are
	// left to the controllers (see Workload).
	Scenario *sim.Scenario
	// Nomad is a real Nomad API client on the controller's cluster.
	Nomad *nomadapi.Client
	// HTTP reaches the cloud (cloudURL) that adds nodes.
	HTTP *http.Client
	// Params are the settings every controller shares.
	Params Params
	// Log is named after the controller.
	Log hclog.Logger
	// Foresight projects the cluster's demand at any times for today's
	// placement (sim.Cluster.Project): the oracle's perfect forecast. No
	// other controller may read the future through it.
	Foresight func(times []time.Time) []sim.NodeProjection
	// History is Foresight restricted to the past: the demand history an
	// agent that had run before the scenario started would hold. It
	// refuses times after the cluster's present.
	History func(times []time.Time) ([]sim.NodeProjection, error)
	// GroupForesight and GroupHistory are Foresight and History summed
	// per task group (sim.Cluster.ProjectGroups).
	GroupForesight func(times []time.Time) []sim.GroupProjection
	GroupHistory   func(times []time.Time) ([]sim.GroupProjection, error)
}

// Factory builds a controller.
type Factory func(env *Env) (Controller, error)

var (
	registryMu sync.RWMutex
	registry   = map[string]Factory{}
)

// Register makes a controller available under name. It is called from
// init; registering a name twice panics.
func Register(name string, f Factory) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[name]; dup || f == nil {
		panic("proof: Register " + name + " twice or with a nil factory")
	}
	registry[name] = f
}

// order is the canonical order of controllers in results and reports.
var order = []string{"none", "throttle", "reactive", "foreshape", "oracle"}

// Controllers returns the registered controllers' names, in canonical order.
func Controllers() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	var out []string
	for _, n := range order {
		if registry[n] != nil {
			out = append(out, n)
		}
	}
	var rest []string
	for n := range registry {
		if !slices.Contains(order, n) {
			rest = append(rest, n)
		}
	}
	sort.Strings(rest)
	return append(out, rest...)
}

// Config is one comparison.
type Config struct {
	Scenario *sim.Scenario
	// Traces finds the scenario's trace files.
	Traces sim.TraceSource
	// Seed overrides the scenario's seed when non-zero.
	Seed uint64
	// Controllers to run; empty means every registered one.
	Controllers []string
	Params      Params
	// Parallel bounds how many controllers run at once; zero means
	// GOMAXPROCS.
	Parallel int
	Logger   hclog.Logger
	// Progress, when set, receives each controller's virtual progress.
	Progress *Progress
}

// Progress counts the virtual minutes run, for a progress bar. It is safe
// for concurrent use.
type Progress struct {
	done, total atomic.Int64
}

// Done returns the virtual minutes run and to run, over every controller.
func (p *Progress) Done() (done, total int64) { return p.done.Load(), p.total.Load() }

// Result is one comparison's outcome.
type Result struct {
	Scenario string
	Seed     uint64
	Start    time.Time
	End      time.Time
	Params   Params
	// Runs are in the canonical order of their controllers.
	Runs     []Run
	Workload Workload
}

// Run is one controller's outcome.
type Run struct {
	Controller string
	Metrics    Metrics
	// Localities are per-minute series per datacenter, for the report.
	Localities []LocalitySeries
	// Moves are the migrations the simulator recorded.
	Moves []sim.MigrationRecord
	// Nodes are the nodes the run saw, with their congestion.
	Nodes []NodeRecord
	// Starts holds when each request's move started (the first stop or
	// drain the controller issued for it), by request ID.
	Starts map[string]time.Time
	// Notes are what the controller reports about itself (forecast bands,
	// decisions), when it implements Noter.
	Notes Notes
	// Unfinished says, per request whose work is not done at the end of
	// the run (a drained node still running allocations, a wave's
	// allocation still where it was), what is left; Outside counts the
	// transfers of requested work that landed outside the request's
	// target datacenter. Both are read from the cluster, not the
	// controller.
	Unfinished []string
	Outside    int
}

// ErrUnknownController is returned for a controller name nobody registered.
var ErrUnknownController = errors.New("unknown controller")

// RunComparison runs every controller of cfg over its own copy of the
// scenario and scores each from the simulator's ground truth.
func RunComparison(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Scenario == nil {
		return nil, errors.New("proof: no scenario")
	}
	if cfg.Scenario.Duration <= 0 {
		return nil, fmt.Errorf("proof: scenario %q has no duration", cfg.Scenario.Name)
	}
	names := cfg.Controllers
	if len(names) == 0 {
		names = Controllers()
	}
	registryMu.RLock()
	factories := make([]Factory, len(names))
	for i, n := range names {
		factories[i] = registry[n]
		if factories[i] == nil {
			registryMu.RUnlock()
			return nil, fmt.Errorf("proof: %w %q (have %s)", ErrUnknownController, n, strings.Join(Controllers(), ", "))
		}
	}
	registryMu.RUnlock()
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.Params.Observe == 0 {
		cfg.Params.Observe = cfg.Scenario.ObserveEvery
	}
	cfg.Params = cfg.Params.withDefaults()
	seed := cfg.Scenario.Seed
	if cfg.Seed != 0 {
		seed = cfg.Seed
	}
	res := &Result{
		Scenario: cfg.Scenario.Name, Seed: seed, Params: cfg.Params,
		Start: cfg.Scenario.Start, End: cfg.Scenario.Start.Add(cfg.Scenario.Duration),
		Workload: PlanWorkload(cfg.Scenario),
	}
	if cfg.Progress != nil {
		cfg.Progress.total.Add(int64(len(names)) * int64(cfg.Scenario.Duration/time.Minute))
	}
	par := cfg.Parallel
	if par <= 0 {
		par = runtime.GOMAXPROCS(0)
	}
	runs := make([]Run, len(names))
	errs := make([]error, len(names))
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for i := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				errs[i] = ctx.Err()
				return
			}
			defer func() { <-sem }()
			runs[i], errs[i] = runOne(ctx, cfg, names[i], factories[i], seed, res.Workload)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("proof: %s: %w", names[i], err)
		}
	}
	idx := func(n string) int {
		if k := slices.Index(order, n); k >= 0 {
			return k
		}
		return len(order)
	}
	sort.SliceStable(runs, func(a, b int) bool { return idx(runs[a].Controller) < idx(runs[b].Controller) })
	res.Runs = runs
	return res, nil
}

// runOne runs one controller over its own cluster.
func runOne(ctx context.Context, cfg Config, name string, f Factory, seed uint64, w Workload) (Run, error) {
	log := cfg.Logger.Named(name)
	sc := withoutDrains(cfg.Scenario)
	cl, err := sim.New(sc, sim.Options{Seed: seed, Traces: cfg.Traces, Logger: log.Named("sim")})
	if err != nil {
		return Run{}, err
	}
	h := cl.Handler()
	nc, err := nomadClient(h)
	if err != nil {
		return Run{}, err
	}
	cl2 := newCloud(cfg.Scenario, h, cfg.Params)
	env := &Env{
		Scenario:       sc,
		Nomad:          nc,
		HTTP:           &http.Client{Transport: handlerTransport{cl2}},
		Params:         cfg.Params,
		Log:            log,
		Foresight:      cl.Project,
		GroupForesight: cl.ProjectGroups,
		History: func(times []time.Time) ([]sim.NodeProjection, error) {
			if err := past(cl, times); err != nil {
				return nil, err
			}
			return cl.Project(times), nil
		},
		GroupHistory: func(times []time.Time) ([]sim.GroupProjection, error) {
			if err := past(cl, times); err != nil {
				return nil, err
			}
			return cl.ProjectGroups(times), nil
		},
	}
	ctrl, err := f(env)
	if err != nil {
		return Run{}, err
	}
	arr := newArrivals(w.Requests, nc, log)
	end := sc.Start.Add(sc.Duration)
	interval := cfg.Params.Interval
	for now := sc.Start; now.Before(end); now = now.Add(interval) {
		if err := ctx.Err(); err != nil {
			return Run{}, err
		}
		arrived, err := arr.due(now)
		if err != nil {
			return Run{}, err
		}
		if err := ctrl.Step(ctx, now, arrived); err != nil {
			return Run{}, fmt.Errorf("step at %s: %w", now.Format(time.RFC3339), err)
		}
		step := min(interval, end.Sub(now))
		if err := cl.Step(step); err != nil {
			return Run{}, err
		}
		if cfg.Progress != nil {
			cfg.Progress.done.Add(int64(step / time.Minute))
		}
	}
	tr := cl.Truth()
	run := Run{Controller: name, Starts: moveStarts(tr, w.Requests, arr.resolved)}
	if run.Unfinished, run.Outside, err = unfinished(nc, tr, arr); err != nil {
		return Run{}, err
	}
	run.Metrics = Score(tr, sc.Start, end, cfg.Params)
	run.Localities = localitySeries(tr, sc.Start, end)
	run.Moves = tr.Migrations
	run.Nodes = nodeRecords(tr, sc.Start, end)
	if n, ok := ctrl.(Noter); ok {
		run.Notes = n.Notes()
	}
	return run, nil
}

// past refuses times after the cluster's present: history may not read
// the future.
func past(cl *sim.Cluster, times []time.Time) error {
	now := cl.Now()
	for _, t := range times {
		if t.After(now) {
			return fmt.Errorf("proof: history at %s is after the present %s", t.Format(time.RFC3339), now.Format(time.RFC3339))
		}
	}
	return nil
}
