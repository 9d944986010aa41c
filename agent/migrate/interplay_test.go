package migrate

import (
	"fmt"
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/state"
)

// runningSpread queues a spread off node in dc1 and marks it running, as
// a leader does when it starts one. Its one move stands for an allocation
// stopped and not yet replaced, so the spread neither settles nor times
// out (its estimate is two hours) until the test ends it (endSpread): the
// allocation is one of the cache job's, which nothing else moves. When
// cordon, the leader takes node out of scheduling for it and sees the call
// answered, as cordon does for an eligible node; without, it took nothing
// out (cordon leaves a node already out of scheduling as it is).
func (h *harness) runningSpread(node string, cordon bool) state.MigrationRequest {
	h.t.Helper()
	r := h.runningCacheMove(func(a *nomadapi.AllocationListStub) (state.MigrationRequest, string) {
		return state.MigrationRequest{
			Source: "dc1", Target: "dc1", Policy: "dc1", Strategy: "reschedule", Origin: "planner",
			OriginKey: fmt.Sprintf("spread/dc1/%d/%s", h.now().Unix(), a.ID), Created: h.now(), Exclude: []string{node},
		}, node
	})
	if cordon {
		if got := h.eligibility(node); got != nomadapi.NodeSchedulingEligible {
			h.t.Fatalf("%s %s before the spread's cordon", node, got)
		}
		if err := h.c.takeOut(h.ctx, h.now(), node, r, spreadCordon+" (was eligible)", 0); err != nil {
			h.t.Fatal(err)
		}
	}
	return r
}

// cacheJob runs one cache allocation in dc2, which no test moves: a
// running spread's move stands for it (runningSpread).
const cacheJob = `
job "cache" {
  type        = "service"
  priority    = 50
  datacenters = ["dc2"]

  group "redis" {
    count  = 1
    cpu    = 500
    memory = 512
  }
}
`

// endSpread marks a running spread done, as its follower does once its
// moves have landed.
func (h *harness) endSpread(r state.MigrationRequest) {
	h.t.Helper()
	r = h.request(r.ID)
	v := r.Version
	r.Moves[0].Done, r.Moves[0].Running = true, h.now()
	r.State, r.Finished, r.Reason = state.RequestDone, h.now(), "test: the spread is done"
	mustApply(h.t, h, state.UpdateRequest{Request: r, IfVersion: v})
}

// TestSpreadAndWindowShareANode: a spread (its node cordoned while work
// spreads off it) and a drain window (a maintenance drain of the same
// node, by rescheduling or by a Nomad drain) hold one node at once, in
// either order. The node goes back to scheduling only once nothing
// foreshape runs holds it: not when the spread ends while the window
// still runs (before: restoreSpreads gave it back at once, or once the
// window's drain was complete), not when the window ends while the
// spread still runs (before: restoreWindows gave it back). Both holds are
// foreshape's, so once both have ended the node is eligible again, and no
// decision calls the spread's cordon an operator's.
func TestSpreadAndWindowShareANode(t *testing.T) {
	for _, strategy := range []string{"reschedule", "drain"} {
		for _, spreadFirst := range []bool{true, false} {
			name := strategy + "/window first"
			if spreadFirst {
				name = strategy + "/spread first"
			}
			t.Run(name, func(t *testing.T) {
				pols := windowPolicies("")
				if strategy == "drain" {
					pols = drainStrategy(pols)
				}
				// The spread holds one of dc1's places for its two hours.
				pols = strings.Replace(pols, "max_parallel = 1", "max_parallel = 3", 1)
				h := newHarness(t, actScenario+cacheJob, pols)
				node := h.nodeID("a-")
				var s state.MigrationRequest
				if spreadFirst {
					// The spread cordons a-1 before the window queues
					// its moves (they start before the window does).
					s = h.runningSpread(node, true)
				}
				w := h.windowRequest(func(state.MigrationRequest) bool { return true })
				if w.Strategy != strategy {
					t.Fatalf("the window's request %s has strategy %q, want %q", w.ID, w.Strategy, strategy)
				}
				end := h.windowEnd(w)
				if spreadFirst {
					// The window's moves run; the spread ends while the
					// window still runs.
					h.passUntil(end.Add(-40*time.Minute), nil)
					h.endSpread(s)
				} else {
					// The window takes a-1 out of scheduling; a spread
					// off it starts while the window runs (a-1 is out of
					// scheduling already: the spread cordons nothing) and
					// outlives the window.
					h.passUntil(end.Add(-30*time.Minute), nil)
					if got := h.eligibility(node); got != nomadapi.NodeSchedulingIneligible {
						t.Fatalf("a-1 %s half-way through its window", got)
					}
					s = h.runningSpread(node, false)
				}
				h.passUntil(end.Add(3*time.Minute), func() {
					if got := h.eligibility(node); got != nomadapi.NodeSchedulingIneligible && (h.now().Before(end) || !spreadFirst) {
						t.Fatalf("a-1 %s at %s (window ends %s, spread %s %s): given back while foreshape still holds it; decisions %+v",
							got, h.now().Format("15:04"), end.Format("15:04"), s.ID, h.request(s.ID).State, h.local.FSM.Decisions())
					}
				})
				for _, r := range h.local.FSM.Act().Requests {
					if r.Origin == "schedule" && r.State != state.RequestDone {
						t.Errorf("window request %s %s: %s", r.ID, r.State, r.Reason)
					}
				}
				if !spreadFirst {
					h.endSpread(s)
					h.passUntil(h.now().Add(2*time.Minute), nil)
				}
				if got := h.eligibility(node); got != nomadapi.NodeSchedulingEligible {
					t.Errorf("a-1 %s after the window and the spread both ended: foreshape's own hold was not given back; decisions %+v",
						got, h.local.FSM.Decisions())
				}
				if n, _, err := h.client.Nodes().Info(node, nil); err != nil || n.DrainStrategy != nil {
					t.Errorf("a-1 still draining after both ended (%v)", err)
				}
				named := false
				for _, d := range h.local.FSM.Decisions() {
					if strings.Contains(d.Reason, "operator's cordon") {
						t.Errorf("a decision calls the spread's cordon an operator's: %s", d.Reason)
					}
					named = named || d.Kind == "hold" && strings.Contains(d.Reason, "spread "+s.ID+" had cordoned it")
				}
				// The window drained a node the spread had cordoned: its
				// end ends the drain only, and says the spread gives the
				// node back.
				if want := strategy == "drain" && spreadFirst; named != want {
					t.Errorf("a hold decision names the spread's cordon: %v, want %v; decisions %+v", named, want, h.local.FSM.Decisions())
				}
			})
		}
	}
}

