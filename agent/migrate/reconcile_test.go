package migrate

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/state"
)

// crashAfter fakes a leader that opened an intent and died: the intent is
// in the state, open; do says whether its call reached Nomad.
func crashAfter(t *testing.T, h *harness, in state.Intent, do func()) {
	t.Helper()
	in.Opened, in.Leader = h.now(), "dead-leader"
	if r := mustApply(t, h, state.OpenIntent{Intent: in}); r.Applied != 1 {
		t.Fatalf("open %s: %+v", in.ID, r)
	}
	if do != nil {
		do()
	}
}

func mustApply(t *testing.T, h *harness, c state.Command) state.Result {
	t.Helper()
	r, err := h.local.Apply(h.ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// runningRequest queues a request for one web allocation and marks it
// running, as a leader does right before its stop.
func runningRequest(t *testing.T, h *harness) (state.MigrationRequest, *nomadapi.AllocationListStub) {
	t.Helper()
	a := h.allocs("web")[0]
	id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Allocation: a.ID, Target: "dc2"})
	if err != nil {
		t.Fatal(err)
	}
	r := h.request(id)
	v := r.Version
	r.State, r.Started = state.RequestRunning, h.now()
	mustApply(t, h, state.UpdateRequest{Request: r, IfVersion: v})
	return h.request(id), a
}

func TestReconcileStopThatHappened(t *testing.T) {
	h := newHarness(t, actScenario, actPolicies)
	r, a := runningRequest(t, h)
	crashAfter(t, h, state.Intent{ID: intentID(state.IntentStopAlloc, a.ID, r.ID, 0), Kind: state.IntentStopAlloc, Request: r.ID, Object: a.ID}, func() {
		full, _, err := h.client.Allocations().Info(a.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.client.Allocations().Stop(full, nil); err != nil {
			t.Fatal(err)
		}
	})
	// A new leader: a new coordinator on the same state.
	h2 := newCoordinatorOn(t, h)
	if err := h2.Begin(h.ctx, h.now()); err != nil {
		t.Fatal(err)
	}
	in, _ := h.local.FSM.Intent(intentID(state.IntentStopAlloc, a.ID, r.ID, 0))
	if in.Outcome != state.OutcomeDone || !strings.Contains(in.Error, "reconciled") {
		t.Fatalf("intent %+v", in)
	}
	got := h.request(r.ID)
	if got.State != state.RequestRunning || got.Moves[0].Stopped.IsZero() {
		t.Fatalf("request after reconciliation %+v", got)
	}
	stopsBefore := countStops(h, a.ID)
	for range 10 {
		h.step(15 * time.Second)
		if _, err := h2.RunOnce(h.ctx, h.now(), h.pols, h.flatForecasts(30)); err != nil {
			t.Fatal(err)
		}
		if h.request(r.ID).State.Terminal() {
			break
		}
	}
	if got := h.request(r.ID); got.State != state.RequestDone {
		t.Errorf("request %s: %s", got.State, got.Reason)
	}
	if n := countStops(h, a.ID); n != 1 || stopsBefore != 1 {
		t.Errorf("allocation stopped %d times (before the new leader: %d); want once", n, stopsBefore)
	}
}

// TestReconcileStopThatDidNot: a leader dies before its stop takes effect,
// MaxAttempts times in a row; each next leader finds no sign of it and
// queues the request again without using up an attempt (before, the third
// such death failed the move: "failed after 3 attempts", Nomad having seen
// none of them), and the last one moves it with one stop, announced under
// the intent's next redo ID.
func TestReconcileStopThatDidNot(t *testing.T) {
	h := newHarness(t, actScenario, actPolicies)
	r, a := runningRequest(t, h)
	var h2 *Coordinator
	base := intentID(state.IntentStopAlloc, a.ID, r.ID, 0)
	for n := 1; n <= MaxAttempts; n++ {
		if n > 1 {
			// The next leader starts it again and dies in its stop too.
			cur := h.request(r.ID)
			v := cur.Version
			cur.State, cur.Started = state.RequestRunning, h.now()
			mustApply(t, h, state.UpdateRequest{Request: cur, IfVersion: v})
		}
		crashAfter(t, h, state.Intent{ID: redoID(base, n), Kind: state.IntentStopAlloc, Request: r.ID, Object: a.ID}, nil)
		h2 = newCoordinatorOn(t, h)
		if err := h2.Begin(h.ctx, h.now()); err != nil {
			t.Fatal(err)
		}
		in, _ := h.local.FSM.Intent(redoID(base, n))
		if in.Outcome != state.OutcomeNotDone {
			t.Fatalf("death %d: intent %+v", n, in)
		}
		got := h.request(r.ID)
		if got.State != state.RequestPending || got.Attempts != 0 || !strings.Contains(got.Reason, "using up no attempt") {
			t.Fatalf("death %d: request %s, %d attempts: %s", n, got.State, got.Attempts, got.Reason)
		}
	}
	for range 10 {
		if _, err := h2.RunOnce(h.ctx, h.now(), h.pols, h.flatForecasts(30)); err != nil {
			t.Fatal(err)
		}
		h.step(15 * time.Second)
		if h.request(r.ID).State.Terminal() {
			break
		}
	}
	if got := h.request(r.ID); got.State != state.RequestDone {
		t.Errorf("request %s: %s", got.State, got.Reason)
	}
	if n := countStops(h, a.ID); n != 1 {
		t.Errorf("stopped %d times", n)
	}
	if _, ok := h.local.FSM.Intent(redoID(base, MaxAttempts+1)); !ok {
		t.Errorf("the stop was not announced again under %s", redoID(base, MaxAttempts+1))
	}
}

func TestOrphanedPlaceholderReaped(t *testing.T) {
	h := newHarness(t, actScenario, actPolicies)
	h.run(h.flatForecasts(30)) // gives the cluster its ID
	owner := h.local.FSM.Act().ClusterID
	register := func(id, owner string) {
		job, err := h.c.placeholderJob(state.Reservation{ID: "x", Job: id, Locality: "dc2", Expires: h.now().Add(time.Hour),
			Chunks: []state.Chunk{{Size: state.Resources{CPU: 100, MemoryMB: 64}, Count: 1}}}, owner, 10)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := h.client.Jobs().Register(job, nil); err != nil {
			t.Fatal(err)
		}
	}
	register(state.PlaceholderPrefix+"rs-99", owner)       // ours, no reservation: an agent died
	register(state.PlaceholderPrefix+"other-1", "fs-else") // another cluster's
	h.step(20 * time.Second)
	h.run(h.flatForecasts(30))
	if _, _, err := h.client.Jobs().Info(state.PlaceholderPrefix+"rs-99", nil); err == nil {
		t.Error("orphaned placeholder survived")
	}
	if _, _, err := h.client.Jobs().Info(state.PlaceholderPrefix+"other-1", nil); err != nil {
		t.Errorf("another cluster's placeholder was touched: %v", err)
	}
	found := false
	for _, d := range h.local.FSM.Decisions() {
		if d.Kind == "reap" && strings.Contains(d.Reason, "its reservation is gone") {
			found = true
		}
	}
	if !found {
		t.Error("no reap decision")
	}
}

func TestExpiredReservationReleased(t *testing.T) {
	h := newHarness(t, actScenario, actPolicies)
	a := h.allocs("web")[0]
	id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Allocation: a.ID, Target: "dc2"})
	if err != nil {
		t.Fatal(err)
	}
	// The target is congested for the whole hour: the reservation is held
	// but the move waits, until the reservation's ttl (1h) is over.
	hot := h.flatForecasts(79)
	h.run(hot)
	res, ok := h.local.FSM.Act().ReservationFor(id)
	if !ok {
		t.Fatalf("no reservation; decisions %+v", h.local.FSM.Decisions())
	}
	h.step(61 * time.Minute)
	h.run(h.flatForecasts(79))
	if _, _, err := h.client.Jobs().Info(res.Job, nil); err == nil {
		t.Errorf("placeholder %s outlived its ttl", res.Job)
	}
}

