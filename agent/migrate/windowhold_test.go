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

// sharedWindowPolicies are windowPolicies (dc1's maintenance, a drain of
// dc1 from 06:30 to 07:30 queued 20 minutes ahead) with a second drain
// window in policy dc2 of dc1/*/web, which holds dc1's one node, a-1,
// from 07:00 to 08:00 (queued 15 minutes ahead, dc2's reserve.lead_time):
// two policies draining shared nodes in windows that overlap, the later
// one ending last. The policies load (preflight warns of it).
func sharedWindowPolicies() string {
	return strings.Replace(windowPolicies(""), `shaping "dc2" {
  locality {
    datacenter = "dc2"
  }
`, `shaping "dc2" {
  locality {
    datacenter = "dc2"
  }
  schedule "web-maint" {
    cron       = "0 7 * * *"
    duration   = "1h"
    action     = "drain"
    localities = ["dc1/*/web"]
  }
`, 1)
}

// TestWindowOfAnotherPolicyHoldsSharedNodes: dc1's maintenance window
// moves a-1's allocations out and takes a-1 out of scheduling; dc2's
// web-maint window, which takes a-1 down from 07:00 to 08:00, queues no
// request that moves work (the planner moves each allocation once: by the
// time its lead time opens a-1's allocations are moved, or queued by
// dc1's window), only one that moves nothing and finds a-1 out already
// (dc1's, to give back). When
// dc1's window ended at 07:30 its give-back read only other requests'
// windows and made a-1 eligible while web-maint ran until 08:00: Nomad
// could place work on a node going down. Now a-1 stays out of scheduling
// until 08:00, a hold decision names web-maint and its end, and a-1 is
// given back once, after 08:00.
func TestWindowOfAnotherPolicyHoldsSharedNodes(t *testing.T) {
	h := newHarness(t, actScenario, sharedWindowPolicies())
	node := h.nodeID("a-")
	r := h.windowRequest(func(x state.MigrationRequest) bool {
		return strings.HasPrefix(x.OriginKey, "schedule/dc1/maintenance/")
	})
	start, end := r.Deadline, h.windowEnd(r)
	later := time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)
	if !start.Equal(time.Date(2026, 1, 5, 6, 30, 0, 0, time.UTC)) || !end.Before(later) {
		t.Fatalf("dc1's window %s to %s; the test wants it from 06:30, ending before 08:00", start, end)
	}
	var backAt []time.Time
	h.passUntil(later.Add(3*time.Minute), func() {
		if h.eligibility(node) == nomadapi.NodeSchedulingEligible && !h.now().Before(start) && len(backAt) < 5 {
			backAt = append(backAt, h.now())
		}
	})
	for _, x := range h.local.FSM.Act().Requests {
		if strings.HasPrefix(x.OriginKey, "schedule/dc2/web-maint/") && !shape.WindowHold(&x) {
			t.Fatalf("web-maint queued request %s (%s); the test needs a window that moves nothing", x.ID, x.OriginKey)
		}
	}
	if len(backAt) == 0 || backAt[0].Before(later) {
		t.Errorf("a-1 eligible at %v; want out of scheduling from 06:30 until web-maint's end at 08:00, then eligible (dc1's window ended at %s)",
			backAt, end.Format("15:04"))
	}
	var restores, holds []string
	for _, d := range h.local.FSM.Decisions() {
		switch {
		case d.Kind == "restore" && strings.Contains(d.Reason, "node a-1 "):
			restores = append(restores, d.Time.Format("15:04:05")+" "+d.Reason)
			if d.Time.Before(later) {
				t.Errorf("a-1 given back at %s, before web-maint's end at 08:00: %s", d.Time.Format("15:04:05"), d.Reason)
			}
		case d.Kind == "hold" && strings.Contains(d.Reason, "node a-1 stays out of scheduling: drain window dc2/web-maint holds it until 08:00 UTC"):
			holds = append(holds, d.Time.Format("15:04:05")+" "+d.Reason)
		}
	}
	if len(restores) != 1 {
		t.Errorf("a-1 given back %d times, want once: %q", len(restores), restores)
	}
	if len(holds) != 1 {
		t.Errorf("%d hold decisions naming web-maint for a-1, want one at dc1's window's end: %q", len(holds), holds)
	}
	t.Logf("restores %q, holds %q", restores, holds)
}

