package migrate

import (
	"errors"
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/state"
)

// registerOnce registers "once", a sysbatch job of one group "task" in
// dc1 whose task runs for runFor, and returns its allocation on a-1 once
// it runs.
func (h *harness) registerOnce(runFor time.Duration) *nomadapi.AllocationListStub {
	h.t.Helper()
	j := nomadapi.NewSysbatchJob("once", "once", "global", 50)
	j.Datacenters = []string{"dc1"}
	tg := nomadapi.NewTaskGroup("task", 1)
	tg.AddTask(nomadapi.NewTask("task", "raw_exec").SetConfig("command", "/bin/sleep").SetConfig("args", []string{"10800"}).
		Require(&nomadapi.Resources{CPU: new(100), MemoryMB: new(64)}))
	tg.Meta = map[string]string{"sim.run_for": runFor.String()}
	j.AddTaskGroup(tg)
	if _, _, err := h.client.Jobs().Register(j, nil); err != nil {
		h.t.Fatal(err)
	}
	h.step(30 * time.Second)
	as := h.allocs("once")
	if len(as) != 1 || as[0].ClientStatus != nomadapi.AllocClientStatusRunning {
		h.t.Fatalf("once: %d allocations; want one running on a-1", len(as))
	}
	return as[0]
}

// drainBesideOnce registers once, whose task runs for runFor, lets idle
// pass, submits a drain-strategy request of a-1 (web's two allocations
// and once's) to dc2 and runs passes for 20 minutes. It returns the
// harness, the request, and a-1 and once's allocation as Nomad then
// answers.
func drainBesideOnce(t *testing.T, runFor, idle time.Duration) (*harness, state.MigrationRequest, *nomadapi.Node, *nomadapi.Allocation) {
	t.Helper()
	h := newHarness(t, actScenario, drainStrategy(actPolicies))
	node := h.nodeID("a-")
	once := h.registerOnce(runFor)
	if idle > 0 {
		h.step(idle)
	}
	id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Node: node, Target: "dc2"})
	if err != nil {
		t.Fatal(err)
	}
	h.passUntil(h.now().Add(20*time.Minute), nil)
	n, _, err := h.client.Nodes().Info(node, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, _, err := h.client.Allocations().Info(once.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	return h, h.request(id), n, a
}

// TestDrainRequestLeavesSysbatchToNomad: a drain-strategy request of a-1,
// which runs web's two allocations and a sysbatch job's for three hours.
// The sysbatch allocation is no move (Nomad places a sysbatch job on
// every node, once); Nomad's drain leaves it running as a batch one, and
// cannot complete while it runs, until the drain's deadline (measured on
// a real Nomad: TestFidelitySysbatchDrain). The request ends done once
// web's replacements run, saying Nomad's drain goes on for it; before, it
// waited for that drain, was retried at its settle timeout (10 minutes),
// each attempt setting the drain again with a later deadline, and failed
// after three ("waiting for the drain of node a-1").
func TestDrainRequestLeavesSysbatchToNomad(t *testing.T) {
	h, r, n, a := drainBesideOnce(t, 3*time.Hour, 0)
	for _, m := range r.Moves {
		if m.Job != "web" {
			t.Errorf("the request moves %s of %s; want web's allocations alone", m.Name, m.Job)
		}
	}
	if r.State != state.RequestDone || r.Attempts != 0 || !strings.Contains(r.Reason,
		"Nomad's drain of node a-1 goes on: it leaves sysbatch allocation once.task[0] to end, and stops it at the drain's deadline if it runs then") {
		t.Fatalf("request %s (attempts %d): %q; want done, saying Nomad's drain goes on for the sysbatch allocation", r.State, r.Attempts, r.Reason)
	}
	if n.DrainStrategy == nil || a.DesiredStatus != nomadapi.AllocDesiredStatusRun || a.ClientStatus != nomadapi.AllocClientStatusRunning {
		t.Errorf("when the request is done: drain %v, once's allocation %s/%s; want Nomad's drain on, the allocation running", n.DrainStrategy, a.DesiredStatus, a.ClientStatus)
	}
	for _, call := range h.mutating() {
		if strings.Contains(call, a.ID) {
			t.Errorf("foreshape called %s on the sysbatch allocation", call)
		}
	}
}

// TestDrainRequestSysbatchEndedWhileItDrains: as above, but the sysbatch
// allocation ends on its own after Nomad's drain began and before web's
// replacements run. Nomad's drain never marks it and does not see it end
// (its drainer watches no sysbatch job): the drain would go on until its
// deadline, an hour on (TestFidelitySysbatchDrain). The request ends done
// and foreshape updates the drain, its deadline as it was, for Nomad to
// check it again and complete it. Before, the request waited for that
// drain, was retried at its settle timeout (10 minutes), and its second
// attempt, setting the drain again, ended it ("node a-1 held nothing to
// move"); then it ended done and left the drain on until its deadline.
func TestDrainRequestSysbatchEndedWhileItDrains(t *testing.T) {
	// Ends 2m22s after it starts: after the request's first pass drains
	// a-1, before the pass that finds web's replacements running.
	h, r, n, a := drainBesideOnce(t, 142*time.Second, 0)
	if a.ClientStatus != nomadapi.AllocClientStatusComplete || n.LastDrain == nil || time.Unix(0, a.ModifyTime).Before(n.LastDrain.StartedAt) {
		t.Fatalf("once's allocation %s, modified %s, the drain %+v: the check needs it to end after the drain began", a.ClientStatus, time.Unix(0, a.ModifyTime).UTC(), n.LastDrain)
	}
	if r.State != state.RequestDone || r.Attempts != 0 || !strings.Contains(r.Reason,
		"Nomad's drain of node a-1 goes on; sysbatch allocation once.task[0] ended while it drained, which Nomad's drain does not watch: "+
			"foreshape updates the drain, its deadline as it was, for Nomad to complete it") {
		t.Fatalf("request %s (attempts %d): %q; want done at its first attempt, saying foreshape updates Nomad's drain", r.State, r.Attempts, r.Reason)
	}
	h.wantDrainCompletedEarly(n, r, "once.task[0]")
}

// TestDrainRequestSysbatchEndsAfterIt: the sysbatch allocation runs on
// when the request ends done (TestDrainRequestLeavesSysbatchToNomad) and
// ends on its own 40 minutes in, 20 minutes before the drain's deadline.
// foreshape updates the drain then, and Nomad completes it; before, it
// stayed on until its deadline.
func TestDrainRequestSysbatchEndsAfterIt(t *testing.T) {
	h, r, n, _ := drainBesideOnce(t, 40*time.Minute, 0)
	if r.State != state.RequestDone || n.DrainStrategy == nil {
		t.Fatalf("request %s, drain %v; want it done with Nomad's drain on for the sysbatch allocation", r.State, n.DrainStrategy)
	}
	if !strings.Contains(r.Reason, "(should it end before, foreshape updates the drain for Nomad to complete it)") {
		t.Errorf("request's reason %q; want it to say foreshape updates the drain once the allocation ends", r.Reason)
	}
	h.passUntil(h.now().Add(25*time.Minute), nil)
	n, _, err := h.client.Nodes().Info(n.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.wantDrainCompletedEarly(n, h.request(r.ID), "once.task[0]")
}

// TestDrainCompletionALeaderLeftOpen: a leader that opened its update of
// the drain (the sysbatch allocation having ended) and stopped before
// Nomad took it leaves the intent open; the next leader finds the drain
// still on, reads the intent not done and updates the drain, which Nomad
// then completes. Read as done (as an update of a drain it would be by
// the drain being on), the drain went on until its deadline.
func TestDrainCompletionALeaderLeftOpen(t *testing.T) {
	h, r, n, _ := drainBesideOnce(t, 40*time.Minute, 0)
	if r.State != state.RequestDone || n.DrainStrategy == nil {
		t.Fatalf("request %s, drain %v; want it done with Nomad's drain on for the sysbatch allocation", r.State, n.DrainStrategy)
	}
	h.step(25 * time.Minute) // the allocation ends; no pass
	id := intentID(state.IntentDrainNode, n.ID, r.ID+"/complete", r.Attempts)
	crashAfter(t, h, state.Intent{ID: id, Kind: state.IntentDrainNode, Request: r.ID, Object: n.ID, Detail: completeDrainDetail}, nil)
	h.c = newCoordinatorOn(t, h)
	if err := h.c.Begin(h.ctx, h.now()); err != nil {
		t.Fatal(err)
	}
	if in, _ := h.local.FSM.Intent(id); in.Outcome != state.OutcomeNotDone {
		t.Fatalf("the open update after the next leader began: %+v; want it not done, the drain being on", in)
	}
	h.passUntil(h.now().Add(2*time.Minute), nil)
	n, _, err := h.client.Nodes().Info(n.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.wantDrainCompletedEarly(n, h.request(r.ID), "once.task[0]")
}

// TestDrainOfAnOperatorIsNotUpdated: when an operator has changed the
// drain since foreshape's request (its metadata no longer names the
// request), the drain is the operator's: foreshape leaves it as it is
// when the sysbatch allocation ends.
func TestDrainOfAnOperatorIsNotUpdated(t *testing.T) {
	h, r, n, _ := drainBesideOnce(t, 40*time.Minute, 0)
	if r.State != state.RequestDone || n.DrainStrategy == nil {
		t.Fatalf("request %s, drain %v; want it done with Nomad's drain on for the sysbatch allocation", r.State, n.DrainStrategy)
	}
	if _, err := h.client.Nodes().UpdateDrainOpts(n.ID, &nomadapi.DrainOptions{DrainSpec: &nomadapi.DrainSpec{Deadline: 2 * time.Hour},
		Meta: map[string]string{"message": "an operator's drain"}}, nil); err != nil {
		t.Fatal(err)
	}
	before := len(h.mutating())
	h.passUntil(h.now().Add(25*time.Minute), nil)
	n, _, err := h.client.Nodes().Info(n.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n.DrainStrategy == nil {
		t.Errorf("the operator's drain is complete; want it left on until its deadline")
	}
	for _, call := range h.mutating()[before:] {
		if strings.Contains(call, "/drain") {
			t.Errorf("foreshape called %s on a drain an operator had changed", call)
		}
	}
}

// wantDrainCompletedEarly checks that Nomad's drain of n is complete well
// before its deadline (an hour after it began), its deadline not reached,
// after foreshape's one update of it for r, with a done decision naming
// the sysbatch allocation that ended.
func (h *harness) wantDrainCompletedEarly(n *nomadapi.Node, r state.MigrationRequest, ended string) {
	h.t.Helper()
	if n.DrainStrategy != nil {
		h.t.Fatalf("Nomad's drain of %s %+v; want it complete", n.Name, n.DrainStrategy)
	}
	e := n.Events[len(n.Events)-1]
	if e.Message != "Node drain complete" || e.Details["deadline_reached"] == "true" || !e.Timestamp.Before(n.LastDrain.StartedAt.Add(55*time.Minute)) {
		h.t.Errorf("the node's last event %q %v at %s (the drain began %s); want Node drain complete, its deadline not reached",
			e.Message, e.Details, e.Timestamp.UTC(), n.LastDrain.StartedAt.UTC())
	}
	drains := 0
	for _, call := range h.mutating() {
		if strings.HasSuffix(call, "/node/"+n.ID+"/drain") {
			drains++
		}
	}
	if drains != 2 {
		h.t.Errorf("%d drain calls on %s; want two: foreshape's drain, then its update", drains, n.Name)
	}
	found := false
	for _, d := range h.local.FSM.Decisions() {
		if d.Kind == "done" && d.Request == r.ID && strings.Contains(d.Reason, "sysbatch allocation "+ended+" ended while it drained") &&
			strings.Contains(d.Reason, "foreshape updated the drain, its deadline as it was") {
			found = true
		}
	}
	if !found {
		h.t.Errorf("no done decision for %s saying foreshape updated the drain; decisions %+v", r.ID, h.local.FSM.Decisions())
	}
}

// TestDrainRequestSysbatchEndedBefore: a sysbatch allocation that ended
// before the drain began holds nothing back: Nomad's drain completes, and
// the request says nothing of it.
func TestDrainRequestSysbatchEndedBefore(t *testing.T) {
	_, r, n, _ := drainBesideOnce(t, 40*time.Second, time.Minute)
	if r.State != state.RequestDone || r.Attempts != 0 || strings.Contains(r.Reason, "sysbatch") {
		t.Fatalf("request %s (attempts %d): %q; want done, saying nothing of the sysbatch allocation", r.State, r.Attempts, r.Reason)
	}
	if n.DrainStrategy != nil {
		t.Errorf("Nomad's drain of a-1 %+v; want it complete", n.DrainStrategy)
	}
}

// TestSubmitRefusesSysbatch: a sysbatch job runs once on every eligible
// node, so neither one of its allocations nor its group can be moved; a
// request of its node moves the node's other work and leaves it out.
func TestSubmitRefusesSysbatch(t *testing.T) {
	h := newHarness(t, actScenario, drainStrategy(actPolicies))
	once := h.registerOnce(3 * time.Hour)
	for _, tt := range []struct {
		sub        Submission
		field, msg string
	}{
		{Submission{Allocation: once.ID, Target: "dc2"}, "allocation", "belongs to sysbatch job once, which Nomad runs on every eligible node"},
		{Submission{Job: "once", Group: "task", Target: "dc2"}, "job", "once is a sysbatch job, which Nomad runs on every eligible node"},
	} {
		_, err := h.c.Submit(h.ctx, h.now(), h.pols, tt.sub)
		var ie *InvalidError
		if !errors.As(err, &ie) || ie.Field != tt.field || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%+v: %v; want an InvalidError on %s saying %q", tt.sub, err, tt.field, tt.msg)
		}
	}
	if n := len(h.local.FSM.Act().Requests); n != 0 {
		t.Errorf("%d requests queued; want none", n)
	}
}