func TestScaleCooldownAndRefusal(t *testing.T) {
	h := newHarness(t, actScenario, actPolicies)
	hot := h.hotForecasts
	h.fake.refuse = 1 // the first try meets an active deployment
	h.run(hot())
	acts := h.local.FSM.Act().ScaleActions
	if len(acts) != 1 || acts[0].Outcome != state.OutcomeFailed || !strings.Contains(acts[0].Error, "active deployment") {
		t.Fatalf("scale actions %+v", acts)
	}
	// A refused action starts no cooldown: a pass after the back-off (a
	// quarter of the 10m cooldown) tries again.
	h.step(time.Minute)
	h.run(hot())
	if n := len(h.fake.actions); n != 1 {
		t.Fatalf("%d scale calls a minute after the refusal; want 1 (backing off)", n)
	}
	h.step(2 * time.Minute)
	h.run(hot())
	acts = h.local.FSM.Act().ScaleActions
	if len(acts) != 2 || acts[1].Outcome != state.OutcomeDone || acts[1].Count != 3 {
		t.Fatalf("scale actions %+v", acts)
	}
	// Inside the cooldown, no more.
	for range 5 {
		h.step(time.Minute)
		h.run(hot())
	}
	if n := len(h.fake.actions); n != 2 {
		t.Errorf("%d scale calls inside the 10m cooldown; want 2 (the refused one and one more)", n)
	}
	h.step(5 * time.Minute)
	h.run(hot())
	if n := len(h.fake.actions); n != 3 {
		t.Errorf("%d scale calls after the cooldown; want 3", n)
	}
}

// A target that waits a deployment out before it scales takes effect
// after the pass that decided the action: the 10m cooldown runs from the
// effect, read at the coordinator's clock.
func TestScaleCooldownRunsFromTheEffect(t *testing.T) {
	var h *harness
	h = newHarness(t, actScenario, actPolicies, func(c *Config) {
		c.Clock = func(context.Context) (time.Time, error) { return h.now(), nil }
	})
	h.fake.wait = func() { h.step(5 * time.Minute) }
	decided := h.now()
	h.run(h.hotForecasts())
	acts := h.local.FSM.Act().ScaleActions
	if len(acts) != 1 || acts[0].Outcome != state.OutcomeDone {
		t.Fatalf("scale actions %+v", acts)
	}
	effect := decided.Add(5 * time.Minute)
	if a := acts[0]; !a.At.Equal(decided) || !a.TookEffect.Equal(effect) || !a.Finished.Equal(effect) {
		t.Errorf("decided at %v, finished %v, took effect %v; want decided %v, took effect %v", a.At, a.Finished, a.TookEffect, decided, effect)
	}
	if cd := h.local.FSM.Act().Cooldowns[state.CooldownKey("dc2", "workers")]; !cd.Equal(effect) {
		t.Errorf("cooldown from %v; want %v, when the scale took effect", cd, effect)
	}
	h.fake.wait = nil
	// 11 minutes after the decision, 6 after the effect: still cooling.
	h.step(6 * time.Minute)
	h.run(h.hotForecasts())
	if n := len(h.fake.actions); n != 1 {
		t.Fatalf("%d scale calls 6m after the effect, inside the 10m cooldown; want 1", n)
	}
	h.step(5 * time.Minute)
	h.run(h.hotForecasts())
	if n := len(h.fake.actions); n != 2 {
		t.Errorf("%d scale calls 11m after the effect; want 2", n)
	}
}

// A scale action whose target has not answered (it waits out a
// deployment) holds its block past the cooldown from its decision: the
// block's next action comes only after it took effect, and its cooldown.
func TestScaleInFlightHoldsItsBlock(t *testing.T) {
	h := newHarness(t, actScenario, actPolicies, func(c *Config) { c.SyncScale = false })
	entered, release := make(chan struct{}, 2), make(chan struct{})
	h.fake.wait = func() {
		entered <- struct{}{}
		<-release
	}
	h.run(h.hotForecasts())
	<-entered // the action's intent is open and its target is waiting
	h.step(15 * time.Minute)
	h.run(h.hotForecasts())
	if n := h.fake.calls(); n != 1 {
		t.Errorf("%d scale calls 15m after the first, whose target has not answered; want 1", n)
	}
	close(release)
	h.c.Wait()
	if acts := h.local.FSM.Act().ScaleActions; len(acts) == 0 || acts[0].Outcome != state.OutcomeDone {
		t.Fatalf("scale actions %+v", acts)
	}
	h.step(11 * time.Minute)
	h.run(h.hotForecasts())
	h.c.Wait()
	if n := h.fake.calls(); n != 2 {
		t.Errorf("%d scale calls after the first took effect and its cooldown ran out; want 2", n)
	}
}

func countStops(h *harness, alloc string) int {
	n := 0
	for _, c := range h.mutating() {
		if c == "PUT /v1/allocation/"+alloc+"/stop" || c == "POST /v1/allocation/"+alloc+"/stop" {
			n++
		}
	}
	return n
}

// newCoordinatorOn builds a second coordinator over the harness's state and
// cluster, as a new leader would have.
func newCoordinatorOn(t *testing.T, h *harness) *Coordinator {
	t.Helper()
	c, err := New(h.c.cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestReconcileHandOver kills a leader inside a hand-over — the
// placeholder's scale call made or not — of a node move whose two
// allocations move one at a time: the next leader hands each allocation
// its room exactly once (one scale call per allocation in all) and the
// move finishes.
func TestReconcileHandOver(t *testing.T) {
	for _, tc := range []struct {
		name     string
		happened bool
	}{{"scale made", true}, {"scale not made", false}} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, actScenario, actPolicies)
			node := h.nodeID("a-")
			id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Node: node, Target: "dc2"})
			if err != nil {
				t.Fatal(err)
			}
			h.run(h.flatForecasts(30))
			res, ok := h.local.FSM.Act().ReservationFor(id)
			if !ok || res.State != state.ReservationHeld || len(res.Chunks) != 1 || res.Chunks[0].Count != 2 {
				t.Fatalf("reservation %+v", res)
			}
			h.step(30 * time.Second)
			// The dead leader marked the request running and announced
			// the first allocation's hand-over.
			r := h.request(id)
			v := r.Version
			r.State, r.Started = state.RequestRunning, h.now()
			mustApply(t, h, state.UpdateRequest{Request: r, IfVersion: v})
			group := chunkGroup(0, res.Chunks[0])
			alloc := r.Moves[0].Alloc
			crashAfter(t, h, state.Intent{ID: intentID(state.IntentScaleHold, res.Job+"/"+alloc, id, 0), Kind: state.IntentScaleHold,
				Request: id, Reservation: res.ID, Object: res.Job, Detail: group + " to 1"}, func() {
				if !tc.happened {
					return
				}
				one := 1
				if _, _, err := h.client.Jobs().Scale(res.Job, group, &one, "hand over", false, nil, nil); err != nil {
					t.Fatal(err)
				}
			})
			h2 := newCoordinatorOn(t, h)
			if err := h2.Begin(h.ctx, h.now()); err != nil {
				t.Fatal(err)
			}
			for range 20 {
				if _, err := h2.RunOnce(h.ctx, h.now(), h.pols, h.flatForecasts(30)); err != nil {
					t.Fatal(err)
				}
				if h.request(id).State.Terminal() {
					break
				}
				h.step(15 * time.Second)
			}
			if got := h.request(id); got.State != state.RequestDone {
				t.Fatalf("request %s: %s", got.State, got.Reason)
			}
			scales := 0
			for _, c := range h.mutating() {
				if strings.Contains(c, " /v1/job/"+res.Job+"/scale") {
					scales++
				}
			}
			if scales != 2 {
				t.Errorf("%d scale calls on the placeholder; want 2, one per allocation", scales)
			}
			for _, m := range h.request(id).Moves {
				if n := countStops(h, m.Alloc); n != 1 {
					t.Errorf("allocation %s stopped %d times", m.Alloc, n)
				}
				if m.Landed != "dc2" {
					t.Errorf("allocation %s landed in %q; want dc2", m.Alloc, m.Landed)
				}
			}
		})
	}
}