// TestSpreadEndWaitsForAWindowWithoutRequests: a spread cordoned c-1, an
// empty node of dc1, and ends while policy dc2's c-maint window, a drain
// of dc1's nodes c-* from 06:00 to 07:00, runs: c-1 holds nothing to
// move, so the window queued no request that moves work (only one that
// moves nothing, which found c-1 out already). The spread's give-back waits
// for the window's end (before: it came at once, in the middle of the
// window), a hold decision names the window, and c-1 is given back once,
// by the spread, after 07:00.
func TestSpreadEndWaitsForAWindowWithoutRequests(t *testing.T) {
	scenario := strings.Replace(actScenario+cacheJob, `nodes "b" {`, `nodes "c" {
  datacenter = "dc1"
  count      = 0
  node_class = "web"
  cpu        = 4000
  memory     = 8192
  iops       = 1000
}

nodes "b" {`, 1)
	pols := strings.Replace(actPolicies, `shaping "dc2" {
  locality {
    datacenter = "dc2"
  }
`, `shaping "dc2" {
  locality {
    datacenter = "dc2"
  }
  schedule "c-maint" {
    cron       = "0 6 * * *"
    duration   = "1h"
    action     = "drain"
    localities = ["dc1"]
    nodes      = "c-*"
  }
`, 1)
	h := newHarness(t, scenario, pols)
	if _, err := h.sim.AddNodes("c", 1); err != nil {
		t.Fatal(err)
	}
	h.step(30 * time.Second)
	node := h.nodeID("c-")
	s := h.runningSpread(node, true)
	h.passUntil(h.now().Add(5*time.Minute), nil)
	h.endSpread(s)
	end := time.Date(2026, 1, 5, 7, 0, 0, 0, time.UTC)
	var backAt []time.Time
	h.passUntil(end.Add(3*time.Minute), func() {
		if h.eligibility(node) == nomadapi.NodeSchedulingEligible && len(backAt) < 5 {
			backAt = append(backAt, h.now())
		}
	})
	for _, x := range h.local.FSM.Act().Requests {
		if x.Origin == "schedule" && !shape.WindowHold(&x) {
			t.Fatalf("c-maint queued request %s (%s); the test needs a window that moves nothing", x.ID, x.OriginKey)
		}
	}
	if len(backAt) == 0 || backAt[0].Before(end) {
		t.Errorf("c-1 eligible at %v after spread %s ended; want out of scheduling until c-maint's end at 07:00, then eligible", backAt, s.ID)
	}
	var restores, holds []string
	for _, d := range h.local.FSM.Decisions() {
		switch {
		case d.Kind == "restore" && strings.Contains(d.Reason, "node c-1 "):
			restores = append(restores, d.Time.Format("15:04:05")+" "+d.Request+" "+d.Reason)
		case d.Kind == "hold" && d.Request == s.ID && strings.Contains(d.Reason, "node c-1 stays out of scheduling: drain window dc2/c-maint holds it until 07:00 UTC"):
			holds = append(holds, d.Time.Format("15:04:05")+" "+d.Reason)
		}
	}
	if len(restores) != 1 || !strings.Contains(restores[0], " "+s.ID+" ") {
		t.Errorf("c-1 given back %q; want once, by spread %s", restores, s.ID)
	}
	if len(holds) != 1 {
		t.Errorf("%d hold decisions naming c-maint for c-1, want one: %q", len(holds), holds)
	}
	t.Logf("restores %q, holds %q", restores, holds)
}