// TestExpiredWindowGivesBackItsHeldNode: the queue is paused through a
// drain-strategy window, so its request for a-1 waits queued; meanwhile
// a-1 is held out of scheduling for it (holdNodes, as for every queued
// whole-node request). The window ends before the move could start and
// the planner cancels the request: the node it held is foreshape's to
// give back, and it is (before: cancelled window requests owed nothing,
// and a-1 stayed out of scheduling for good, with nothing saying so).
func TestExpiredWindowGivesBackItsHeldNode(t *testing.T) {
	h := newHarness(t, actScenario, drainStrategy(windowPolicies("")))
	node := h.nodeID("a-")
	mustApply(t, h, state.SetQueuePaused{Paused: true, At: h.now(), By: "test"})
	r := h.windowRequest(func(state.MigrationRequest) bool { return true })
	h.holdThenPause()
	end := h.windowEnd(r)
	h.passUntil(r.Deadline, nil)
	if got := h.eligibility(node); got != nomadapi.NodeSchedulingIneligible {
		t.Fatalf("a-1 %s while %s waits queued: not held", got, r.ID)
	}
	h.passUntil(end.Add(3*time.Minute), nil)
	if got := h.request(r.ID); got.State != state.RequestCancelled {
		t.Fatalf("%s %s after its window ended unstarted: %s", got.ID, got.State, got.Reason)
	}
	if got := h.eligibility(node); got != nomadapi.NodeSchedulingEligible {
		t.Errorf("a-1 %s after %s was cancelled with its window: the hold was not given back; decisions %+v", got, r.ID, h.local.FSM.Decisions())
	}
}

// TestSpreadLeavesANodeMovedAwayOut: a spread cordoned a-1; while it runs
// an operator moves a-1's work away whole (the request finds a-1 out of
// scheduling and takes nothing out of its own). A node moved away stays
// out of scheduling by design, as after `nomad node drain`: when the
// spread ends it does not give a-1 back, whether the whole-node move is
// done or still running.
func TestSpreadLeavesANodeMovedAwayOut(t *testing.T) {
	for _, strategy := range []string{"reschedule", "drain"} {
		t.Run(strategy, func(t *testing.T) {
			pols := actPolicies
			if strategy == "drain" {
				pols = drainStrategy(pols)
			}
			pols = strings.Replace(pols, "max_parallel = 1", "max_parallel = 3", 1)
			h := newHarness(t, actScenario+cacheJob, pols)
			node := h.nodeID("a-")
			s := h.runningSpread(node, true)
			id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Node: node, Target: "dc2", Reason: "maintenance"})
			if err != nil {
				t.Fatal(err)
			}
			if r := h.moveToDone(id); r.State != state.RequestDone {
				t.Fatalf("%s %s: %s", id, r.State, r.Reason)
			}
			h.endSpread(s)
			for range 5 {
				h.run(h.flatForecasts(30))
				h.step(15 * time.Second)
				if err := h.c.Follow(h.ctx, h.now()); err != nil {
					t.Fatal(err)
				}
			}
			if got := h.eligibility(node); got != nomadapi.NodeSchedulingIneligible {
				t.Errorf("a-1 %s after the spread ended: the node %s moved away was given back; decisions %+v", got, id, h.local.FSM.Decisions())
			}
		})
	}
}