// TestReconciledReapIsMadeAgain kills a leader that announced the reaping
// of an orphaned placeholder and died before the call: reconciliation finds
// the placeholder still there, and the next leader reaps it after all.
func TestReconciledReapIsMadeAgain(t *testing.T) {
	h := newHarness(t, actScenario, actPolicies)
	h.run(h.flatForecasts(30)) // gives the cluster its ID
	orphan := state.PlaceholderPrefix + "rs-99"
	job, err := h.c.placeholderJob(state.Reservation{ID: "rs-99", Job: orphan, Locality: "dc2", Expires: h.now().Add(time.Hour),
		Chunks: []state.Chunk{{Size: state.Resources{CPU: 100, MemoryMB: 64}, Count: 1}}}, h.local.FSM.Act().ClusterID, 10)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.client.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	registered, _, err := h.client.Jobs().Info(orphan, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.step(20 * time.Second)
	id := intentID(state.IntentDeregisterHold, orphan, "reap", int(*registered.JobModifyIndex))
	crashAfter(t, h, state.Intent{ID: id, Kind: state.IntentDeregisterHold, Object: orphan, Detail: "reap"}, nil)
	h2 := newCoordinatorOn(t, h)
	if err := h2.Begin(h.ctx, h.now()); err != nil {
		t.Fatal(err)
	}
	if in, _ := h.local.FSM.Intent(id); in.Outcome != state.OutcomeNotDone {
		t.Fatalf("intent %+v", in)
	}
	if _, err := h2.RunOnce(h.ctx, h.now(), h.pols, h.flatForecasts(30)); err != nil {
		t.Fatal(err)
	}
	if j, _, err := h.client.Jobs().Info(orphan, nil); err == nil && !deref(j.Stop) {
		t.Error("the orphan survived the next leader")
	}
	if in, ok := h.local.FSM.Intent(redoID(id, 2)); !ok || in.Outcome != state.OutcomeDone {
		t.Errorf("the reaping was not announced again: %+v", in)
	}
}

// TestRestartKeepsAWindowsNodesOut restarts the leader inside a drain
// window: a follower pass that comes before the new leader's first plan
// (its policies not read yet) leaves the window's node out of scheduling.
func TestRestartKeepsAWindowsNodesOut(t *testing.T) {
	pols := windowPolicies("")
	h := newHarness(t, actScenario, pols)
	node := h.nodeID("a-")
	ineligible := func() bool {
		n, _, err := h.client.Nodes().Info(node, nil)
		if err != nil {
			t.Fatal(err)
		}
		return n.SchedulingEligibility == nomadapi.NodeSchedulingIneligible
	}
	for range 40 {
		h.run(h.flatForecasts(30))
		if ineligible() {
			break
		}
		h.step(time.Minute)
	}
	if !ineligible() {
		t.Fatalf("the window's node was never taken out of scheduling; decisions %+v", h.local.FSM.Decisions())
	}
	for h.now().Before(time.Date(2026, 1, 5, 6, 35, 0, 0, time.UTC)) {
		h.step(time.Minute)
		h.run(h.flatForecasts(30))
	}
	h2 := newCoordinatorOn(t, h)
	if err := h2.Begin(h.ctx, h.now()); err != nil {
		t.Fatal(err)
	}
	if err := h2.Follow(h.ctx, h.now()); err != nil {
		t.Fatal(err)
	}
	if !ineligible() {
		t.Errorf("the restarted leader's follower made the window's node eligible at %s, inside the window", h.now().Format("15:04"))
	}
}

// TestReconciledReapIsRecorded kills a leader whose reaping of an orphaned
// placeholder took effect before it could record it: the next leader finds
// the placeholder gone and records the reaping.
func TestReconciledReapIsRecorded(t *testing.T) {
	h := newHarness(t, actScenario, actPolicies)
	h.run(h.flatForecasts(30))
	orphan := state.PlaceholderPrefix + "rs-98"
	job, err := h.c.placeholderJob(state.Reservation{ID: "rs-98", Job: orphan, Locality: "dc2", Expires: h.now().Add(time.Hour),
		Chunks: []state.Chunk{{Size: state.Resources{CPU: 100, MemoryMB: 64}, Count: 1}}}, h.local.FSM.Act().ClusterID, 10)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.client.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	why := "reap " + orphan + ": its reservation is gone (an agent died before releasing it)"
	crashAfter(t, h, state.Intent{ID: intentID(state.IntentDeregisterHold, orphan, "reap", 7), Kind: state.IntentDeregisterHold,
		Object: orphan, Detail: why}, func() {
		if _, _, err := h.client.Jobs().Deregister(orphan, true, nil); err != nil {
			t.Fatal(err)
		}
	})
	if err := newCoordinatorOn(t, h).Begin(h.ctx, h.now()); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, d := range h.local.FSM.Decisions() {
		if d.Kind == "reap" && strings.Contains(d.Reason, orphan) {
			found = true
		}
	}
	if !found {
		t.Errorf("no reap decision for %s after the restart; decisions %+v", orphan, h.local.FSM.Decisions())
	}
}

// TestNewLeaderGivesBackASpreadsNode: the leader that took a node out of
// scheduling for a spread is gone before the spread ends; the next leader
// finishes the move and makes the node eligible again.
func TestNewLeaderGivesBackASpreadsNode(t *testing.T) {
	h := newHarness(t, spreadScenario, spreadPolicies)
	hot := h.nodeID("a-")
	h.run(h.flatForecasts(30))
	var id string
	for _, r := range h.local.FSM.Act().Requests {
		if r.Origin == "planner" && r.Source == "dc1" && r.Target == "dc1" && r.State == state.RequestRunning {
			id = r.ID
		}
	}
	eligibility := func() string {
		n, _, err := h.client.Nodes().Info(hot, nil)
		if err != nil {
			t.Fatal(err)
		}
		return n.SchedulingEligibility
	}
	if id == "" || eligibility() != nomadapi.NodeSchedulingIneligible {
		t.Fatalf("no spread running off a cordoned a-1: %+v", h.local.FSM.Act().Requests)
	}
	h.c = newCoordinatorOn(t, h)
	if err := h.c.Begin(h.ctx, h.now()); err != nil {
		t.Fatal(err)
	}
	if r := h.moveToDone(id); r.State != state.RequestDone {
		t.Fatalf("%s: %s", r.State, r.Reason)
	}
	if got := eligibility(); got != nomadapi.NodeSchedulingEligible {
		t.Errorf("a-1 %s after the next leader finished the spread", got)
	}
}

// TestNoStopWhileAWindowsNodeIsEligible kills a leader that had marked a
// drain window's move running and opened the intent taking the window's
// node out of scheduling, before its call reached Nomad (crash soak: five
// leaders in a row died there; the move sat running, and a later leader's
// follower stopped the allocation while the node was still eligible, so
// its replacement landed back on it). The next leader must not stop any
// allocation of the window while Nomad shows the node eligible: the node
// goes out of scheduling first, then the stop.
func TestNoStopWhileAWindowsNodeIsEligible(t *testing.T) {
	pols := windowPolicies("")
	h := newHarness(t, actScenario, pols)
	node := h.nodeID("a-")
	mustApply(t, h, state.SetQueuePaused{Paused: true, At: h.now(), By: "test"})
	r := h.windowRequest(func(x state.MigrationRequest) bool { return x.State.Queued() && len(x.Moves) > 0 })
	eligibleAt := func() bool {
		n, _, err := h.client.Nodes().Info(node, nil)
		if err != nil {
			t.Fatal(err)
		}
		return n.SchedulingEligibility == nomadapi.NodeSchedulingEligible
	}
	if !eligibleAt() {
		t.Fatal("the node is out of scheduling before any move started")
	}
	// The dead leader: the request running, the window's intent open, no call.
	v := r.Version
	r.State, r.Started = state.RequestRunning, h.now()
	mustApply(t, h, state.UpdateRequest{Request: r, IfVersion: v})
	crashAfter(t, h, state.Intent{ID: intentID(state.IntentNodeEligibility, node, windowKey(r), 0), Kind: state.IntentNodeEligibility,
		Request: r.ID, Object: node, Detail: "ineligible for " + windowKey(r)}, nil)
	mustApply(t, h, state.SetQueuePaused{Paused: false, At: h.now(), By: "test"})

	h2 := newCoordinatorOn(t, h)
	if err := h2.Begin(h.ctx, h.now()); err != nil {
		t.Fatal(err)
	}
	var stopsWhileEligible []string
	seen := len(h.mutating())
	check := func() {
		// Every stop since the last look: was the node eligible at it?
		// Nomad's log orders the calls; the node's eligibility changes
		// only through the calls in it.
		calls := h.mutating()
		for i := seen; i < len(calls); i++ {
			if strings.HasPrefix(calls[i], "PUT /v1/allocation/") && strings.HasSuffix(calls[i], "/stop") && eligibleBefore(calls, i, node) {
				stopsWhileEligible = append(stopsWhileEligible, calls[i])
			}
		}
		seen = len(calls)
	}
	for range 30 {
		if _, err := h2.RunOnce(h.ctx, h.now(), h.pols, h.flatForecasts(30)); err != nil {
			t.Fatal(err)
		}
		check()
		if err := h2.Follow(h.ctx, h.now()); err != nil {
			t.Fatal(err)
		}
		check()
		if h.request(r.ID).State.Terminal() {
			break
		}
		h.step(15 * time.Second)
	}
	if len(stopsWhileEligible) > 0 {
		t.Errorf("allocations stopped while the window's node was eligible: %v (calls %v)", stopsWhileEligible, h.mutating())
	}
	if got := h.request(r.ID); got.State != state.RequestDone || got.Attempts != 0 {
		t.Errorf("request %s %s after %d attempts: %s", got.ID, got.State, got.Attempts, got.Reason)
	} else if got.Moves[0].Error != "" {
		t.Errorf("move: %s", got.Moves[0].Error)
	}
}

// eligibleBefore reports whether node was eligible before calls[i]: no
// call before it set it ineligible (the harness's node starts eligible).
func eligibleBefore(calls []string, i int, node string) bool {
	for _, c := range calls[:i] {
		if c == "PUT /v1/node/"+node+"/eligibility" || c == "POST /v1/node/"+node+"/eligibility" {
			return false
		}
	}
	return true
}

// TestSettleTimeoutRunsFromTheStop: a request marked running long ago
// whose allocation was never stopped (its leader died first, and the move
// waited for a transfer slot or its nodes) is stopped now; the settle
// timeout counts from that stop, not from the start, so the move is not
// retried (using up an attempt) the moment it begins (crash soak: "not
// settled 12m10s after its start" in the pass that stopped it).
func TestSettleTimeoutRunsFromTheStop(t *testing.T) {
	h := newHarness(t, actScenario, actPolicies)
	r, a := runningRequest(t, h)
	v := r.Version
	r.Started = h.now().Add(-2 * MinMoveTimeout)
	mustApply(t, h, state.UpdateRequest{Request: r, IfVersion: v})
	for range 10 {
		if _, err := h.c.RunOnce(h.ctx, h.now(), h.pols, h.flatForecasts(30)); err != nil {
			t.Fatal(err)
		}
		if err := h.c.Follow(h.ctx, h.now()); err != nil {
			t.Fatal(err)
		}
		if got := h.request(r.ID); got.Attempts != 0 {
			t.Fatalf("retried (%d attempts): %s", got.Attempts, got.Reason)
		}
		if h.request(r.ID).State.Terminal() {
			break
		}
		h.step(10 * time.Second)
	}
	if got := h.request(r.ID); got.State != state.RequestDone {
		t.Errorf("request %s: %s", got.State, got.Reason)
	}
	if n := countStops(h, a.ID); n != 1 {
		t.Errorf("stopped %d times", n)
	}
}

// TestWaitForNodesOutTimesOut: a whole-node move whose node Nomad never
// shows out of scheduling (here Nomad fails every read of the node) waits,
// stopping nothing, but not for good: once it has waited longer than the
// move's settle timeout (10 minutes here), the attempt fails saying which
// node was not seen out of scheduling, for how long and why, and after
// three such attempts the request fails. Nothing is stopped meanwhile.
func TestWaitForNodesOutTimesOut(t *testing.T) {
	var refused atomic.Int32
	h := newHarness(t, actScenario, actPolicies, func(c *Config) {
		interpose(t, c, func(rp *httputil.ReverseProxy, w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/node/") && strings.Count(r.URL.Path, "/") == 3 {
				refused.Add(1)
				http.Error(w, "node read refused by the test", http.StatusInternalServerError)
				return
			}
			rp.ServeHTTP(w, r)
		})
	})
	node := h.nodeID("a-")
	id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Node: node, Target: "dc2", Reason: "maintenance"})
	if err != nil {
		t.Fatal(err)
	}
	for range 45 {
		h.run(h.flatForecasts(30))
		if err := h.c.Follow(h.ctx, h.now()); err != nil {
			t.Fatal(err)
		}
		if r := h.request(id); r.State.Terminal() {
			break
		}
		h.step(time.Minute)
	}
	var retried []string
	for _, d := range h.local.FSM.Decisions() {
		if d.Request == id && (d.Kind == "retry" || d.Kind == "fail") {
			retried = append(retried, d.Kind+": "+d.Reason)
		}
	}
	for _, c := range h.mutating() {
		if strings.HasSuffix(c, "/stop") {
			t.Errorf("%s while the node could not be seen out of scheduling", c)
		}
	}
	r := h.request(id)
	if r.State != state.RequestFailed || r.Attempts != MaxAttempts || len(retried) != MaxAttempts {
		t.Fatalf("request %s after %d attempts: %s (%d node reads refused; retries %q)", r.State, r.Attempts, r.Reason, refused.Load(), retried)
	}
	want := "no allocation stopped: node a-1 (" + shortID(node) + ") not seen out of scheduling for 11m0s, longer than the move's settle timeout 10m0s (reading it: "
	for _, d := range retried {
		if !strings.Contains(d, want) || !strings.Contains(d, "node read refused by the test") {
			t.Errorf("%q\nwant it to say %q… and why", d, want)
		}
	}
}