// outSpans runs passes a minute apart until until and returns, for each
// of nodes, the spans it was out of scheduling (from the first pass that
// saw it ineligible to the first that saw it eligible again), as
// "15:04–15:04".
func (h *harness) outSpans(until time.Time, nodes ...string) map[string][]string {
	h.t.Helper()
	spans := map[string][]string{}
	from := map[string]time.Time{}
	h.passUntil(until, func() {
		for _, n := range nodes {
			out := h.eligibility(n) != nomadapi.NodeSchedulingEligible
			switch {
			case out && from[n].IsZero():
				from[n] = h.now()
			case !out && !from[n].IsZero():
				spans[n] = append(spans[n], from[n].Format("15:04")+"–"+h.now().Format("15:04"))
				from[n] = time.Time{}
			}
		}
	})
	for _, n := range nodes {
		if !from[n].IsZero() {
			spans[n] = append(spans[n], from[n].Format("15:04")+"–")
		}
	}
	return spans
}

// holdRequests are the drain windows' hold requests in the state.
func (h *harness) holdRequests() []state.MigrationRequest {
	var out []state.MigrationRequest
	for _, x := range h.local.FSM.Act().Requests {
		if shape.WindowHold(&x) {
			out = append(out, x)
		}
	}
	return out
}

// emptyWindowPolicies are actPolicies with policy dc2's b-maint window, a
// drain of dc2 (two empty nodes) from 07:00 to 08:00, queued 15 minutes
// ahead (dc2's reserve.lead_time).
func emptyWindowPolicies() string {
	return strings.Replace(actPolicies, `shaping "dc2" {
  locality {
    datacenter = "dc2"
  }
`, `shaping "dc2" {
  locality {
    datacenter = "dc2"
  }
  schedule "b-maint" {
    cron       = "0 7 * * *"
    duration   = "1h"
    action     = "drain"
    localities = ["dc2"]
  }
`, 1)
}

// TestWindowOfEmptyNodesTakesThemOut: policy dc2's b-maint window drains
// dc2 from 07:00 to 08:00 (queued 15 minutes ahead, dc2's lead time); its
// two nodes hold nothing, so the window queued no request, and taking
// nodes out of scheduling was a request's start: they stayed eligible
// through the window, and Nomad could place new work on nodes going down.
// Now the window queues one request that moves nothing, whose start at
// 06:45 takes both out; it is done at once, and both are given back at
// 08:00, once each.
func TestWindowOfEmptyNodesTakesThemOut(t *testing.T) {
	h := newHarness(t, actScenario, emptyWindowPolicies())
	b1, b2 := h.nodeID("b-1"), h.nodeID("b-2")
	spans := h.outSpans(time.Date(2026, 1, 5, 8, 3, 0, 0, time.UTC), b1, b2)
	spans1, spans2 := spans[b1], spans[b2]
	want := []string{"06:45–08:00"}
	if !slices.Equal(spans1, want) || !slices.Equal(spans2, want) {
		t.Errorf("b-1 out of scheduling %q, b-2 %q; want %q (b-maint's lead time to its end)", spans1, spans2, want)
	}
	holds := h.holdRequests()
	if len(holds) != 1 || holds[0].State != state.RequestDone || len(holds[0].Moves) != 0 ||
		holds[0].Started.Format("15:04") != "06:45" || len(holds[0].Exclude) != 2 {
		t.Fatalf("hold requests %+v; want one, done, started 06:45, moving nothing, listing both nodes", holds)
	}
	for _, x := range h.local.FSM.Act().Requests {
		if x.Origin == "schedule" && !shape.WindowHold(&x) {
			t.Errorf("b-maint queued request %s (%s); the test needs a window with nothing to move", x.ID, x.OriginKey)
		}
	}
	var submit, restores []string
	for _, d := range h.local.FSM.Decisions() {
		switch {
		case d.Kind == "submit" && d.Request == holds[0].ID:
			submit = append(submit, d.Reason)
		case d.Kind == "restore" && (strings.Contains(d.Reason, "node b-1 ") || strings.Contains(d.Reason, "node b-2 ")):
			restores = append(restores, d.Time.Format("15:04")+" "+d.Request+" "+d.Reason)
		}
	}
	wantSubmit := "queue a request that moves nothing: hold the 2 nodes of dc2 out of scheduling for window b-maint 07:00–08:00: nothing to move"
	if len(submit) != 1 || submit[0] != wantSubmit {
		t.Errorf("submit decisions %q; want %q", submit, wantSubmit)
	}
	if len(restores) != 2 {
		t.Errorf("restores %q; want b-1 and b-2 given back once each at 08:00", restores)
	}
	t.Logf("hold %s: %s; restores %q", holds[0].ID, holds[0].Reason, restores)
}

