package migrate

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/plugins/target"
	"github.com/foreshape/foreshape/policies"
	"github.com/foreshape/foreshape/sim"
)

// lostAnswers routes the coordinator's Nomad calls through a proxy that
// lets the first n requests match catches take effect in Nomad and then
// answers them 500, as a Nomad server does whose write was applied and
// whose answer was lost (its leader changed while it committed, a timeout
// between the servers). caught counts them.
func lostAnswers(t *testing.T, n int, match func(*http.Request) bool, caught *atomic.Int32) func(*Config) {
	return func(c *Config) {
		var left atomic.Int32
		left.Store(int32(n))
		interpose(t, c, func(rp *httputil.ReverseProxy, w http.ResponseWriter, r *http.Request) {
			if match(r) && left.Add(-1) >= 0 {
				rp.ServeHTTP(httptest.NewRecorder(), r) // it takes effect…
				caught.Add(1)
				http.Error(w, "rpc error: leadership lost while committing log", http.StatusInternalServerError) // …its answer is lost
				return
			}
			rp.ServeHTTP(w, r)
		})
	}
}

// TestTakeOutWhoseAnswerWasLostIsGivenBack: Nomad takes a queued
// whole-node request's node out of scheduling and answers the call with a
// 500. foreshape reads the node back, finds it out and records the take-out
// as its own, so the node is given back when the operator cancels the
// request (before, the intent was recorded failed, the next pass found the
// node out and took it for an operator's cordon, and the cancel left the
// node out of scheduling for good, without a word).
func TestTakeOutWhoseAnswerWasLostIsGivenBack(t *testing.T) {
	var caught atomic.Int32
	h := newHarness(t, actScenario, actPolicies, lostAnswers(t, 1, func(r *http.Request) bool {
		return r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/eligibility")
	}, &caught))
	node := h.nodeID("a-")
	mustApply(t, h, state.SetQueuePaused{Paused: true, At: h.now(), By: "test"})
	id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Node: node, Target: "dc2", Reason: "maintenance"})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		h.run(h.flatForecasts(30))
		h.holdThenPause()
		h.step(time.Minute)
	}
	if caught.Load() != 1 || h.eligibility(node) != nomadapi.NodeSchedulingIneligible {
		t.Fatalf("%d take-outs answered 500, a-1 %s: the test needs the node taken out with its answer lost", caught.Load(), h.eligibility(node))
	}
	mustApply(t, h, state.CancelRequest{ID: id, At: h.now(), Reason: "test: the operator gives it up"})
	for range 3 {
		h.step(15 * time.Second)
		if err := h.c.Follow(h.ctx, h.now()); err != nil {
			t.Fatal(err)
		}
	}
	if got := h.eligibility(node); got != nomadapi.NodeSchedulingEligible {
		t.Errorf("a-1 %s after %s was cancelled: foreshape took it out (Nomad answered 500, the take-out was made) and did not give it back", got, id)
	}
}

// TestStopWhoseAnswerWasLostUsesNoAttempt: Nomad stops a moved allocation
// and answers the stop with a 500. foreshape reads the allocation back,
// finds it stopping and follows the move as started: no attempt is used
// up, no retry recorded, the allocation stopped once (before, the attempt
// failed and the request was queued again).
func TestStopWhoseAnswerWasLostUsesNoAttempt(t *testing.T) {
	var caught atomic.Int32
	h := newHarness(t, actScenario, actPolicies, lostAnswers(t, 1, func(r *http.Request) bool {
		return strings.HasSuffix(r.URL.Path, "/stop") && strings.HasPrefix(r.URL.Path, "/v1/allocation/")
	}, &caught))
	a := h.allocs("web")[0]
	id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Allocation: a.ID, Target: "dc2"})
	if err != nil {
		t.Fatal(err)
	}
	r := h.moveToDone(id)
	if caught.Load() != 1 {
		t.Fatalf("%d stops answered 500: the test needs one", caught.Load())
	}
	if r.State != state.RequestDone || r.Attempts != 0 {
		t.Errorf("%s after %d attempts (%s); want done using none", r.State, r.Attempts, r.Reason)
	}
	if n := countStops(h, a.ID); n != 1 {
		t.Errorf("%s stopped %d times", a.ID, n)
	}
	for _, d := range h.local.FSM.Decisions() {
		if d.Request == id && (d.Kind == "retry" || d.Kind == "fail") {
			t.Errorf("decision %s: %s", d.Kind, d.Reason)
		}
	}
}