// TestWindowLeavesANodeMovedAwayOut: a drain window took a-1 out of
// scheduling; during the window an operator moves a-1 away whole. The
// node stays out of scheduling by design when the window ends (before:
// the window's end gave the emptied node back).
func TestWindowLeavesANodeMovedAwayOut(t *testing.T) {
	h := newHarness(t, actScenario, windowPolicies(""))
	node := h.nodeID("a-")
	r := h.windowRequest(func(x state.MigrationRequest) bool { return len(x.Moves) > 0 })
	end := h.windowEnd(r)
	h.passUntil(r.Deadline, nil)
	if got := h.eligibility(node); got != nomadapi.NodeSchedulingIneligible {
		t.Fatalf("a-1 %s at its window's start", got)
	}
	id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Node: node, Target: "dc2", Reason: "hardware"})
	if err != nil {
		t.Fatal(err)
	}
	if got := h.moveToDone(id); got.State != state.RequestDone {
		t.Fatalf("%s %s: %s", id, got.State, got.Reason)
	}
	h.passUntil(end.Add(3*time.Minute), nil)
	if got := h.eligibility(node); got != nomadapi.NodeSchedulingIneligible {
		t.Errorf("a-1 %s after its window ended: the node %s moved away was given back; decisions %+v", got, id, h.local.FSM.Decisions())
	}
}

// TestGivenUpNodeWaitsForASpread: a queued whole-node request held a-1
// out of scheduling (holdNodes); a spread off a-1 then runs (a-1 is out
// already: it cordons nothing). The request is cancelled while the spread
// runs: its give-back waits until the spread has ended (before: a-1 went
// back to scheduling at once, under the running spread), then comes.
func TestGivenUpNodeWaitsForASpread(t *testing.T) {
	pols := strings.Replace(actPolicies, "max_parallel = 1", "max_parallel = 3", 1)
	h := newHarness(t, actScenario+cacheJob, pols)
	node := h.nodeID("a-")
	mustApply(t, h, state.SetQueuePaused{Paused: true, At: h.now(), By: "test"})
	id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Node: node, Target: "dc2", Reason: "maintenance"})
	if err != nil {
		t.Fatal(err)
	}
	h.run(h.flatForecasts(30))
	h.holdThenPause()
	if got := h.eligibility(node); got != nomadapi.NodeSchedulingIneligible {
		t.Fatalf("a-1 %s while %s waits queued: not held", got, id)
	}
	s := h.runningSpread(node, false)
	mustApply(t, h, state.CancelRequest{ID: id, At: h.now(), Reason: "test: the operator gives it up"})
	for range 5 {
		h.quarterPass()
		if got := h.eligibility(node); got != nomadapi.NodeSchedulingIneligible {
			t.Fatalf("a-1 %s while spread %s still runs off it: %s's give-back did not wait", got, s.ID, id)
		}
	}
	h.endSpread(s)
	for range 3 {
		h.quarterPass()
	}
	if got := h.eligibility(node); got != nomadapi.NodeSchedulingEligible {
		t.Errorf("a-1 %s after the spread ended: the cancelled %s's hold was not given back; decisions %+v", got, id, h.local.FSM.Decisions())
	}
}

