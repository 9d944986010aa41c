package e2e

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/internal/realnomad"
	"github.com/foreshape/foreshape/policies"
)

// TestActMoveOffDisconnectedNodeOnRealNomad is TestMoveOffADisconnectedNode
// against a real Nomad: a queued move of an allocation whose group sets
// disconnect.lost_after (an hour) starts after its node stopped
// heartbeating (disconnected; the allocation unknown). The move stops it
// (Nomad marks it to migrate), follows the replacement Nomad places after
// the reschedule delay and ends done once it runs in the target, without
// waiting the hour for the unknown allocation to stop; when the node comes
// back, the original stops and the replacement runs on. It needs a second
// client agent that can be stopped and continued: NOMAD_DOWN_NODE names
// its node, NOMAD_NODE_DOWN_CMD and NOMAD_NODE_UP_CMD stop and resume it
// (sim/README.md), and another datacenter's ready raw_exec node to move to.
func TestActMoveOffDisconnectedNodeOnRealNomad(t *testing.T) {
	moveOffDisconnected(t, replaced)
}

// TestActMoveNomadKeepsOnDisconnectOnRealNomad is
// TestMoveOfAnAllocationNomadKeepsWhileDisconnected against a real Nomad:
// as TestActMoveOffDisconnectedNodeOnRealNomad with a group that sets
// disconnect.replace = false, for which Nomad places no replacement while
// the node is disconnected. The move ends at once, cancelled, saying why;
// when the node comes back Nomad moves the allocation, which the move's
// stop marked to migrate.
func TestActMoveNomadKeepsOnDisconnectOnRealNomad(t *testing.T) {
	moveOffDisconnected(t, notReplaced)
}

// TestActMoveMidDeploymentOffDisconnectedNodeOnRealNomad is
// TestMoveOfAnAllocationOfARunningDeploymentWhileDisconnected against a
// real Nomad: as TestActMoveOffDisconnectedNodeOnRealNomad with the
// allocation of its job's deployment still running (not healthy yet) at
// the disconnect, which Nomad does not reschedule. The move ends at once,
// cancelled, saying why.
func TestActMoveMidDeploymentOffDisconnectedNodeOnRealNomad(t *testing.T) {
	moveOffDisconnected(t, midDeployment)
}

// TestActMoveLostWithStopOnClientAfterOnRealNomad is
// TestMoveOfAnAllocationLostWithStopOnClientAfter against a real Nomad: as
// TestActMoveOffDisconnectedNodeOnRealNomad with a group that sets
// disconnect.stop_on_client_after (30 s) and no lost_after, so that its
// node goes down and the allocation is lost; Nomad replaces it 35 s on
// (plus the kill timeout) with an allocation that names no previous one.
// The move settles on that replacement, done in the target.
func TestActMoveLostWithStopOnClientAfterOnRealNomad(t *testing.T) {
	moveOffDisconnected(t, stopAfter)
}

// How the allocation of moveOffDisconnected's job is replaced while its
// node is disconnected.
const (
	replaced      = iota // Nomad replaces it after the reschedule delay
	notReplaced          // its group sets disconnect.replace = false
	midDeployment        // of its job's running deployment: not rescheduled
	stopAfter            // its group sets stop_on_client_after: the node goes down, replaced later, unlinked
)