// TestPlaceholderWhoseAnswerWasLostIsHeld: Nomad registers a placeholder
// and answers the registration with a 500. foreshape reads the job back
// and holds the reservation: one registration, no release, no reaping
// (before, the reservation was released, the placeholder reaped and a new
// one registered after a backoff).
func TestPlaceholderWhoseAnswerWasLostIsHeld(t *testing.T) {
	var caught atomic.Int32
	h := newHarness(t, actScenario, actPolicies, lostAnswers(t, 1, func(r *http.Request) bool {
		return r.Method == http.MethodPut && r.URL.Path == "/v1/jobs"
	}, &caught))
	a := h.allocs("web")[0]
	mustApply(t, h, state.SetQueuePaused{Paused: true, At: h.now(), By: "test"})
	id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Allocation: a.ID, Target: "dc2"})
	if err != nil {
		t.Fatal(err)
	}
	for range 4 {
		h.run(h.flatForecasts(30))
		h.step(time.Minute)
		if err := h.c.Follow(h.ctx, h.now()); err != nil {
			t.Fatal(err)
		}
	}
	if caught.Load() != 1 {
		t.Fatalf("%d registrations answered 500: the test needs one", caught.Load())
	}
	registered := 0
	for _, c := range h.mutating() {
		if c == "PUT /v1/jobs" || c == "POST /v1/jobs" {
			registered++
		}
	}
	var got []string
	for _, res := range h.local.FSM.Act().Reservations {
		got = append(got, res.ID+" "+string(res.State)+" ("+res.Reason+")")
	}
	res, ok := h.local.FSM.ReservationFor(id)
	if !ok || res.State != state.ReservationHeld || len(h.local.FSM.Act().Reservations) != 1 || registered != 1 {
		t.Errorf("%d placeholders registered, reservations %q; want the one registered held", registered, got)
	}
	for _, d := range h.local.FSM.Decisions() {
		if d.Kind == "reap" || strings.Contains(d.Reason, "placeholder not placed") {
			t.Errorf("decision %s: %s", d.Kind, d.Reason)
		}
	}
}

// TestReconcileGiveBackAgain: a leader announced giving back a node that
// a purge left out of scheduling after foreshape's give-back (an
// "eligible again" intent) and stopped. The next leader reads the node:
// eligible, the give-back is done; still ineligible, it is not, so it is
// announced again when it comes up (before, both were read as a take-out:
// a node left out read done, never given back, with a hold decision
// saying a take-out's answer was never seen).
func TestReconcileGiveBackAgain(t *testing.T) {
	for _, made := range []bool{true, false} {
		t.Run(map[bool]string{true: "call made", false: "call not made"}[made], func(t *testing.T) {
			h := newHarness(t, actScenario, actPolicies)
			node := h.nodeID("a-")
			if _, err := h.client.Nodes().ToggleEligibility(node, false, nil); err != nil {
				t.Fatal(err)
			}
			n, _, err := h.client.Nodes().Info(node, nil)
			if err != nil {
				t.Fatal(err)
			}
			in := state.Intent{ID: againID(intentID(state.IntentNodeEligibility, node, "mr-1", -1), n.CreateIndex), Kind: state.IntentNodeEligibility,
				Request: "mr-1", Object: node, NodeCreated: n.CreateIndex,
				Detail: fmt.Sprintf("eligible again: registered again (create index %d) after a purge undid its give-back", n.CreateIndex)}
			crashAfter(t, h, in, func() {
				if made {
					if _, err := h.client.Nodes().ToggleEligibility(node, true, nil); err != nil {
						t.Fatal(err)
					}
				}
			})
			if err := newCoordinatorOn(t, h).Begin(h.ctx, h.now()); err != nil {
				t.Fatal(err)
			}
			got, _ := h.local.FSM.Intent(in.ID)
			want := map[bool]state.IntentOutcome{true: state.OutcomeDone, false: state.OutcomeNotDone}[made]
			if got.Outcome != want {
				t.Errorf("give-back %s with a-1 %s: reconciled %s; want %s", in.ID, h.eligibility(node), got.Outcome, want)
			}
			for _, d := range h.local.FSM.Decisions() {
				if d.Kind == "hold" {
					t.Errorf("decision %s: %s", d.Kind, d.Reason)
				}
			}
		})
	}
}