// TestGivenUpDrainOverASpreadsCordon: a spread cordoned a-1 (its work
// spreads off it); a whole-node request of a drain-strategy policy then
// drains a-1 without a cordon of its own (a-1 is out already: its drain
// intent records it ineligible before) and fails while its drain runs
// and the spread still runs. foreshape ends its own drain at once and
// leaves the spread's cordon; the hold decision names the spread, which
// gives the node back (not an operator's cordon: it fails when
// keepOperators' spreadCordoned clause is removed), and the spread does
// once it has ended. Before, the failed request's drain ran on while the
// spread ran (owedBack made ending it wait for held, as a give-back).
func TestGivenUpDrainOverASpreadsCordon(t *testing.T) {
	pols := strings.Replace(drainStrategy(actPolicies), "max_parallel = 1", "max_parallel = 3", 1)
	h := newHarness(t, actScenario+cacheJob, pols)
	node := h.nodeID("a-")
	s := h.runningSpread(node, true)
	id := h.drainedOver(node, "the spread's cordon")
	if n, _, err := h.client.Nodes().Info(node, nil); err != nil || n.DrainStrategy == nil {
		t.Fatalf("a-1 not draining after %s started (%v): the test needs a drain that still runs", id, err)
	}
	h.failAttempts(id)
	node1 := func() *nomadapi.Node {
		t.Helper()
		n, _, err := h.client.Nodes().Info(node, nil)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	// The first pass after the failure ends the drain (15 s in: the
	// drain, left alone, runs on for some 45 s more).
	h.quarterPass()
	if n := node1(); n.DrainStrategy != nil || n.SchedulingEligibility != nomadapi.NodeSchedulingIneligible {
		t.Fatalf("a-1 %s, draining %v after %s failed under spread %s's cordon; want its drain ended, the spread's cordon kept",
			n.SchedulingEligibility, n.DrainStrategy != nil, id, s.ID)
	}
	named := false
	for _, d := range h.local.FSM.Decisions() {
		if d.Kind == "hold" && d.Request == id && strings.Contains(d.Reason, "operator's cordon") {
			t.Errorf("the hold decision calls spread %s's cordon an operator's: %s", s.ID, d.Reason)
		}
		named = named || d.Kind == "hold" && d.Request == id &&
			strings.Contains(d.Reason, "a-1 stays out of scheduling after "+id+" was given up for now: spread "+s.ID+" had cordoned it")
	}
	if !named {
		t.Errorf("no hold decision names spread %s's cordon on a-1; decisions %+v", s.ID, h.local.FSM.Decisions())
	}
	for range 4 {
		h.quarterPass()
		if got := node1().SchedulingEligibility; got != nomadapi.NodeSchedulingIneligible {
			t.Fatalf("a-1 %s while spread %s still runs off it", got, s.ID)
		}
	}
	h.endSpread(s)
	for range 3 {
		h.quarterPass()
	}
	if n := node1(); n.SchedulingEligibility != nomadapi.NodeSchedulingEligible || n.DrainStrategy != nil {
		t.Errorf("a-1 %s, draining %v after spread %s ended: its cordon was not given back; decisions %+v",
			n.SchedulingEligibility, n.DrainStrategy != nil, s.ID, h.local.FSM.Decisions())
	}
}

// runningWindow puts a drain window that has begun and lists node into
// the queue, as the planner and a leader leave one: a request of the
// policy dc1's schedule "maintenance", whose window began a minute ago,
// running. Its one move stands for an allocation stopped and not yet
// replaced (the cache job's, which nothing else moves; estimated two
// hours), so it neither settles nor times out; it took nothing out of
// scheduling (no intent), so its end owes nothing. It returns the
// request and its window's end, which is right only once the
// coordinator has read the policies (after a pass; before, it reads the
// request's deadline). The policies' schedule must not open a window of
// its own while the test runs (offWindowPolicies).
func (h *harness) runningWindow(node string) (state.MigrationRequest, time.Time) {
	h.t.Helper()
	start := h.now().Add(-time.Minute)
	r := h.runningCacheMove(func(a *nomadapi.AllocationListStub) (state.MigrationRequest, string) {
		return state.MigrationRequest{
			Source: "dc1", Target: "dc2", Policy: "dc1", Strategy: "reschedule", Origin: "schedule",
			OriginKey: fmt.Sprintf("schedule/dc1/maintenance/%d/%s", start.Unix(), cacheResource(a).Key()),
			Created:   start, Deadline: start, Exclude: []string{node},
		}, a.NodeID
	})
	return r, h.windowEnd(r)
}

// cacheResource is the cache job's allocation a as a request's resource.
func cacheResource(a *nomadapi.AllocationListStub) state.Resource {
	return state.Resource{Kind: state.ResourceAllocation, ID: a.ID, Name: a.Name, Namespace: a.Namespace, Job: a.JobID, Group: a.TaskGroup}
}

// runningCacheMove queues the request req makes of the cache job's one
// allocation (its origin, policy, times; and the node its move is from)
// with that allocation as its resource and its one move, stopped now and
// not yet replaced (estimated two hours), and marks it running as a
// leader does; it returns the request as the state holds it.
func (h *harness) runningCacheMove(req func(a *nomadapi.AllocationListStub) (state.MigrationRequest, string)) state.MigrationRequest {
	h.t.Helper()
	cache := h.allocs("cache")
	if len(cache) != 1 {
		h.t.Fatalf("cache allocations %+v; want one", cache)
	}
	a := cache[0]
	r, node := req(a)
	r.Resource = cacheResource(a)
	r.Moves = []state.Move{{Alloc: a.ID, Name: a.Name, Namespace: a.Namespace, Job: a.JobID, Group: a.TaskGroup, Node: node,
		Size: state.Resources{CPU: 500, MemoryMB: 512}, Stopped: h.now()}}
	r.State, r.Estimated = state.RequestPending, 2*time.Hour
	key := r.OriginKey
	mustApply(h.t, h, state.SubmitRequest{Request: r})
	r = state.MigrationRequest{}
	for _, x := range h.local.FSM.Act().Requests {
		if x.OriginKey == key {
			r = x
		}
	}
	if r.ID == "" {
		h.t.Fatalf("request %s was not queued: %+v", key, h.local.FSM.Act().Requests)
	}
	v := r.Version
	r.State, r.Started = state.RequestRunning, h.now()
	mustApply(h.t, h, state.UpdateRequest{Request: r, IfVersion: v})
	return h.request(r.ID)
}

// offWindowPolicies are windowPolicies whose maintenance (an hour) comes at
// 20:00, long after the tests that use runningWindow end.
func offWindowPolicies() string {
	return strings.Replace(strings.Replace(windowPolicies(""), `cron     = "30 6 * * *"`, `cron     = "0 20 * * *"`, 1),
		"max_parallel = 1", "max_parallel = 3", 1)
}

// TestGivenUpNodeWaitsForAWindow: a queued whole-node request held a-1
// out of scheduling (holdNodes); a drain window listing a-1 then begins
// (a-1 is out already: the window takes nothing out). The request is
// cancelled during the window: its give-back waits until the window has
// ended, then comes (it fails when held's clause for a begun drain window
// is removed: a-1 went back to scheduling at once, in the middle of the
// window).
func TestGivenUpNodeWaitsForAWindow(t *testing.T) {
	pols := offWindowPolicies()
	if !strings.Contains(pols, `"0 20 * * *"`) {
		t.Fatalf("the window policies changed: %s", pols)
	}
	h := newHarness(t, actScenario+cacheJob, pols)
	node := h.nodeID("a-")
	mustApply(t, h, state.SetQueuePaused{Paused: true, At: h.now(), By: "test"})
	id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Node: node, Target: "dc2", Reason: "maintenance"})
	if err != nil {
		t.Fatal(err)
	}
	h.run(h.flatForecasts(30))
	h.holdThenPause()
	if got := h.eligibility(node); got != nomadapi.NodeSchedulingIneligible {
		t.Fatalf("a-1 %s while %s waits queued: not held", got, id)
	}
	w, end := h.runningWindow(node)
	mustApply(t, h, state.CancelRequest{ID: id, At: h.now(), Reason: "test: the operator gives it up"})
	h.passUntil(end.Add(3*time.Minute), func() {
		if got := h.eligibility(node); got != nomadapi.NodeSchedulingIneligible && h.now().Before(end) {
			t.Fatalf("a-1 %s at %s while window %s runs (it ends %s): %s's give-back did not wait; decisions %+v",
				got, h.now().Format("15:04"), w.ID, end.Format("15:04"), id, h.local.FSM.Decisions())
		}
	})
	if got := h.request(w.ID); got.State != state.RequestRunning {
		t.Fatalf("the window's request %s %s: %s (the test needs it to stand for a begun window throughout)", w.ID, got.State, got.Reason)
	}
	if got := h.eligibility(node); got != nomadapi.NodeSchedulingEligible {
		t.Errorf("a-1 %s after the window ended: the cancelled %s's hold was not given back; decisions %+v", got, id, h.local.FSM.Decisions())
	}
}