// TestSpreadKeepsAnOperatorsCordon: a leader opened the intent taking a
// spread's node out of scheduling and died before its call; meanwhile an
// operator took the node out of scheduling. The next leader finds the node
// ineligible and cannot tell whose doing that is (the intent records the
// node eligible before, the call may have been made): it finishes the
// spread, and leaves the node out of scheduling, saying why, instead of
// giving back an operator's cordon as its own.
func TestSpreadKeepsAnOperatorsCordon(t *testing.T) {
	h := newHarness(t, spreadScenario, spreadPolicies)
	hot := h.nodeID("a-")
	mustApply(t, h, state.SetQueuePaused{Paused: true, At: h.now(), By: "test"})
	h.run(h.flatForecasts(30))
	var r state.MigrationRequest
	for _, x := range h.local.FSM.Act().Requests {
		if x.Origin == "planner" && x.Source == "dc1" && x.Target == "dc1" && x.State.Queued() {
			r = x
		}
	}
	if r.ID == "" {
		t.Fatalf("no spread queued: %+v", h.local.FSM.Act().Requests)
	}
	// The dead leader: the spread running, its cordon announced, no call.
	v := r.Version
	r.State, r.Started = state.RequestRunning, h.now()
	mustApply(t, h, state.UpdateRequest{Request: r, IfVersion: v})
	crashAfter(t, h, state.Intent{ID: intentID(state.IntentNodeEligibility, hot, r.ID, 0), Kind: state.IntentNodeEligibility,
		Request: r.ID, Object: hot, Detail: "ineligible while its work spreads (was eligible)"}, func() {
		// The operator's cordon, between the intent and the call.
		if _, err := h.client.Nodes().ToggleEligibility(hot, false, nil); err != nil {
			t.Fatal(err)
		}
	})
	mustApply(t, h, state.SetQueuePaused{Paused: false, At: h.now(), By: "test"})
	h.c = newCoordinatorOn(t, h)
	if err := h.c.Begin(h.ctx, h.now()); err != nil {
		t.Fatal(err)
	}
	if got := h.moveToDone(r.ID); got.State != state.RequestDone {
		t.Fatalf("%s: %s", got.State, got.Reason)
	}
	for range 5 {
		h.step(15 * time.Second)
		if err := h.c.Follow(h.ctx, h.now()); err != nil {
			t.Fatal(err)
		}
	}
	if got := h.eligibility(hot); got != nomadapi.NodeSchedulingIneligible {
		t.Errorf("a-1 %s after the spread: the operator's cordon was given back as the spread's", got)
	}
	said := false
	for _, d := range h.local.FSM.Decisions() {
		if d.Request == r.ID && strings.Contains(d.Reason, "left out of scheduling") {
			said = true
		}
	}
	if !said {
		t.Errorf("no decision says why a-1 stays out of scheduling: %+v", h.local.FSM.Decisions())
	}
}

// saysLeftOut reports whether a decision of request id says node stays out
// of scheduling because its cordon was found, not seen made.
func saysLeftOut(h *harness, id, node string) bool {
	for _, d := range h.local.FSM.Decisions() {
		if d.Kind == "hold" && d.Request == id && strings.Contains(d.Reason, "node "+node+" is out of scheduling") &&
			strings.Contains(d.Reason, "will be left out of scheduling") {
			return true
		}
	}
	return false
}

