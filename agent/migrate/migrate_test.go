package migrate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/sim"
)

// TestNodeMoveWithReservation moves the only dc1 node's work to dc2: the
// reservation is placed first, the move hands it over allocation by
// allocation as it stops each one, the follower sees the replacements run
// in dc2, and the placeholder and the node's ineligibility are undone.
func TestNodeMoveWithReservation(t *testing.T) {
	h := newHarness(t, actScenario, actPolicies)
	node := h.nodeID("a-")
	id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Node: node, Target: "dc2"})
	if err != nil {
		t.Fatal(err)
	}
	r := h.request(id)
	if r.Source != "dc1" || r.Policy != "dc1" || len(r.Moves) != 2 || r.Moved != (state.Resources{CPU: 2000, MemoryMB: 2048}) || r.Priority != 60 {
		t.Fatalf("queued %+v", r)
	}
	// Pass 1: the reservation.
	plan := h.run(h.flatForecasts(30))
	if len(plan.Reserve) != 1 || len(plan.Start) != 0 {
		t.Fatalf("first pass: reserve %+v start %+v", plan.Reserve, plan.Start)
	}
	res, ok := h.local.FSM.Act().ReservationFor(id)
	if !ok || res.State != state.ReservationHeld || res.Total() != r.Moved || res.Unplaced != 2 {
		t.Fatalf("reservation %+v; want held, its two placeholder allocations not seen placed yet", res)
	}
	job, _, err := h.client.Jobs().Info(res.Job, nil)
	if err != nil {
		t.Fatal(err)
	}
	if *job.Priority != 10 || job.Meta[MetaRequest] != id || job.Meta[MetaOwner] == "" || job.Datacenters[0] != "dc2" ||
		job.TaskGroups[0].Tasks[0].Driver != "raw_exec" || *job.TaskGroups[0].Update.MaxParallel != 0 {
		t.Errorf("placeholder job %+v", job)
	}
	h.step(30 * time.Second)
	// Pass 2: the placeholder runs; the move starts.
	plan = h.run(h.flatForecasts(30))
	if len(plan.Start) != 1 {
		t.Fatalf("second pass started %+v; decisions %+v", plan.Start, plan.Decisions)
	}
	if got := h.request(id); got.State != state.RequestRunning {
		t.Fatalf("request %s", got.State)
	}
	// dc1's max_parallel is 1: one allocation moves at a time, and its
	// stop took its share of the placeholder; the other's share waits.
	held, _, err := h.client.Jobs().Info(res.Job, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := *held.TaskGroups[0].Count; n != 1 {
		t.Errorf("placeholder group count %d after the first hand-over; want 1", n)
	}
	if left, _ := h.local.FSM.Act().ReservationFor(id); left.Total() != (state.Resources{CPU: 1000, MemoryMB: 1024}) || left.Size != r.Moved || left.Unplaced != 0 {
		t.Errorf("reservation after the first hand-over holds %v of %v, %d placeholder allocations not placed; want every one placed",
			left.Total(), left.Size, left.Unplaced)
	}
	stopped := 0
	for _, m := range h.request(id).Moves {
		if !m.Stopped.IsZero() {
			stopped++
		}
	}
	if stopped != 1 {
		t.Errorf("%d allocations stopped at the start; want 1 under max_parallel 1", stopped)
	}
	for range 20 {
		h.step(15 * time.Second)
		if err := h.c.Follow(h.ctx, h.now()); err != nil {
			t.Fatal(err)
		}
		if h.request(id).State.Terminal() {
			break
		}
	}
	got := h.request(id)
	if got.State != state.RequestDone {
		t.Fatalf("request %s: %s", got.State, got.Reason)
	}
	for _, m := range got.Moves {
		if !m.Done || m.Landed != "dc2" || m.Replacement == "" || m.Error != "" {
			t.Errorf("move %+v", m)
		}
	}
	// The placeholder is gone; the emptied node stays out of scheduling,
	// as after a node drain.
	if _, _, err := h.client.Jobs().Info(res.Job, nil); err == nil {
		t.Errorf("placeholder %s outlived its move", res.Job)
	}
	n, _, _ := h.client.Nodes().Info(node, nil)
	if n.SchedulingEligibility != nomadapi.NodeSchedulingIneligible {
		t.Errorf("node left %s, want it kept ineligible", n.SchedulingEligibility)
	}
	// Every call went through an intent, and each allocation was stopped
	// once.
	stops := map[string]int{}
	for _, c := range h.mutating() {
		if strings.HasSuffix(c, "/stop") {
			stops[c]++
		}
	}
	if len(stops) != 2 {
		t.Errorf("stops %v; want the two web allocations", stops)
	}
	for c, k := range stops {
		if k != 1 {
			t.Errorf("%s called %d times", c, k)
		}
	}
	for _, in := range h.local.FSM.Intents() {
		if in.Open() || in.Outcome != state.OutcomeDone {
			t.Errorf("intent %+v", in)
		}
	}
	kinds := map[state.IntentKind]int{}
	for _, in := range h.local.FSM.Intents() {
		kinds[in.Kind]++
	}
	want := map[state.IntentKind]int{state.IntentRegisterHold: 1, state.IntentNodeEligibility: 1, state.IntentScaleHold: 2,
		state.IntentStopAlloc: 2, state.IntentDeregisterHold: 1}
	if fmt.Sprint(kinds) != fmt.Sprint(want) {
		t.Errorf("intents %v; want %v", kinds, want)
	}
	// The estimate learned from the moves.
	if len(h.local.FSM.Act().Estimates) == 0 {
		t.Error("no duration learned")
	}
	ds := h.local.FSM.Decisions()
	var kindsSeen []string
	for _, d := range ds {
		kindsSeen = append(kindsSeen, d.Kind)
	}
	for _, k := range []string{"submit", "reserve", "start", "done", "release"} {
		if !slices.Contains(kindsSeen, k) {
			t.Errorf("no %q decision in %v", k, kindsSeen)
		}
	}
}

