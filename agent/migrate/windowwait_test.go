package migrate

import (
	"slices"
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/shape"
	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/policies"
)

// cappedWindowPolicies are windowPolicies (dc1's maintenance, a drain of
// a-1 from 06:30 to 07:30 queued 20 minutes ahead) with dc2's
// reserve.max_cpu at 500 MHz, under one move's 1000: the window's two
// moves wait for a reservation from 06:10 until the window is near (06:22,
// "moving without a reservation"), then one at a time (max_parallel 1).
func cappedWindowPolicies() string {
	return strings.Replace(windowPolicies(""), "max_cpu    = 8000", "max_cpu    = 500", 1)
}

// TestWindowWhoseMovesWaitTakesItsNodesOut: the maintenance window's
// requests are queued at 06:10 and wait (reservation caps, then
// max_parallel) until 06:22. Taking the window's nodes out of scheduling
// was its first move's start, so a-1 stayed eligible from 06:10 to 06:22:
// Nomad could place new work on a node about to go down, which then had
// to be moved too. Now a-1 goes out as the requests are queued, at 06:10,
// with a hold decision naming the window, and is given back once, at
// 07:30; the window queues no request that moves nothing (its moves hold
// its nodes). A forecast_only policy's window, planned dry, takes nothing
// out.
func TestWindowWhoseMovesWaitTakesItsNodesOut(t *testing.T) {
	for _, tc := range []struct {
		name, pols string
		want       []string
	}{
		{"moves wait", cappedWindowPolicies(), []string{"06:10–07:30"}},
		{"forecast_only", strings.Replace(cappedWindowPolicies(), "shaping \"dc1\" {\n", "shaping \"dc1\" {\n  forecast_only = true\n", 1), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, actScenario, tc.pols)
			node := h.nodeID("a-")
			spans := h.outSpans(time.Date(2026, 1, 5, 7, 33, 0, 0, time.UTC), node)[node]
			if !slices.Equal(spans, tc.want) {
				t.Errorf("a-1 out of scheduling %q; want %q", spans, tc.want)
			}
			var started []string
			for _, x := range h.local.FSM.Act().Requests {
				if shape.WindowHold(&x) {
					t.Errorf("hold request %s (%s); want none: the window's moves hold its nodes", x.ID, x.Reason)
				}
				if x.Origin == "schedule" && !x.Started.IsZero() {
					started = append(started, x.Started.Format("15:04"))
				}
			}
			if tc.want == nil {
				return
			}
			slices.Sort(started)
			if len(started) == 0 || started[0] != "06:22" {
				t.Fatalf("the window's moves started at %q; the test needs them waiting until 06:22", started)
			}
			var holds, restores []string
			for _, d := range h.local.FSM.Decisions() {
				switch {
				case d.Kind == "hold" && strings.Contains(d.Reason, "node a-1 out of scheduling for drain window dc1/maintenance from 06:30 UTC as its requests are queued"):
					holds = append(holds, d.Time.Format("15:04")+" "+d.Reason)
				case d.Kind == "restore" && strings.Contains(d.Reason, "node a-1 "):
					restores = append(restores, d.Time.Format("15:04")+" "+d.Reason)
				}
			}
			if len(holds) != 1 || !strings.HasPrefix(holds[0], "06:10 ") {
				t.Errorf("hold decisions %q; want one at 06:10", holds)
			}
			if len(restores) != 1 || !strings.HasPrefix(restores[0], "07:30 ") {
				t.Errorf("restores %q; want a-1 given back once, at 07:30", restores)
			}
		})
	}
}