// TestGivenUpNodeKeepsAnOperatorsCordon: as TestSpreadKeepsAnOperatorsCordon
// for a whole-node request. A leader opened the intent taking the node out
// of scheduling and died before its call; an operator cordoned the node
// meanwhile. The next leader finds it ineligible and cannot tell whose
// doing that is; when the request is cancelled the node stays out of
// scheduling (a decision says why) instead of the operator's cordon being
// given back as foreshape's. A cordon foreshape saw made is given back.
func TestGivenUpNodeKeepsAnOperatorsCordon(t *testing.T) {
	for _, tc := range []struct {
		name      string
		confirmed bool
	}{{"unconfirmed", false}, {"confirmed", true}} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, actScenario, actPolicies)
			node := h.nodeID("a-")
			mustApply(t, h, state.SetQueuePaused{Paused: true, At: h.now(), By: "test"})
			id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Node: node, Target: "dc2", Reason: "maintenance"})
			if err != nil {
				t.Fatal(err)
			}
			in := state.Intent{ID: intentID(state.IntentNodeEligibility, node, id, 0), Kind: state.IntentNodeEligibility,
				Request: id, Object: node, Detail: "ineligible"}
			if tc.confirmed {
				// A leader that saw its call answered.
				if err := h.c.takeOut(h.ctx, h.now(), node, h.request(id), "ineligible", 0); err != nil {
					t.Fatal(err)
				}
			} else {
				crashAfter(t, h, in, func() {
					// The operator's cordon, between the intent and the call.
					if _, err := h.client.Nodes().ToggleEligibility(node, false, nil); err != nil {
						t.Fatal(err)
					}
				})
			}
			h.c = newCoordinatorOn(t, h)
			if err := h.c.Begin(h.ctx, h.now()); err != nil {
				t.Fatal(err)
			}
			mustApply(t, h, state.CancelRequest{ID: id, At: h.now(), Reason: "test: the operator gives it up"})
			// The new leader's first pass: before it, its follower gives
			// back nothing a drain window may hold (held).
			h.run(h.flatForecasts(30))
			for range 3 {
				h.step(15 * time.Second)
				if err := h.c.Follow(h.ctx, h.now()); err != nil {
					t.Fatal(err)
				}
			}
			n, _, err := h.client.Nodes().Info(node, nil)
			if err != nil {
				t.Fatal(err)
			}
			want := nomadapi.NodeSchedulingIneligible
			if tc.confirmed {
				want = nomadapi.NodeSchedulingEligible
			}
			if n.SchedulingEligibility != want {
				t.Errorf("a-1 %s after %s was cancelled, want %s", n.SchedulingEligibility, id, want)
			}
			if said := saysLeftOut(h, id, node); said != !tc.confirmed {
				t.Errorf("a decision says a-1 is left out of scheduling: %v; decisions %+v", said, h.local.FSM.Decisions())
			}
		})
	}
}

// TestWindowKeepsAnOperatorsCordon: the same for a drain window's node. A
// leader opened the window's intent taking the node out of scheduling and
// died before its call; an operator cordoned the node meanwhile. The next
// leader finishes the window's moves and, when the window ends, leaves the
// node out of scheduling, saying why.
func TestWindowKeepsAnOperatorsCordon(t *testing.T) {
	pols := windowPolicies("")
	h := newHarness(t, actScenario, pols)
	node := h.nodeID("a-")
	mustApply(t, h, state.SetQueuePaused{Paused: true, At: h.now(), By: "test"})
	r := h.windowRequest(func(x state.MigrationRequest) bool { return x.State.Queued() && len(x.Moves) > 0 })
	end := h.windowEnd(r)
	v := r.Version
	r.State, r.Started = state.RequestRunning, h.now()
	mustApply(t, h, state.UpdateRequest{Request: r, IfVersion: v})
	crashAfter(t, h, state.Intent{ID: intentID(state.IntentNodeEligibility, node, windowKey(r), 0), Kind: state.IntentNodeEligibility,
		Request: r.ID, Object: node, Detail: "ineligible for " + windowKey(r)}, func() {
		if _, err := h.client.Nodes().ToggleEligibility(node, false, nil); err != nil {
			t.Fatal(err)
		}
	})
	mustApply(t, h, state.SetQueuePaused{Paused: false, At: h.now(), By: "test"})
	h.c = newCoordinatorOn(t, h)
	if err := h.c.Begin(h.ctx, h.now()); err != nil {
		t.Fatal(err)
	}
	h.passUntil(end.Add(2*time.Minute), nil)
	if got := h.request(r.ID); got.State != state.RequestDone {
		t.Errorf("%s %s: %s", got.ID, got.State, got.Reason)
	}
	if got := h.eligibility(node); got != nomadapi.NodeSchedulingIneligible {
		t.Errorf("a-1 %s after the window ended at %s: the operator's cordon was given back as the window's", got, end.Format("15:04"))
	}
	if !saysLeftOut(h, r.ID, node) {
		t.Errorf("no decision says why a-1 stays out of scheduling: %+v", h.local.FSM.Decisions())
	}
}

// TestWindowLeavesANodeCordonedBeforeIt: an operator took the window's node
// out of scheduling before the window began, so foreshape opened no intent
// for it; when the window ends the node stays out (before, the window's end
// made it eligible as if foreshape had cordoned it).
func TestWindowLeavesANodeCordonedBeforeIt(t *testing.T) {
	pols := windowPolicies("")
	h := newHarness(t, actScenario, pols)
	node := h.nodeID("a-")
	if _, err := h.client.Nodes().ToggleEligibility(node, false, nil); err != nil {
		t.Fatal(err)
	}
	r := h.windowRequest(func(x state.MigrationRequest) bool { return len(x.Moves) > 0 })
	end := h.windowEnd(r)
	h.passUntil(end.Add(2*time.Minute), nil)
	if got := h.request(r.ID); got.State != state.RequestDone {
		t.Errorf("%s %s: %s", got.ID, got.State, got.Reason)
	}
	if got := h.eligibility(node); got != nomadapi.NodeSchedulingIneligible {
		t.Errorf("a-1 %s after the window ended at %s: the operator's cordon from before the window was given back", got, end.Format("15:04"))
	}
}

// TestDrainWindowGivesItsNodeBack: a window of a drain-strategy policy
// drains its node through Nomad (which leaves it ineligible); the window's
// end makes it eligible again, foreshape's drain being its own.
func TestDrainWindowGivesItsNodeBack(t *testing.T) {
	pols := windowPolicies("")
	pols = drainStrategy(pols)
	h := newHarness(t, actScenario, pols)
	node := h.nodeID("a-")
	r := h.windowRequest(func(x state.MigrationRequest) bool { return true })
	if r.Strategy != "drain" {
		t.Fatalf("the window's request %s has strategy %q, not drain", r.ID, r.Strategy)
	}
	end := h.windowEnd(r)
	sawOut := false
	h.passUntil(end.Add(2*time.Minute), func() {
		if n, _, err := h.client.Nodes().Info(node, nil); err == nil && n.SchedulingEligibility == nomadapi.NodeSchedulingIneligible && h.now().Before(end) {
			sawOut = true
		}
	})
	if !sawOut {
		t.Fatalf("a-1 was never out of scheduling during the window; decisions %+v", h.local.FSM.Decisions())
	}
	if got := h.eligibility(node); got != nomadapi.NodeSchedulingEligible {
		t.Errorf("a-1 %s after the drain window ended at %s", got, end.Format("15:04"))
	}
}