// TestBackToBackWindowHoldsNodesTheFirstEmptied: dc1's maintenance window
// (06:30–07:30) moves a-1's work out and takes a-1 out of scheduling; the
// same policy's next window, late-maint (07:45–08:45, queued 20 minutes
// ahead), finds a-1 empty and queued no request, so at 07:30 maintenance
// gave a-1 back and nothing took it out again: Nomad could place work on
// it through late-maint. Now late-maint queues a request that moves
// nothing at 07:25 (a-1 already out: it takes nothing out itself), and
// maintenance's give-back waits for late-maint's end, with a hold
// decision naming it; a-1 is given back once, at 08:45.
func TestBackToBackWindowHoldsNodesTheFirstEmptied(t *testing.T) {
	pols := strings.Replace(windowPolicies(""), `  schedule "maintenance" {`, `  schedule "late-maint" {
    cron       = "45 7 * * *"
    duration   = "1h"
    action     = "drain"
    localities = ["dc1"]
  }
  schedule "maintenance" {`, 1)
	h := newHarness(t, actScenario, pols)
	node := h.nodeID("a-")
	spans := h.outSpans(time.Date(2026, 1, 5, 8, 48, 0, 0, time.UTC), node)[node]
	if len(spans) != 1 || !strings.HasPrefix(spans[0], "06:") || !strings.HasSuffix(spans[0], "–08:45") {
		t.Errorf("a-1 out of scheduling %q; want once, from maintenance's first move to late-maint's end at 08:45", spans)
	}
	holds := h.holdRequests()
	if len(holds) != 1 || !strings.HasPrefix(holds[0].OriginKey, "schedule/dc1/late-maint/") || holds[0].State != state.RequestDone {
		t.Fatalf("hold requests %+v; want late-maint's, done", holds)
	}
	var restores, said []string
	for _, d := range h.local.FSM.Decisions() {
		switch {
		case d.Kind == "restore" && strings.Contains(d.Reason, "node a-1 "):
			restores = append(restores, d.Time.Format("15:04")+" "+d.Reason)
		case d.Kind == "hold" && strings.Contains(d.Reason, "node a-1 stays out of scheduling: drain window dc1/late-maint holds it until 08:45 UTC"):
			said = append(said, d.Time.Format("15:04")+" "+d.Reason)
		}
	}
	if len(restores) != 1 || !strings.HasPrefix(restores[0], "08:45 ") {
		t.Errorf("a-1 given back %q; want once, at 08:45", restores)
	}
	if len(said) != 1 || !strings.HasPrefix(said[0], "07:30 ") {
		t.Errorf("hold decisions naming late-maint %q; want one at 07:30", said)
	}
	t.Logf("spans %q, restores %q, holds %q", spans, restores, said)
}

