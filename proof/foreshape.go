package proof

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/foreshape/foreshape/agent"
	"github.com/foreshape/foreshape/agent/collect"
	"github.com/foreshape/foreshape/agent/migrate"
	"github.com/foreshape/foreshape/agent/predict"
	"github.com/foreshape/foreshape/agent/shape"
	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/plugins/source"
	"github.com/foreshape/foreshape/plugins/source/nomad"
	"github.com/foreshape/foreshape/plugins/target"
	_ "github.com/foreshape/foreshape/plugins/target/builtin" // the webhook target the policies scale through
	"github.com/foreshape/foreshape/policies"
	"github.com/foreshape/foreshape/sim"
)

func init() {
	Register("foreshape", func(env *Env) (Controller, error) { return newShaper(env, false) })
	Register("oracle", func(env *Env) (Controller, error) { return newShaper(env, true) })
}

// Settings of the policies foreshape runs with in the proof. They are the
// policy defaults where one exists; the forecast reaches far enough ahead
// to see a daily peak hours before it comes, at a five-minute step.
const (
	shaperStep    = 5 * time.Minute
	shaperHorizon = 6 * time.Hour
	shaperHistory = 7 * 24 * time.Hour
	// forecastLead is how far ahead of the time it forecasts a band is
	// kept for the report's figures.
	forecastLead = 30 * time.Minute
)

// shaper is foreshape in the proof: the agent's own collector (Nomad
// source → replicated series store), forecast loop (agent/predict) and
// coordinator (agent/migrate, which plans with agent/shape), over an
// in-process state machine, with one policy per datacenter. As oracle it
// is the same, except that the forecasts it plans with are the simulator's
// true future for the cluster as it stands (sim.Cluster.Project): every
// quantile the true demand.
type shaper struct {
	env    *Env
	oracle bool
	pols   []*policies.Policy
	local  *state.Local
	coll   *collect.Collector
	pred   *predict.Predictor
	coord  *migrate.Coordinator
	step   time.Duration

	forecasts []shape.Forecast
	observed  time.Time
	tracks    map[string]*ForecastTrack
	decisions []string
	submitted map[string]bool
}