// lostTarget sets the count of its first lose actions and answers them
// timed out, as a nomad-job target whose scale call Nomad made and whose
// answer was lost (target.Timeout: "read Status before trying again").
type lostTarget struct {
	fakeTarget
	lose int
}

func (l *lostTarget) Scale(ctx context.Context, a target.Action) (target.Result, error) {
	l.mu.Lock()
	if l.lose > 0 {
		l.lose--
		l.actions = append(l.actions, a)
		l.count = a.Count
		l.mu.Unlock()
		return target.Result{Attempts: 1}, &target.Error{Plugin: "fake", Kind: target.Timeout, Attempts: 1,
			Reason: "scale: no answer in 30s"}
	}
	l.mu.Unlock()
	return l.fakeTarget.Scale(ctx, a)
}

// TestScaleWhoseAnswerWasLostIsDone: a scale target sets the count asked
// for and answers timed out (Nomad scaled the job and its answer was
// lost). The target, read back, shows that count where it showed
// another before: the action is recorded done and its cooldown runs, so a
// hotspot that lasts is not scaled again by the same amount after the
// back-off (before, it was recorded failed, and the next action scaled
// on top of the count the lost one had set).
func TestScaleWhoseAnswerWasLostIsDone(t *testing.T) {
	lt := &lostTarget{fakeTarget: fakeTarget{count: 2}, lose: 1}
	h := newHarness(t, actScenario, actPolicies, func(c *Config) {
		c.Targets = func(*policies.Policy, *policies.Scale) (target.Target, error) { return lt, nil }
	})
	for range 4 {
		h.run(h.hotForecasts())
		h.step(time.Minute)
	}
	if n := lt.calls(); n != 1 {
		t.Errorf("%d scale calls in four minutes of a lasting hotspot (cooldown 10m); want the one whose answer was lost", n)
	}
	acts := h.local.FSM.Act().ScaleActions
	if len(acts) == 0 || acts[0].Outcome != state.OutcomeDone || acts[0].TookEffect.IsZero() {
		t.Fatalf("scale actions %+v; want the first done, its cooldown running", acts)
	}
	if lt.count != acts[0].Count {
		t.Errorf("target count %d; want %d, the lost action's", lt.count, acts[0].Count)
	}
}

// TestReconcileAffinityOfAPurgedJob: a leader announced adding an
// affinity to a job and stopped; an operator purged the job since. The
// next leader reads no job: the update is not there, and the term begins
// (before, the read's 404 failed the reconciliation, and the act half
// never acted again: Begin was tried each cycle and failed the same way).
func TestReconcileAffinityOfAPurgedJob(t *testing.T) {
	h := newHarness(t, actScenario, affinityStrategy(actPolicies))
	in := state.Intent{ID: intentID(state.IntentUpdateJob, "web", "mr-1", 0), Kind: state.IntentUpdateJob, Request: "mr-1",
		Object: "web", Detail: "affinity to dc2"}
	crashAfter(t, h, in, func() {
		if _, _, err := h.client.Jobs().Deregister("web", true, nil); err != nil {
			t.Fatal(err)
		}
	})
	h.step(10 * time.Second)
	if err := newCoordinatorOn(t, h).Begin(h.ctx, h.now()); err != nil {
		t.Fatalf("the term does not begin: %v", err)
	}
	if got, _ := h.local.FSM.Intent(in.ID); got.Outcome != state.OutcomeNotDone {
		t.Errorf("affinity update of a purged job reconciled %s; want not done", got.Outcome)
	}
}