// TestGivenUpNodeWaitsForAnotherRequest: a queued whole-node request held
// a-1 out of scheduling and is cancelled; before the next pass an operator
// asks again to move a-1 (a-1 is out already: the new request takes
// nothing out), and the second request waits in the queue, which runs
// (dc1's max_parallel is full). The first request's give-back waits while
// the second is queued (it fails when held's clause for a queued or
// running whole-node request is removed: a-1 went back to scheduling
// under the waiting request), and comes once the second is cancelled too,
// once. (In a paused queue a queued request holds back no give-back:
// TestPausedQueueHoldsBackNoGiveBack.)
func TestGivenUpNodeWaitsForAnotherRequest(t *testing.T) {
	h := newHarness(t, actScenario+cacheJob, actPolicies)
	node := h.nodeID("a-")
	mustApply(t, h, state.SetQueuePaused{Paused: true, At: h.now(), By: "test"})
	first, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Node: node, Target: "dc2", Reason: "maintenance"})
	if err != nil {
		t.Fatal(err)
	}
	h.run(h.flatForecasts(30))
	h.holdThenPause()
	if got := h.eligibility(node); got != nomadapi.NodeSchedulingIneligible {
		t.Fatalf("a-1 %s while %s waits queued: not held", got, first)
	}
	// dc1's one place under max_parallel taken: the second request waits.
	h.runningCacheMove(func(a *nomadapi.AllocationListStub) (state.MigrationRequest, string) {
		return state.MigrationRequest{Source: "dc1", Target: "dc2", Policy: "dc1", Strategy: "reschedule", Created: h.now()}, a.NodeID
	})
	mustApply(t, h, state.CancelRequest{ID: first, At: h.now(), Reason: "test: the operator gives it up"})
	second, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Node: node, Target: "dc2", Reason: "maintenance, again"})
	if err != nil {
		t.Fatal(err)
	}
	mustApply(t, h, state.SetQueuePaused{Paused: false, At: h.now(), By: "test"})
	for range 5 {
		h.quarterPass()
		if got := h.eligibility(node); got != nomadapi.NodeSchedulingIneligible {
			t.Fatalf("a-1 %s while %s waits queued for it: %s's give-back did not wait; decisions %+v", got, second, first, h.local.FSM.Decisions())
		}
	}
	if r := h.request(second); !r.State.Queued() {
		t.Fatalf("%s %s (%s); the test needs it queued", second, r.State, r.Reason)
	}
	mustApply(t, h, state.CancelRequest{ID: second, At: h.now(), Reason: "test: the operator gives it up again"})
	for range 3 {
		h.quarterPass()
	}
	if got := h.eligibility(node); got != nomadapi.NodeSchedulingEligible {
		t.Errorf("a-1 %s after %s was cancelled too: %s's hold was not given back; decisions %+v", got, second, first, h.local.FSM.Decisions())
	}
	restores := 0
	for _, d := range h.local.FSM.Decisions() {
		if d.Kind == "restore" {
			restores++
			if d.Request != first {
				t.Errorf("a-1 given back for %s, which took nothing out: %s", d.Request, d.Reason)
			}
		}
	}
	if restores != 1 {
		t.Errorf("%d restore decisions; want one, %s's; decisions %+v", restores, first, h.local.FSM.Decisions())
	}
}

// heldThenDrained queues a whole-node request of a-1 while the queue is
// paused (holdNodes takes a-1 out of scheduling for it), cancels it
// (its give-back waits while anything else foreshape runs holds a-1),
// and runs a second request of a-1, a Nomad drain: its drain intent
// records a-1 ineligible before, the first request's hold. window, when
// set, makes a begun drain window list a-1 (runningWindow) before the
// cancel, so the first request's give-back waits for its end. It returns
// the two requests.
func (h *harness) heldThenDrained(node string, window bool) (first, second string) {
	h.t.Helper()
	mustApply(h.t, h, state.SetQueuePaused{Paused: true, At: h.now(), By: "test"})
	first, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Node: node, Target: "dc2", Reason: "maintenance"})
	if err != nil {
		h.t.Fatal(err)
	}
	h.run(h.flatForecasts(30))
	h.holdThenPause()
	if got := h.eligibility(node); got != nomadapi.NodeSchedulingIneligible {
		h.t.Fatalf("a-1 %s while %s waits queued: not held", got, first)
	}
	if window {
		h.runningWindow(node)
	}
	mustApply(h.t, h, state.CancelRequest{ID: first, At: h.now(), Reason: "test: the operator gives it up"})
	second, err = h.c.Submit(h.ctx, h.now(), h.pols, Submission{Node: node, Target: "dc2", Deadline: h.now().Add(30 * time.Minute)})
	if err != nil {
		h.t.Fatal(err)
	}
	mustApply(h.t, h, state.SetQueuePaused{Paused: false, At: h.now(), By: "test"})
	h.runUntilDrained(second, node, first+"'s hold")
	return first, second
}