// TestWindowOfEmptyNodesLeavesAnOperatorsCordon: b-2 was taken out of
// scheduling by an operator before b-maint's lead time: the window's
// request that moves nothing takes out b-1 only, and its end gives back
// b-1 only; b-2 stays as the operator left it.
func TestWindowOfEmptyNodesLeavesAnOperatorsCordon(t *testing.T) {
	h := newHarness(t, actScenario, emptyWindowPolicies())
	b1, b2 := h.nodeID("b-1"), h.nodeID("b-2")
	if _, err := h.client.Nodes().ToggleEligibility(b2, false, nil); err != nil {
		t.Fatal(err)
	}
	spans := h.outSpans(time.Date(2026, 1, 5, 8, 3, 0, 0, time.UTC), b1)[b1]
	if want := []string{"06:45–08:00"}; !slices.Equal(spans, want) {
		t.Errorf("b-1 out of scheduling %q; want %q", spans, want)
	}
	if e := h.eligibility(b2); e != nomadapi.NodeSchedulingIneligible {
		t.Errorf("b-2 %s after b-maint's end; want ineligible, as the operator left it", e)
	}
	for _, d := range h.local.FSM.Decisions() {
		if d.Kind == "restore" && strings.Contains(d.Reason, "node b-2 ") {
			t.Errorf("b-2, the operator's cordon, given back: %s", d.Reason)
		}
	}
	if holds := h.holdRequests(); len(holds) != 1 || holds[0].State != state.RequestDone {
		t.Errorf("hold requests %+v; want one, done", holds)
	}
}

// TestWindowOfEmptyNodesOfAForecastOnlyPolicy: a forecast_only policy's
// window that moves nothing takes nothing out of scheduling either.
func TestWindowOfEmptyNodesOfAForecastOnlyPolicy(t *testing.T) {
	pols := strings.Replace(emptyWindowPolicies(), "shaping \"dc2\" {\n", "shaping \"dc2\" {\n  forecast_only = true\n", 1)
	h := newHarness(t, actScenario, pols)
	b1, b2 := h.nodeID("b-1"), h.nodeID("b-2")
	var out []string
	h.passUntil(time.Date(2026, 1, 5, 8, 3, 0, 0, time.UTC), func() {
		for _, n := range []string{b1, b2} {
			if h.eligibility(n) != nomadapi.NodeSchedulingEligible && len(out) < 3 {
				out = append(out, h.now().Format("15:04")+" "+n)
			}
		}
	})
	if len(out) > 0 {
		t.Errorf("a forecast_only policy's window took nodes out of scheduling: %q", out)
	}
	for _, x := range h.holdRequests() {
		if x.State != state.RequestPending {
			t.Errorf("hold request %s %s; want it planned dry, never started", x.ID, x.State)
		}
	}
}

// TestNewLeaderFinishesAWindowsHold kills a leader that had marked
// b-maint's request that moves nothing running and opened the window's
// intent taking b-1 out of scheduling, its call made (b-1 is out) but its
// answer never seen, before it took out b-2. The next leader settles the
// intent (b-1 found out) and takes b-2 out, the request done; the window's
// end gives back what foreshape saw itself take out: b-2, at 08:00. b-1,
// whose cordon the next leader only found in effect, stays out, as for
// any window's node (an operator may have cordoned it in between).
func TestNewLeaderFinishesAWindowsHold(t *testing.T) {
	h := newHarness(t, actScenario, emptyWindowPolicies())
	b1, b2 := h.nodeID("b-1"), h.nodeID("b-2")
	mustApply(t, h, state.SetQueuePaused{Paused: true, At: h.now(), By: "test"})
	h.step(time.Date(2026, 1, 5, 6, 40, 0, 0, time.UTC).Sub(h.now()))
	r := h.windowRequest(func(x state.MigrationRequest) bool { return shape.WindowHold(&x) })
	v := r.Version
	r.State, r.Started = state.RequestRunning, h.now()
	mustApply(t, h, state.UpdateRequest{Request: r, IfVersion: v})
	crashAfter(t, h, state.Intent{ID: intentID(state.IntentNodeEligibility, b1, windowKey(r), 0), Kind: state.IntentNodeEligibility,
		Request: r.ID, Object: b1, Detail: "ineligible for " + windowKey(r)}, func() {
		if _, err := h.client.Nodes().ToggleEligibility(b1, false, nil); err != nil {
			t.Fatal(err)
		}
	})
	mustApply(t, h, state.SetQueuePaused{Paused: false, At: h.now(), By: "test"})
	h.c = newCoordinatorOn(t, h)
	if err := h.c.Begin(h.ctx, h.now()); err != nil {
		t.Fatal(err)
	}
	start := h.now().Format("15:04")
	spans := h.outSpans(time.Date(2026, 1, 5, 8, 3, 0, 0, time.UTC), b1, b2)
	if want := []string{start + "–08:00"}; !slices.Equal(spans[b2], want) {
		t.Errorf("b-2 out of scheduling %q; want %q", spans[b2], want)
	}
	if want := []string{start + "–"}; !slices.Equal(spans[b1], want) {
		t.Errorf("b-1 out of scheduling %q; want %q (found out by the next leader: not given back)", spans[b1], want)
	}
	if x, _ := h.local.FSM.Request(r.ID); x.State != state.RequestDone {
		t.Errorf("%s %s (%s); want done", x.ID, x.State, x.Reason)
	}
}