// TestWindowWhoseRequestsCannotBeMadeTakesItsNodesOut: the maintenance
// window's only target, dc2/*/batch, has no node, so none of its requests
// can be made (a request per allocation; with migrate.strategy "drain",
// one for a-1). Such a window queued nothing and took nothing out: a-1
// stayed eligible through its window. Now it queues a request that moves
// nothing, saying why, whose start takes a-1 out at 06:10; a-1's work
// stays where it is, and a-1 is given back once, at 07:30.
func TestWindowWhoseRequestsCannotBeMadeTakesItsNodesOut(t *testing.T) {
	noTarget := strings.Replace(windowPolicies(""), `targets      = ["dc2"]`, `targets      = ["dc2/*/batch"]`, 1)
	for _, tc := range []struct{ name, pols, cause string }{
		{"reschedule", noTarget, "no request could be made for 2 allocations (dc2/*/batch has no ready node)"},
		{"drain", drainStrategy(noTarget), "no request could be made for node a-1 (dc2/*/batch has no ready node)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, actScenario, tc.pols)
			node := h.nodeID("a-")
			spans := h.outSpans(time.Date(2026, 1, 5, 7, 33, 0, 0, time.UTC), node)[node]
			if want := []string{"06:10–07:30"}; !slices.Equal(spans, want) {
				t.Errorf("a-1 out of scheduling %q; want %q", spans, want)
			}
			holds := h.holdRequests()
			if len(holds) != 1 || holds[0].State != state.RequestDone || holds[0].Started.Format("15:04") != "06:10" {
				t.Fatalf("hold requests %+v; want one, done, started 06:10", holds)
			}
			want := "hold the node of dc1 out of scheduling for window maintenance 06:30–07:30: " + tc.cause
			for _, d := range h.local.FSM.Decisions() {
				if d.Kind == "submit" && d.Request == holds[0].ID && d.Reason != "queue a request that moves nothing: "+want {
					t.Errorf("submit decision %q; want %q", d.Reason, "queue a request that moves nothing: "+want)
				}
			}
			for _, x := range h.local.FSM.Act().Requests {
				if x.Origin == "schedule" && !shape.WindowHold(&x) {
					t.Errorf("request %s (%s) queued; the test needs a window whose requests cannot be made", x.ID, x.Resource)
				}
			}
			on := 0
			for _, a := range h.allocs("web") {
				if a.NodeID == node && a.ClientStatus == nomadapi.AllocClientStatusRunning {
					on++
				}
			}
			if on != 2 {
				t.Errorf("%d web allocations run on a-1 after the window; want its 2, left where they were", on)
			}
			var restores []string
			for _, d := range h.local.FSM.Decisions() {
				if d.Kind == "restore" && strings.Contains(d.Reason, "node a-1 ") {
					restores = append(restores, d.Time.Format("15:04")+" "+d.Reason)
				}
			}
			if len(restores) != 1 || !strings.HasPrefix(restores[0], "07:30 ") {
				t.Errorf("restores %q; want a-1 given back once, at 07:30", restores)
			}
		})
	}
}