// TestDryRunMakesNoCalls runs the same cluster with forecast_only: plans
// are recorded, Nomad sees no mutating call.
// TestTargetDryRunHoldsNoNode: a request whose target's policy is
// forecast_only is planned dry and never starts, so its node is not taken
// out of scheduling either (holdNodes read only the source's policy, and
// cordoned the node for as long as the request waited).
func TestTargetDryRunHoldsNoNode(t *testing.T) {
	pols := strings.Replace(actPolicies, "shaping \"dc2\" {\n", "shaping \"dc2\" {\n  forecast_only = true\n", 1)
	if pols == actPolicies {
		t.Fatal("no dc2 policy to make forecast_only")
	}
	h := newHarness(t, actScenario, pols)
	node := h.nodeID("a-")
	before := len(h.mutating())
	id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Node: node, Target: "dc2"})
	if err != nil {
		t.Fatal(err)
	}
	h.passUntil(h.now().Add(20*time.Minute), nil)
	if got := h.mutating()[before:]; len(got) != 0 {
		t.Errorf("mutating calls for a request planned dry: %v", got)
	}
	if e := h.eligibility(node); e != "eligible" {
		t.Errorf("node %s is %s; want it left eligible", node, e)
	}
	if r := h.request(id); r.State != state.RequestPending {
		t.Errorf("request %s; want it pending", r.State)
	}
}

func TestDryRunMakesNoCalls(t *testing.T) {
	h := newHarness(t, actScenario, actPolicies, func(c *Config) { c.ForecastOnly = true })
	before := len(h.mutating())
	if _, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Node: h.nodeID("a-"), Target: "dc2"}); err != nil {
		t.Fatal(err)
	}
	hot := h.flatForecasts(30)
	for i := range hot {
		if hot[i].Locality == "dc2" && hot[i].Metric == "cpu" {
			for k := range hot[i].Planning {
				hot[i].Planning[k] = 95 // a hotspot: the planner wants to scale
			}
		}
	}
	for range 5 {
		h.run(hot)
		h.step(time.Minute)
	}
	if got := h.mutating()[before:]; len(got) != 0 {
		t.Errorf("dry run made mutating calls: %v", got)
	}
	if len(h.fake.actions) != 0 {
		t.Errorf("dry run scaled: %+v", h.fake.actions)
	}
	var dry int
	for _, d := range h.local.FSM.Decisions() {
		if d.DryRun {
			dry++
		}
	}
	if dry == 0 {
		t.Error("no dry-run decision recorded")
	}
	// Repeats of a dry decision are not recorded every pass.
	seen := map[string]int{}
	for _, d := range h.local.FSM.Decisions() {
		if d.DryRun && d.Kind == "scale" {
			seen[d.Reason]++
		}
	}
	for reason, k := range seen {
		if k > 1 {
			t.Errorf("dry scale decision recorded %d times: %s", k, reason)
		}
	}
}