// TestWindowHoldOfAMovedScheduleHoldsNothing: late-maint's request that
// moves nothing is done at 07:25, a-1 out already (maintenance's); at
// 07:28 a reload moves late-maint to the evening, or takes it out: its
// 07:45 window no longer comes. Maintenance's give-back at 07:30 waited
// for that window anyway, to 08:45 (cron moved: the window's end read
// from the schedule still loaded) or 07:45 (removed: its start), with a
// hold decision naming a window that never came; a-1 stood out of
// scheduling for nothing. Now a window a reload took away holds no
// other's node once none of its moves runs, as it holds none of its own
// (owedBack): a-1 is given back at 07:30.
func TestWindowHoldOfAMovedScheduleHoldsNothing(t *testing.T) {
	backToBack := strings.Replace(windowPolicies(""), `  schedule "maintenance" {`, `  schedule "late-maint" {
    cron       = "45 7 * * *"
    duration   = "1h"
    action     = "drain"
    localities = ["dc1"]
  }
  schedule "maintenance" {`, 1)
	for _, tc := range []struct{ name, pols string }{
		{"cron moved", strings.Replace(backToBack, `cron       = "45 7 * * *"`, `cron       = "45 19 * * *"`, 1)},
		{"schedule removed", windowPolicies("")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, actScenario, backToBack)
			node := h.nodeID("a-")
			h.passUntil(time.Date(2026, 1, 5, 7, 27, 0, 0, time.UTC), nil)
			if holds := h.holdRequests(); len(holds) != 1 || holds[0].State != state.RequestDone {
				t.Fatalf("hold requests %+v; the test needs late-maint's, done", holds)
			}
			ps, diags := policies.Parse("act.hcl", []byte(tc.pols))
			if diags.HasErrors() {
				t.Fatal(diags.Error())
			}
			h.pols = ps
			var backAt []string
			h.passUntil(time.Date(2026, 1, 5, 8, 48, 0, 0, time.UTC), func() {
				if len(backAt) == 0 && h.eligibility(node) == nomadapi.NodeSchedulingEligible {
					backAt = append(backAt, h.now().Format("15:04"))
				}
			})
			if len(backAt) == 0 || backAt[0] != "07:30" {
				t.Errorf("a-1 back in scheduling at %q; want 07:30, maintenance's end: late-maint no longer comes", backAt)
			}
			for _, d := range h.local.FSM.Decisions() {
				if d.Kind == "hold" && strings.Contains(d.Reason, "late-maint") {
					t.Errorf("hold decision naming late-maint, whose window no longer comes: %s %s", d.Time.Format("15:04"), d.Reason)
				}
			}
		})
	}
}

