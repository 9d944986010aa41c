package proof

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/foreshape/foreshape/sim"
)

// testWriter routes logs to t.Log so they show only on failure.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t testing.TB) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Output: testWriter{t}, Level: hclog.Debug})
}

// twoDCs is a small two-datacenter scenario: svc runs on dc1's two nodes
// (six allocations, 1 GB each), dc2 has room. extra adds events, waves
// and jobs.
const twoDCs = `
name     = "two"
seed     = 3
start    = "2026-03-02T00:00:00Z"
duration = "2h"
tick     = "10s"

scheduler {
  algorithm = "spread"
}

datacenter "dc1" {
  bandwidth = 10
}

datacenter "dc2" {
  bandwidth = 10
}

nodes "a" {
  datacenter = "dc1"
  count      = 2
  cpu        = 8000
  memory     = 16384
}

nodes "b" {
  datacenter = "dc2"
  count      = 2
  cpu        = 8000
  memory     = 16384
}

# Registered first, so that svc's spread placement prefers dc1.
job "base" {
  datacenters = ["dc2"]
  group "base" {
    count  = 8
    cpu    = 1000
    memory = 1024
    load {
      cpu {
        scale = 0.5
      }
    }
  }
}

job "svc" {
  datacenters = ["dc1", "dc2"]
  affinity {
    attribute = "node.datacenter"
    value     = "dc1"
    weight    = 100
  }
  group "svc" {
    count  = 6
    cpu    = 1000
    memory = 1024
    migrate {
      max_parallel = 6
    }
    load {
      cpu {
        scale = 0.5
      }
      memory {
        scale = 0.5
      }
    }
  }
}
`

func scenario(t testing.TB, extra string) *sim.Scenario {
	t.Helper()
	sc, err := sim.ParseScenario([]byte(twoDCs+extra), "two.hcl")
	if err != nil {
		t.Fatalf("parse scenario: %v", err)
	}
	return sc
}

const drainDC1 = `
event "maint" {
  kind       = "drain"
  at         = "10m"
  datacenter = "dc1"
  deadline   = "1h"
  target     = "dc2"
}
`