// drainedOver submits a move of node to dc2 and runs passes until it
// runs; its drain intent must be done with the node ineligible before
// (over: what held it, for the failure message). It returns the request.
func (h *harness) drainedOver(node, over string) string {
	h.t.Helper()
	id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Node: node, Target: "dc2", Deadline: h.now().Add(30 * time.Minute)})
	if err != nil {
		h.t.Fatal(err)
	}
	h.runUntilDrained(id, node, over)
	return id
}

// runUntilDrained runs passes until request id runs and checks that its
// drain of node found the node ineligible (held by over).
func (h *harness) runUntilDrained(id, node, over string) {
	h.t.Helper()
	for range 10 {
		h.run(h.flatForecasts(30))
		if h.request(id).State == state.RequestRunning {
			break
		}
		h.step(30 * time.Second)
	}
	drain, ok := h.local.FSM.Intent(intentID(state.IntentDrainNode, node, id, 0))
	if !ok || drain.Outcome != state.OutcomeDone || drain.Before != state.NodeWasIneligible {
		h.t.Fatalf("drain intent %+v (found %v); want done, ineligible before (%s)", drain, ok, over)
	}
}

// failAttempts uses up request id's attempts; it must end failed.
func (h *harness) failAttempts(id string) {
	h.t.Helper()
	var ds []state.Decision
	for range MaxAttempts {
		h.c.retry(h.ctx, h.now(), id, "test: the move did not settle", &ds)
	}
	if r := h.request(id); r.State != state.RequestFailed {
		h.t.Fatalf("%s %s after %d failed attempts", id, r.State, MaxAttempts)
	}
}