func TestSubmitRefusals(t *testing.T) {
	h := newHarness(t, actScenario, actPolicies, func(c *Config) { c.MaxQueue = 2 })
	webAllocs := h.allocs("web")
	// A job that may only run in dc1.
	id, name, typ, prio, cnt, cpu, mem := "pinned", "pinned", "service", 50, 1, 200, 256
	g := "p"
	job := &nomadapi.Job{ID: &id, Name: &name, Type: &typ, Priority: &prio, Datacenters: []string{"dc1"},
		TaskGroups: []*nomadapi.TaskGroup{{Name: &g, Count: &cnt, Tasks: []*nomadapi.Task{{Name: "t", Driver: "exec",
			Resources: &nomadapi.Resources{CPU: &cpu, MemoryMB: &mem}}}}}}
	if _, _, err := h.client.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	// A system job, which Nomad runs on every eligible node.
	sid, styp, sg := "node-agent", "system", "agent"
	sjob := &nomadapi.Job{ID: &sid, Name: &sid, Type: &styp, Priority: &prio, Datacenters: []string{"dc1", "dc2"},
		TaskGroups: []*nomadapi.TaskGroup{{Name: &sg, Tasks: []*nomadapi.Task{{Name: "t", Driver: "exec",
			Resources: &nomadapi.Resources{CPU: &cpu, MemoryMB: &mem}}}}}}
	if _, _, err := h.client.Jobs().Register(sjob, nil); err != nil {
		t.Fatal(err)
	}
	h.step(20 * time.Second)
	pinned := h.allocs("pinned")[0].ID
	system := h.allocs("node-agent")[0].ID
	nodeA := h.nodeID("a-")
	tests := []struct {
		name  string
		sub   Submission
		field string // InvalidError's field; "" for other errors
		want  error
		msg   string
		not   string // what the error must not say
	}{
		{name: "unknown allocation", sub: Submission{Allocation: "nope", Target: "dc2"}, field: "allocation", msg: `no allocation "nope"`},
		{name: "unknown node", sub: Submission{Node: "nope", Target: "dc2"}, field: "node"},
		{name: "unknown job", sub: Submission{Job: "nope", Group: "g", Target: "dc2"}, field: "job"},
		{name: "unknown group", sub: Submission{Job: "web", Group: "nope", Target: "dc2"}, field: "group", msg: `job web has no task group "nope"; its task groups: frontend`},
		{name: "unknown target", sub: Submission{Allocation: webAllocs[0].ID, Target: "dc9"}, field: "target", msg: "unknown locality"},
		{name: "malformed target", sub: Submission{Allocation: webAllocs[0].ID, Target: "a/b/c/d"}, field: "target"},
		{name: "target equals source", sub: Submission{Allocation: webAllocs[0].ID, Target: "dc1"}, field: "target", msg: "the target equals the source"},
		// A node request names the node once.
		{name: "node target equals source", sub: Submission{Node: nodeA, Target: "dc1"}, field: "target", msg: "already runs in dc1: the target equals the source", not: "(node "},
		{name: "constraints forbid", sub: Submission{Allocation: pinned, Target: "dc2"}, field: "target", msg: "job pinned's constraints forbid dc2"},
		// Nomad places a system job's allocations where the nodes are: a
		// move of one never settles.
		{name: "system job's allocation", sub: Submission{Allocation: system, Target: "dc2"}, field: "allocation", msg: "belongs to system job node-agent, which Nomad runs on every eligible node"},
		{name: "system job's group", sub: Submission{Job: "node-agent", Group: "agent", Target: "dc2"}, field: "job", msg: "node-agent is a system job"},
		{name: "group already in the target", sub: Submission{Job: "pinned", Group: "p", Target: "dc1"}, field: "target", msg: "every running allocation of pinned/p is in dc1 already"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.local.FSM.Act()
			_, err := h.c.Submit(h.ctx, h.now(), h.pols, tt.sub)
			var ie *InvalidError
			if !errors.As(err, &ie) || ie.Field != tt.field || !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v; want an InvalidError on %s", err, tt.field)
			}
			if tt.msg != "" && !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("%q lacks %q", err, tt.msg)
			}
			if tt.not != "" && strings.Contains(err.Error(), tt.not) {
				t.Errorf("%q says %q", err, tt.not)
			}
			if after := h.local.FSM.Act(); len(after.Requests) != len(before.Requests) {
				t.Error("a refused submission queued something")
			}
		})
	}
	queued, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Allocation: webAllocs[0].ID[:8], Target: "dc2"})
	if err != nil {
		t.Fatalf("by ID prefix: %v", err)
	}
	_, err = h.c.Submit(h.ctx, h.now(), h.pols, Submission{Allocation: webAllocs[0].ID, Target: "dc2"})
	var ce *state.ConflictError
	if !errors.As(err, &ce) || ce.Existing != queued {
		t.Errorf("resubmission: %v; want a conflict naming %s", err, queued)
	}
	// The node holds the queued allocation: a conflict as well (once the
	// pinned job, which could not move, is gone).
	if _, _, err := h.client.Jobs().Deregister("pinned", true, nil); err != nil {
		t.Fatal(err)
	}
	h.step(20 * time.Second)
	if _, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Node: nodeA, Target: "dc2"}); !errors.Is(err, state.ErrConflict) {
		t.Errorf("node of a queued allocation: %v", err)
	}
	if _, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Allocation: webAllocs[1].ID, Target: "dc2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Job: "web", Group: "frontend", Target: "dc2"}); !errors.Is(err, state.ErrQueueFull) {
		t.Errorf("third with a queue of 2: %v; want ErrQueueFull", err)
	}
}