func TestPlanWorkload(t *testing.T) {
	sc := scenario(t, `
event "maint" {
  kind       = "drain"
  at         = "30m"
  datacenter = "dc1"
  deadline   = "20m"
  target     = "dc2"
}

migration "wave" {
  at    = "10m"
  every = "5m"
  job   = "svc"
  from  = "dc1"
  to    = "dc2"
  count = 3
}

migration "rest" {
  at   = "1h"
  job  = "svc"
  from = "dc1"
  to   = "dc2"
}
`)
	w := PlanWorkload(sc)
	t0 := sc.Start
	type row struct {
		ID             string
		Arrive, Due    time.Duration
		Node, From, To string
		All            bool
	}
	var got []row
	for _, r := range w.Requests {
		got = append(got, row{r.ID, r.Arrive.Sub(t0), r.Deadline.Sub(t0), r.Node, r.From, r.To, r.all})
	}
	want := []row{
		{"wave/1", 10 * time.Minute, 70 * time.Minute, "", "dc1", "dc2", false},
		{"wave/2", 15 * time.Minute, 75 * time.Minute, "", "dc1", "dc2", false},
		{"wave/3", 20 * time.Minute, 80 * time.Minute, "", "dc1", "dc2", false},
		{"maint/a-1", 30 * time.Minute, 50 * time.Minute, "a-1", "dc1", "dc2", false},
		{"maint/a-2", 30 * time.Minute, 50 * time.Minute, "a-2", "dc1", "dc2", false},
		{"rest/1", time.Hour, 2 * time.Hour, "", "dc1", "dc2", true},
	}
	if len(got) != len(want) {
		t.Fatalf("requests = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("request %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if len(w.Drains) != 1 || len(withoutDrains(sc).Events) != 0 {
		t.Errorf("drains %d, events left to the simulator %d: want the drain taken out", len(w.Drains), len(withoutDrains(sc).Events))
	}
}

// overlap returns the most transfers in flight at once through dc.
func overlap(moves []sim.MigrationRecord, dc string) int {
	type ev struct {
		t     time.Time
		delta int
	}
	var evs []ev
	for _, m := range moves {
		if m.SourceLocality == dc || m.TargetLocality == dc {
			evs = append(evs, ev{m.Start, 1}, ev{m.End, -1})
		}
	}
	sort.Slice(evs, func(i, k int) bool {
		if !evs[i].t.Equal(evs[k].t) {
			return evs[i].t.Before(evs[k].t)
		}
		return evs[i].delta < evs[k].delta
	})
	cur, most := 0, 0
	for _, e := range evs {
		cur += e.delta
		most = max(most, cur)
	}
	return most
}

func runOnly(t *testing.T, sc *sim.Scenario, p Params, names ...string) *Result {
	t.Helper()
	res, err := RunComparison(context.Background(), Config{Scenario: sc, Controllers: names, Params: p, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestNoneStartsEveryMoveAtOnce(t *testing.T) {
	sc := scenario(t, drainDC1)
	res := runOnly(t, sc, Params{}, "none")
	r := res.Runs[0]
	moves := 0
	for _, m := range r.Moves {
		if m.SourceLocality == "dc1" {
			moves++
			if !m.Start.Equal(sc.Start.Add(10 * time.Minute)) {
				t.Errorf("move of %s started at %s, want at the request", m.AllocID, m.Start)
			}
			if m.TargetLocality != "dc2" {
				t.Errorf("move of %s went to %s", m.AllocID, m.TargetLocality)
			}
		}
	}
	if moves != 6 || overlap(r.Moves, "dc1") != 6 {
		t.Errorf("%d moves off dc1, %d at once: want all 6 together (%+v)", moves, overlap(r.Moves, "dc1"), r.Moves)
	}
	if st, ok := r.Starts["maint/a-1"]; !ok || !st.Equal(sc.Start.Add(10*time.Minute)) {
		t.Errorf("start of maint/a-1 = %v, %v", st, ok)
	}
}

func TestThrottleCapsMovesPerLocality(t *testing.T) {
	sc := scenario(t, drainDC1)
	res := runOnly(t, sc, Params{MaxParallel: 2}, "none", "throttle")
	none, thr := res.Runs[0], res.Runs[1]
	if got := overlap(none.Moves, "dc1"); got != 6 {
		t.Errorf("none ran %d moves at once, want all 6", got)
	}
	if got := overlap(thr.Moves, "dc1"); got != 2 || len(thr.Moves) != 6 {
		t.Errorf("throttle ran %d of %d moves at once, want 6 moves at most 2 at a time", got, len(thr.Moves))
	}
	// Alone, 1 GB over 10 MB/s takes 102.4 s; six together 614 s.
	if none.Metrics.MigrationP95S <= thr.Metrics.MigrationP95S || thr.Metrics.MigrationP95S > 205 {
		t.Errorf("p95 none %v throttle %v: capping should make each move faster", none.Metrics.MigrationP95S, thr.Metrics.MigrationP95S)
	}
}

// hotJob is a job "hot" of two 4000 MHz allocations in dc, each using 1.8
// times what it reserves: 14,400 MHz, a hot datacenter.
func hotJob(dc string) string {
	return `
job "hot" {
  datacenters = ["` + dc + `"]
  group "hot" {
    count  = 2
    cpu    = 4000
    memory = 1024
    load {
      cpu {
        scale = 1.8
      }
    }
  }
}
`
}

func TestThrottleHoldsMovesIntoAHotLocality(t *testing.T) {
	// dc2 runs hot (90% CPU): moves into it wait until their deadline.
	sc := scenario(t, drainDC1+hotJob("dc2"))
	res := runOnly(t, sc, Params{}, "throttle")
	deadline := sc.Start.Add(70 * time.Minute)
	for _, m := range res.Runs[0].Moves {
		if m.Start.Before(deadline) {
			t.Errorf("move of %s started at %s, before the deadline %s, into a hot locality", m.AllocID, m.Start, deadline)
		}
	}
	if len(res.Runs[0].Moves) != 6 {
		t.Errorf("%d moves, want the 6 forced at the deadline", len(res.Runs[0].Moves))
	}
}

func TestReactiveScalesOutOnCurrentUtilisation(t *testing.T) {
	// dc2 runs at 90% CPU from the start: reactive adds
	// ceil(2 × 0.9 / 0.8) - 2 = 1 node at once. The new node takes no
	// running work, so utilisation stays over the line; after the
	// cooldown it would add more, but the cloud's limit (MaxScaleOut 0.5
	// of 2 nodes) is reached.
	sc := scenario(t, hotJob("dc2"))
	sc.NodeBoot = 2 * time.Minute
	res := runOnly(t, sc, Params{Cooldown: 10 * time.Minute, MaxScaleOut: 0.5}, "throttle", "reactive")
	if res.Runs[0].Metrics.ScaleActions != 0 {
		t.Errorf("throttle scaled %d times", res.Runs[0].Metrics.ScaleActions)
	}
	re := res.Runs[1]
	if re.Metrics.ScaleActions != 1 {
		t.Errorf("reactive scaled %d times, want once", re.Metrics.ScaleActions)
	}
	var dc2 *LocalitySeries
	for i := range re.Localities {
		if re.Localities[i].Datacenter == "dc2" {
			dc2 = &re.Localities[i]
		}
	}
	if dc2 == nil || dc2.CPUCapacity[0] != 16000 || dc2.CPUCapacity[5] != 24000 {
		t.Errorf("dc2 capacity = %v…, want 16000 then 24000 once the node booted", dc2.CPUCapacity[:6])
	}
}

// waveOfTwo moves two of svc's allocations from dc1 to dc2, one every ten
// minutes from the fifth.
const waveOfTwo = `
migration "wave" {
  at    = "5m"
  every = "10m"
  job   = "svc"
  from  = "dc1"
  to    = "dc2"
  count = 2
}
`

func TestWaveRetiresItsNodesAndPicksByName(t *testing.T) {
	sc := scenario(t, waveOfTwo)
	res := runOnly(t, sc, Params{}, "none")
	r := res.Runs[0]
	if len(r.Moves) != 2 {
		t.Fatalf("moves = %+v, want 2", r.Moves)
	}
	for i, m := range r.Moves {
		if m.TargetLocality != "dc2" || !m.Start.Equal(sc.Start.Add(time.Duration(5+10*i)*time.Minute)) {
			t.Errorf("move %d = %+v, want into dc2 at its request", i, m)
		}
	}
	if _, ok := r.Starts["wave/1"]; !ok {
		t.Errorf("starts = %v", r.Starts)
	}
}

func TestSameSeedSameJSON(t *testing.T) {
	run := func() []byte {
		sc := scenario(t, drainDC1+`
migration "wave" {
  at    = "20m"
  every = "2m"
  job   = "svc"
  from  = "dc1"
  to    = "dc2"
  count = 2
}
`)
		res := runOnly(t, sc, Params{}, "none", "throttle", "reactive")
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
	var shape struct {
		Scenario    string                        `json:"scenario"`
		Seed        uint64                        `json:"seed"`
		Controllers map[string]map[string]float64 `json:"controllers"`
	}
	if err := json.Unmarshal(a, &shape); err != nil {
		t.Fatal(err)
	}
	if shape.Scenario != "two" || shape.Seed != 3 || len(shape.Controllers) != 3 || len(shape.Controllers["none"]) != len(MetricNames) {
		t.Errorf("json = %s", a)
	}
	if !strings.HasPrefix(string(a), `{"scenario":"two","seed":3,"controllers":{"none":{"congestion_node_minutes":`) ||
		strings.Index(string(a), `"throttle"`) > strings.Index(string(a), `"reactive"`) {
		t.Errorf("json order = %s", a)
	}
}

func TestUnknownController(t *testing.T) {
	_, err := RunComparison(context.Background(), Config{Scenario: scenario(t, ""), Controllers: []string{"magic"}})
	if err == nil || !strings.Contains(err.Error(), `unknown controller "magic"`) {
		t.Errorf("err = %v", err)
	}
}

func TestHoldoutScenariosParse(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("holdout", "*.hcl"))
	if err != nil || len(files) != 10 {
		t.Fatalf("held-out scenarios: %v %v", files, err)
	}
	for _, f := range files {
		if _, err := sim.LoadScenario(os.DirFS("holdout"), filepath.Base(f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// idle is a controller that ignores every request.
type idle struct{}

func (idle) Step(context.Context, time.Time, []Request) error { return nil }

func init() { Register("idle-test", func(*Env) (Controller, error) { return idle{}, nil }) }

func TestUndoneWorkIsFlagged(t *testing.T) {
	sc := scenario(t, drainDC1)
	res := runOnly(t, sc, Params{}, "none", "idle-test")
	if res.Runs[0].Unfinished != nil || res.Runs[0].Outside != 0 {
		t.Errorf("none left %q, %d outside", res.Runs[0].Unfinished, res.Runs[0].Outside)
	}
	if got := res.Runs[1].Unfinished; len(got) != 2 || !strings.Contains(got[0], "maint/a-1: a-1 still runs 3 allocations") {
		t.Errorf("idle left %q", got)
	}
	cs := Checks(res)
	if len(cs) != 1 || cs[0].Holds || !cs[0].Warning || !strings.Contains(cs[0].Detail, "2 of 2 requests unfinished") {
		t.Errorf("checks = %+v", cs)
	}
}

// A controller whose moves land outside the request's target datacenter
// is flagged: svc prefers dc1, and a drain of a-1 alone into dc2 that
// leaves a-2 in scheduling sends two of none's three replacements to a-2.
func TestWorkMovedOutsideItsTargetIsFlagged(t *testing.T) {
	sc := scenario(t, `
event "maint" {
  kind       = "drain"
  at         = "10m"
  node       = "a-1"
  deadline   = "1h"
  target     = "dc2"
}
`)
	res := runOnly(t, sc, Params{}, "none")
	r := res.Runs[0]
	if len(r.Unfinished) != 0 || r.Outside != 2 {
		t.Fatalf("none left %q, %d transfers outside dc2; want 2 (moves %+v)", r.Unfinished, r.Outside, r.Moves)
	}
	cs := Checks(res)
	if len(cs) != 1 || cs[0].Holds || !cs[0].Warning || cs[0].Name != "none did the requested work" ||
		cs[0].Detail != "2 transfers landed outside their target" {
		t.Errorf("checks = %+v", cs)
	}
}

// A wave without a count is one request that resolves, when it arrives,
// to every running allocation of the group on the nodes it selects.
func TestWaveWithoutCountMovesEveryAllocation(t *testing.T) {
	sc := scenario(t, `
migration "rest" {
  at   = "5m"
  job  = "svc"
  from = "dc1"
  to   = "dc2"
}
`)
	res := runOnly(t, sc, Params{}, "none")
	if n := len(res.Workload.Requests); n != 1 {
		t.Fatalf("%d requests planned, want 1", n)
	}
	r := res.Runs[0]
	if len(r.Moves) != 6 || len(r.Starts) != 6 {
		t.Fatalf("%d moves, %d started requests; want svc's 6 allocations (starts %v)", len(r.Moves), len(r.Starts), r.Starts)
	}
	for i := 1; i <= 6; i++ {
		if _, ok := r.Starts[fmt.Sprintf("rest/%d", i)]; !ok {
			t.Errorf("no start for rest/%d: %v", i, r.Starts)
		}
	}
	for _, m := range r.Moves {
		if m.TargetLocality != "dc2" {
			t.Errorf("move %+v left dc1 for %s", m, m.TargetLocality)
		}
	}
}

// A wave's allocation a controller never moved is flagged too.
func TestUndoneWaveIsFlagged(t *testing.T) {
	sc := scenario(t, waveOfTwo)
	res := runOnly(t, sc, Params{}, "idle-test")
	got := res.Runs[0].Unfinished
	if len(got) != 2 || !strings.HasPrefix(got[0], "wave/1: allocation ") || !strings.Contains(got[0], " still runs on a-") {
		t.Errorf("idle left %q", got)
	}
	cs := Checks(res)
	if len(cs) != 1 || cs[0].Holds || !cs[0].Warning || !strings.Contains(cs[0].Detail, "2 of 2 requests unfinished") {
		t.Errorf("checks = %+v", cs)
	}
}

// Moves out of a hot locality wait too, until their deadline.
func TestThrottleHoldsMovesOutOfAHotLocality(t *testing.T) {
	// dc1 runs hot (svc's 3000 MHz and hot's 14400 of 16000 MHz): a wave
	// moving svc from dc1 to dc2 waits until each request's deadline.
	sc := scenario(t, hotJob("dc1")+`
migration "wave" {
  at       = "5m"
  every    = "10m"
  job      = "svc"
  from     = "dc1"
  to       = "dc2"
  count    = 2
  deadline = "30m"
}
`)
	res := runOnly(t, sc, Params{}, "throttle")
	moves := res.Runs[0].Moves
	if len(moves) != 2 {
		t.Fatalf("moves = %+v, want the wave's 2", moves)
	}
	for i, m := range moves {
		if due := sc.Start.Add(time.Duration(35+10*i) * time.Minute); !m.Start.Equal(due) || m.TargetLocality != "dc2" {
			t.Errorf("move %d = %+v; want into dc2 at its deadline %s, out of a hot dc1", i, m, due)
		}
	}
}