// TestForecastOnlyWindowHoldLeavesItsNodesToOtherDrains: policy dc2 is
// forecast_only, and its b-maint window (07:00–08:00) has nothing to
// move; policy dc1 drains dc2 from 09:00 with migrate.strategy "drain",
// a request per node, to its default target (no migrate.targets: dc2, a
// locality the work leaves, may not take it). b-maint's request that moves nothing was queued
// dry at 06:45, of b-2, and stayed pending for good (a dry request's
// cancel at its window's end is dry too): dc1's window found b-2 queued
// already and queued a request for b-1 only, so b-2 was never drained.
// Now a dry window queues no such request, only says what it would do,
// and dc1's window queues both nodes.
func TestForecastOnlyWindowHoldLeavesItsNodesToOtherDrains(t *testing.T) {
	pols := strings.Replace(emptyWindowPolicies(), "shaping \"dc2\" {\n", "shaping \"dc2\" {\n  forecast_only = true\n", 1)
	pols = drainStrategy(strings.Replace(pols, `    targets      = ["dc2"]
  }`, `  }
  schedule "dc2-drain" {
    cron       = "0 9 * * *"
    duration   = "1h"
    action     = "drain"
    localities = ["dc2"]
  }`, 1))
	h := newHarness(t, actScenario, pols)
	h.passUntil(time.Date(2026, 1, 5, 8, 45, 0, 0, time.UTC), nil)
	var drained []string
	for _, x := range h.local.FSM.Act().Requests {
		switch {
		case shape.WindowHold(&x):
			t.Errorf("forecast_only b-maint queued %s (%s, %s of %s); want none", x.ID, x.OriginKey, x.State, x.Resource)
		case strings.HasPrefix(x.OriginKey, "schedule/dc1/dc2-drain/"):
			drained = append(drained, x.Resource.Name)
		}
	}
	slices.Sort(drained)
	if want := []string{"b-1", "b-2"}; !slices.Equal(drained, want) {
		t.Errorf("dc1's dc2-drain queued requests for %q; want %q", drained, want)
	}
	var said []string
	for _, d := range h.local.FSM.Decisions() {
		if d.DryRun && d.Policy == "dc2" && strings.HasPrefix(d.Reason, "would queue a request that moves nothing: hold the 2 nodes of dc2 out of scheduling for window b-maint 07:00–08:00") {
			said = append(said, d.Time.Format("15:04"))
		}
	}
	if len(said) == 0 || said[0] != "06:45" {
		t.Errorf("dry decisions saying b-maint would hold its nodes at %q; want from 06:45", said)
	}
}

// TestForecastOnlyWindowsRequestsEndWithTheirWindow: under forecast_only
// a drain window's requests are queued dry (never started) and, once the
// window is over, cancelled as any request queued through its window is:
// the next day's window queues its own for the same allocations. The dry
// cancel was skipped, so the first day's requests stayed pending for good:
// the next day's window found every allocation taken and queued none, and
// the queue filled up with them over the days (queue.max_requests).
func TestForecastOnlyWindowsRequestsEndWithTheirWindow(t *testing.T) {
	h := newHarness(t, actScenario, windowPolicies(""), func(c *Config) { c.ForecastOnly = true })
	first := h.windowRequest(func(x state.MigrationRequest) bool {
		return strings.HasPrefix(x.OriginKey, "schedule/dc1/maintenance/")
	})
	h.passUntil(h.windowEnd(first).Add(3*time.Minute), nil)
	day1 := map[string]bool{}
	for _, x := range h.local.FSM.Act().Requests {
		if x.Origin == "schedule" {
			day1[x.ID] = true
			if !x.State.Terminal() {
				t.Errorf("day 1's dry request %s (%s) is %s after its window; want it ended", x.ID, x.Resource, x.State)
			}
		}
	}
	h.step(first.Deadline.Add(24*time.Hour - 21*time.Minute).Sub(h.now()))
	h.passUntil(first.Deadline.Add(24*time.Hour-5*time.Minute), nil)
	var day2 int
	for _, x := range h.local.FSM.Act().Requests {
		if x.Origin == "schedule" && !day1[x.ID] && x.State.Queued() {
			day2++
		}
	}
	if day2 != len(day1) {
		t.Errorf("day 2's window queued %d dry requests; want %d, as day 1's", day2, len(day1))
	}
}
