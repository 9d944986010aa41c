package sim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/hashicorp/nomad/api"
)

func TestDefaultScenario(t *testing.T) {
	sc := DefaultScenario()
	nodes := 0
	for _, g := range sc.NodeGroups {
		nodes += g.Count
	}
	if sc.Name != "default" || len(sc.Localities) != 3 || nodes < 12 || nodes > 30 {
		t.Fatalf("default scenario: %s, %d localities, %d nodes", sc.Name, len(sc.Localities), nodes)
	}
	kinds := map[string]bool{}
	for _, e := range sc.Events {
		kinds[e.Kind] = true
	}
	// The rack maintenance is the dev agent's drain schedule, not an
	// event: foreshape carries it out.
	if !kinds[EventSurge] || kinds[EventDrain] {
		t.Errorf("default scenario events %+v, want a surge and no drain", sc.Events)
	}
	types := map[string]bool{}
	for _, j := range sc.Jobs {
		types[*j.Job.Type] = true
	}
	if !types[api.JobTypeService] || !types[api.JobTypeBatch] {
		t.Errorf("job types %v, want service and batch", types)
	}
}

// TestDefaultScenarioRun runs the default scenario through its surge and a
// drain of rack a (the maintenance foreshape's dev policies schedule,
// added here as an event) and checks that both leave their mark in the
// ground truth.
func TestDefaultScenarioRun(t *testing.T) {
	sc := DefaultScenario()
	sc.Events = append(sc.Events, EventSpec{Name: "dc1-rack-a-maintenance", Kind: EventDrain, At: 6 * time.Hour,
		Datacenter: "dc1", Node: "dc1-rack-a-*", Deadline: time.Hour})
	c, err := New(sc, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.RunUntil(c.sc.Start.Add(8 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	tr := c.Truth()
	if len(tr.Events) != 2 {
		t.Fatalf("events = %+v", tr.Events)
	}
	surgeAt := c.sc.Start.Add(3 * time.Hour)
	var before, during float64
	for _, m := range tr.NodeMinutes {
		if m.Datacenter != "dc2" {
			continue
		}
		switch {
		case m.Minute.Before(surgeAt) && !m.Minute.Before(surgeAt.Add(-time.Hour)):
			before += m.CPUDemandMHz
		case !m.Minute.Before(surgeAt) && m.Minute.Before(surgeAt.Add(time.Hour)):
			during += m.CPUDemandMHz
		}
	}
	if during < 1.5*before {
		t.Errorf("dc2 CPU demand: hour before surge %.0f, first hour of surge %.0f: want the surge visible", before, during)
	}
	congested := 0
	for _, m := range tr.NodeMinutes {
		if m.Datacenter == "dc2" && m.Congested && !m.Minute.Before(surgeAt) && m.Minute.Before(surgeAt.Add(2*time.Hour)) {
			congested++
		}
	}
	if congested == 0 {
		t.Errorf("no dc2 congestion during the surge")
	}
	drained := 0
	for _, m := range tr.Migrations {
		if m.Reason == triggerNodeDrain && strings.HasPrefix(m.SourceNode, "dc1-rack-a-") {
			drained++
		}
	}
	if drained == 0 {
		t.Errorf("the maintenance drain migrated nothing: %+v", tr.Migrations)
	}
	for _, n := range c.nodes {
		if strings.HasPrefix(n.name, "dc1-rack-a-") && len(n.allocs) > 0 {
			t.Errorf("node %s still holds %d allocations after the drain deadline", n.name, len(n.allocs))
		}
	}
}

// TestDeterminism runs the default scenario for seven hours (its dc2 surge,
// 3h to 5h, and two hours after it) three times, twice with seed 42 and
// once with 43: the two runs of one seed give the same ground truth to the
// byte, and the other seed another (over the same hours, so not by length
// alone). The three run at once, beside the package's other parallel
// tests, rather than one after another in its serial phase; they share
// the process and nothing else, so state shared between clusters would
// show as a difference or, with -race, a race.
func TestDeterminism(t *testing.T) {
	t.Parallel()
	run := func(seed uint64) ([]byte, error) {
		c, err := New(DefaultScenario(), Options{Seed: seed})
		if err != nil {
			return nil, err
		}
		if err := c.RunUntil(c.sc.Start.Add(7 * time.Hour)); err != nil {
			return nil, err
		}
		return json.Marshal(c.Truth())
	}
	seeds := []uint64{42, 42, 43}
	out := make([][]byte, len(seeds))
	errs := make([]error, len(seeds))
	var wg sync.WaitGroup
	for i, seed := range seeds {
		wg.Go(func() { out[i], errs[i] = run(seed) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("run %d (seed %d): %v", i, seeds[i], err)
		}
	}
	a, b := out[0], out[1]
	if !bytes.Equal(a, b) {
		t.Fatalf("two runs with seed 42 differ (%d vs %d bytes)", len(a), len(b))
	}
	if bytes.Equal(a, out[2]) {
		t.Errorf("seeds 42 and 43 gave identical ground truth")
	}
}

func TestParseScenarioErrors(t *testing.T) {
	for _, tc := range []struct {
		name, src, want string
	}{
		{"bad duration", smallScenario + "duration = \"soon\"\n", "test.hcl:"},
		{"unknown attribute", smallScenario + "colour = \"red\"\n", "colour"},
		{"undeclared datacenter", smallScenario + `
nodes "c" {
  datacenter = "dc9"
  count      = 1
  cpu        = 1000
  memory     = 1000
}`, "datacenter \"dc9\" is not declared"},
		{"no drivers", smallScenario + `
nodes "c" {
  datacenter = "dc1"
  count      = 1
  cpu        = 1000
  memory     = 1000
  drivers    = []
}`, `nodes "c": drivers must name each driver the nodes have, at least one (unset: docker, exec, raw_exec)`},
		{"an empty driver", smallScenario + `
nodes "c" {
  datacenter = "dc1"
  count      = 1
  cpu        = 1000
  memory     = 1000
  drivers    = ["exec", ""]
}`, `nodes "c": drivers must name each driver`},
		{"undeclared trace", smallScenario + `
job "j" {
  group "g" {
    cpu    = 100
    memory = 100
    load {
      cpu {
        trace = "nope"
      }
    }
  }
}`, "trace \"nope\" is not declared"},
		{"bad event kind", smallScenario + `
event "e" {
  kind = "explode"
  at   = "1h"
}`, "unknown kind"},
		{"surge without factor", smallScenario + `
event "e" {
  kind     = "surge"
  at       = "1h"
  duration = "1h"
}`, "positive factor"},
		{"bad replacement", smallScenario + `
job "j" {
  group "g" {
    cpu         = 100
    memory      = 100
    replacement = "teleport"
  }
}`, "replacement"},
		{"negative event time", smallScenario + `
event "e" {
  kind = "drain"
  at   = "-1h"
}`, "test.hcl:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseScenario([]byte(tc.src), "test.hcl")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestLoadScenarioFromFS(t *testing.T) {
	fsys := fstest.MapFS{"s.hcl": {Data: []byte(smallScenario)}}
	sc, err := LoadScenario(fsys, "s.hcl")
	if err != nil || sc.Name != "small" || sc.Seed != 7 {
		t.Fatalf("load: %v %+v", err, sc)
	}
	if _, err := LoadScenario(fsys, "missing.hcl"); err == nil {
		t.Error("loading a missing file succeeded")
	}
}

func TestParseTrace(t *testing.T) {
	for _, tc := range []struct {
		name, data, column, unit string
		want                     []float64
		err                      string
	}{
		{"planetlab lines", "10\n20\n\n30\n", "", UnitPercent, []float64{0.1, 0.2, 0.3}, ""},
		{"nab csv auto percent", "timestamp,value\n2014-02-14 14:30:00,50\n2014-02-14 14:35:00,25\n", "", UnitAuto, []float64{0.5, 0.25}, ""},
		{"google column by name", "avg_cpu,avg_mem\n0.4,0.3\n0.5,0.2\n", "avg_mem", UnitFraction, []float64{0.3, 0.2}, ""},
		{"azure max", "timestamp,cpu_usage,assigned_mem\n0,200,10\n300,400,20\n", "cpu_usage", UnitMax, []float64{0.5, 1}, ""},
		{"bitbrains semicolons", "Timestamp [ms];\tCPU cores;\tCPU usage [%]\n1375308176;\t4;\t1.8\n1375308476;\t4;\t50\n", "CPU usage [%]", UnitPercent, []float64{0.018, 0.5}, ""},
		{"headerless index", "1,0.2\n2,0.4\n", "1", UnitFraction, []float64{0.2, 0.4}, ""},
		{"missing column", "a,b\n1,2\n", "c", UnitAuto, nil, "not a numeric column"},
		{"negative", "5\n-1\n", "", UnitAuto, nil, "negative"},
		{"bad unit", "5\n", "", "furlongs", nil, "unknown unit"},
		{"empty", "timestamp,value\n", "", UnitAuto, nil, "no numeric column"},
		{"garbage", "timestamp,value\nx,y\n", "", UnitAuto, nil, "not a table of series"},
		{"comma file with a semicolon in a name", "timestamp,cpu;user\n2014-02-14 14:30:00,50\n2014-02-14 14:35:00,25\n", "cpu;user", UnitPercent, []float64{0.5, 0.25}, ""},
		{"semicolon file with a comma in a name", "Timestamp [ms];\tCPU usage [%];\tNetwork, received [KB/s]\n1375308176;\t1.8;\t10\n1375308476;\t50;\t20\n", "Network, received [KB/s]", UnitMax, []float64{0.5, 1}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := ParseTrace("t", []byte(tc.data), tc.column, tc.unit, 0)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(tr.Values) != len(tc.want) {
				t.Fatalf("values %v, want %v", tr.Values, tc.want)
			}
			for i := range tc.want {
				if math.Abs(tr.Values[i]-tc.want[i]) > 1e-9 {
					t.Errorf("values %v, want %v", tr.Values, tc.want)
				}
			}
		})
	}
}

func TestTraceAtInterpolatesAndWraps(t *testing.T) {
	tr := &Trace{Values: []float64{0, 1, 0.5}, Step: 5 * time.Minute}
	for _, tc := range []struct {
		d    time.Duration
		want float64
	}{
		{0, 0},
		{150 * time.Second, 0.5},
		{5 * time.Minute, 1},
		{12*time.Minute + 30*time.Second, 0.25}, // between the last point and the first
		{15 * time.Minute, 0},                   // wrapped
		{-5 * time.Minute, 0.5},
	} {
		if got := tr.At(tc.d); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("At(%v) = %v, want %v", tc.d, got, tc.want)
		}
	}
}

func TestBundledTracesAllParse(t *testing.T) {
	sc := DefaultScenario()
	c, err := New(sc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for name := range sc.Traces {
		tr := c.traces[name]
		if tr == nil || len(tr.Values) < 200 {
			t.Errorf("trace %s: %v", name, tr)
			continue
		}
		for _, v := range tr.Values {
			if v < 0 || v > 1.0000001 {
				t.Errorf("trace %s has value %v outside [0, 1]", name, v)
				break
			}
		}
	}
}

func TestDataDirTakesPrecedence(t *testing.T) {
	src := smallScenario + `
job "j" {
  datacenters = ["dc1"]
  group "g" {
    count  = 1
    cpu    = 1000
    memory = 1000
    load {
      cpu {
        trace = "web"
        scale = 1
      }
    }
  }
}`
	data := fstest.MapFS{"planetlab/20110303/ait05_us_es_princeton_codeen": {Data: []byte("80\n80\n")}}
	c, err := New(mustScenario(t, src), Options{Traces: TraceSource{Data: data}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Step(time.Minute); err != nil {
		t.Fatal(err)
	}
	a := c.jobs["j"].allocs[0]
	if math.Abs(a.cpu-800) > 1e-6 {
		t.Errorf("alloc CPU demand %v, want 800 from the data-dir trace", a.cpu)
	}
}

func TestCongestionVisibleInStatsAndTruth(t *testing.T) {
	// One node, a job whose CPU demand is 1.5× its request, and the request
	// fills the node: demand exceeds capacity by half.
	src := smallScenario + `
job "hot" {
  datacenters = ["dc1"]
  constraint {
    attribute = "node.unique.name"
    value     = "a-1"
  }
  group "g" {
    count  = 2
    cpu    = 2000
    memory = 2000
    load {
      cpu {
        scale = 1.5
      }
      memory {
        scale = 2.5
      }
    }
  }
}`
	c, err := New(mustScenario(t, src), Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Step(3 * time.Minute); err != nil {
		t.Fatal(err)
	}
	var hot NodeMinute
	for _, m := range c.Truth().NodeMinutes {
		if m.Node == "a-1" && m.Minute.Equal(c.sc.Start.Add(time.Minute)) {
			hot = m
		}
	}
	if !hot.Congested || hot.CPUDemandMHz != 6000 || hot.CPUCapacityMHz != 4000 || hot.CPUThrottledSeconds != 60 ||
		hot.MemDemandMB != 10000 || hot.MemPressureSeconds != 60 || math.Abs(hot.CPUUnservedMHzSeconds-2000*60) > 1e-6 {
		t.Errorf("a-1 minute = %+v", hot)
	}
	client := newTestAPI(t, c, "")
	allocs, _, _ := client.Allocations().List(nil)
	usage, err := client.Allocations().Stats(&api.Allocation{ID: allocs[0].ID}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cpu := usage.ResourceUsage.CpuStats
	if cpu.ThrottledPeriods == 0 || cpu.ThrottledTime == 0 || math.Abs(cpu.TotalTicks-2000) > 1e-6 {
		t.Errorf("cpu stats = %+v, want throttling and 2000 MHz served", cpu)
	}
	host, err := client.Nodes().Stats(allocs[0].NodeID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host.CPUTicksConsumed != 4000 || host.Memory.Used != host.Memory.Total {
		t.Errorf("host stats: ticks %v memory %+v, want saturated", host.CPUTicksConsumed, host.Memory)
	}
}

func TestBatchJobsFinish(t *testing.T) {
	src := smallScenario + `
job "b" {
  type        = "batch"
  datacenters = ["dc2"]
  group "g" {
    count   = 2
    cpu     = 500
    memory  = 500
    run_for = "30m"
  }
}`
	c, err := New(mustScenario(t, src), Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Step(20 * time.Minute); err != nil {
		t.Fatal(err)
	}
	if s := c.jobStatus(c.jobs["b"]); s != jobRunning {
		t.Errorf("status at 20m = %s", s)
	}
	if err := c.Step(20 * time.Minute); err != nil {
		t.Fatal(err)
	}
	if s := c.jobStatus(c.jobs["b"]); s != jobDead {
		t.Errorf("status at 40m = %s, want dead", s)
	}
	for _, a := range c.jobs["b"].allocs {
		if a.client != allocComplete || a.desired != desiredRun {
			t.Errorf("alloc %s: %s/%s", a.name, a.desired, a.client)
		}
	}
	if len(c.jobs["b"].allocs) != 2 {
		t.Errorf("%d allocations: finished batch work was replaced", len(c.jobs["b"].allocs))
	}
}

func TestScenarioScaleAndNodeEvents(t *testing.T) {
	src := smallScenario + `
job "s" {
  datacenters = ["dc2"]
  group "g" {
    count  = 2
    cpu    = 500
    memory = 500
  }
}

event "grow" {
  kind  = "scale"
  at    = "10m"
  job   = "s"
  group = "g"
  count = 4
}

event "down" {
  kind = "node_down"
  at   = "20m"
  node = "b-1"
}

event "up" {
  kind = "node_up"
  at   = "30m"
  node = "b-1"
}
`
	c, err := New(mustScenario(t, src), Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Step(15 * time.Minute); err != nil {
		t.Fatal(err)
	}
	if got := nodesOf(c, "s"); len(got) != 4 {
		t.Errorf("after scale event: %v", got)
	}
	if err := c.Step(10 * time.Minute); err != nil {
		t.Fatal(err)
	}
	if got := nodesOf(c, "s"); strings.Join(got, ",") != "b-2,b-2,b-2,b-2" {
		t.Errorf("after b-1 went down: %v, want all four on b-2", got)
	}
	if err := c.Step(10 * time.Minute); err != nil {
		t.Fatal(err)
	}
	if c.findNode("b-1").status != api.NodeStatusReady {
		t.Error("b-1 did not come back")
	}
	tr := c.Truth()
	if len(tr.Events) != 3 || !strings.Contains(tr.Events[0].Detail, "count 4") {
		t.Errorf("events = %+v", tr.Events)
	}
}

func TestGarbageCollection(t *testing.T) {
	c := newTestCluster(t, webJob)
	client := newTestAPI(t, c, "")
	if err := c.Step(time.Minute); err != nil {
		t.Fatal(err)
	}
	allocs, _, _ := client.Allocations().List(nil)
	stop, err := client.Allocations().Stop(&api.Allocation{ID: allocs[0].ID}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Step(30 * time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, _, err := client.Allocations().Info(allocs[0].ID, nil); err != nil {
		t.Errorf("stopped alloc gone after 30m: %v", err)
	}
	if err := c.Step(2 * time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, _, err := client.Allocations().Info(allocs[0].ID, nil); statusOf(err) != 404 {
		t.Errorf("stopped alloc after 2h: err %v, want 404 (collected)", err)
	}
	if _, _, err := client.Evaluations().Info(stop.EvalID, nil); statusOf(err) != 404 {
		t.Errorf("stop eval after 2h: err %v, want 404 (collected)", err)
	}
	now, _, _ := client.Allocations().List(nil)
	if len(now) != 3 {
		t.Errorf("%d allocations listed, want the 3 running", len(now))
	}
	nodeAllocs, _, _ := client.Nodes().Allocations(allocs[0].NodeID, nil)
	for _, a := range nodeAllocs {
		if a.ID == allocs[0].ID {
			t.Error("collected alloc still listed on its node")
		}
	}
}

// TestBundledScenarios parses every bundled scenario and runs its first
// hours; the shared-data one runs only when the shared trace set is found
// (FORESHAPE_DATA, or ../../shared/data next to the repository).
func TestBundledScenarios(t *testing.T) {
	entries, err := fs.ReadDir(Scenarios(), ".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Run(e.Name(), func(t *testing.T) {
			sc, err := LoadScenario(Scenarios(), e.Name())
			if err != nil {
				t.Fatal(err)
			}
			opts := Options{Logger: testLogger(t)}
			if e.Name() == "shared-data.hcl" {
				dir := os.Getenv("FORESHAPE_DATA")
				if dir == "" {
					dir = filepath.Join("..", "..", "shared", "data")
				}
				if _, err := os.Stat(filepath.Join(dir, "SOURCES.md")); err != nil {
					t.Skipf("shared trace set not found at %s", dir)
				}
				opts.Traces.Data = os.DirFS(dir)
			}
			c, err := New(sc, opts)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Step(3 * time.Hour); err != nil {
				t.Fatal(err)
			}
			c.mu.Lock()
			defer c.unlock()
			if len(c.blocked) > 0 {
				t.Errorf("blocked evaluations after 3h: %+v", c.blocked[0].queued)
			}
			for _, j := range c.sortedJobs() {
				if j.typ == api.JobTypeBatch {
					continue
				}
				for _, g := range j.groups {
					live, _ := groupAllocs(j, g)
					if len(live) != g.count && j.typ != api.JobTypeSystem {
						t.Errorf("job %s group %s: %d live allocations, want %d", j.id, g.name, len(live), g.count)
					}
				}
			}
		})
	}
}

func TestCPUSharesUnderContention(t *testing.T) {
	// a-1 has 4000 MHz. "calm" asks 2000 and uses 1000; "hot" asks 2000 and
	// wants 5000. Shares give calm all it wants and hot the remaining 3000;
	// only hot is throttled.
	src := smallScenario + `
job "calm" {
  datacenters = ["dc1"]
  constraint {
    attribute = "node.unique.name"
    value     = "a-1"
  }
  group "g" {
    cpu    = 2000
    memory = 500
    load {
      cpu {
        scale = 0.5
      }
    }
  }
}

job "hot" {
  datacenters = ["dc1"]
  constraint {
    attribute = "node.unique.name"
    value     = "a-1"
  }
  group "g" {
    cpu    = 2000
    memory = 500
    load {
      cpu {
        scale = 2.5
      }
    }
  }
}
`
	c, err := New(mustScenario(t, src), Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Step(time.Minute); err != nil {
		t.Fatal(err)
	}
	client := newTestAPI(t, c, "")
	for _, tc := range []struct {
		job       string
		ticks     float64
		throttled bool
	}{
		{"calm", 1000, false},
		{"hot", 3000, true},
	} {
		stubs, _, err := client.Jobs().Allocations(tc.job, false, nil)
		if err != nil || len(stubs) != 1 {
			t.Fatalf("%s allocations: %v %d", tc.job, err, len(stubs))
		}
		st, err := client.Allocations().Stats(&api.Allocation{ID: stubs[0].ID}, nil)
		if err != nil {
			t.Fatal(err)
		}
		cpu := st.ResourceUsage.CpuStats
		if math.Abs(cpu.TotalTicks-tc.ticks) > 1e-6 || (cpu.ThrottledPeriods > 0) != tc.throttled {
			t.Errorf("%s: %v MHz served, %d throttled periods; want %v MHz, throttled %v", tc.job, cpu.TotalTicks, cpu.ThrottledPeriods, tc.ticks, tc.throttled)
		}
	}
}

// TestDeterminismThroughTheAPI drives two clusters with the same calls at
// the same virtual times and compares their ground truth.
func TestDeterminismThroughTheAPI(t *testing.T) {
	run := func() []byte {
		c, err := New(DefaultScenario(), Options{})
		if err != nil {
			t.Fatal(err)
		}
		client := newTestAPI(t, c, "")
		step := func(d time.Duration) {
			if err := c.Step(d); err != nil {
				t.Fatal(err)
			}
		}
		step(30 * time.Minute)
		j := serviceJob("extra", 3, 500, 512, 65)
		j.Datacenters = []string{"dc1"}
		j.TaskGroups[0].Meta = map[string]string{"sim.cpu_trace": "planetlab-web", "sim.cpu_scale": "1.5", "sim.jitter": "1h"}
		if _, _, err := client.Jobs().Register(j, nil); err != nil {
			t.Fatal(err)
		}
		step(10 * time.Minute)
		stubs, _, err := client.Jobs().Allocations("web", false, nil)
		if err != nil {
			t.Fatal(err)
		}
		sort.Slice(stubs, func(i, k int) bool { return stubs[i].Name < stubs[k].Name })
		if _, err := client.Allocations().Stop(&api.Allocation{ID: stubs[0].ID}, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := client.Nodes().UpdateDrain(c.findNode("dc1-rack-b-2").id, &api.DrainSpec{Deadline: 30 * time.Minute}, false, nil); err != nil {
			t.Fatal(err)
		}
		step(2 * time.Hour)
		b, err := json.Marshal(c.Truth())
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if a, b := run(), run(); !bytes.Equal(a, b) {
		t.Fatalf("two identical API-driven runs differ (%d vs %d bytes)", len(a), len(b))
	}
}

func TestScenarioJobTranslation(t *testing.T) {
	sc := mustScenario(t, smallScenario+`
job "svc" {
  priority    = 70
  datacenters = ["dc1"]
  node_pool   = "default"
  update {
    max_parallel      = 2
    min_healthy_time  = "20s"
    healthy_deadline  = "3m"
    progress_deadline = "8m"
  }
  affinity {
    attribute = "meta.rack"
    value     = "r1"
    weight    = -30
  }
  constraint {
    attribute = node.datacenter
    value     = "dc1"
  }
  group "g" {
    count       = 3
    cpu         = 250
    memory      = 128
    iops        = 40
    replacement = "make_before_break"
    meta        = { team = "a" }
    constraint {
      attribute = "${node.class}"
      operator  = "!="
      value     = "db"
    }
    migrate {
      max_parallel     = 3
      min_healthy_time = "5s"
    }
    load {
      jitter = "10m"
      cpu {
        trace  = "web"
        scale  = 1.2
        offset = "1h"
      }
    }
  }
}
`)
	js := sc.Jobs[0]
	j := js.Job
	if *j.Priority != 70 || *j.NodePool != "default" || *j.Update.MaxParallel != 2 || *j.Update.MinHealthyTime != 20*time.Second ||
		*j.Update.HealthyDeadline != 3*time.Minute || *j.Update.ProgressDeadline != 8*time.Minute {
		t.Errorf("job = prio %d pool %s update %+v", *j.Priority, *j.NodePool, j.Update)
	}
	if a := j.Affinities[0]; a.LTarget != "${meta.rack}" || *a.Weight != -30 || a.Operand != "=" {
		t.Errorf("affinity = %+v", a)
	}
	if con := j.Constraints[0]; con.LTarget != "${node.datacenter}" || con.RTarget != "dc1" {
		t.Errorf("bare traversal constraint = %+v", con)
	}
	if con := j.TaskGroups[0].Constraints[0]; con.LTarget != "${node.class}" || con.RTarget != "db" {
		t.Errorf("interpolated constraint = %+v", con)
	}
	tg := j.TaskGroups[0]
	if *tg.Count != 3 || *tg.Tasks[0].Resources.CPU != 250 || *tg.Tasks[0].Resources.IOPS != 40 || tg.Meta["team"] != "a" ||
		tg.Constraints[0].Operand != "!=" || *tg.Migrate.MaxParallel != 3 || *tg.Migrate.MinHealthyTime != 5*time.Second {
		t.Errorf("group = %+v", tg)
	}
	g := js.Groups["g"]
	if g.Replacement != MakeBeforeBreak || g.Jitter != 10*time.Minute || g.CPU != (LoadSpec{Trace: "web", Scale: 1.2, Offset: time.Hour, Set: true}) || g.Memory.Set {
		t.Errorf("sim settings = %+v", g)
	}
	c, err := New(sc, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if got := nodesOf(c, "svc"); len(got) != 3 || !strings.HasPrefix(got[0], "a-") {
		t.Errorf("placed on %v", got)
	}
	mg := c.jobs["svc"].groups[0]
	if mg.update == nil || *mg.update.MaxParallel != 2 || *mg.migrate.MaxParallel != 3 || mg.load.cpu.offset != time.Hour {
		t.Errorf("model group = update %+v migrate %+v", mg.update, mg.migrate)
	}
}

func TestTruthSummarize(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tr := Truth{
		NodeMinutes: []NodeMinute{
			{Datacenter: "dc1", Congested: true, CPUThrottledSeconds: 30, CPUUnservedMHzSeconds: 600},
			{Datacenter: "dc1"},
			{Datacenter: "dc2", Congested: true, MemPressureSeconds: 60, IOPSOverSeconds: 10},
		},
		Migrations: []MigrationRecord{
			{SourceLocality: "dc1", Start: at, End: at.Add(10 * time.Second)},
			{SourceLocality: "dc1", Start: at, End: at.Add(30 * time.Second)},
			{SourceLocality: "dc3", Start: at, End: at.Add(5 * time.Second)},
		},
	}
	s := tr.Summarize()
	want := []LocalitySummary{
		{Datacenter: "dc1", NodeMinutes: 2, CongestedNodeMinutes: 1, CPUThrottledSeconds: 30, CPUUnservedMHzSeconds: 600,
			Migrations: 2, MigrationSeconds: 40, MaxMigrationSeconds: 30, MeanMigrationSeconds: 20},
		{Datacenter: "dc2", NodeMinutes: 1, CongestedNodeMinutes: 1, MemPressureSeconds: 60, IOPSOverSeconds: 10},
		{Datacenter: "dc3", Migrations: 1, MigrationSeconds: 5, MaxMigrationSeconds: 5, MeanMigrationSeconds: 5},
	}
	if len(s.Localities) != len(want) {
		t.Fatalf("localities = %+v", s.Localities)
	}
	for i := range want {
		if s.Localities[i] != want[i] {
			t.Errorf("locality %d = %+v, want %+v", i, s.Localities[i], want[i])
		}
	}
	if s.Total.NodeMinutes != 3 || s.Total.CongestedNodeMinutes != 2 || s.Total.Migrations != 3 || s.Total.MeanMigrationSeconds != 15 {
		t.Errorf("total = %+v", s.Total)
	}
}

func TestTraceAtBeforeTheStartReadsHistory(t *testing.T) {
	step := 5 * time.Minute
	tr := &Trace{Values: []float64{0.1, 0.2}, Step: step, Before: []*Trace{
		{Values: []float64{0.5, 0.6}, Step: step},
		{Values: []float64{0.7, 0.8}, Step: step},
	}}
	for _, tc := range []struct {
		d    time.Duration
		want float64
	}{
		{0, 0.1},
		{5 * time.Minute, 0.2},
		{-10 * time.Minute, 0.5}, // the period just before the start
		{-5 * time.Minute, 0.6},
		{-150 * time.Second, 0.6 + (0.5-0.6)/2}, // wraps inside its own period
		{-20 * time.Minute, 0.7},                // the period before that
		{-15 * time.Minute, 0.8},
		{-25 * time.Minute, 0.6}, // and round again
	} {
		if got := tr.At(tc.d); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("At(%v) = %v, want %v", tc.d, got, tc.want)
		}
	}
}

func TestTraceHistoryInScenario(t *testing.T) {
	src := smallScenario + `
trace "today" {
  file    = "today"
  unit    = "percent"
  history = ["yesterday"]
}

job "j" {
  datacenters = ["dc1"]
  group "g" {
    count  = 1
    cpu    = 1000
    memory = 1000
    load {
      cpu {
        trace = "today"
        scale = 1
      }
    }
  }
}`
	sc := mustScenario(t, src)
	if got := sc.Traces["today"].History; len(got) != 1 || got[0] != "yesterday" {
		t.Fatalf("history = %q", got)
	}
	data := fstest.MapFS{"today": {Data: []byte("80\n80\n")}, "yesterday": {Data: []byte("20\n20\n")}}
	c, err := New(sc, Options{Traces: TraceSource{Data: data}})
	if err != nil {
		t.Fatal(err)
	}
	proj := c.Project([]time.Time{sc.Start.Add(-time.Hour), sc.Start.Add(time.Hour)})
	var before, after float64
	for _, p := range proj {
		before += p.CPUMHz[0]
		after += p.CPUMHz[1]
	}
	if math.Abs(before-200) > 1e-6 || math.Abs(after-800) > 1e-6 {
		t.Errorf("demand an hour before / after the start = %v / %v MHz, want 200 / 800", before, after)
	}

	delete(data, "yesterday")
	if _, err := New(mustScenario(t, src), Options{Traces: TraceSource{Data: data}}); err == nil || !strings.Contains(err.Error(), "trace today history") {
		t.Errorf("missing history file: err = %v", err)
	}
}

// TestParseScenarioACLTokenErrors: a token block Nomad would not take as a
// policy is refused with the file, the block's line and what is wrong.
func TestParseScenarioACLTokenErrors(t *testing.T) {
	line := strings.Count(smallScenario, "\n") + 3 // the token block's line
	for _, tc := range []struct{ name, block, want string }{
		{"unknown capability", `capabilities = ["read-job", "bogus"]`, `token "t1": invalid namespace capability "bogus"`},
		{"bad node policy", `node = "list"`, `token "t1": invalid node policy "list": want read, write or deny`},
		{"bad operator policy", `operator = "all"`, `token "t1": invalid operator policy "all"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := smallScenario + "\nacl {\n  token \"t1\" {\n    " + tc.block + "\n  }\n}\n"
			_, err := ParseScenario([]byte(src), "test.hcl")
			if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("test.hcl:%d,", line)) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want test.hcl:%d and %q", err, line, tc.want)
			}
		})
	}
	src := smallScenario + "\nacl {\n  tokens = [\"t1\"]\n  token \"t1\" {\n    node = \"read\"\n  }\n}\n"
	if _, err := ParseScenario([]byte(src), "test.hcl"); err == nil || !strings.Contains(err.Error(), `token "t1": the token is set twice`) {
		t.Errorf("a token both management and with a policy: %v; want it refused", err)
	}
	src = smallScenario + "\nacl {\n  tokens = [\"m\"]\n  token \"t1\" {\n    capabilities = [\"list-jobs\"]\n    agent = \"write\"\n  }\n}\n"
	sc, err := ParseScenario([]byte(src), "test.hcl")
	if err != nil || len(sc.Tokens) != 1 || sc.Tokens[0] != "m" || !reflect.DeepEqual(sc.Policies, map[string]Policy{"t1": {Capabilities: []string{"list-jobs"}, Agent: "write"}}) {
		t.Errorf("tokens %v, policies %+v, %v; want management m and t1 with list-jobs and agent write", sc.Tokens, sc.Policies, err)
	}
}