// TestDrainWindowKeepsAnOperatorsCordon: an operator cordoned the node of
// a drain-strategy window before it began, so foreshape opens no cordon
// of its own (holdNodes skips a node already out) and goes straight to
// its drain, which records that the node was ineligible before. The
// window's end reaches the drain's give-back: the drain is foreshape's,
// the cordon is not, so the node stays out of scheduling (not draining)
// and a hold decision says why (before, the end made it eligible: the
// drain intent did not record what the node was).
func TestDrainWindowKeepsAnOperatorsCordon(t *testing.T) {
	pols := windowPolicies("")
	pols = drainStrategy(pols)
	h := newHarness(t, actScenario, pols)
	node := h.nodeID("a-")
	if _, err := h.client.Nodes().ToggleEligibility(node, false, nil); err != nil {
		t.Fatal(err)
	}
	r := h.windowRequest(func(x state.MigrationRequest) bool { return true })
	if r.Strategy != "drain" || r.Resource.ID != node {
		t.Fatalf("the window's request %s is %s by %q, not a-1's drain", r.ID, r.Resource, r.Strategy)
	}
	end := h.windowEnd(r)
	h.passUntil(end.Add(2*time.Minute), nil)
	r = h.request(r.ID)
	if r.State != state.RequestDone {
		t.Errorf("%s %s: %s", r.ID, r.State, r.Reason)
	}
	// The give-back went through the drain, not a cordon of foreshape's.
	for _, id := range attemptIntents(node, r) {
		if in, ok := h.local.FSM.Intent(id); ok {
			t.Errorf("foreshape cordoned the node an operator had cordoned: %+v", in)
		}
	}
	drain, ok := h.local.FSM.Intent(intentID(state.IntentDrainNode, node, r.ID, 0))
	if !ok || drain.Outcome != state.OutcomeDone {
		t.Fatalf("no done drain of a-1 for %s: %+v (calls %v)", r.ID, drain, h.mutating())
	}
	if drain.Before != state.NodeWasIneligible {
		t.Errorf("the drain intent records the node was %q before; want %q", drain.Before, state.NodeWasIneligible)
	}
	n, _, err := h.client.Nodes().Info(node, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n.SchedulingEligibility != nomadapi.NodeSchedulingIneligible || n.DrainStrategy != nil {
		t.Errorf("a-1 %s, draining %v after the drain window ended at %s: the operator's cordon from before the window was given back",
			n.SchedulingEligibility, n.DrainStrategy != nil, end.Format("15:04"))
	}
	said := false
	for _, d := range h.local.FSM.Decisions() {
		if d.Kind == "hold" && strings.Contains(d.Reason, "a-1 stays out of scheduling after window/") && strings.Contains(d.Reason, "an operator's cordon") {
			said = true
		}
		if d.Kind == "restore" {
			t.Errorf("a restore decision: %s", d.Reason)
		}
	}
	if !said {
		t.Errorf("no hold decision says a-1 stays out of scheduling; decisions %+v", h.local.FSM.Decisions())
	}
}

// TestKeptCordonEndsOnlyForeshapesDrain: at a drain window's end, for a
// node an operator had cordoned before foreshape drained it, foreshape
// ends its own drain if it still runs and leaves the node ineligible; a
// drain that is not its own (another request's meta) is left running; a
// new leader reads the give-back as done only once foreshape's drain has
// ended.
func TestKeptCordonEndsOnlyForeshapesDrain(t *testing.T) {
	h := newHarness(t, actScenario, actPolicies)
	node := h.nodeID("a-")
	if _, err := h.client.Nodes().ToggleEligibility(node, false, nil); err != nil {
		t.Fatal(err)
	}
	// The drain still runs: the sim's clock does not move in this test.
	if _, err := h.client.Nodes().UpdateDrainOpts(node, &nomadapi.DrainOptions{DrainSpec: &nomadapi.DrainSpec{Deadline: time.Hour},
		Meta: map[string]string{"foreshape.request": "mr-other"}}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := h.c.refresh(h.ctx); err != nil {
		t.Fatal(err)
	}
	draining := func() bool {
		n, _, err := h.client.Nodes().Info(node, nil)
		if err != nil {
			t.Fatal(err)
		}
		if n.SchedulingEligibility != nomadapi.NodeSchedulingIneligible {
			t.Fatalf("a-1 %s: the operator's cordon was given back", n.SchedulingEligibility)
		}
		return n.DrainStrategy != nil
	}
	if !draining() {
		t.Fatal("a-1 finished draining at once: the test needs a drain that still runs")
	}
	r := state.MigrationRequest{ID: "mr-1", Policy: "dc1", Source: "dc1"}
	var ds []state.Decision
	h.c.keepOperators(h.ctx, h.now(), node, "window/dc1/maintenance/a", "window/dc1/maintenance/a", r, state.NodeWasIneligible, &ds)
	if !draining() {
		t.Errorf("mr-1's window ended a drain of mr-other's")
	}
	if _, err := h.client.Nodes().UpdateDrainOpts(node, &nomadapi.DrainOptions{DrainSpec: &nomadapi.DrainSpec{Deadline: time.Hour},
		Meta: map[string]string{"foreshape.request": "mr-1"}}, nil); err != nil {
		t.Fatal(err)
	}
	in := state.Intent{ID: intentID(state.IntentNodeEligibility, node, "window/dc1/maintenance/b", -1), Kind: state.IntentNodeEligibility,
		Request: "mr-1", Object: node, Detail: keptCordon}
	if ok, err := h.c.happened(h.ctx, in); err != nil || ok {
		t.Errorf("with foreshape's drain still running, a new leader reads the give-back as done (%v, %v)", ok, err)
	}
	ds = nil
	h.c.keepOperators(h.ctx, h.now(), node, "window/dc1/maintenance/b", "window/dc1/maintenance/b", r, state.NodeWasIneligible, &ds)
	if draining() {
		t.Errorf("foreshape's own drain still runs after its window ended")
	}
	if ok, err := h.c.happened(h.ctx, in); err != nil || !ok {
		t.Errorf("after the give-back, a new leader reads it as not done (%v, %v)", ok, err)
	}
	if len(ds) != 1 || ds[0].Kind != "hold" || !strings.Contains(ds[0].Reason, "stays out of scheduling") {
		t.Errorf("decisions %+v; want one hold saying the node stays out of scheduling", ds)
	}
	// Eligible again by a window's end (someone gave it back): no
	// decision says it stays out, and it stays eligible.
	if _, err := h.client.Nodes().ToggleEligibility(node, true, nil); err != nil {
		t.Fatal(err)
	}
	ds = nil
	h.c.keepOperators(h.ctx, h.now(), node, "window/dc1/maintenance/c", "window/dc1/maintenance/c", r, state.NodeWasIneligible, &ds)
	if n, _, err := h.client.Nodes().Info(node, nil); err != nil || n.SchedulingEligibility != nomadapi.NodeSchedulingEligible {
		t.Errorf("a-1 after the window's end found it eligible: %v %v", n.SchedulingEligibility, err)
	}
	if len(ds) != 0 {
		t.Errorf("decisions %+v for a node eligible again; want none", ds)
	}
}

// TestWindowGivesBackItsEmptyNodes: a window over two nodes, one of them
// holding nothing to move, takes both out of scheduling at its first move
// and gives both back when it ends.
func TestWindowGivesBackItsEmptyNodes(t *testing.T) {
	scenario := strings.Replace(actScenario, `nodes "b" {`, `nodes "c" {
  datacenter = "dc1"
  count      = 0
  node_class = "web"
  cpu        = 4000
  memory     = 8192
  iops       = 1000
}

nodes "b" {`, 1)
	pols := windowPolicies(`    nodes    = "*"
`)
	h := newHarness(t, scenario, pols)
	ids, err := h.sim.AddNodes("c", 1)
	if err != nil {
		t.Fatal(err)
	}
	empty := ids[0]
	h.step(30 * time.Second)
	node := h.nodeID("a-")
	r := h.windowRequest(func(x state.MigrationRequest) bool { return len(x.Moves) > 0 })
	if !slices.Contains(r.Exclude, empty) {
		t.Fatalf("the window's nodes %v leave out the empty node %s", r.Exclude, empty)
	}
	end := h.windowEnd(r)
	sawOut := false
	h.passUntil(end.Add(2*time.Minute), func() {
		if n, _, err := h.client.Nodes().Info(empty, nil); err == nil && n.SchedulingEligibility == nomadapi.NodeSchedulingIneligible && h.now().Before(end) {
			sawOut = true
		}
	})
	if !sawOut {
		t.Fatalf("the empty node was never out of scheduling during the window")
	}
	for _, id := range []string{node, empty} {
		n, _, err := h.client.Nodes().Info(id, nil)
		if err != nil {
			t.Fatal(err)
		}
		if n.SchedulingEligibility != nomadapi.NodeSchedulingEligible {
			t.Errorf("%s %s after the window ended at %s", n.Name, n.SchedulingEligibility, end.Format("15:04"))
		}
	}
}

// windowPolicies are actPolicies with a daily one-hour drain window of
// dc1 from 06:30; extra goes into the schedule block.
func windowPolicies(extra string) string {
	return strings.Replace(actPolicies, `    targets      = ["dc2"]
  }`, `    targets      = ["dc2"]
    lead_time    = "20m"
  }
  schedule "maintenance" {
    cron     = "30 6 * * *"
    duration = "1h"
    action   = "drain"
`+extra+`  }`, 1)
}

// windowRequest runs passes a minute apart until the window has queued a
// request that want accepts, and returns it.
func (h *harness) windowRequest(want func(state.MigrationRequest) bool) state.MigrationRequest {
	h.t.Helper()
	for range 40 {
		h.run(h.flatForecasts(30))
		for _, x := range h.local.FSM.Act().Requests {
			if x.Origin == "schedule" && want(x) {
				return x
			}
		}
		h.step(time.Minute)
	}
	h.t.Fatalf("the window queued no such request; decisions %+v", h.local.FSM.Decisions())
	return state.MigrationRequest{}
}

// windowEnd is the end of r's window.
func (h *harness) windowEnd(r state.MigrationRequest) time.Time {
	h.t.Helper()
	end, ok := h.c.windowEnd(r)
	if !ok {
		h.t.Fatalf("no window end for %s (%s)", r.ID, r.OriginKey)
	}
	return end
}

// TestMoveGoesOnWhenAnOperatorGivesItsNodeBack: a whole-node move took its
// node out of scheduling and stopped its first allocation; an operator
// then made the node eligible again. An eligibility change Nomad answered
// is in effect (its leader applied it before answering, reads go to that
// leader, a node registering again keeps it), so a node foreshape took
// out and finds eligible was made so since: the operator's choice stands
// (foreshape does not cordon it again) and the next stop goes ahead, with
// a start decision saying replacements may land back on the node (before,
// nothing said so).
func TestMoveGoesOnWhenAnOperatorGivesItsNodeBack(t *testing.T) {
	h := newHarness(t, actScenario, actPolicies)
	node := h.nodeID("a-")
	id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Node: node, Target: "dc2", Reason: "maintenance"})
	if err != nil {
		t.Fatal(err)
	}
	stopped := func() int {
		n := 0
		for _, m := range h.request(id).Moves {
			if !m.Stopped.IsZero() {
				n++
			}
		}
		return n
	}
	for range 10 {
		h.run(h.flatForecasts(30))
		if stopped() > 0 {
			break
		}
		h.step(30 * time.Second)
	}
	if stopped() != 1 {
		t.Fatalf("%d of mr-1's allocations stopped after its start; want 1 (max_parallel 1)", stopped())
	}
	if _, err := h.client.Nodes().ToggleEligibility(node, true, nil); err != nil {
		t.Fatal(err)
	}
	calls := len(h.mutating())
	for range 30 {
		h.step(30 * time.Second)
		h.run(h.flatForecasts(30))
		if err := h.c.Follow(h.ctx, h.now()); err != nil {
			t.Fatal(err)
		}
		if h.request(id).State.Terminal() {
			break
		}
	}
	if r := h.request(id); r.State != state.RequestDone {
		t.Fatalf("%s %s: %s", id, r.State, r.Reason)
	}
	for _, c := range h.mutating()[calls:] {
		if strings.HasSuffix(c, "/eligibility") {
			t.Errorf("%s after the operator made a-1 eligible: foreshape overrode the operator's choice", c)
		}
	}
	said := 0
	for _, d := range h.local.FSM.Decisions() {
		if d.Request == id && d.Kind == "start" && strings.Contains(d.Reason, "node a-1 ("+shortID(node)+") is in scheduling again") &&
			strings.Contains(d.Reason, "may land back on it") {
			said++
		}
	}
	if said != 1 {
		t.Errorf("%d start decisions say mr-1 goes ahead with a-1 in scheduling again; want 1; decisions %+v", said, h.local.FSM.Decisions())
	}
}