// moveOffDisconnected is the checks above.
func moveOffDisconnected(t *testing.T, mode int) {
	addr, client, nodes := realNomadNodes(t)
	name, takeDown, bringUp := realnomad.NodeDownUp(t)
	var src, dst *nomadapi.NodeListStub
	for _, n := range nodes {
		if n.Name == name && rawExecReady(n) {
			src = n
		}
	}
	if src == nil {
		t.Skipf("no ready raw_exec node named %q (NOMAD_DOWN_NODE)", name)
	}
	for _, n := range nodes {
		if n.Datacenter != src.Datacenter && rawExecReady(n) {
			dst = n
			break
		}
	}
	if dst == nil {
		t.Skipf("no ready raw_exec node outside %s to move to", src.Datacenter)
	}
	job := fmt.Sprintf("fs-e2e-disc-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
	registerSleeper(t, client, job, src.Datacenter, func(j *nomadapi.Job) {
		j.Datacenters = []string{src.Datacenter, dst.Datacenter}
		j.AddAffinity(nomadapi.NewAffinity("${node.unique.id}", "=", src.ID, 100))
		tg := j.TaskGroups[0]
		tg.Disconnect = &nomadapi.DisconnectStrategy{LostAfter: new(time.Hour)}
		switch mode {
		case notReplaced:
			tg.Disconnect.Replace = new(false)
		case stopAfter:
			tg.Disconnect = &nomadapi.DisconnectStrategy{StopOnClientAfter: new(30 * time.Second)}
		case midDeployment:
			tg.Update = &nomadapi.UpdateStrategy{MaxParallel: new(1), MinHealthyTime: new(5 * time.Minute),
				HealthyDeadline: new(8 * time.Minute), ProgressDeadline: new(10 * time.Minute)}
		}
		tg.ReschedulePolicy = &nomadapi.ReschedulePolicy{Delay: new(10 * time.Second), DelayFunction: new("constant"), Unlimited: new(true)}
	})
	t.Cleanup(func() { _, _, _ = client.Jobs().Deregister(job, true, nil) })
	alloc := waitRunning(t, client, job, "")
	if alloc.NodeID != src.ID {
		t.Fatalf("%s placed on %s; want %s", job, alloc.NodeName, src.Name)
	}

	local := newLocal(t)
	pols := betweenDatacenters(t, src.Datacenter, dst.Datacenter, "")
	coord := realCoordinator(t, addr, local)
	ctx := context.Background()
	id := submitMove(t, local, alloc, "source", "operator",
		policies.Locality{Datacenter: src.Datacenter}.String(), policies.Locality{Datacenter: dst.Datacenter}.String())

	takeDown()
	stopped := time.Now()
	gone := nomadapi.NodeStatusDisconnected
	if mode == stopAfter {
		gone = nomadapi.NodeStatusDown
	}
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(time.Second) {
		n, _, err := client.Nodes().Info(src.ID, nil)
		if err == nil && n.Status == gone {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not %s 90 s after its client stopped", src.Name, gone)
		}
	}
	t.Logf("%s %s %s after its client stopped", src.Name, gone, time.Since(stopped).Round(time.Second))
	began := time.Now()
	for deadline := began.Add(3 * time.Minute); ; time.Sleep(time.Second) {
		if _, err := coord.RunOnce(ctx, time.Now(), pols, nil); err != nil {
			t.Fatal(err)
		}
		if r, _ := local.FSM.Act().Request(id); r.State.Terminal() {
			break
		}
		if time.Now().After(deadline) {
			r, _ := local.FSM.Act().Request(id)
			t.Fatalf("request %s still %s 3 minutes after the node disconnected: %s", id, r.State, r.Reason)
		}
	}
	r, _ := local.FSM.Act().Request(id)
	t.Logf("request %s %s %s after the disconnect: %s", id, r.State, time.Since(began).Round(time.Second), r.Reason)
	if mode == midDeployment {
		if r.State != state.RequestCancelled || !strings.Contains(r.Reason, "Nomad scheduled no reschedule of") {
			t.Fatalf("request %s: %q; want cancelled, saying Nomad scheduled no reschedule of the allocation", r.State, r.Reason)
		}
		return
	}
	if mode == notReplaced {
		if r.State != state.RequestCancelled || !strings.Contains(r.Reason, "sets disconnect.replace = false") {
			t.Fatalf("request %s: %q; want cancelled, saying Nomad places no replacement while the node is disconnected", r.State, r.Reason)
		}
		bringUp()
		back := time.Now()
		for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(time.Second) {
			old, _, err := client.Allocations().Info(alloc.ID, nil)
			if err == nil && old.DesiredStatus == nomadapi.AllocDesiredStatusStop && old.NextAllocation != "" {
				repl, _, err := client.Allocations().Info(old.NextAllocation, nil)
				if err == nil && repl.ClientStatus == nomadapi.AllocClientStatusRunning {
					t.Logf("%s back: %s on, the original %s (%q), its replacement running on %s", src.Name, time.Since(back).Round(time.Second),
						old.ClientStatus, old.DesiredDescription, repl.NodeName)
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("90 s after %s came back: the original %v %v; want it moved by Nomad (stopped, its replacement running)", src.Name, old, err)
			}
		}
	}
	// Nomad may place the replacement on any node of the target
	// datacenter, not only the one picked here.
	inTarget := slices.ContainsFunc(nodes, func(n *nomadapi.NodeListStub) bool {
		return n.ID == r.Moves[0].TargetNode && n.Datacenter == dst.Datacenter
	})
	if r.State != state.RequestDone || r.Moves[0].Replacement == "" || !inTarget || r.Moves[0].Error != "" {
		t.Fatalf("request %s: %q, moves %+v; want done on a node of %s", r.State, r.Reason, r.Moves, dst.Datacenter)
	}
	if mode == stopAfter {
		repl, _, err := client.Allocations().Info(r.Moves[0].Replacement, nil)
		if err != nil || repl.PreviousAllocation != "" || repl.Name != alloc.Name {
			t.Fatalf("the move's replacement %v: %v; want an allocation of %s naming no previous one", repl, err, alloc.Name)
		}
	}

	bringUp()
	back := time.Now()
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(time.Second) {
		old, _, err1 := client.Allocations().Info(alloc.ID, nil)
		repl, _, err2 := client.Allocations().Info(r.Moves[0].Replacement, nil)
		if err1 == nil && err2 == nil && old.ClientStatus == nomadapi.AllocClientStatusComplete && old.DesiredStatus == nomadapi.AllocDesiredStatusStop &&
			repl.ClientStatus == nomadapi.AllocClientStatusRunning && repl.DesiredStatus == nomadapi.AllocDesiredStatusRun {
			t.Logf("%s back: %s on, the original stopped by its client, the replacement running on %s", src.Name, time.Since(back).Round(time.Second), repl.NodeName)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("90 s after %s came back: the original %v %v, the replacement %v %v; want the original stopped, the replacement running",
				src.Name, old, err1, repl, err2)
		}
	}
}
