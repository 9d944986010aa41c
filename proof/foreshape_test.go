package proof

import (
	"bytes"
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/plugins/source"
	"github.com/foreshape/foreshape/policies"
	"github.com/foreshape/foreshape/sim"
)

func TestShaperPolicies(t *testing.T) {
	sc, err := sim.LoadScenario(sim.Scenarios(), "surge-wave.hcl")
	if err != nil {
		t.Fatal(err)
	}
	pols, err := shaperPolicies(sc, DefaultParams())
	if err != nil {
		t.Fatal(err)
	}
	if len(pols) != 2 || pols[0].Name != "old" || pols[1].Name != "new" {
		t.Fatalf("policies %v", pols)
	}
	p := pols[1]
	if p.Locality != (policies.Locality{Datacenter: "new"}) || p.Forecast.Step != 5*time.Minute || p.Forecast.Horizon != 6*time.Hour ||
		p.Headroom.CPU != 20 || !p.Reserve.Enabled || p.Migrate.MaxParallel != 2 {
		t.Errorf("policy new = %+v", p)
	}
	if len(p.Scales) != 1 || p.Scales[0].Min != 8 || p.Scales[0].Max != 12 || p.Scales[0].Target.Plugin != "webhook" || p.Scales[0].Cooldown != 5*time.Minute {
		t.Errorf("scale = %+v", p.Scales)
	}
	// The announced sale, 2h30 in, is a peak schedule of new only.
	if len(p.Schedules) != 1 || p.Schedules[0].Action != policies.ActionPeak || p.Schedules[0].Factor != 1.6 ||
		p.Schedules[0].Duration != 3*time.Hour || len(pols[0].Schedules) != 0 {
		t.Fatalf("schedules = %+v / %+v", p.Schedules, pols[0].Schedules)
	}
	w := p.Schedules[0].Windows(sc.Start, sc.Start.Add(sc.Duration))
	if len(w) != 1 || !w[0].Start.Equal(sc.Start.Add(150*time.Minute)) {
		t.Errorf("sale windows = %+v", w)
	}
	if !p.Migrate.Spread || p.Migrate.SpreadByUse {
		t.Errorf("migrate = %+v; want spread, not by use", p.Migrate)
	}
	// docs/proof.md: 7 days of history, the headroom line at 80% for
	// memory too, reservations at the policy defaults (priority 10, lead
	// time 15 minutes).
	if p.Forecast.History != 7*24*time.Hour || p.Headroom.Memory != 20 ||
		p.Reserve.Priority != 10 || p.Reserve.LeadTime != 15*time.Minute {
		t.Errorf("policy new: history %v, memory headroom %v, reserve %+v", p.Forecast.History, p.Headroom.Memory, p.Reserve)
	}
	// Reservations are capped at the datacenter's declared capacity (the
	// policy requires a cap).
	var cpu, mem int64
	for _, g := range sc.NodeGroups {
		if g.Datacenter == "new" {
			cpu += int64(g.Count) * g.CPU
			mem += int64(g.Count) * g.MemoryMB
		}
	}
	if int64(p.Reserve.MaxCPU) != cpu || int64(p.Reserve.MaxMemory) != mem || cpu == 0 {
		t.Errorf("reserve caps %d MHz / %d MB; want new's declared %d / %d", p.Reserve.MaxCPU, p.Reserve.MaxMemory, cpu, mem)
	}
	// The forecast step is observe_every where that is longer than 5
	// minutes (large's is 5 minutes; 10 here).
	slow := DefaultParams()
	slow.Observe = 10 * time.Minute
	if pols, err := shaperPolicies(sc, slow); err != nil || pols[1].Forecast.Step != 10*time.Minute {
		t.Errorf("observe_every 10m: %v, step %v", err, pols[1].Forecast.Step)
	}
	byUse := DefaultParams()
	byUse.SpreadByUse = true
	if pols, err = shaperPolicies(sc, byUse); err != nil || !pols[1].Migrate.SpreadByUse {
		t.Errorf("SpreadByUse: %v, migrate %+v", err, pols[1].Migrate)
	}
}

