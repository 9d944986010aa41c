package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/migrate"
	"github.com/foreshape/foreshape/agent/state"
)

// TestActDrainWithSysbatchOnRealNomad runs a drain-strategy request of a
// node that runs a service allocation and a sysbatch job's, against a real
// Nomad (NOMAD_ADDR) with raw_exec nodes in two datacenters: the service
// allocation moves to the other datacenter; the sysbatch one, which no
// move takes, Nomad's drain leaves running until its deadline, so the
// request ends done once the replacement runs, saying so, with Nomad's
// drain still on and the sysbatch allocation still running
// (TestDrainRequestLeavesSysbatchToNomad on the simulator). The sysbatch
// task ends on its own a minute in, which Nomad's drain does not see:
// foreshape then updates the drain, its deadline as it was, and Nomad
// completes it long before that deadline (TestDrainRequestSysbatchEndsAfterIt).
func TestActDrainWithSysbatchOnRealNomad(t *testing.T) {
	addr, client, nodes := realNomadNodes(t)
	var src, dst *nomadapi.NodeListStub
	for _, n := range nodes {
		if !rawExecReady(n) {
			continue
		}
		switch {
		case src == nil:
			src = n
		case dst == nil && n.Datacenter != src.Datacenter:
			dst = n
		}
	}
	if src == nil || dst == nil {
		t.Skip("NOMAD_ADDR has no ready raw_exec nodes in two datacenters: this test drains one into the other")
	}
	// The node drained is the only one of its datacenter the jobs may use.
	suffix := fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
	svc, once := "fs-e2e-sbd-svc-"+suffix, "fs-e2e-sbd-once-"+suffix
	registerSleeper(t, client, svc, src.Datacenter, func(j *nomadapi.Job) {
		j.Datacenters = []string{src.Datacenter, dst.Datacenter}
		j.AddAffinity(nomadapi.NewAffinity("${node.unique.id}", "=", src.ID, 100))
	})
	t.Cleanup(func() { _, _, _ = client.Jobs().Deregister(svc, true, nil) })
	registerSleeper(t, client, once, src.Datacenter, func(j *nomadapi.Job) {
		j.Type = new(nomadapi.JobTypeSysbatch)
		j.TaskGroups[0].Update = nil
		j.TaskGroups[0].Tasks[0].Config["args"] = []string{"60"}
		j.Constrain(nomadapi.NewConstraint("${node.unique.id}", "=", src.ID))
	})
	t.Cleanup(func() { _, _, _ = client.Jobs().Deregister(once, true, nil) })
	t.Cleanup(func() {
		_, _ = client.Nodes().UpdateDrain(src.ID, nil, true, nil)
	})
	alloc := waitRunning(t, client, svc, "")
	sb := waitRunning(t, client, once, "")
	if alloc.NodeID != src.ID || sb.NodeID != src.ID {
		t.Fatalf("placed on %s and %s; want both on %s", alloc.NodeName, sb.NodeName, src.Name)
	}

	local := newLocal(t)
	pols := betweenDatacenters(t, src.Datacenter, dst.Datacenter, "drain")
	coord := realCoordinator(t, addr, local)
	ctx := context.Background()
	id, err := coord.Submit(ctx, time.Now(), pols, migrate.Submission{Node: src.ID, Target: dst.Datacenter})
	if err != nil {
		t.Fatal(err)
	}
	r, _ := local.FSM.Act().Request(id)
	if len(r.Moves) != 1 || r.Moves[0].Alloc != alloc.ID {
		t.Fatalf("request %s moves %+v; want %s's allocation alone", id, r.Moves, svc)
	}
	began := time.Now()
	for deadline := began.Add(3 * time.Minute); ; time.Sleep(time.Second) {
		if _, err := coord.RunOnce(ctx, time.Now(), pols, nil); err != nil {
			t.Fatal(err)
		}
		if r, _ = local.FSM.Act().Request(id); r.State.Terminal() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("request %s still %s 3 minutes on: %s", id, r.State, r.Reason)
		}
	}
	t.Logf("request %s %s in %s: %s", id, r.State, time.Since(began).Round(time.Second), r.Reason)
	want := fmt.Sprintf("Nomad's drain of node %s goes on: it leaves sysbatch allocation %s to end, and stops it at the drain's deadline if it runs then", src.Name, sb.Name)
	if r.State != state.RequestDone || r.Attempts != 0 || !strings.Contains(r.Reason, want) {
		t.Fatalf("request %s (attempts %d): %q; want done, saying %q", r.State, r.Attempts, r.Reason, want)
	}
	n, _, err := client.Nodes().Info(src.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, _, err := client.Allocations().Info(sb.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n.DrainStrategy == nil || a.ClientStatus != nomadapi.AllocClientStatusRunning || a.DesiredStatus != nomadapi.AllocDesiredStatusRun {
		t.Fatalf("when the request is done: drain %v, the sysbatch allocation %s/%s; want Nomad's drain on, the allocation running",
			n.DrainStrategy, a.DesiredStatus, a.ClientStatus)
	}
	repl, _, err := client.Allocations().Info(r.Moves[0].Replacement, nil)
	if err != nil || repl.NodeID == src.ID || repl.ClientStatus != nomadapi.AllocClientStatusRunning {
		t.Fatalf("the replacement %v: %v; want it running off %s", repl, err, src.Name)
	}
	t.Logf("figures: real Nomad %s: drain request of %s done in %s, the replacement on %s, Nomad's drain on with the sysbatch allocation running",
		addr, src.Name, r.Moves[0].Running.Sub(r.Started).Round(time.Second), repl.NodeName)

	// The sysbatch task ends; foreshape's passes go on.
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(time.Second) {
		if _, err := coord.RunOnce(ctx, time.Now(), pols, nil); err != nil {
			t.Fatal(err)
		}
		if n, _, err = client.Nodes().Info(src.ID, nil); err != nil {
			t.Fatal(err)
		}
		if n.DrainStrategy == nil {
			break
		}
		if time.Now().After(deadline) {
			a, _, _ := client.Allocations().Info(sb.ID, nil)
			t.Fatalf("Nomad's drain of %s still on %s after the request ended (the sysbatch allocation %s); want foreshape to let it complete",
				src.Name, time.Since(began).Round(time.Second), a.ClientStatus)
		}
	}
	if a, _, err = client.Allocations().Info(sb.ID, nil); err != nil || a.ClientStatus != nomadapi.AllocClientStatusComplete {
		t.Fatalf("the sysbatch allocation when the drain completed: %v %v; want it complete", a, err)
	}
	e := n.Events[len(n.Events)-1]
	if e.Message != "Node drain complete" || e.Details["deadline_reached"] == "true" {
		t.Errorf("the node's last event %q %v; want Node drain complete, its deadline not reached", e.Message, e.Details)
	}
	updated := ""
	for _, d := range local.FSM.Decisions() {
		if d.Kind == "done" && d.Request == id && strings.Contains(d.Reason, "foreshape updated the drain, its deadline as it was") {
			updated = d.Reason
		}
	}
	if updated == "" {
		t.Errorf("no decision of %s saying foreshape updated the drain", id)
	}
	t.Logf("figures: Nomad's drain of %s complete %s after the request began, %s after the sysbatch allocation ended: %s",
		src.Name, time.Since(began).Round(time.Second), time.Since(time.Unix(0, a.ModifyTime)).Round(time.Second), updated)
}