// drainEndedStillOut checks that node's drain has ended after request id
// failed while the node stays out of scheduling (held: by what, for the
// failure message).
func (h *harness) drainEndedStillOut(node, id, held string) {
	h.t.Helper()
	n, _, err := h.client.Nodes().Info(node, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	if n.DrainStrategy != nil || n.SchedulingEligibility != nomadapi.NodeSchedulingIneligible {
		h.t.Fatalf("a-1 %s, draining %v after %s failed; want its drain ended, %s kept",
			n.SchedulingEligibility, n.DrainStrategy != nil, id, held)
	}
}

// drainWindowPolicies are offWindowPolicies whose dc1 moves are Nomad
// drains.
func drainWindowPolicies(t *testing.T) string {
	pols := strings.Replace(offWindowPolicies(), "    max_parallel = 3\n", "    max_parallel = 3\n    strategy     = \"drain\"\n", 1)
	if !strings.Contains(pols, `strategy     = "drain"`) {
		t.Fatalf("the window policies changed: %s", pols)
	}
	return pols
}

// TestGivenUpDrainOverAnEarlierRequestsHold: a cancelled whole-node
// request's hold of a-1 (holdNodes) is owed back but waits for a begun
// drain window that lists a-1; a second request of a-1, a Nomad drain,
// runs over that hold and fails. Its drain ends at once and a-1 stays
// out; the hold decision names the first request's hold, which gives a-1
// back once nothing foreshape runs holds it, not an operator's cordon to
// be made eligible by hand (it fails when foreshapeHold's owedBack loop
// is removed). Once the window has ended a-1 is eligible again, given
// back once, by the first request.
func TestGivenUpDrainOverAnEarlierRequestsHold(t *testing.T) {
	h := newHarness(t, actScenario+cacheJob, drainWindowPolicies(t))
	node := h.nodeID("a-")
	first, id := h.heldThenDrained(node, true)
	h.failAttempts(id)
	var w state.MigrationRequest
	for _, x := range h.local.FSM.Act().Requests {
		if x.Origin == "schedule" {
			w = x
		}
	}
	end := h.windowEnd(w)
	h.step(15 * time.Second)
	if err := h.c.Follow(h.ctx, h.now()); err != nil {
		t.Fatal(err)
	}
	h.drainEndedStillOut(node, id, first+"'s hold")
	named := false
	for _, d := range h.local.FSM.Decisions() {
		if d.Kind == "hold" && strings.Contains(d.Reason, "operator's") {
			t.Errorf("the hold decision calls %s's hold an operator's cordon: %s", first, d.Reason)
		}
		named = named || d.Kind == "hold" && d.Request == id &&
			strings.Contains(d.Reason, "a-1 stays out of scheduling after "+id+" was given up for now: "+first+" had taken it out")
	}
	if !named {
		t.Errorf("no hold decision names %s's hold of a-1; decisions %+v", first, h.local.FSM.Decisions())
	}
	h.passUntil(end.Add(3*time.Minute), func() {
		if got := h.eligibility(node); got != nomadapi.NodeSchedulingIneligible && h.now().Before(end) {
			t.Fatalf("a-1 %s at %s while window %s runs: %s's give-back did not wait", got, h.now().Format("15:04"), w.ID, first)
		}
	})
	if got := h.eligibility(node); got != nomadapi.NodeSchedulingEligible {
		t.Errorf("a-1 %s after the window ended: %s's hold was not given back; decisions %+v", got, first, h.local.FSM.Decisions())
	}
	restores := 0
	for _, d := range h.local.FSM.Decisions() {
		if d.Kind == "restore" {
			restores++
			if d.Request != first {
				t.Errorf("a-1 given back for %s: %s", d.Request, d.Reason)
			}
			// Named as the hold decision names it: by name.
			if d.Reason != "node a-1 eligible again" {
				t.Errorf("restore decision %q; want the node by name, as the hold decision: \"node a-1 eligible again\"", d.Reason)
			}
		}
	}
	if restores != 1 {
		t.Errorf("%d restore decisions; want one, %s's; decisions %+v", restores, first, h.local.FSM.Decisions())
	}
}

// TestDecisionNameOfANodeGone: a node the view no longer holds is named
// by its ID in hold and restore decisions.
func TestDecisionNameOfANodeGone(t *testing.T) {
	c := &Coordinator{view: &viewCache{nodes: map[string]*nomadapi.NodeListStub{"id-1": {ID: "id-1", Name: "a-1"}}}}
	if got := c.decisionName("id-1"); got != "a-1" {
		t.Errorf("known node: %q; want a-1", got)
	}
	if got := c.decisionName("id-2"); got != "id-2" {
		t.Errorf("node gone from the view: %q; want its ID", got)
	}
}

// TestGivenUpHoldLeavesANodeDrainedAwayOut: as above without the window,
// the second request's drain completes (done): a-1 was moved away and
// stays out of scheduling by design, as after `nomad node drain`. The
// cancelled first request owes it nothing then, as a spread or a window
// whose node a whole-node request moved away (it fails when owedBack's
// movedAway clause for a given-up whole-node request is removed: the
// first request's give-back made the emptied a-1 eligible).
func TestGivenUpHoldLeavesANodeDrainedAwayOut(t *testing.T) {
	h := newHarness(t, actScenario+cacheJob, drainWindowPolicies(t))
	node := h.nodeID("a-")
	first, id := h.heldThenDrained(node, false)
	for range 40 {
		if h.request(id).State.Terminal() {
			break
		}
		h.run(h.flatForecasts(30))
		h.step(30 * time.Second)
		if err := h.c.Follow(h.ctx, h.now()); err != nil {
			t.Fatal(err)
		}
	}
	if r := h.request(id); r.State != state.RequestDone {
		t.Fatalf("%s %s (%s); the test needs it done", id, r.State, r.Reason)
	}
	for range 3 {
		h.run(h.flatForecasts(30))
		h.step(30 * time.Second)
		if err := h.c.Follow(h.ctx, h.now()); err != nil {
			t.Fatal(err)
		}
	}
	if got := h.eligibility(node); got != nomadapi.NodeSchedulingIneligible {
		t.Errorf("a-1 %s after %s moved it away: the cancelled %s gave it back; decisions %+v", got, id, first, h.local.FSM.Decisions())
	}
	for _, d := range h.local.FSM.Decisions() {
		if d.Kind == "restore" {
			t.Errorf("a restore decision after %s moved a-1 away: %+v", id, d)
		}
	}
}

// TestWindowEndOverASpreadsCordon: a spread cordons a-1, then a drain
// window drains it (its drain intent records a-1 ineligible before, the
// spread's cordon), and the window ends while the spread still runs. The
// window's end closes foreshape's drain of a-1 at once, leaving the
// spread's cordon, with a hold decision naming the spread (here the sim's
// drain has completed before the end, so no call ends it: the call that
// ends a drain still running is keepOperators', reached with a running
// drain by TestGivenUpDrainOverASpreadsCordon; owedBack's
// owesDrainEnd for a window is due at the window's end, whatever else
// holds the node: it fails when that due also waits for held, as before
// 1e8705d: no decision, the window's end waited for the spread). a-1 goes
// back to scheduling once the spread has ended, given back by the spread.
func TestWindowEndOverASpreadsCordon(t *testing.T) {
	pols := strings.Replace(drainStrategy(windowPolicies("")), "max_parallel = 1", "max_parallel = 3", 1)
	h := newHarness(t, actScenario+cacheJob, pols)
	node := h.nodeID("a-")
	s := h.runningSpread(node, true)
	w := h.windowRequest(func(state.MigrationRequest) bool { return true })
	if w.Strategy != "drain" {
		t.Fatalf("the window's request %s has strategy %q, want drain", w.ID, w.Strategy)
	}
	end := h.windowEnd(w)
	h.passUntil(end.Add(-time.Minute), nil)
	drain, ok := h.local.FSM.Intent(intentID(state.IntentDrainNode, node, w.ID, 0))
	if !ok || drain.Outcome != state.OutcomeDone || drain.Before != state.NodeWasIneligible {
		t.Fatalf("the window's drain intent %+v (found %v); want done, ineligible before (spread %s's cordon)", drain, ok, s.ID)
	}
	held := func() bool {
		for _, d := range h.local.FSM.Decisions() {
			if d.Kind == "hold" && d.Request == w.ID && strings.Contains(d.Reason, "spread "+s.ID+" had cordoned it") {
				return true
			}
		}
		return false
	}
	if held() {
		t.Fatalf("a hold decision for %s before its window ended (%s): %+v", w.ID, end.Format("15:04"), h.local.FSM.Decisions())
	}
	h.passUntil(end.Add(2*time.Minute), nil)
	if got := h.request(s.ID).State; got != state.RequestRunning {
		t.Fatalf("spread %s %s at the window's end; the test needs it running", s.ID, got)
	}
	n, _, err := h.client.Nodes().Info(node, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n.DrainStrategy != nil || n.SchedulingEligibility != nomadapi.NodeSchedulingIneligible {
		t.Errorf("a-1 %s, draining %v after the window ended under spread %s; want no drain, the spread's cordon kept",
			n.SchedulingEligibility, n.DrainStrategy != nil, s.ID)
	}
	if !held() {
		t.Errorf("no hold decision for %s naming spread %s once its window ended while the spread runs; decisions %+v", w.ID, s.ID, h.local.FSM.Decisions())
	}
	h.endSpread(s)
	h.passUntil(h.now().Add(2*time.Minute), nil)
	if got := h.eligibility(node); got != nomadapi.NodeSchedulingEligible {
		t.Errorf("a-1 %s after the spread ended too; decisions %+v", got, h.local.FSM.Decisions())
	}
	for _, d := range h.local.FSM.Decisions() {
		if strings.Contains(d.Reason, "operator's") {
			t.Errorf("a decision calls the spread's cordon an operator's: %s", d.Reason)
		}
		if d.Kind == "restore" && d.Request != s.ID {
			t.Errorf("a-1 given back for %s, not the spread %s: %s", d.Request, s.ID, d.Reason)
		}
	}
}

// TestGivenUpDrainOverADrainWindowsHold: as
// TestGivenUpDrainOverAnEarlierRequestsHold with the earlier hold a begun
// drain window's own cordon of a-1 (seen made, owed back at the window's
// end): a whole-node request of a-1, a Nomad drain, runs over it and
// fails. Its drain ends at once and a-1 stays out; the hold decision names
// the window (its key), which gives a-1 back at its end, not an operator's
// cordon nor the window's request (it fails when foreshapeHold's clause
// naming a window by its key is removed: the decision named the crafted
// window request's ID). After the window's end a-1 is eligible again,
// given back once, by the window.
func TestGivenUpDrainOverADrainWindowsHold(t *testing.T) {
	h := newHarness(t, actScenario+cacheJob, drainWindowPolicies(t))
	node := h.nodeID("a-")
	w, _ := h.runningWindow(node)
	key := windowKey(w)
	cordon := state.Intent{ID: intentID(state.IntentNodeEligibility, node, key, 0), Kind: state.IntentNodeEligibility,
		Request: w.ID, Object: node, Detail: "ineligible for " + key}
	crashAfter(t, h, cordon, func() {
		if _, err := h.client.Nodes().ToggleEligibility(node, false, nil); err != nil {
			t.Fatal(err)
		}
	})
	mustApply(t, h, state.CloseIntent{ID: cordon.ID, Outcome: state.OutcomeDone, At: h.now()})
	id := h.drainedOver(node, "the window's hold")
	h.failAttempts(id)
	h.step(15 * time.Second)
	if err := h.c.Follow(h.ctx, h.now()); err != nil {
		t.Fatal(err)
	}
	h.drainEndedStillOut(node, id, "window "+key+"'s hold")
	named := false
	for _, d := range h.local.FSM.Decisions() {
		if d.Kind == "hold" && strings.Contains(d.Reason, "operator's") {
			t.Errorf("the hold decision calls the window's hold an operator's cordon: %s", d.Reason)
		}
		named = named || d.Kind == "hold" && d.Request == id &&
			strings.Contains(d.Reason, "a-1 stays out of scheduling after "+id+" was given up for now: "+key+" had taken it out") &&
			strings.Contains(d.Reason, key+" gives the node back once nothing foreshape runs holds it")
	}
	if !named {
		t.Errorf("no hold decision names window %s's hold of a-1; decisions %+v", key, h.local.FSM.Decisions())
	}
	end := h.windowEnd(w) // once the coordinator has read the policies
	h.passUntil(end.Add(3*time.Minute), func() {
		if got := h.eligibility(node); got != nomadapi.NodeSchedulingIneligible && h.now().Before(end) {
			t.Fatalf("a-1 %s at %s while window %s runs", got, h.now().Format("15:04"), key)
		}
	})
	if got := h.eligibility(node); got != nomadapi.NodeSchedulingEligible {
		t.Errorf("a-1 %s after the window ended: the window's hold was not given back; decisions %+v", got, h.local.FSM.Decisions())
	}
	restores := 0
	for _, d := range h.local.FSM.Decisions() {
		if d.Kind == "restore" {
			restores++
			if d.Request != key {
				t.Errorf("a-1 given back for %s, not window %s: %s", d.Request, key, d.Reason)
			}
		}
	}
	if restores != 1 {
		t.Errorf("%d restore decisions; want one, the window's; decisions %+v", restores, h.local.FSM.Decisions())
	}
}