// moveToDone runs passes and follows until the request ends.
func (h *harness) moveToDone(id string) state.MigrationRequest {
	h.t.Helper()
	for range 40 {
		h.run(h.flatForecasts(30))
		h.step(15 * time.Second)
		if err := h.c.Follow(h.ctx, h.now()); err != nil {
			h.t.Fatal(err)
		}
		if r := h.request(id); r.State.Terminal() {
			return r
		}
	}
	r := h.request(id)
	h.t.Fatalf("request %s still %s: %s", id, r.State, r.Reason)
	return r
}

// TestDrainStrategy moves a node's work with a Nomad drain whose deadline
// is the request's; the request is done once the drain is over and every
// replacement runs in dc2.
func TestDrainStrategy(t *testing.T) {
	pols := drainStrategy(actPolicies)
	h := newHarness(t, actScenario, pols)
	node := h.nodeID("a-")
	id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Node: node, Target: "dc2", Deadline: h.now().Add(30 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if r := h.request(id); r.Strategy != "drain" {
		t.Fatalf("strategy %q", r.Strategy)
	}
	r := h.moveToDone(id)
	if r.State != state.RequestDone {
		t.Fatalf("%s: %s", r.State, r.Reason)
	}
	for _, m := range r.Moves {
		if m.Landed != "dc2" {
			t.Errorf("move %+v", m)
		}
	}
	drains := 0
	for _, c := range h.mutating() {
		if strings.HasSuffix(c, "/drain") {
			drains++
		}
	}
	if drains != 1 {
		t.Errorf("%d drain calls; want 1", drains)
	}
	for _, in := range h.local.FSM.Intents() {
		if in.Kind == state.IntentDrainNode && !strings.Contains(in.Detail, "deadline") {
			t.Errorf("drain intent %+v", in)
		}
	}
}

// TestAffinityStrategy steers an allocation's replacement with a job
// update that adds an affinity to the target's datacenter, then stops it.
func TestAffinityStrategy(t *testing.T) {
	h := newHarness(t, actScenario, affinityStrategy(actPolicies))
	a := h.allocs("web")[0]
	id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Allocation: a.ID, Target: "dc2"})
	if err != nil {
		t.Fatal(err)
	}
	r := h.moveToDone(id)
	if r.State != state.RequestDone || r.Moves[0].Landed != "dc2" {
		t.Fatalf("%s: %s %+v", r.State, r.Reason, r.Moves)
	}
	h.wantAffinity("web", "dc2")
	if n := countStops(h, a.ID); n != 1 {
		t.Errorf("stopped %d times", n)
	}
}

// TestStartsAreStampedAtTheClock: a pass planned for an earlier data time
// stamps what it does at the clock's reading, so a start never predates
// what a follower pass recorded in between.
func TestStartsAreStampedAtTheClock(t *testing.T) {
	ahead := 7 * time.Minute
	var h *harness
	h = newHarness(t, actScenario, actPolicies, func(c *Config) {
		c.Clock = func(context.Context) (time.Time, error) { return h.now().Add(ahead), nil }
	})
	a := h.allocs("web")[0]
	id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Allocation: a.ID, Target: "dc2"})
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		planned := h.now()
		h.run(h.flatForecasts(30))
		if r := h.request(id); r.State == state.RequestRunning || r.State == state.RequestDone {
			if r.Started.Before(planned.Add(ahead)) {
				t.Fatalf("started at %s, before the clock's %s", r.Started, planned.Add(ahead))
			}
			return
		}
		h.step(30 * time.Second)
	}
	t.Fatal("the move never started")
}

// spreadScenario: dc1's one node a-1 holds four web allocations; the
// harness adds two empty nodes b-1 and b-2 to dc1 once they run.
const spreadScenario = `
name      = "spread"
seed      = 3
start     = "2026-01-05T06:00:00Z"
tick      = "10s"
startup   = "5s"
node_boot = "10s"

datacenter "dc1" {
  bandwidth = 100
}

nodes "a" {
  datacenter = "dc1"
  count      = 1
  cpu        = 4000
  memory     = 8192
  iops       = 1000
}

nodes "b" {
  datacenter = "dc1"
  count      = 0
  cpu        = 4000
  memory     = 8192
  iops       = 1000
}

job "web" {
  type        = "service"
  datacenters = ["dc1"]
  group "frontend" {
    count  = 4
    cpu    = 500
    memory = 1024
  }
}
`