func newShaper(env *Env, oracle bool) (*shaper, error) {
	pols, err := shaperPolicies(env.Scenario, env.Params)
	if err != nil {
		return nil, err
	}
	local, err := state.NewLocal(state.Config{})
	if err != nil {
		return nil, err
	}
	// A fixed identity: the coordinator would draw a random one, and the
	// proof's runs must be byte for byte the same.
	if _, err := local.Apply(context.Background(), state.InitCluster{ID: "fs-proof"}); err != nil {
		return nil, err
	}
	s := &shaper{env: env, oracle: oracle, pols: pols, local: local, pred: predict.New(env.Log),
		step: max(shaperStep, env.Params.Observe), tracks: map[string]*ForecastTrack{}, submitted: map[string]bool{}}
	// Spreading by use, foreshape reads each allocation's stats for its
	// task groups' own use, as the agent does; the oracle is handed the
	// truth of it.
	src, err := nomad.New(nomad.Config{Client: env.Nomad, Concurrency: 1, ReadsTimeout: -1, AllocStats: !oracle && env.Params.SpreadByUse}, env.Log)
	if err != nil {
		return nil, err
	}
	sources := []source.Source{src}
	if !oracle {
		sources = append(sources, &historySource{env: env, step: s.step, span: shaperHistory})
	}
	s.coll, err = collect.New(collect.Config{Sources: sources, Apply: local, Store: local.FSM, Step: s.step,
		Lookback: shaperHistory, Logger: env.Log})
	if err != nil {
		return nil, err
	}
	s.coord, err = migrate.New(migrate.Config{
		Nomad: env.Nomad, Apply: local, State: local.FSM, Node: "proof",
		Placeholder: migrate.Placeholder{Driver: "docker", Config: map[string]any{"image": "registry.k8s.io/pause:3.10"}},
		TargetEnv:   targetEnv(env), SyncScale: true, Logger: env.Log,
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// shaperPolicies writes one policy per datacenter of the scenario, with
// the settings every controller shares, and parses it as the agent would.
// Announced surges are peak schedules of their datacenter's policy.
func shaperPolicies(sc *sim.Scenario, p Params) ([]*policies.Policy, error) {
	declared := map[string]int{}
	cpu, mem := map[string]int64{}, map[string]int64{}
	for _, g := range sc.NodeGroups {
		declared[g.Datacenter] += g.Count
		cpu[g.Datacenter] += int64(g.Count) * g.CPU
		mem[g.Datacenter] += int64(g.Count) * g.MemoryMB
	}
	step := max(shaperStep, p.Observe)
	var b strings.Builder
	for _, l := range sc.Localities {
		dc := l.Name
		n := declared[dc]
		fmt.Fprintf(&b, `shaping %q {
  locality {
    datacenter = %q
  }
  forecast {
    horizon = %q
    step    = %q
    history = %q
  }
  headroom {
    cpu    = %g
    memory = %g
  }
  reserve {
    enabled    = true
    max_cpu    = %d
    max_memory = %d
  }
  migrate {
    max_parallel  = %d
    spread        = true
    spread_by_use = %v
  }
  scale "nodes" {
    min      = %d
    max      = %d
    cooldown = %q
    target "webhook" {
      url = %q
    }
  }
`, dc, dc, dur(shaperHorizon), dur(step), dur(shaperHistory), p.Headroom, p.Headroom,
			max(cpu[dc], 1), max(mem[dc], 1), p.MaxParallel, p.SpreadByUse, n, n+int(math.Ceil(float64(n)*p.MaxScaleOut)), dur(p.Cooldown), cloudURL)
		for _, e := range sc.Events {
			if e.Kind != sim.EventSurge || !e.Announced || (e.Datacenter != "" && e.Datacenter != dc) {
				continue
			}
			at := sc.Start.Add(e.At).UTC()
			fmt.Fprintf(&b, `  schedule %q {
    cron     = "%d %d %d %d *"
    duration = %q
    action   = "peak"
    factor   = %g
  }
`, e.Name, at.Minute(), at.Hour(), at.Day(), int(at.Month()), dur(e.Duration), e.Factor)
		}
		b.WriteString("}\n\n")
	}
	pols, diags := policies.Parse("proof-policies.hcl", []byte(b.String()))
	if diags.HasErrors() {
		return nil, fmt.Errorf("proof policies: %s\n%s", diags.Error(), b.String())
	}
	return pols, nil
}

// dur writes a duration in the policies' form ("6h0m0s" is accepted).
func dur(d time.Duration) string { return d.String() }

func (s *shaper) Step(ctx context.Context, now time.Time, arrived []Request) error {
	if s.observed.IsZero() || now.Sub(s.observed) >= s.step {
		if err := s.observe(ctx, now); err != nil {
			return err
		}
		s.observed = now
	}
	for _, r := range arrived {
		sub := migrate.Submission{Target: r.To, Deadline: r.Deadline, Reason: "requested by " + r.Origin}
		if r.IsNode() {
			sub.Node = r.NodeID
		} else {
			sub.Allocation = r.AllocID
		}
		if _, err := s.coord.Submit(ctx, now, s.pols, sub); err != nil {
			var inv *migrate.InvalidError
			if errors.As(err, &inv) {
				s.env.Log.Warn("request refused", logKeyRequest, r.ID, logKeyError, err)
				s.decide(now, fmt.Sprintf("request %s refused: %v", r.ID, err))
				continue
			}
			return fmt.Errorf("submit %s: %w", r.ID, err)
		}
	}
	plan, err := s.coord.RunOnce(ctx, now, s.pols, s.forecasts)
	if err != nil {
		return err
	}
	for _, d := range plan.Decisions {
		if d.Kind != shape.KindWait {
			s.decide(now, fmt.Sprintf("%s %s %s: %s", d.Kind, d.Locality, d.Request, d.Reason))
		}
	}
	return nil
}

// maxDecisions bounds the decisions kept for the report.
const maxDecisions = 2000

func (s *shaper) decide(now time.Time, line string) {
	if len(s.decisions) < maxDecisions {
		s.decisions = append(s.decisions, now.Format("15:04")+" "+line)
	}
}

// observe collects and forecasts (foreshape), or projects the truth
// (oracle), and keeps the bands the report draws.
func (s *shaper) observe(ctx context.Context, now time.Time) error {
	dcs := make([]source.Locality, 0, len(s.pols))
	for _, p := range s.pols {
		dcs = append(dcs, p.Locality)
	}
	if _, err := s.coll.RunOnce(ctx, now, dcs); err != nil {
		s.env.Log.Warn("collection failed; forecasting from what the store has", logKeyError, err)
	}
	if s.oracle {
		s.forecasts = s.truth(now)
		if s.env.Params.SpreadByUse {
			s.forecasts = append(s.forecasts, s.groupTruth(now)...)
		}
		return nil
	}
	res := s.pred.RunOnce(now, s.local.FSM, s.pols)
	s.forecasts = append(agent.ShapeForecasts(res, s.pols), agent.GroupForecasts(s.local.FSM, now, s.pols)...)
	s.track(now, res)
	return nil
}

// truth is the oracle's forecast: each datacenter's CPU and memory demand
// over the horizon, as a percent of its ready capacity now, for the
// allocations placed now.
func (s *shaper) truth(now time.Time) []shape.Forecast {
	times := s.horizon(now)
	n := len(times)
	proj := s.env.Foresight(times)
	var out []shape.Forecast
	for _, p := range s.pols {
		var cpuCap, memCap float64
		cpu, mem := make([]float64, n), make([]float64, n)
		for _, np := range proj {
			if np.Status != "ready" || !p.Locality.Matches(np.Datacenter, np.NodePool, np.NodeClass) {
				continue
			}
			cpuCap += np.CPUCapacityMHz
			memCap += np.MemCapacityMB
			for i := range times {
				cpu[i] += np.CPUMHz[i]
				mem[i] += np.MemMB[i]
			}
		}
		if cpuCap == 0 || memCap == 0 {
			continue
		}
		for i := range times {
			cpu[i] = 100 * cpu[i] / cpuCap
			mem[i] = 100 * mem[i] / memCap
		}
		line := 100 - s.env.Params.Headroom
		for _, m := range []struct {
			name string
			v    []float64
		}{{source.CPUPercent, cpu}, {source.MemoryPercent, mem}} {
			out = append(out, shape.Forecast{Policy: p.Name, Locality: p.Locality.String(), Metric: m.name,
				Times: times, Planning: m.v, Quantile: p.Forecast.Quantile, Line: line, HasLine: true})
		}
		s.trackTruth(p.Locality.Datacenter, now, times, cpu, cpuCap)
	}
	return out
}

// groupTruth is the oracle's forecast of each task group's use per
// allocation over the horizon: its true demand over its allocations.
func (s *shaper) groupTruth(now time.Time) []shape.Forecast {
	times := s.horizon(now)
	var out []shape.Forecast
	for _, g := range s.env.GroupForesight(times) {
		if g.Allocs == 0 {
			continue
		}
		cpu, mem := make([]float64, len(times)), make([]float64, len(times))
		for i := range times {
			cpu[i] = g.CPUMHz[i] / float64(g.Allocs)
			mem[i] = g.MemMB[i] / float64(g.Allocs)
		}
		key := shape.GroupKey(g.Namespace, g.Job, g.Group)
		out = append(out, shape.Forecast{Group: key, Metric: source.CPUPercent, Times: times, Planning: cpu, Quantile: 1},
			shape.Forecast{Group: key, Metric: source.MemoryPercent, Times: times, Planning: mem, Quantile: 1})
	}
	return out
}

// horizon is the times the oracle forecasts: a step apart over the
// policies' horizon, from a step after now.
func (s *shaper) horizon(now time.Time) []time.Time {
	times := make([]time.Time, int(shaperHorizon/s.step))
	for i := range times {
		times[i] = now.Add(time.Duration(i+1) * s.step)
	}
	return times
}

// track keeps, per datacenter, the CPU forecast's p10, p50 and p90 for the
// time forecastLead ahead, in MHz of the capacity ready now.
func (s *shaper) track(now time.Time, res predict.Result) {
	cap := s.readyCPU()
	for _, f := range res.Forecasts {
		if f.Metric != source.CPUPercent {
			continue
		}
		l := f.Locality
		if l.Datacenter == "" {
			continue
		}
		k := sort.Search(len(f.Times), func(i int) bool { return !f.Times[i].Before(now.Add(forecastLead)) })
		if k >= len(f.Times) {
			continue
		}
		p10, p50, p90 := f.Band(0.1), f.Band(0.5), f.Band(0.9)
		if p10 == nil || p50 == nil || p90 == nil {
			continue
		}
		c := cap[l.Datacenter] / 100
		s.addTrack(l.Datacenter, f.Times[k], p10[k]*c, p50[k]*c, p90[k]*c)
	}
}

func (s *shaper) trackTruth(dc string, now time.Time, times []time.Time, cpu []float64, cpuCap float64) {
	k := sort.Search(len(times), func(i int) bool { return !times[i].Before(now.Add(forecastLead)) })
	if k < len(times) {
		v := cpu[k] * cpuCap / 100
		s.addTrack(dc, times[k], v, v, v)
	}
}

func (s *shaper) addTrack(dc string, t time.Time, p10, p50, p90 float64) {
	tr := s.tracks[dc]
	if tr == nil {
		tr = &ForecastTrack{Datacenter: dc, Lead: forecastLead}
		s.tracks[dc] = tr
	}
	tr.Times = append(tr.Times, t)
	tr.P10, tr.P50, tr.P90 = append(tr.P10, p10), append(tr.P50, p50), append(tr.P90, p90)
}

// readyCPU is each datacenter's ready CPU capacity now, MHz.
func (s *shaper) readyCPU() map[string]float64 {
	out := map[string]float64{}
	for _, np := range s.env.Foresight(nil) {
		if np.Status == "ready" {
			out[np.Datacenter] += np.CPUCapacityMHz
		}
	}
	return out
}

// Notes implements Noter.
func (s *shaper) Notes() Notes {
	var n Notes
	for _, dc := range sortedKeys(s.tracks) {
		n.Forecasts = append(n.Forecasts, *s.tracks[dc])
	}
	n.Decisions = s.decisions
	return n
}

// historySource hands the collector, on its first cycle, the demand
// history an agent that had run before the scenario started would hold:
// each datacenter's CPU and memory utilisation over span, at step, for the
// placement at the start (Env.History). Afterwards it has nothing new: the
// Nomad source takes over.
type historySource struct {
	env  *Env
	step time.Duration
	span time.Duration
	done bool
}

func (h *historySource) Name() string { return "history" }

func (h *historySource) Collect(_ context.Context, req source.Request) (source.Result, error) {
	if h.done {
		return source.Result{}, nil
	}
	h.done = true
	from := req.Now.Add(-h.span).Truncate(h.step)
	var times []time.Time
	for t := from; t.Before(req.Now); t = t.Add(h.step) {
		times = append(times, t)
	}
	proj, err := h.env.History(times)
	if err != nil {
		return source.Result{}, err
	}
	var res source.Result
	for _, l := range req.Localities {
		var cpuCap, memCap float64
		cpu, mem := make([]float64, len(times)), make([]float64, len(times))
		for _, np := range proj {
			if np.Status != "ready" || !l.Matches(np.Datacenter, np.NodePool, np.NodeClass) {
				continue
			}
			cpuCap += np.CPUCapacityMHz
			memCap += np.MemCapacityMB
			for i := range times {
				// What the node's stats would have said: served CPU, used memory.
				cpu[i] += min(np.CPUMHz[i], np.CPUCapacityMHz)
				mem[i] += min(np.MemMB[i], np.MemCapacityMB)
			}
		}
		if cpuCap == 0 || memCap == 0 {
			continue
		}
		scope := l.String()
		for i, t := range times {
			res.Samples = append(res.Samples,
				source.Sample{Series: source.SeriesName(scope, source.CPUPercent), Time: t, Value: 100 * cpu[i] / cpuCap},
				source.Sample{Series: source.SeriesName(scope, source.MemoryPercent), Time: t, Value: 100 * mem[i] / memCap},
				source.Sample{Series: source.SeriesName(scope, source.CPUMHz), Time: t, Value: cpu[i]},
				source.Sample{Series: source.SeriesName(scope, source.MemoryMB), Time: t, Value: mem[i]})
		}
	}
	if !h.env.Params.SpreadByUse {
		res.Sort()
		return res, nil
	}
	// The task groups' series, as the Nomad source's allocation stats
	// would have given them.
	groups, err := h.env.GroupHistory(times)
	if err != nil {
		return source.Result{}, err
	}
	for _, g := range groups {
		scope := "group/" + g.Namespace + "/" + g.Job + "/" + g.Group
		for i, t := range times {
			res.Samples = append(res.Samples,
				source.Sample{Series: source.SeriesName(scope, source.CPUMHz), Time: t, Value: g.CPUMHz[i]},
				source.Sample{Series: source.SeriesName(scope, source.MemoryMB), Time: t, Value: g.MemMB[i]},
				source.Sample{Series: source.SeriesName(scope, source.Allocs), Time: t, Value: float64(g.Allocs)})
		}
	}
	res.Sort()
	return res, nil
}

// targetEnv is what scale targets get: the cloud through env.HTTP, and
// back-off that takes no wall time (the run is in virtual time).
func targetEnv(env *Env) target.Env {
	return target.Env{Nomad: env.Nomad, HTTP: env.HTTP, Logger: env.Log.Named("target"),
		Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() }}
}