// TestSpreadEndWaitsForAWindowWhoseMovesWait: a spread cordons a-1 at
// 06:01 and ends at 06:16, while the maintenance window's requests, queued
// at 06:10 (a-1 out already: the spread's, to give back), wait for a
// reservation (until 06:24). The spread's give-back read the window as holding a-1 only once
// a move of it started, so it gave a-1 back at 06:16 and a-1 was eligible
// again until the window took it out itself. Now a window with a request
// queued holds its nodes from its lead time: a-1 stays out until the
// window's end, a hold decision names the window, and the spread gives
// a-1 back once, at 07:30.
func TestSpreadEndWaitsForAWindowWhoseMovesWait(t *testing.T) {
	// The spread holds one of dc1's places while it runs.
	pols := strings.Replace(cappedWindowPolicies(), "max_parallel = 1", "max_parallel = 3", 1)
	h := newHarness(t, actScenario+cacheJob, pols)
	node := h.nodeID("a-")
	s := h.runningSpread(node, true)
	var spans []string
	from := h.now().Format("15:04")
	h.passUntil(time.Date(2026, 1, 5, 6, 15, 0, 0, time.UTC), nil)
	if !h.request(s.ID).State.Queued() && h.request(s.ID).State != state.RequestRunning {
		t.Fatalf("spread %s %s before its end", s.ID, h.request(s.ID).State)
	}
	h.endSpread(s)
	h.passUntil(time.Date(2026, 1, 5, 7, 33, 0, 0, time.UTC), func() {
		out := h.eligibility(node) != nomadapi.NodeSchedulingEligible
		switch {
		case !out && from != "":
			spans = append(spans, from+"–"+h.now().Format("15:04"))
			from = ""
		case out && from == "":
			from = h.now().Format("15:04")
		}
	})
	if len(spans) != 1 || !strings.HasSuffix(spans[0], "–07:30") {
		t.Errorf("a-1 out of scheduling %q (and from %q); want once, from the spread's cordon to the window's end at 07:30", spans, from)
	}
	var started []string
	for _, x := range h.local.FSM.Act().Requests {
		if x.Origin == "schedule" && !x.Started.IsZero() {
			started = append(started, x.Started.Format("15:04"))
		}
	}
	slices.Sort(started)
	if len(started) == 0 || started[0] <= "06:16" {
		t.Fatalf("the window's moves started at %q; the test needs them waiting past the spread's end at 06:16", started)
	}
	var holds, restores []string
	for _, d := range h.local.FSM.Decisions() {
		switch {
		case d.Kind == "hold" && d.Request == s.ID && strings.Contains(d.Reason, "node a-1 stays out of scheduling: drain window dc1/maintenance holds it until 07:30 UTC"):
			holds = append(holds, d.Time.Format("15:04"))
		case d.Kind == "restore" && strings.Contains(d.Reason, "node a-1 "):
			restores = append(restores, d.Time.Format("15:04")+" "+d.Request+" "+d.Reason)
		}
	}
	if len(holds) != 1 || holds[0] != "06:16" {
		t.Errorf("hold decisions naming the window for the spread at %q; want one at 06:16", holds)
	}
	if len(restores) != 1 || !strings.HasPrefix(restores[0], "07:30 "+s.ID+" ") {
		t.Errorf("restores %q; want a-1 given back once, by spread %s at 07:30", restores, s.ID)
	}
}

// TestNewLeaderTakesOutAWaitingWindowsNodes kills a leader that had
// opened the maintenance window's intent taking a-1 out of scheduling as
// its requests were queued, before its call reached Nomad; the requests
// wait (reservation caps). The next leader settles the intent (a-1 found
// eligible: not done) and takes a-1 out at its first pass under the
// intent's redo, not at the window's first move, and gives it back at the
// window's end, once.
func TestNewLeaderTakesOutAWaitingWindowsNodes(t *testing.T) {
	h := newHarness(t, actScenario, cappedWindowPolicies())
	node := h.nodeID("a-")
	mustApply(t, h, state.SetQueuePaused{Paused: true, At: h.now(), By: "test"})
	r := h.windowRequest(func(x state.MigrationRequest) bool { return x.State.Queued() && len(x.Moves) > 0 })
	if got := h.eligibility(node); got != nomadapi.NodeSchedulingEligible {
		t.Fatalf("a-1 %s while the queue is paused; the test needs it eligible", got)
	}
	crashAfter(t, h, state.Intent{ID: intentID(state.IntentNodeEligibility, node, windowKey(r), 0), Kind: state.IntentNodeEligibility,
		Request: r.ID, Object: node, Detail: "ineligible for " + windowKey(r)}, nil)
	mustApply(t, h, state.SetQueuePaused{Paused: false, At: h.now(), By: "test"})
	h.c = newCoordinatorOn(t, h)
	if err := h.c.Begin(h.ctx, h.now()); err != nil {
		t.Fatal(err)
	}
	start := h.now().Format("15:04")
	spans := h.outSpans(time.Date(2026, 1, 5, 7, 33, 0, 0, time.UTC), node)[node]
	if want := []string{start + "–07:30"}; !slices.Equal(spans, want) {
		t.Errorf("a-1 out of scheduling %q; want %q (from the next leader's first pass)", spans, want)
	}
	var started []string
	for _, x := range h.local.FSM.Act().Requests {
		if x.Origin == "schedule" && !x.Started.IsZero() {
			started = append(started, x.Started.Format("15:04"))
		}
	}
	slices.Sort(started)
	if len(started) == 0 || started[0] <= start {
		t.Fatalf("the window's moves started at %q; the test needs them waiting past %s", started, start)
	}
	var restores []string
	for _, d := range h.local.FSM.Decisions() {
		if d.Kind == "restore" && strings.Contains(d.Reason, "node a-1 ") {
			restores = append(restores, d.Time.Format("15:04")+" "+d.Reason)
		}
	}
	if len(restores) != 1 || !strings.HasPrefix(restores[0], "07:30 ") {
		t.Errorf("restores %q; want a-1 given back once, at 07:30", restores)
	}
}