const spreadPolicies = `
shaping "dc1" {
  locality {
    datacenter = "dc1"
  }
  migrate {
    max_parallel = 1
    spread       = true
  }
}
`

// TestSpreadTakesItsNodeOutOfScheduling: a spread off a hot node stops
// an allocation and Nomad places the replacement, preferring the node it
// left (job anti-affinity); the coordinator takes the node out of
// scheduling while the spread runs, so the replacement lands on one of
// the nodes with room, and gives the node back once the last spread off it
// is done — unless it was out of scheduling already (an operator's), which
// it leaves as it was.
func TestSpreadTakesItsNodeOutOfScheduling(t *testing.T) {
	for _, tc := range []struct {
		name     string
		operator bool
		// level is dc1's flat CPU forecast, percent of its 12,000 MHz:
		// a-1, which holds all of it, is at three times that.
		level  float64
		spread int // spreads off a-1
	}{
		{name: "one spread", level: 30, spread: 1},
		{name: "already ineligible", operator: true, level: 30, spread: 1},
		{name: "two spreads", level: 40, spread: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, spreadScenario, strings.Replace(spreadPolicies, "max_parallel = 1", fmt.Sprintf("max_parallel = %d", tc.spread), 1))
			hot := h.nodeID("a-")
			if tc.operator {
				if _, err := h.client.Nodes().ToggleEligibility(hot, false, nil); err != nil {
					t.Fatal(err)
				}
			}
			eligibility := func() string {
				n, _, err := h.client.Nodes().Info(hot, nil)
				if err != nil {
					t.Fatal(err)
				}
				return n.SchedulingEligibility
			}
			spreads := func() []state.MigrationRequest {
				var out []state.MigrationRequest
				for _, r := range h.local.FSM.Act().Requests {
					if r.Origin == "planner" && r.Source == "dc1" && r.Target == "dc1" {
						out = append(out, r)
					}
				}
				return out
			}
			h.run(h.flatForecasts(tc.level))
			if got := spreads(); len(got) != tc.spread || got[0].State != state.RequestRunning {
				t.Fatalf("spreads %+v; want %d, the first running", got, tc.spread)
			}
			for range 40 {
				running := false
				for _, r := range spreads() {
					running = running || r.State == state.RequestRunning
				}
				if got := eligibility(); running && got != nomadapi.NodeSchedulingIneligible {
					t.Fatalf("a-1 %s while work spreads off it", got)
				}
				h.run(h.flatForecasts(tc.level))
				h.step(15 * time.Second)
				if err := h.c.Follow(h.ctx, h.now()); err != nil {
					t.Fatal(err)
				}
			}
			for _, r := range spreads() {
				if r.State != state.RequestDone || len(r.Moves) != 1 {
					t.Fatalf("%s %s: %s", r.ID, r.State, r.Reason)
				}
				if m := r.Moves[0]; m.TargetNode == hot || m.Error != "" {
					t.Errorf("%s: replacement landed on %s (%s)", r.ID, m.TargetNode, m.Error)
				}
			}
			want := nomadapi.NodeSchedulingEligible
			if tc.operator {
				want = nomadapi.NodeSchedulingIneligible
			}
			if got := eligibility(); got != want {
				t.Errorf("a-1 %s after the spreads; want %s", got, want)
			}
		})
	}
}

