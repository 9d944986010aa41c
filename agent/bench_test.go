package agent

import (
	"context"
	"fmt"
	"math"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/cluster"
	"github.com/foreshape/foreshape/agent/collect"
	"github.com/foreshape/foreshape/agent/predict"
	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/internal/cputime"
	"github.com/foreshape/foreshape/plugins/source"
	nomadsource "github.com/foreshape/foreshape/plugins/source/nomad"
	"github.com/foreshape/foreshape/policies"
	"github.com/foreshape/foreshape/sim"
)

// benchLocalities: 5 datacenters × 4 node classes.
var benchDCs, benchClasses = 5, []string{"web", "api", "batch", "cache"}

// cycleScenario is a cluster of nodes spread over 20 localities, with two
// service allocations per node bound to bundled traces.
func cycleScenario(nodes int) *sim.Scenario {
	sc := &sim.Scenario{
		Name: "cycle-bench", Seed: 1, Start: time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC),
		Tick: 10 * time.Second, Startup: 5 * time.Second,
		Scheduler: nomadapi.SchedulerConfiguration{SchedulerAlgorithm: nomadapi.SchedulerAlgorithmBinpack,
			PreemptionConfig: nomadapi.PreemptionConfig{SystemSchedulerEnabled: true}},
		Traces: map[string]sim.TraceSpec{
			"web": {Name: "web", File: "planetlab/20110303/ait05_us_es_princeton_codeen", Unit: sim.UnitPercent, Step: 5 * time.Minute},
			"mem": {Name: "mem", File: "datacenter/google2019/instance_usage_grouped_300_seconds_week1.csv", Column: "avg_mem", Unit: sim.UnitFraction, Step: 5 * time.Minute},
		},
	}
	groups := benchDCs * len(benchClasses)
	for d := range benchDCs {
		dc := fmt.Sprintf("dc%d", d+1)
		sc.Localities = append(sc.Localities, sim.LocalitySpec{Name: dc, BandwidthMBps: 1000})
		for _, class := range benchClasses {
			sc.NodeGroups = append(sc.NodeGroups, sim.NodeGroupSpec{
				Name: dc + "-" + class, Datacenter: dc, NodePool: "default", NodeClass: class,
				Count: nodes / groups, CPU: 16000, MemoryMB: 32768, IOPS: 20000, Cores: 8,
			})
		}
	}
	for i := range groups {
		id := fmt.Sprintf("job-%02d", i)
		j := nomadapi.NewServiceJob(id, id, "global", 50)
		j.Datacenters = []string{fmt.Sprintf("dc%d", i/len(benchClasses)+1)}
		j.Constraints = []*nomadapi.Constraint{nomadapi.NewConstraint("${node.class}", "=", benchClasses[i%len(benchClasses)])}
		tg := nomadapi.NewTaskGroup("g", 2*nodes/groups)
		tg.AddTask(nomadapi.NewTask("t", "exec").Require(&nomadapi.Resources{CPU: new(2000), MemoryMB: new(4096)}))
		j.AddTaskGroup(tg)
		sc.Jobs = append(sc.Jobs, sim.JobSpec{Job: j, Groups: map[string]sim.GroupSimSpec{"g": {
			CPU:    sim.LoadSpec{Trace: "web", Scale: 2, Set: true},
			Memory: sim.LoadSpec{Trace: "mem", Scale: 1.5, Set: true},
			Jitter: 2 * time.Hour,
		}}})
	}
	return sc
}