// TestHoldReadsTheNodeAfresh: an operator cordons a queued node's node
// just after a pass has read the nodes; the pass's view still shows it
// eligible. Taking it out of scheduling then (holdNodes) would record the
// operator's cordon as foreshape's, and give it back when the request is
// cancelled; read afresh, the node is seen out already and left as it is
// (before, the cancel made a-1 eligible).
func TestHoldReadsTheNodeAfresh(t *testing.T) {
	var armed atomic.Bool
	var node atomic.Value
	h := newHarness(t, actScenario, actPolicies, func(c *Config) {
		direct := c.Nomad
		interpose(t, c, func(rp *httputil.ReverseProxy, w http.ResponseWriter, r *http.Request) {
			if !(r.Method == http.MethodGet && r.URL.Path == "/v1/nodes" && r.URL.Query().Get("resources") == "true" && armed.CompareAndSwap(true, false)) {
				rp.ServeHTTP(w, r)
				return
			}
			// The operator's cordon, right after Nomad answered the pass's
			// read of the nodes and before the pass gets the answer (the
			// answer is held until then: a proxied answer may reach the
			// pass before the cordon is made).
			rec := httptest.NewRecorder()
			rp.ServeHTTP(rec, r)
			if _, err := direct.Nodes().ToggleEligibility(node.Load().(string), false, nil); err != nil {
				t.Error(err)
			}
			maps.Copy(w.Header(), rec.Header())
			w.WriteHeader(rec.Code)
			w.Write(rec.Body.Bytes())
		})
	})
	node.Store(h.nodeID("a-"))
	mustApply(t, h, state.SetQueuePaused{Paused: true, At: h.now(), By: "test"})
	id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Node: node.Load().(string), Target: "dc2", Reason: "maintenance"})
	if err != nil {
		t.Fatal(err)
	}
	h.step(15 * time.Second)
	// Move the nodes' index so that the pass reads them again: setting the
	// eligibility a node already has is a no-op in Nomad (no index change),
	// so the node is taken out and put back.
	for _, eligible := range []bool{false, true} {
		if _, err := h.client.Nodes().ToggleEligibility(node.Load().(string), eligible, nil); err != nil {
			t.Fatal(err)
		}
	}
	armed.Store(true)
	h.run(h.flatForecasts(30))
	if armed.Load() {
		t.Fatal("the pass did not read the nodes: the operator's cordon never came")
	}
	mustApply(t, h, state.CancelRequest{ID: id, At: h.now(), Reason: "test: the operator gives it up"})
	for range 3 {
		h.step(15 * time.Second)
		if err := h.c.Follow(h.ctx, h.now()); err != nil {
			t.Fatal(err)
		}
	}
	if got := h.eligibility(node.Load().(string)); got != nomadapi.NodeSchedulingIneligible {
		t.Errorf("a-1 %s after %s was cancelled: the operator's cordon, made after the pass read the nodes, was given back as foreshape's", got, id)
	}
}

// TestGivenUpDrainKeepsAnOperatorsCordon: a whole-node request of a
// drain-strategy policy for a node an operator had cordoned drains it
// without a cordon of its own (holdNodes leaves a node out already), and
// fails (its attempts used up) while its drain runs. foreshape ends its
// own drain and leaves the operator's cordon, saying so (before, nothing
// was done: the failed request's drain ran on).
func TestGivenUpDrainKeepsAnOperatorsCordon(t *testing.T) {
	pols := drainStrategy(actPolicies)
	h := newHarness(t, actScenario, pols)
	node := h.nodeID("a-")
	if _, err := h.client.Nodes().ToggleEligibility(node, false, nil); err != nil {
		t.Fatal(err)
	}
	id := h.drainedOver(node, "the operator's cordon")
	if n, _, err := h.client.Nodes().Info(node, nil); err != nil || n.DrainStrategy == nil {
		t.Fatalf("a-1 not draining after %s started (%v): the test needs a drain that still runs", id, err)
	}
	h.failAttempts(id)
	for range 3 {
		if err := h.c.Follow(h.ctx, h.now()); err != nil {
			t.Fatal(err)
		}
	}
	h.drainEndedStillOut(node, id, "the operator's cordon")
	said := false
	for _, d := range h.local.FSM.Decisions() {
		if d.Kind == "hold" && d.Request == id && strings.Contains(d.Reason, "a-1 stays out of scheduling after "+id+" was given up") {
			said = true
		}
	}
	if !said {
		t.Errorf("no hold decision says a-1 stays out of scheduling; decisions %+v", h.local.FSM.Decisions())
	}
}

// markRunning does what start does first, and nothing more: a leader
// that stopped right after it.
func markRunning(t *testing.T, h *harness, id string) {
	t.Helper()
	r := h.request(id)
	v := r.Version
	r.State, r.Started = state.RequestRunning, h.now()
	mustApply(t, h, state.UpdateRequest{Request: r, IfVersion: v})
}