// TestFinishedMoveFreesItsPlaceForThePass: dc1 allows one move at a time;
// the first of two moves ends between passes. The pass after settles it
// before planning, so the second starts in that same pass, not one pass
// later (a capped locality would otherwise start a move every other pass).
func TestFinishedMoveFreesItsPlaceForThePass(t *testing.T) {
	noReserve := strings.Replace(actPolicies, `enabled    = true
    priority   = 10
    lead_time  = "15m"
    ttl        = "1h"
    max_cpu    = 8000
    max_memory = 16384`, `enabled    = false
    lead_time  = "15m"`, 1)
	if noReserve == actPolicies {
		t.Fatal("actPolicies changed: the first policy's reserve block was not replaced")
	}
	h := newHarness(t, actScenario, noReserve)
	var ids []string
	for _, a := range h.allocs("web") {
		id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Allocation: a.ID, Target: "dc2"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if len(ids) != 2 {
		t.Fatalf("requests %v; want two", ids)
	}
	for range 10 {
		h.run(h.flatForecasts(30))
		first, second := h.request(ids[0]), h.request(ids[1])
		if first.State == state.RequestRunning && second.State == state.RequestRunning {
			t.Fatal("two moves run at once under max_parallel 1")
		}
		if first.State == state.RequestDone {
			if second.State != state.RequestRunning && second.State != state.RequestDone {
				t.Fatalf("the pass that settled %s left %s %s: %s", ids[0], ids[1], second.State, second.Reason)
			}
			return
		}
		h.step(time.Minute)
	}
	t.Fatalf("%s never finished", ids[0])
}

// TestWindowIntoAFullQueue: a drain window whose requests the full queue
// refuses records why, once per ten minutes, as a wait naming
// queue.max_requests, instead of a submit decision without a request every
// pass (and a debug line only).
func TestWindowIntoAFullQueue(t *testing.T) {
	h := newHarness(t, actScenario, windowPolicies(""), func(c *Config) { c.MaxQueue = 1 })
	mustApply(t, h, state.SetQueuePaused{Paused: true, At: h.now()})
	a := h.allocs("web")[0]
	held, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Allocation: a.ID, Target: "dc2"})
	if err != nil {
		t.Fatal(err)
	}
	h.passUntil(h.now().Add(40*time.Minute), nil)
	// Once there is room, the window's requests are queued.
	mustApply(t, h, state.CancelRequest{ID: held, At: h.now(), Reason: "make room"})
	h.passUntil(h.now().Add(2*time.Minute), nil)
	queued := 0
	for _, r := range h.local.FSM.Act().Requests {
		if r.Origin == "schedule" {
			queued++
		}
	}
	if queued == 0 {
		t.Error("the window's requests were not queued once the queue had room")
	}
	waits := map[string]int{}
	for _, d := range h.local.FSM.Decisions() {
		switch {
		case d.Kind == "submit" && d.Request == "":
			t.Errorf("a submit decision without a request: %s", d.Reason)
		case d.Kind == "wait" && strings.Contains(d.Reason, "not queued: the migration queue holds queue.max_requests = 1 unfinished requests; it would queue"):
			waits[d.Reason]++
		}
	}
	if len(waits) == 0 {
		t.Fatal("no decision says the window's requests were not queued")
	}
	for reason, n := range waits {
		// 40 passes, one record per ten minutes.
		if n > 5 {
			t.Errorf("%d records of %q; want one per ten minutes", n, reason)
		}
	}
}

// TestPauseLetsRunningMovesFinish: a request running when the queue is
// paused moves the rest of its allocations (the queue starts no new
// request); it stayed running with one of two stopped, its reservation
// expiring meanwhile.
func TestPauseLetsRunningMovesFinish(t *testing.T) {
	h := newHarness(t, actScenario, actPolicies)
	id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Node: h.nodeID("a-"), Target: "dc2"})
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		h.run(h.flatForecasts(30))
		if h.request(id).State == state.RequestRunning {
			break
		}
		h.step(30 * time.Second)
	}
	if r := h.request(id); r.State != state.RequestRunning || len(r.Moves) < 2 {
		t.Fatalf("request %s with %d moves; want it running with two or more", r.State, len(r.Moves))
	}
	mustApply(t, h, state.SetQueuePaused{Paused: true, At: h.now()})
	h.passUntil(h.now().Add(90*time.Minute), nil)
	if r := h.request(id); r.State != state.RequestDone {
		t.Errorf("request %s (%s) 90 minutes after the pause; want it done", r.State, r.Reason)
	}
}

// TestRefusedPlaceholderBacksOff: a placeholder Nomad refuses (the agent's
// token may not register jobs) is tried again after a growing backoff, and
// the request's reason says it was refused and why; a new reservation was
// recorded, registered, refused and released every pass, the request
// saying only that it was reserving.
func TestRefusedPlaceholderBacksOff(t *testing.T) {
	h := newHarness(t, actScenario, actPolicies)
	h.sim.SetACL([]string{"mgmt"}, map[string]sim.Policy{"limited": {
		Capabilities: []string{"read-job", "list-jobs", "alloc-lifecycle", "scale-job", "read-job-scaling"}, Node: "write", Agent: "read", Operator: "read"}})
	h.client.SetSecretID("limited")
	id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Allocation: h.allocs("web")[0].ID, Target: "dc2"})
	if err != nil {
		t.Fatal(err)
	}
	h.passUntil(h.now().Add(60*time.Minute), nil)
	r := h.request(id)
	if !strings.Contains(r.Reason, "placeholder refused") || !strings.Contains(r.Reason, "403") {
		t.Errorf("request %s: %q; want its reason to say the placeholder was refused, with Nomad's answer", r.State, r.Reason)
	}
	placed := 0
	for _, res := range h.local.FSM.Act().Reservations {
		if res.Request == id {
			placed++
		}
	}
	// Tries at 0, 1, 3, 7, 15, 31 minutes (then every 30).
	if placed < 2 || placed > 7 {
		t.Errorf("%d placeholders tried in an hour; want a backoff (about 6)", placed)
	}
	reserves := 0
	for _, d := range h.local.FSM.Decisions() {
		if d.Kind == "reserve" && d.Request == id {
			reserves++
		}
	}
	if reserves > 2*placed {
		t.Errorf("%d reserve decisions for %d placeholders", reserves, placed)
	}
	t.Logf("%d placeholders, %d reserve decisions; %s: %s", placed, reserves, r.State, r.Reason)
}