// TestWaitingWindowOfARemovedScheduleGivesItsNodesBack: the maintenance
// window's requests wait (reservation caps) and a-1 is out of scheduling
// from 06:10, as they were queued; at 06:15 a reload takes the schedule
// out of the policy. Its requests are cancelled and a-1 goes back to
// scheduling at once, not at the window's old start or end: the window
// no longer comes.
func TestWaitingWindowOfARemovedScheduleGivesItsNodesBack(t *testing.T) {
	h := newHarness(t, actScenario, cappedWindowPolicies())
	node := h.nodeID("a-")
	h.passUntil(time.Date(2026, 1, 5, 6, 14, 0, 0, time.UTC), nil)
	if got := h.eligibility(node); got != nomadapi.NodeSchedulingIneligible {
		t.Fatalf("a-1 %s at %s while the window's requests wait; the test needs it out", got, h.now().Format("15:04"))
	}
	ps, diags := policies.Parse("act.hcl", []byte(strings.Replace(actPolicies, "max_cpu    = 8000", "max_cpu    = 500", 1)))
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	h.pols = ps
	reload := h.now().Format("15:04")
	var out []string // the passes that found a-1 out of scheduling
	h.passUntil(time.Date(2026, 1, 5, 7, 33, 0, 0, time.UTC), func() {
		if h.eligibility(node) != nomadapi.NodeSchedulingEligible && len(out) < 5 {
			out = append(out, h.now().Format("15:04"))
		}
	})
	if len(out) > 0 {
		t.Errorf("a-1 out of scheduling at %q after the reload at %s; want it given back at its first pass", out, reload)
	}
	for _, x := range h.local.FSM.Act().Requests {
		if x.Origin == "schedule" && x.State != state.RequestCancelled {
			t.Errorf("%s %s: %s; want cancelled", x.ID, x.State, x.Reason)
		}
	}
}

// TestWindowWhoseMovesWaitSaysItsNodesOnce: dc1 has two nodes; the
// maintenance window's requests, queued at 06:10, wait, and both nodes go
// out of scheduling then, said in one hold decision naming both, not one
// per node (a rack's would crowd the decision log).
func TestWindowWhoseMovesWaitSaysItsNodesOnce(t *testing.T) {
	scenario := strings.Replace(actScenario, "  datacenter = \"dc1\"\n  count      = 1\n", "  datacenter = \"dc1\"\n  count      = 2\n", 1)
	h := newHarness(t, scenario, cappedWindowPolicies())
	a1, a2 := h.nodeID("a-1"), h.nodeID("a-2")
	spans := h.outSpans(time.Date(2026, 1, 5, 6, 20, 0, 0, time.UTC), a1, a2)
	if want := []string{"06:10–"}; !slices.Equal(spans[a1], want) || !slices.Equal(spans[a2], want) {
		t.Errorf("a-1 out of scheduling %q, a-2 %q; want %q", spans[a1], spans[a2], want)
	}
	var holds []string
	for _, d := range h.local.FSM.Decisions() {
		if d.Kind == "hold" {
			holds = append(holds, d.Time.Format("15:04")+" "+d.Reason)
		}
	}
	if len(holds) != 1 || !strings.HasPrefix(holds[0], "06:10 nodes a-1, a-2 out of scheduling for drain window dc1/maintenance from 06:30 UTC as its requests are queued") &&
		!strings.HasPrefix(holds[0], "06:10 nodes a-2, a-1 out of scheduling for drain window dc1/maintenance from 06:30 UTC as its requests are queued") {
		t.Errorf("hold decisions %q; want one at 06:10 naming a-1 and a-2", holds)
	}
}
