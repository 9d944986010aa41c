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
	h := newHarness(t, actScenario, drainStrategy(actPolicies))
	node := h.nodeID("a-")
	once := h.registerOnce(3 * time.Hour)
	id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Node: node, Target: "dc2"})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range h.request(id).Moves {
		if m.Job != "web" {
			t.Errorf("the request moves %s of %s; want web's allocations alone", m.Name, m.Job)
		}
	}
	h.passUntil(h.now().Add(20*time.Minute), nil)
	r := h.request(id)
	if r.State != state.RequestDone || r.Attempts != 0 || !strings.Contains(r.Reason,
		"Nomad's drain of node a-1 goes on: it leaves sysbatch allocation once.task[0] to end, and stops it at the drain's deadline if it runs then") {
		t.Fatalf("request %s (attempts %d): %q; want done, saying Nomad's drain goes on for the sysbatch allocation", r.State, r.Attempts, r.Reason)
	}
	n, _, err := h.client.Nodes().Info(node, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, _, err := h.client.Allocations().Info(once.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n.DrainStrategy == nil || a.DesiredStatus != nomadapi.AllocDesiredStatusRun || a.ClientStatus != nomadapi.AllocClientStatusRunning {
		t.Errorf("when the request is done: drain %v, once's allocation %s/%s; want Nomad's drain on, the allocation running", n.DrainStrategy, a.DesiredStatus, a.ClientStatus)
	}
	for _, call := range h.mutating() {
		if strings.Contains(call, once.ID) {
			t.Errorf("foreshape called %s on the sysbatch allocation", call)
		}
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