// TestJobStoppedWhileQueued: an allocation request whose job someone
// stops or purges while it waits is cancelled when it would start, saying
// why, and its reservation is released; it started, timed out three times
// waiting for a replacement that never came, and failed after half an
// hour (stopped) or was reported done (purged).
func TestJobStoppedWhileQueued(t *testing.T) {
	for _, purge := range []bool{false, true} {
		t.Run(fmt.Sprintf("purge=%v", purge), func(t *testing.T) {
			h := newHarness(t, actScenario, actPolicies)
			id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Allocation: h.allocs("web")[0].ID, Target: "dc2"})
			if err != nil {
				t.Fatal(err)
			}
			h.run(h.flatForecasts(30)) // reserves
			if _, _, err := h.client.Jobs().Deregister("web", purge, nil); err != nil {
				t.Fatal(err)
			}
			h.passUntil(h.now().Add(10*time.Minute), nil)
			r := h.request(id)
			want := "job web was stopped since the request was queued"
			if purge {
				want = "job web was purged since the request was queued"
			}
			if r.State != state.RequestCancelled || !strings.Contains(r.Reason, want) || r.Attempts != 0 {
				t.Errorf("request %s after %d attempts: %q; want cancelled: %q", r.State, r.Attempts, r.Reason, want)
			}
			if res, ok := h.local.FSM.Act().ReservationFor(id); ok {
				t.Errorf("reservation %s still %s", res.ID, res.State)
			}
		})
	}
}

// TestJobStoppedWhileRunning: a request whose job someone stops or purges
// after its first allocation was stopped ends at the next pass, saying
// why: a group's request cancelled (nothing of it moved), a node's done
// (the node is empty); its reservation is released and nothing more of
// the job is stopped. It waited for a replacement that never came until
// its settle timeout, used up an attempt and was cancelled on its next
// start as if the job had ended while it was queued (stopped), or was
// reported done, "moved 2 allocations" (purged). A node's request says
// it moved nothing and why: it said "moved 2 allocations … 0 as planned".
func TestJobStoppedWhileRunning(t *testing.T) {
	for _, tc := range []struct {
		name  string
		node  bool
		purge bool
		want  state.RequestState
		why   string
	}{
		{"group stopped", false, false, state.RequestCancelled, "nothing left to move: job web was stopped while the request ran"},
		{"group purged", false, true, state.RequestCancelled, "nothing left to move: job web was purged while the request ran"},
		{"node stopped", true, false, state.RequestDone, "moved nothing in "},
		{"node purged", true, true, state.RequestDone, "; 2 allocations not moved (job web was purged while the request ran, so Nomad places no replacement)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, actScenario, actPolicies)
			sub := Submission{Job: "web", Group: "frontend", Target: "dc2"}
			if tc.node {
				sub = Submission{Node: h.nodeID("a-"), Target: "dc2"}
			}
			id, err := h.c.Submit(h.ctx, h.now(), h.pols, sub)
			if err != nil {
				t.Fatal(err)
			}
			h.run(h.flatForecasts(30)) // reserves
			h.step(30 * time.Second)
			h.run(h.flatForecasts(30)) // starts: the first allocation stops (max_parallel 1)
			r := h.request(id)
			if r.State != state.RequestRunning || len(r.Moves) != 2 || r.Moves[0].Stopped.IsZero() || !r.Moves[1].Stopped.IsZero() {
				t.Fatalf("request %s (%s), moves %+v; want running with its first allocation stopped", r.State, r.Reason, r.Moves)
			}
			if _, _, err := h.client.Jobs().Deregister("web", tc.purge, nil); err != nil {
				t.Fatal(err)
			}
			h.passUntil(h.now().Add(2*time.Minute), nil)
			r = h.request(id)
			if r.State != tc.want || !strings.Contains(r.Reason, tc.why) || r.Attempts != 0 {
				t.Errorf("request %s after %d attempts: %q; want %s: %q", r.State, r.Attempts, r.Reason, tc.want, tc.why)
			}
			if res, ok := h.local.FSM.Act().ReservationFor(id); ok {
				t.Errorf("reservation %s still %s", res.ID, res.State)
			}
			h.passUntil(h.now().Add(time.Hour), nil)
			stops := 0
			for _, c := range h.mutating() {
				if strings.HasSuffix(c, "/stop") {
					stops++
				}
			}
			if r := h.request(id); stops != 1 || r.State != tc.want {
				t.Errorf("request %s (%s) after %d allocation stops; want %s after one", r.State, r.Reason, stops, tc.want)
			}
		})
	}
}