func TestHistorySourceIsWhatTheNodesWouldHaveReported(t *testing.T) {
	sc := scenario(t, "")
	cl, err := sim.New(sc, sim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	env := &Env{History: func(times []time.Time) ([]sim.NodeProjection, error) { return cl.Project(times), nil }}
	h := &historySource{env: env, step: 5 * time.Minute, span: 24 * time.Hour}
	req := source.Request{Now: sc.Start, Localities: []policies.Locality{{Datacenter: "dc1"}, {Datacenter: "dc2"}}}
	res, err := h.Collect(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	per := map[string]int{}
	for _, s := range res.Samples {
		per[s.Series]++
		if !s.Time.Before(sc.Start) || s.Time.Before(sc.Start.Add(-24*time.Hour)) {
			t.Fatalf("sample %+v outside the day before the start", s)
		}
	}
	if per["dc1:cpu"] != 288 || per["dc2:memory"] != 288 || per["dc1:cpu_mhz"] != 288 {
		t.Errorf("samples per series = %v, want 288 each", per)
	}
	// svc's CPU is a constant half of its request; dc1 holds six 1000 MHz
	// allocations on 16000 MHz.
	for _, s := range res.Samples {
		if s.Series == "dc1:cpu" && math.Abs(s.Value-100*3000.0/16000) > 1e-9 {
			t.Fatalf("dc1 cpu %v at %s, want %v", s.Value, s.Time, 100*3000.0/16000)
		}
	}
	if again, _ := h.Collect(context.Background(), req); len(again.Samples) != 0 {
		t.Error("the history came twice")
	}
	if per["group/default/svc/svc:cpu_mhz"] != 0 {
		t.Error("task group series without spread_by_use")
	}

	// Spreading by use, the task groups' series too: svc's six
	// allocations at 500 MHz each.
	env.Params.SpreadByUse = true
	env.GroupHistory = func(times []time.Time) ([]sim.GroupProjection, error) { return cl.ProjectGroups(times), nil }
	h = &historySource{env: env, step: 5 * time.Minute, span: 24 * time.Hour}
	res, err = h.Collect(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	per = map[string]int{}
	for _, s := range res.Samples {
		got[s.Series] = s.Value
		per[s.Series]++
	}
	if per["group/default/svc/svc:cpu_mhz"] != 288 || got["group/default/svc/svc:cpu_mhz"] != 3000 || got["group/default/svc/svc:allocs"] != 6 ||
		got["group/default/base/base:allocs"] != 8 {
		t.Errorf("svc: %d samples, last %v MHz over %v allocations; base %v allocations", per["group/default/svc/svc:cpu_mhz"],
			got["group/default/svc/svc:cpu_mhz"], got["group/default/svc/svc:allocs"], got["group/default/base/base:allocs"])
	}
}

const surgeIntoDC2 = `
event "busy" {
  kind       = "surge"
  at         = "1h"
  duration   = "1h"
  datacenter = "dc2"
  factor     = 3
  announced  = true
}
`

func TestOracleForecastsTheTruth(t *testing.T) {
	sc := scenario(t, surgeIntoDC2)
	cl, err := sim.New(withoutDrains(sc), sim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nomadClient(cl.Handler())
	if err != nil {
		t.Fatal(err)
	}
	env := &Env{Scenario: sc, Nomad: nc, Params: DefaultParams().withDefaults(), Log: testLogger(t), Foresight: cl.Project}
	s, err := newShaper(env, true)
	if err != nil {
		t.Fatal(err)
	}
	fs := s.truth(sc.Start)
	var dc2 []float64
	for _, f := range fs {
		if f.Locality == "dc2" && f.Metric == source.CPUPercent {
			dc2 = f.Planning
			if len(f.Times) != 72 || !f.Times[0].Equal(sc.Start.Add(5*time.Minute)) || !f.HasLine || f.Line != 80 {
				t.Errorf("forecast grid %v…, line %v", f.Times[:2], f.Line)
			}
		}
	}
	// dc2 runs base (8 × 500 MHz) on 16000 MHz: 25%, tripled from 1h to 2h.
	if len(dc2) != 72 || math.Abs(dc2[0]-25) > 1e-9 || math.Abs(dc2[11]-75) > 1e-9 || math.Abs(dc2[23]-25) > 1e-9 {
		t.Errorf("dc2 cpu truth = %v…", dc2[:24])
	}
	// Per task group, per allocation: base 500 MHz, tripled in the surge.
	env.GroupForesight = cl.ProjectGroups
	var base []float64
	for _, f := range s.groupTruth(sc.Start) {
		if f.Group == "default/base/base" && f.Metric == source.CPUPercent {
			base = f.Planning
		}
	}
	if len(base) != 72 || math.Abs(base[0]-500) > 1e-9 || math.Abs(base[11]-1500) > 1e-9 {
		t.Errorf("base per allocation = %v…", base)
	}
}

func TestForeshapeDoesTheWorkAndCleansUp(t *testing.T) {
	sc := scenario(t, drainDC1)
	res := runOnly(t, sc, Params{}, "foreshape", "oracle")
	for _, r := range res.Runs {
		if len(r.Unfinished) != 0 || r.Outside != 0 {
			t.Errorf("%s left %q, %d transfers outside dc2", r.Controller, r.Unfinished, r.Outside)
		}
		if len(r.Moves) != 6 {
			t.Errorf("%s made %d transfers, want 6", r.Controller, len(r.Moves))
		}
		if len(r.Notes.Forecasts) != 2 {
			t.Errorf("%s noted %d forecast tracks, want one per datacenter", r.Controller, len(r.Notes.Forecasts))
		}
		for _, tr := range r.Notes.Forecasts {
			// docs/proof.md: the report's band is as forecast 30 minutes
			// ahead; oracle's is the truth, every quantile alike.
			if tr.Lead != 30*time.Minute {
				t.Errorf("%s: %s's band forecast %v ahead, want 30m", r.Controller, tr.Datacenter, tr.Lead)
			}
			if r.Controller == "oracle" {
				for i := range tr.Times {
					if tr.P10[i] != tr.P90[i] {
						t.Errorf("oracle's band at %s is %v–%v, want a line", tr.Times[i], tr.P10[i], tr.P90[i])
						break
					}
				}
			}
		}
		var held float64
		for _, l := range r.Localities {
			held += l.Reserved[len(l.Reserved)-1]
		}
		if held != 0 {
			t.Errorf("%s still holds %v MHz in placeholders at the end", r.Controller, held)
		}
	}
}

func TestForeshapeIsDeterministic(t *testing.T) {
	run := func() []byte {
		res := runOnly(t, scenario(t, drainDC1+surgeIntoDC2), Params{}, "foreshape", "oracle")
		b, err := res.JSON()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a, b := run(), run()
	if !bytes.Equal(a, b) {
		t.Fatalf("two runs differ:\n%s\n%s", a, b)
	}
	if !strings.Contains(string(a), `"foreshape":{`) || !strings.Contains(string(a), `"oracle":{`) {
		t.Errorf("json = %s", a)
	}
}

// docs/proof.md: the baselines read utilisation every control cycle (or
// observe_every); foreshape and oracle collect and forecast at their
// forecast step, every 5 minutes, and plan every cycle on what they last
// read.
func TestForeshapeObservesAtItsForecastStep(t *testing.T) {
	sc := scenario(t, "")
	cl, err := sim.New(sc, sim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nomadClient(cl.Handler())
	if err != nil {
		t.Fatal(err)
	}
	env := &Env{Scenario: sc, Nomad: nc, Params: DefaultParams().withDefaults(), Log: testLogger(t), Foresight: cl.Project,
		History: func(times []time.Time) ([]sim.NodeProjection, error) { return cl.Project(times), nil }}
	if env.Params.Observe != time.Minute {
		t.Fatalf("observe = %v, want the 1-minute cycle", env.Params.Observe)
	}
	s, err := newShaper(env, false)
	if err != nil {
		t.Fatal(err)
	}
	var observed []time.Duration
	for m := range 11 {
		now := sc.Start.Add(time.Duration(m) * time.Minute)
		if err := s.Step(context.Background(), now, nil); err != nil {
			t.Fatal(err)
		}
		if s.observed.Equal(now) {
			observed = append(observed, now.Sub(sc.Start))
		}
		if err := cl.Step(time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if len(observed) != 3 || observed[0] != 0 || observed[1] != 5*time.Minute || observed[2] != 10*time.Minute {
		t.Errorf("collected at %v; want every 5 minutes", observed)
	}
}