// TestDrainResumedAfterALeaderStoppedBeforeIt: a drain request marked
// running by a leader that stopped before it drained the node (here,
// inside the release of its reservation) is drained by the next leader;
// it stayed running for good, holding its place in max_parallel, with no
// drain ever made.
func TestDrainResumedAfterALeaderStoppedBeforeIt(t *testing.T) {
	h := newHarness(t, actScenario, drainStrategy(actPolicies))
	node := h.nodeID("a-")
	id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Node: node, Target: "dc2"})
	if err != nil {
		t.Fatal(err)
	}
	h.run(h.flatForecasts(30)) // reserves
	h.step(30 * time.Second)
	res, ok := h.local.FSM.Act().ReservationFor(id)
	if !ok {
		t.Fatal("no reservation")
	}
	markRunning(t, h, id)
	crashAfter(t, h, state.Intent{ID: intentID(state.IntentDeregisterHold, res.Job, id, 0), Kind: state.IntentDeregisterHold,
		Request: id, Reservation: res.ID, Object: res.Job, Detail: "handed over to the drain"}, nil)
	h.c = newCoordinatorOn(t, h)
	if err := h.c.Begin(h.ctx, h.now()); err != nil {
		t.Fatal(err)
	}
	h.passUntil(h.now().Add(3*time.Hour), nil)
	drains := 0
	for _, c := range h.mutating() {
		if strings.HasSuffix(c, "/drain") {
			drains++
		}
	}
	if r := h.request(id); drains != 1 || r.State != state.RequestDone {
		t.Errorf("request %s (%s) after %d drains; want it done after one", r.State, r.Reason, drains)
	}
}

// TestAffinityAddedAfterALeaderStoppedBeforeIt: an affinity request marked
// running by a leader that stopped before its job update has the affinity
// added before its allocation is stopped (its replacement landed outside
// the target without it).
func TestAffinityAddedAfterALeaderStoppedBeforeIt(t *testing.T) {
	h := newHarness(t, actScenario, affinityStrategy(actPolicies))
	a := h.allocs("web")[0]
	id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Allocation: a.ID, Target: "dc2"})
	if err != nil {
		t.Fatal(err)
	}
	h.run(h.flatForecasts(30))
	h.step(30 * time.Second)
	markRunning(t, h, id)
	h.c = newCoordinatorOn(t, h)
	if err := h.c.Begin(h.ctx, h.now()); err != nil {
		t.Fatal(err)
	}
	h.passUntil(h.now().Add(time.Hour), nil)
	r := h.request(id)
	if r.State != state.RequestDone || len(r.Moves) != 1 || r.Moves[0].Landed != "dc2" {
		t.Errorf("request %s (%s), moves %+v; want done, landed in dc2", r.State, r.Reason, r.Moves)
	}
	h.wantAffinity("web", "dc2")
}

// dyingApplier is a leader's applier that loses leadership right after
// the command die names commits: every later apply fails, as Raft's do
// for a deposed leader.
type dyingApplier struct {
	inner Applier
	die   func(state.Command) bool
	dead  bool
}

func (d *dyingApplier) Apply(ctx context.Context, cmd state.Command) (state.Result, error) {
	if d.dead {
		return state.Result{}, errors.New("leadership lost")
	}
	res, err := d.inner.Apply(ctx, cmd)
	if err == nil && d.die(cmd) {
		d.dead = true
	}
	return res, err
}

// TestPlannedReservationOfALeaderStoppedBeforeItsIntent: a leader that
// recorded a reservation planned and stopped before it announced its
// placeholder's registration left the reservation planned, with no intent
// and nothing in Nomad. The next leader releases it and places a new one
// in its first pass, and the move goes ahead, one placeholder registered
// in all; one whose leader stopped after registering its placeholder,
// before marking it held, is held and handed over. The request waited,
// reserving, until the reservation's reserve.ttl (an hour) was over.
func TestPlannedReservationOfALeaderStoppedBeforeItsIntent(t *testing.T) {
	for _, tc := range []struct {
		name string
		die  func(state.Command) bool
	}{
		{"before its intent", func(c state.Command) bool {
			p, ok := c.(state.PutReservation)
			return ok && p.Reservation.State == state.ReservationPlanned
		}},
		{"after its registration", func(c state.Command) bool {
			in, ok := c.(state.CloseIntent)
			return ok && strings.HasPrefix(in.ID, string(state.IntentRegisterHold)+"/")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, actScenario, actPolicies)
			id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Node: h.nodeID("a-"), Target: "dc2"})
			if err != nil {
				t.Fatal(err)
			}
			cfg := h.c.cfg
			cfg.Apply = &dyingApplier{inner: h.local, die: tc.die}
			dead, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := dead.RunOnce(h.ctx, h.now(), h.pols, h.flatForecasts(30)); err != nil {
				t.Fatal(err)
			}
			old, ok := h.local.FSM.Act().ReservationFor(id)
			if !ok || old.State != state.ReservationPlanned || len(h.local.FSM.Act().OpenIntents) != 0 {
				t.Fatalf("reservation %+v (found %v), open intents %v; want it planned, no intent open", old, ok, h.local.FSM.Act().OpenIntents)
			}
			if err := h.c.Begin(h.ctx, h.now()); err != nil {
				t.Fatal(err)
			}
			h.passUntil(h.now().Add(10*time.Minute), nil)
			if r := h.request(id); r.State != state.RequestDone {
				t.Errorf("request %s: %s; want done", r.State, r.Reason)
			}
			for _, res := range h.local.FSM.Act().Reservations {
				if res.ID == old.ID && res.State != state.ReservationReleased {
					t.Errorf("reservation %s left %s (%s)", res.ID, res.State, res.Reason)
				}
			}
			registers := 0
			for _, in := range h.local.FSM.Intents() {
				if in.Kind == state.IntentRegisterHold {
					registers++
				}
			}
			if registers != 1 {
				t.Errorf("%d placeholders registered; want one", registers)
			}
		})
	}
}

// TestWindowMatchingNoNodeNotedOnce: the planner's wait for a drain window
// whose nodes glob matches nothing, said every pass, is in the decision
// log once per ten minutes, not once a minute.
func TestWindowMatchingNoNodeNotedOnce(t *testing.T) {
	h := newHarness(t, actScenario, windowPolicies(`    nodes    = "no-such-rack-*"`+"\n"))
	var waits int
	for range 30 {
		h.run(h.flatForecasts(30))
		h.step(time.Minute)
	}
	for _, d := range h.local.FSM.Decisions() {
		if d.Kind == "wait" && strings.Contains(d.Reason, "nothing to drain") {
			waits++
		}
	}
	if waits < 2 || waits > 4 {
		t.Errorf("%d wait decisions for the window in 30 passes a minute apart; want one per ten minutes", waits)
	}
	if len(h.local.FSM.Act().Requests) != 0 {
		t.Errorf("requests %+v", h.local.FSM.Act().Requests)
	}
}

// TestReconcileIntentsOnAPurgedNode: a leader stopped with a drain and an
// eligibility call open on a node that was purged from Nomad since. The
// next leader's reconciliation closes both (Nomad answers 404 for the
// node) instead of failing the start of every term it tries: the drain
// counts as done (nothing of the node is left to drain) and the
// eligibility not (there is no node to keep out of scheduling).
func TestReconcileIntentsOnAPurgedNode(t *testing.T) {
	h := newHarness(t, actScenario, actPolicies)
	gone := "0b9c2d3e-0000-4000-8000-00000000dead"
	drain := state.Intent{ID: intentID(state.IntentDrainNode, gone, "r-gone", 0), Kind: state.IntentDrainNode, Request: "r-gone", Object: gone, Detail: "deadline 1h0m0s"}
	elig := state.Intent{ID: intentID(state.IntentNodeEligibility, gone, "r-gone", 0), Kind: state.IntentNodeEligibility, Request: "r-gone", Object: gone, Detail: "ineligible"}
	crashAfter(t, h, drain, nil)
	crashAfter(t, h, elig, nil)
	h2 := newCoordinatorOn(t, h)
	if err := h2.Begin(h.ctx, h.now()); err != nil {
		t.Fatalf("Begin with intents on a purged node: %v", err)
	}
	for _, c := range []struct {
		id   string
		want state.IntentOutcome
	}{{drain.ID, state.OutcomeDone}, {elig.ID, state.OutcomeNotDone}} {
		in, ok := h.local.FSM.Intent(c.id)
		if !ok || in.Outcome != c.want {
			t.Errorf("intent %s: %+v; want closed %s", c.id, in, c.want)
		}
	}
	if open := h.local.FSM.Act().OpenIntents; len(open) != 0 {
		t.Errorf("%d intents left open", len(open))
	}
}