// TestUnreapablePlaceholderIsNotReportedReaped: a reservation is released
// (its request cancelled) while Nomad refuses every deregistration of its
// placeholder. The decision log says the placeholder was reaped only if it
// was, and, once the deregistration's tries are used up, that it cannot be
// (once every ten minutes, as other lasting conditions); before, the
// reaper then recorded a "reap" decision at every pass (the ring of
// decisions filled with reaps that never happened).
func TestUnreapablePlaceholderIsNotReportedReaped(t *testing.T) {
	h := newHarness(t, actScenario, actPolicies)
	id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Allocation: h.allocs("web")[0].ID, Target: "dc2"})
	if err != nil {
		t.Fatal(err)
	}
	mustApply(t, h, state.SetQueuePaused{Paused: true, At: h.now(), By: "test"})
	h.run(h.flatForecasts(30)) // reserves
	res, ok := h.local.FSM.ReservationFor(id)
	if !ok || res.State != state.ReservationHeld {
		t.Fatalf("reservation %+v (found %v); the test needs one held", res, ok)
	}
	if err := h.sim.SetFaults(sim.Faults{ErrorRate: 1, PathPrefix: "/v1/job/" + res.Job}); err != nil {
		t.Fatal(err)
	}
	mustApply(t, h, state.CancelRequest{ID: id, At: h.now(), Reason: "test: the operator gives it up"})
	h.passUntil(h.now().Add(30*time.Minute), nil)
	if j, _, err := h.client.Jobs().List(&nomadapi.QueryOptions{Prefix: res.Job}); err != nil || len(j) != 1 || j[0].Stop {
		t.Fatalf("placeholder %s: %+v (%v); the test needs it still registered", res.Job, j, err)
	}
	cannot := 0
	for _, d := range h.local.FSM.Decisions() {
		switch {
		case d.Kind == "reap" && strings.HasPrefix(d.Reason, "cannot reap "+res.Job+": Nomad refused its deregistration"):
			cannot++
		case d.Kind == "reap":
			t.Errorf("decision %s at %s: %s; the placeholder was never deregistered", d.Kind, d.Time.Format("15:04:05"), d.Reason)
		}
	}
	if cannot == 0 || cannot > 3 {
		t.Errorf("%d decisions saying %s cannot be reaped in 30 minutes; want one every ten minutes once its tries are used up", cannot, res.Job)
	}
}

// TestGiveBackNomadKeepsRefusingIsSaid: a cancelled whole-node request
// owes its node back while Nomad refuses every eligibility change of it.
// Once the give-back's tries are used up the node stays out of scheduling,
// and the decision log says so (once every ten minutes), with Nomad's
// answer and what to do; before, nothing said it: the node stood out of
// scheduling for good without a word.
func TestGiveBackNomadKeepsRefusingIsSaid(t *testing.T) {
	h := newHarness(t, actScenario, actPolicies)
	node := h.nodeID("a-")
	mustApply(t, h, state.SetQueuePaused{Paused: true, At: h.now(), By: "test"})
	id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Node: node, Target: "dc2", Reason: "maintenance"})
	if err != nil {
		t.Fatal(err)
	}
	h.run(h.flatForecasts(30))
	h.holdThenPause()
	if h.eligibility(node) != nomadapi.NodeSchedulingIneligible {
		t.Fatal("a-1 not held out of scheduling while its request waits: the test needs it held")
	}
	if err := h.sim.SetFaults(sim.Faults{ErrorRate: 1, PathPrefix: "/v1/node/" + node + "/eligibility"}); err != nil {
		t.Fatal(err)
	}
	mustApply(t, h, state.CancelRequest{ID: id, At: h.now(), Reason: "test: the operator gives it up"})
	h.passUntil(h.now().Add(30*time.Minute), nil)
	if h.eligibility(node) != nomadapi.NodeSchedulingIneligible {
		t.Fatal("a-1 given back through the fault")
	}
	said := 0
	for _, d := range h.local.FSM.Decisions() {
		if d.Kind == "hold" && strings.HasPrefix(d.Reason, "cannot give back node a-1: Nomad refused") {
			said++
		}
	}
	if said == 0 || said > 3 {
		t.Errorf("%d decisions saying a-1 cannot be given back in 30 minutes; want one every ten minutes once its tries are used up", said)
	}
}
