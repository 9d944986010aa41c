package sim

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
)

func TestScenarioMigrationsTargetsAndSLO(t *testing.T) {
	src := smallScenario + `
job "web" {
  group "fe" {
    count  = 2
    cpu    = 500
    memory = 500
  }
}

event "maint" {
  kind       = "drain"
  at         = "1h"
  datacenter = "dc1"
  target     = "dc2"
}

migration "wave" {
  at       = "30m"
  every    = "5m"
  job      = "web"
  group    = "fe"
  from     = "dc1"
  to       = "dc2"
  count    = 3
  deadline = "20m"
}

event "sale" {
  kind       = "surge"
  at         = "2h"
  duration   = "1h"
  datacenter = "dc2"
  factor     = 1.5
  announced  = true
}

slo {
  latency_factor = 4
}
`
	sc := mustScenario(t, src)
	if len(sc.Events) != 2 || sc.Events[0].Target != "dc2" || !sc.Events[1].Announced || sc.Events[0].Announced {
		t.Errorf("events = %+v, want the drain targeted at dc2 and the surge announced", sc.Events)
	}
	want := MigrationSpec{Name: "wave", At: 30 * time.Minute, Every: 5 * time.Minute, Deadline: 20 * time.Minute,
		Job: "web", Group: "fe", From: "dc1", To: "dc2", Count: 3}
	if len(sc.Migrations) != 1 || sc.Migrations[0] != want {
		t.Errorf("migrations = %+v, want %+v", sc.Migrations, want)
	}
	if sc.SLO.LatencyFactor != 4 {
		t.Errorf("slo = %+v", sc.SLO)
	}
	if d := mustScenario(t, smallScenario); d.SLO.LatencyFactor != DefaultSLOLatencyFactor {
		t.Errorf("default slo = %+v", d.SLO)
	}

	for _, tc := range []struct{ name, src, want string }{
		{"migration to itself", `
migration "m" {
  at   = "1h"
  from = "dc1"
  to   = "dc1"
}`, "both \"dc1\""},
		{"migration to an unknown datacenter", `
migration "m" {
  at   = "1h"
  from = "dc1"
  to   = "dc9"
}`, "declared datacenters"},
		{"migration of an unknown job", `
migration "m" {
  at   = "1h"
  job  = "nope"
  from = "dc1"
  to   = "dc2"
}`, "job \"nope\""},
		{"migration without to", `
migration "m" {
  at   = "1h"
  from = "dc1"
}`, "to"},
		{"target on a surge", `
event "e" {
  kind     = "surge"
  at       = "1h"
  duration = "1h"
  factor   = 2
  target   = "dc2"
}`, "on a drain"},
		{"announced drain", `
event "e" {
  kind      = "drain"
  at        = "1h"
  announced = true
}`, "only a surge"},
		{"slo factor of one", `
slo {
  latency_factor = 1
}`, "latency_factor"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseScenario([]byte(smallScenario+tc.src), "test.hcl")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestTruthCongestionLatencyAndNodeTime(t *testing.T) {
	// a-1 runs at 95% of its CPU (latency factor 20), a-2 over capacity
	// for memory; b nodes idle. One node is added and boots for 2m.
	src := smallScenario + `
job "busy" {
  datacenters = ["dc1"]
  constraint {
    attribute = "node.unique.name"
    value     = "a-1"
  }
  group "g" {
    count  = 2
    cpu    = 2000
    memory = 1000
    load {
      cpu {
        scale = 0.95
      }
      memory {
        scale = 0.5
      }
    }
  }
}

job "fat" {
  datacenters = ["dc1"]
  constraint {
    attribute = "node.unique.name"
    value     = "a-2"
  }
  group "g" {
    count  = 1
    cpu    = 500
    memory = 4000
    load {
      cpu {
        scale = 0.5
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
	if _, err := c.AddNodes("b", 1); err != nil {
		t.Fatal(err)
	}
	if err := c.Step(4 * time.Minute); err != nil {
		t.Fatal(err)
	}
	minute := c.sc.Start.Add(time.Minute)
	got := map[string]NodeMinute{}
	for _, m := range c.Truth().NodeMinutes {
		if m.Minute.Equal(minute) {
			got[m.Node] = m
		}
	}
	a1, a2, b1 := got["a-1"], got["a-2"], got["b-1"]
	var b3 NodeMinute
	for _, m := range c.Truth().NodeMinutes {
		if m.Node == "b-3" && m.Minute.Equal(c.sc.Start) {
			b3 = m
		}
	}
	if a1.Congested || a1.CongestedSeconds != 0 || math.Abs(a1.LatencyFactor-20) > 1e-9 || a1.SLOViolationSeconds != 2*60 {
		t.Errorf("a-1 = %+v, want not congested, factor 20, two services beyond the SLO all minute", a1)
	}
	if !a2.Congested || a2.CongestedSeconds != 60 || a2.SLOViolationSeconds != 60 {
		t.Errorf("a-2 = %+v, want memory congestion and one service beyond the SLO", a2)
	}
	if b1.CongestedSeconds != 0 || b1.LatencyFactor != 1 || b1.SLOViolationSeconds != 0 || b1.ReadySeconds != 60 || b1.BootingSeconds != 0 {
		t.Errorf("b-1 = %+v, want idle and ready", b1)
	}
	if b3.ReadySeconds != 0 || b3.BootingSeconds != 60 {
		t.Errorf("b-3 = %+v, want booting all minute", b3)
	}
	late := map[string]NodeMinute{}
	for _, m := range c.Truth().NodeMinutes {
		if m.Minute.Equal(c.sc.Start.Add(3 * time.Minute)) {
			late[m.Node] = m
		}
	}
	if late["b-3"].ReadySeconds != 60 {
		t.Errorf("b-3 at 3m = %+v, want ready after booting for 2m", late["b-3"])
	}
}

func TestJobMinutesAndIdlePlaceholders(t *testing.T) {
	c := newTestCluster(t, "")
	client := newTestAPI(t, c, "")
	// A placeholder: raw_exec /bin/sleep, holding 3000 MHz and 6000 MB on
	// each of two dc2 nodes; a third copy cannot fit and waits.
	hold := api.NewServiceJob("hold", "hold", "global", 10)
	hold.Datacenters = []string{"dc2"}
	tg := api.NewTaskGroup("h", 3)
	task := api.NewTask("sleep", "raw_exec").Require(&api.Resources{CPU: new(3000), MemoryMB: new(6000)})
	task.Config = map[string]any{"command": "/bin/sleep", "args": []string{"86400"}}
	tg.AddTask(task)
	hold.AddTaskGroup(tg)
	if _, _, err := client.Jobs().Register(noUpdate(hold), nil); err != nil {
		t.Fatal(err)
	}
	plain := serviceJob("plain", 1, 1000, 1000, 50)
	plain.Datacenters = []string{"dc1"}
	if _, _, err := client.Jobs().Register(noUpdate(plain), nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Step(3 * time.Minute); err != nil {
		t.Fatal(err)
	}
	var got []JobMinute
	for _, m := range c.Truth().JobMinutes {
		if m.Minute.Equal(c.sc.Start.Add(time.Minute)) {
			m.Minute = time.Time{}
			got = append(got, m)
		}
	}
	want := []JobMinute{
		{JobID: "hold", Type: "service", Priority: 10, Queued: 1},
		{JobID: "hold", Datacenter: "dc2", Type: "service", Priority: 10, AllocatedCPUMHz: 6000, AllocatedMemMB: 12000, Running: 2},
		{JobID: "plain", Datacenter: "dc1", Type: "service", Priority: 50, AllocatedCPUMHz: 1000, AllocatedMemMB: 1000, Running: 1},
	}
	if !slices.Equal(got, want) {
		t.Errorf("job minutes =\n%+v\nwant\n%+v", got, want)
	}
	for _, m := range c.Truth().NodeMinutes {
		if m.Datacenter == "dc2" && m.Minute.Equal(c.sc.Start.Add(2*time.Minute)) && (m.CPUDemandMHz != 0 || m.MemDemandMB != 0) {
			t.Errorf("%s demands %v MHz, %v MB: a sleeping placeholder must demand nothing", m.Node, m.CPUDemandMHz, m.MemDemandMB)
		}
	}
	// The plain job has the default load: a tenth of its CPU request.
	var plainNode string
	for _, a := range c.jobs["plain"].allocs {
		plainNode = a.node.name
	}
	for _, m := range c.Truth().NodeMinutes {
		if m.Node == plainNode && m.Minute.Equal(c.sc.Start.Add(2*time.Minute)) && math.Abs(m.CPUDemandMHz-100) > 1e-9 {
			t.Errorf("plain job's node demands %v MHz, want 100", m.CPUDemandMHz)
		}
	}
}

func TestProjectMatchesTheModel(t *testing.T) {
	src := smallScenario + `
job "web" {
  datacenters = ["dc1"]
  group "fe" {
    count  = 3
    cpu    = 1000
    memory = 1000
    load {
      jitter = "1h"
      cpu {
        trace = "web"
        scale = 1.5
      }
      memory {
        scale = 0.5
      }
    }
  }
}

event "surge" {
  kind       = "surge"
  at         = "2h"
  duration   = "1h"
  datacenter = "dc1"
  factor     = 2
}`
	c, err := New(mustScenario(t, src), Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Step(time.Minute); err != nil {
		t.Fatal(err)
	}
	at := []time.Time{c.sc.Start.Add(-24 * time.Hour), c.sc.Start.Add(90 * time.Minute), c.sc.Start.Add(150 * time.Minute)}
	proj := c.Project(at)
	if len(proj) != 5 {
		t.Fatalf("%d nodes projected, want 5", len(proj))
	}
	// Per task group, the same demand summed by group instead of node.
	groups := c.ProjectGroups(at)
	var allocs int
	for k := range at {
		var nodes, byGroup float64
		for _, p := range proj {
			nodes += p.CPUMHz[k] + p.MemMB[k]
		}
		for _, g := range groups {
			byGroup += g.CPUMHz[k] + g.MemMB[k]
		}
		if nodes == 0 || math.Abs(nodes-byGroup) > 1e-6 {
			t.Errorf("at %v: nodes demand %v, groups %v; want equal and positive", at[k], nodes, byGroup)
		}
	}
	for _, g := range groups {
		if g.Job == "web" && g.Group == "fe" {
			allocs = g.Allocs
		}
	}
	if allocs != 3 {
		t.Errorf("web.fe projected over %d allocations, want 3 (groups %+v)", allocs, groups)
	}
	// Run the model to each future time and compare node demand.
	for k, when := range at[1:] {
		if err := c.RunUntil(when); err != nil {
			t.Fatal(err)
		}
		c.mu.Lock()
		for i, n := range c.nodes {
			if math.Abs(proj[i].CPUMHz[k+1]-n.demCPU) > 1e-6 || math.Abs(proj[i].MemMB[k+1]-n.demMem) > 1e-6 {
				t.Errorf("%s at %v: projected %v MHz %v MB, model %v MHz %v MB", n.name, when, proj[i].CPUMHz[k+1], proj[i].MemMB[k+1], n.demCPU, n.demMem)
			}
		}
		c.mu.Unlock()
	}
	// A day back, PlanetLab's one-day trace has wrapped: the same demand
	// as at the start, without the surge.
	var past, now float64
	for _, p := range proj {
		past += p.CPUMHz[0]
	}
	for _, p := range c.Project([]time.Time{c.sc.Start}) {
		now += p.CPUMHz[0]
	}
	if past == 0 || math.Abs(past-now) > 1e-6 {
		t.Errorf("demand a day before the start %v, at the start %v: want equal and positive", past, now)
	}
}

// TestTruthWindowBoundsMinuteRecords: with Options.TruthWindow an
// open-ended run keeps only the last window's minute records, the rest of
// the truth as it is; without it, every minute.
func TestTruthWindowBoundsMinuteRecords(t *testing.T) {
	t.Parallel()
	run := func(window time.Duration) (*Cluster, Truth) {
		c, err := New(DefaultScenario(), Options{TruthWindow: window})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Step(3 * 24 * time.Hour); err != nil {
			t.Fatal(err)
		}
		return c, c.Truth()
	}
	all, whole := run(0)
	c, kept := run(6 * time.Hour)
	nodes := len(c.nodes)
	cut := c.now.Truncate(time.Minute).Add(-6 * time.Hour)
	if len(kept.NodeMinutes) == 0 || kept.NodeMinutes[0].Minute.Before(cut) || len(kept.NodeMinutes) > (6*60+1)*nodes {
		t.Errorf("node minutes kept: %d from %v; want at most %d, none before %v", len(kept.NodeMinutes), kept.NodeMinutes[0].Minute, (6*60+1)*nodes, cut)
	}
	if len(kept.JobMinutes) == 0 || kept.JobMinutes[0].Minute.Before(cut) {
		t.Errorf("job minutes kept: %d from %v; want none before %v", len(kept.JobMinutes), kept.JobMinutes[0].Minute, cut)
	}
	if len(whole.NodeMinutes) < 3*24*60*len(all.nodes)-len(all.nodes) {
		t.Errorf("without a window: %d node minutes; want every minute of 3 days", len(whole.NodeMinutes))
	}
	// What is kept is what the whole run recorded over the window.
	tail := whole.NodeMinutes[len(whole.NodeMinutes)-len(kept.NodeMinutes):]
	if !slices.Equal(tail, kept.NodeMinutes) {
		t.Error("the node minutes kept differ from the same minutes of the run that kept all")
	}
	if len(kept.Migrations) != len(whole.Migrations) || len(kept.Events) != len(whole.Events) {
		t.Errorf("migrations %d, events %d with the window; %d, %d without: want the same", len(kept.Migrations), len(kept.Events), len(whole.Migrations), len(whole.Events))
	}
}