// A target whose nodes the job may run on are all out of scheduling now is
// refused saying so, not that the job's constraints forbid the target.
func TestSubmitTargetOutOfScheduling(t *testing.T) {
	h := newHarness(t, actScenario, actPolicies)
	nodes, _, err := h.client.Nodes().List(nil)
	if err != nil {
		t.Fatal(err)
	}
	var b1 *nomadapi.NodeListStub
	for _, n := range nodes {
		if strings.HasPrefix(n.Name, "b-") {
			b1 = n
			break
		}
	}
	if b1 == nil {
		t.Fatal("no dc2 node")
	}
	// A job that may run on dc1's node and on one node of dc2 only.
	id, typ, prio, cnt, cpu, mem, g := "picky", "service", 50, 1, 200, 256, "p"
	job := &nomadapi.Job{ID: &id, Name: &id, Type: &typ, Priority: &prio, Datacenters: []string{"dc1", "dc2"},
		Constraints: []*nomadapi.Constraint{{LTarget: "${node.unique.name}", RTarget: "^(a-.*|" + b1.Name + ")$", Operand: "regexp"}},
		TaskGroups: []*nomadapi.TaskGroup{{Name: &g, Count: &cnt, Tasks: []*nomadapi.Task{{Name: "t", Driver: "exec",
			Resources: &nomadapi.Resources{CPU: &cpu, MemoryMB: &mem}}}}}}
	if _, _, err := h.client.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	h.step(20 * time.Second)
	alloc := h.allocs("picky")[0].ID
	if _, err := h.client.Nodes().ToggleEligibility(b1.ID, false, nil); err != nil {
		t.Fatal(err)
	}
	_, err = h.c.Submit(h.ctx, h.now(), h.pols, Submission{Allocation: alloc, Target: "dc2"})
	var ie *InvalidError
	if !errors.As(err, &ie) || ie.Field != "target" || !strings.Contains(err.Error(), "every node of dc2 that job picky may run on (1) is out of scheduling now") {
		t.Fatalf("err = %v; want the target's nodes out of scheduling", err)
	}
	if _, err := h.client.Nodes().ToggleEligibility(b1.ID, true, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Allocation: alloc, Target: "dc2"}); err != nil {
		t.Errorf("with the node eligible again: %v", err)
	}
}

// TestReservationCountsUnplacedPlaceholders: a reservation's placeholder
// allocations that Nomad has not placed on a node are counted
// (Reservation.Unplaced, which the API answers as placed rather than
// held): all of them at the registration, none once Nomad runs them, all
// again when both of dc2's nodes go down and Nomad finds no room for
// their replacements (before, the reservation read held throughout: the
// agent did not follow its placeholder's allocations), none once the
// nodes are back and Nomad places them.
func TestReservationCountsUnplacedPlaceholders(t *testing.T) {
	h := newHarness(t, actScenario, actPolicies)
	id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Node: h.nodeID("a-"), Target: "dc2"})
	if err != nil {
		t.Fatal(err)
	}
	h.run(h.flatForecasts(30))
	unplaced := func(when string, want int) {
		t.Helper()
		res, ok := h.local.FSM.Act().ReservationFor(id)
		if !ok || res.State != state.ReservationHeld || res.Unplaced != want {
			t.Fatalf("%s: reservation %s, %d placeholder allocations not placed; want held, %d", when, res.State, res.Unplaced, want)
		}
	}
	unplaced("registered", 2)
	look := func() {
		t.Helper()
		if _, err := h.c.refresh(h.ctx); err != nil {
			t.Fatal(err)
		}
		h.c.notePlacement(h.ctx)
	}
	h.step(30 * time.Second)
	look()
	unplaced("placed", 0)

	var dc2 []string
	nodes, _, err := h.client.Nodes().List(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if n.Datacenter == "dc2" {
			dc2 = append(dc2, n.ID)
		}
	}
	if err := h.sim.SetFaults(sim.Faults{NodesDown: dc2}); err != nil {
		t.Fatal(err)
	}
	h.step(2 * time.Minute)
	look()
	unplaced("dc2 down", 2)

	if err := h.sim.SetFaults(sim.Faults{}); err != nil {
		t.Fatal(err)
	}
	h.step(2 * time.Minute)
	look()
	unplaced("dc2 back", 0)
}