func benchPolicies(b *testing.B) []*policies.Policy {
	var src string
	for d := range benchDCs {
		for _, class := range benchClasses {
			src += fmt.Sprintf(`
shaping "dc%d-%s" {
  locality {
    datacenter = "dc%d"
    node_class = %q
  }
  forecast {
    model   = "auto"
    horizon = "1h"
    step    = "1m"
    history = "1d"
  }
}
`, d+1, class, d+1, class)
		}
	}
	pols, diags := policies.Parse("bench.hcl", []byte(src))
	if diags.HasErrors() {
		b.Fatal(diags.Error())
	}
	return pols
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// benchCycle measures one collect + forecast cycle of the leader against a
// simulated cluster of the given size: every node's stats read through the
// real nomad/api client, aggregated, committed through Raft, and every
// policy's localities forecast from a day of history. The store starts as
// an agent's does after six hours of running: every node's four series hold
// six hours of 1-minute points (their profile's whole ring) and every
// locality's cpu and memory a day. The first cycle (models fitted from
// scratch) is reported as cold-cycle-s; the timed cycles update fitted
// models, as the agent does in steady state; cpu-s/op is their CPU time
// (user and system; the simulated cluster's minute and its answers
// included), which a busy machine does not inflate as it does ns/op.
// agent-MiB is the heap the agent's parts hold after the cycles (the
// simulated cluster excluded), and store-MiB the part the series store
// holds.
func benchCycle(b *testing.B, nodes int) {
	c, err := sim.New(cycleScenario(nodes), sim.Options{SkipNodeMinutes: true})
	if err != nil {
		b.Fatal(err)
	}
	if err := c.Step(2 * time.Minute); err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(c.Handler())
	defer srv.Close()
	client, err := nomadapi.NewClient(&nomadapi.Config{Address: srv.URL})
	if err != nil {
		b.Fatal(err)
	}
	nodeList, _, err := client.Nodes().List(nil)
	if err != nil {
		b.Fatal(err)
	}
	pols := benchPolicies(b)
	locs := policies.Localities(pols)
	base := heapInUse()

	fsm, err := state.NewFSM(state.Config{Profiles: state.DefaultProfiles()})
	if err != nil {
		b.Fatal(err)
	}
	// The history is applied to the state machine before Raft starts, as
	// a snapshot restore would: a running agent's log is compacted by its
	// snapshots and does not hold six hours of samples.
	ctx := context.Background()
	now := c.Now()
	prefill := &state.Local{FSM: fsm}
	var hist []state.Sample
	flush := func() {
		if _, err := prefill.Apply(ctx, state.AppendSamples{Step: time.Minute, Samples: hist}); err != nil {
			b.Fatal(err)
		}
		hist = hist[:0]
	}
	wave := func(at time.Time, phase int) float64 {
		return 40 + 15*math.Sin(2*math.Pi*float64((at.Unix()+int64(phase)*600)%86400)/86400)
	}
	for _, l := range locs {
		for i := 1440; i > 0; i-- {
			at := now.Add(-time.Duration(i) * time.Minute).Truncate(time.Minute)
			v := wave(at, 0)
			hist = append(hist,
				state.Sample{Key: state.Key{Locality: l.String(), Metric: source.CPUPercent}, Time: at, Value: v},
				state.Sample{Key: state.Key{Locality: l.String(), Metric: source.MemoryPercent}, Time: at, Value: v / 2})
		}
	}
	flush()
	for j, n := range nodeList {
		scope := source.NodeScope + n.ID
		for i := 360; i > 0; i-- {
			at := now.Add(-time.Duration(i) * time.Minute).Truncate(time.Minute)
			v := wave(at, j)
			hist = append(hist,
				state.Sample{Key: state.Key{Locality: scope, Metric: source.CPUPercent}, Time: at, Value: v},
				state.Sample{Key: state.Key{Locality: scope, Metric: source.MemoryPercent}, Time: at, Value: v / 2},
				state.Sample{Key: state.Key{Locality: scope, Metric: source.CPUMHz}, Time: at, Value: 160 * v},
				state.Sample{Key: state.Key{Locality: scope, Metric: source.MemoryMB}, Time: at, Value: 160 * v})
		}
		if j%250 == 249 {
			flush()
		}
	}
	flush()
	hist = nil
	store := heapInUse() - base

	node, err := cluster.New(cluster.Config{NodeID: "bench", InMemory: true, Bootstrap: true,
		HeartbeatTimeout: 50 * time.Millisecond, ElectionTimeout: 50 * time.Millisecond,
		LeaderLeaseTimeout: 50 * time.Millisecond}, fsm, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer node.Close()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if _, ok := node.LeaderContext(); ok {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("no leader")
		}
		time.Sleep(10 * time.Millisecond)
	}
	src, err := nomadsource.New(nomadsource.Config{Client: client, NodeSeries: true, Concurrency: 64}, nil)
	if err != nil {
		b.Fatal(err)
	}
	ap := applier{node}

	coll, err := collect.New(collect.Config{Sources: []source.Source{src}, Apply: ap, Store: fsm, Step: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	pred := predict.New(nil)
	cycle := func() predict.Result {
		if err := c.Step(time.Minute); err != nil {
			b.Fatal(err)
		}
		now := c.Now()
		st, err := coll.RunOnce(ctx, now, locs)
		if err != nil || st.Samples == 0 {
			b.Fatalf("collect: %+v, %v", st, err)
		}
		return pred.RunOnce(now, fsm, pols)
	}
	t0 := time.Now()
	res := cycle()
	cold := time.Since(t0)
	if len(res.Forecasts) < 2*len(pols) {
		b.Fatalf("%d forecasts for %d policies; pending %+v", len(res.Forecasts), len(pols), res.Pending[:min(3, len(res.Pending))])
	}
	b.ResetTimer()
	cpu0 := cputime.Process()
	for b.Loop() {
		cycle()
	}
	b.StopTimer()
	b.ReportMetric((cputime.Process()-cpu0).Seconds()/float64(b.N), "cpu-s/op")
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(cold.Seconds(), "cold-cycle-s")
	b.ReportMetric(float64(heapInUse()-base)/(1<<20), "agent-MiB")
	b.ReportMetric(float64(store)/(1<<20), "store-MiB")
	b.ReportMetric(float64(ms.Sys)/(1<<20), "process-sys-MiB")
	b.ReportMetric(float64(fsm.Len()), "series")
}

// BenchmarkCycle1k is one cycle against 1,000 nodes.
func BenchmarkCycle1k(b *testing.B) { benchCycle(b, 1000) }

// BenchmarkCycle10k is one cycle against 10,000 nodes (goal: under 5 s,
// the global network included).
func BenchmarkCycle10k(b *testing.B) { benchCycle(b, 10000) }
