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
	"github.com/foreshape/foreshape/agent/shape"
	"github.com/foreshape/foreshape/agent/state"
)

// TestActPlaceholderNotRunningOnRealNomad: a real Nomad (NOMAD_ADDR with
// two datacenters, raw_exec on each, and Nomad's mock_driver on the
// target's nodes) places a move's placeholder whose task never starts:
// mock_driver's start_block_for keeps the task starting for an hour, as an
// image pull that hangs does, so the allocation stays pending on its node,
// its room held. The queue is paused, so the placeholder waits past its
// grace. foreshape does not scale the target's scale block (a real job it
// would scale) for room the reservation holds, and a decision says the
// placeholder is placed but its task is not running, naming the node and
// the task's last events. Once the queue is resumed the move hands the
// room over and goes ahead, still without a scale action. The passes' now
// runs a minute ahead a second.
func TestActPlaceholderNotRunningOnRealNomad(t *testing.T) {
	addr, client, nodes := realNomadNodes(t)
	source := rawExecNode(t, nodes)
	var target *nomadapi.NodeListStub
	for _, n := range nodes {
		if d := n.Drivers["mock_driver"]; rawExecReady(n) && n.Datacenter != source.Datacenter && d != nil && d.Healthy {
			target = n
		}
	}
	if target == nil {
		t.Skip("NOMAD_ADDR has no second datacenter with a ready node running raw_exec and mock_driver (join a client agent in another datacenter; Nomad's dev agents enable mock_driver)")
	}
	m := newPlaceholderMove(t, addr, client, "notrunning", source.Datacenter, target.Datacenter, target.Datacenter)
	local := m.local
	coord := m.coordinator(migrate.Placeholder{Driver: "mock_driver", Config: map[string]any{"start_block_for": "1h", "run_for": "2h"}})
	ctx := context.Background()
	if _, err := local.Apply(ctx, state.SetQueuePaused{Paused: true, At: time.Now().UTC(), By: "e2e"}); err != nil {
		t.Fatal(err)
	}
	id := m.submit()
	pass := func() { t.Helper(); m.pass(coord, true) }
	for ; m.now().Sub(m.start) <= shape.PlaceholderGrace+3*time.Minute; time.Sleep(time.Second) {
		pass()
	}
	res, ok := local.FSM.ReservationFor(id)
	if !ok || res.State != state.ReservationHeld {
		t.Fatalf("reservation %+v (found %v); the test needs a placeholder Nomad placed", res, ok)
	}
	pallocs, _, err := client.Jobs().Allocations(res.Job, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(pallocs) != 1 || pallocs[0].ClientStatus != "pending" || pallocs[0].NodeID != target.ID || pallocs[0].DesiredStatus != "run" {
		for _, a := range pallocs {
			t.Logf("placeholder allocation %s on %s: desired %s, client %s (%s)", a.ID, a.NodeID, a.DesiredStatus, a.ClientStatus, a.ClientDescription)
		}
		t.Fatalf("placeholder %s: %d allocations; the test needs one pending on %s", res.Job, len(pallocs), target.Name)
	}
	if res.Unplaced != 0 {
		t.Errorf("reservation %s counts %d placeholder allocations unplaced; want none: Nomad placed it", res.ID, res.Unplaced)
	}
	r, _ := local.FSM.Act().Request(id)
	if strings.Contains(r.Reason, "does not fit") {
		t.Errorf("%s's reason %q; want no reservation that does not fit", id, r.Reason)
	}
	if acts := local.FSM.Act().ScaleActions; len(acts) != 0 {
		t.Errorf("scale actions %+v; want none for a placeholder Nomad placed", acts)
	}
	var said []string
	for _, d := range local.FSM.Decisions() {
		if d.Reservation == res.ID && strings.Contains(d.Reason, "is placed but its task is not running") {
			said = append(said, d.Reason)
		}
	}
	if len(said) != 1 {
		t.Errorf("decisions that the placeholder's task is not running: %q; want one", said)
	}
	for _, d := range said {
		for _, want := range []string{res.Job, "on node " + target.Name, "No tasks have started", "Task Setup", "does not scale"} {
			if !strings.Contains(d, want) {
				t.Errorf("decision %q lacks %q", d, want)
			}
		}
	}

	// Resumed: the room is handed over and the move goes ahead.
	if _, err := local.Apply(ctx, state.SetQueuePaused{Paused: false, At: time.Now().UTC(), By: "e2e"}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Second) {
		pass()
		if r, _ = local.FSM.Act().Request(id); r.State.Terminal() || time.Now().After(deadline) {
			break
		}
	}
	if r.State != state.RequestDone {
		t.Errorf("%s %s (%s) a minute after the queue was resumed; want done", id, r.State, r.Reason)
	}
	handed := false
	for _, in := range local.FSM.Intents() {
		if in.Kind == state.IntentScaleHold && in.Reservation == res.ID && in.Outcome == state.OutcomeDone {
			handed = true
		}
	}
	if !handed {
		t.Errorf("no hand-over of %s's room", res.ID)
	}
	m.notScaled("")
	t.Logf("figures: real Nomad %s: placeholder %s pending on %s past its grace, not scaled for; the decision: %s; the request: %s (%s)",
		addr, res.Job, target.Name, strings.Join(said, " | "), r.State, r.Reason)
}

// TestActPlaceholderTaskFailsOnRealNomad: a real Nomad (NOMAD_ADDR with
// two datacenters, raw_exec on each) places a move's placeholder whose
// raw_exec command does not exist: the driver's error is one Nomad does
// not restart after, so the allocation fails on its node, holds no room,
// and Nomad reschedules it (30 s later, doubling) to fail alike. Past the
// placeholder's grace foreshape does not scale the target's scale block
// (a real job it would scale): nodes added would fail it alike. The
// request waits, its reason saying the placeholder's task fails and with
// what events, and a decision says so. Restarted with a reserve.config
// whose command exists (a new coordinator on the same state), the
// placeholder is released and placed anew, and the move is done, without
// a scale action. The passes' now runs a minute ahead a second.
func TestActPlaceholderTaskFailsOnRealNomad(t *testing.T) {
	addr, client, nodes := realNomadNodes(t)
	source := rawExecNode(t, nodes)
	var target *nomadapi.NodeListStub
	for _, n := range nodes {
		if rawExecReady(n) && n.Datacenter != source.Datacenter {
			target = n
		}
	}
	if target == nil {
		t.Skip("NOMAD_ADDR has no second datacenter with a ready raw_exec node (join a client agent in another datacenter)")
	}
	missing := fmt.Sprintf("/nonexistent/foreshape-hold-%d", os.Getpid())
	m := newPlaceholderMove(t, addr, client, "taskfails", source.Datacenter, target.Datacenter, target.Datacenter)
	local := m.local
	coordWith := m.coordinator
	coord := coordWith(migrate.Placeholder{Driver: "raw_exec", Config: map[string]any{"command": missing}})
	id := m.submit()
	pass := func() { t.Helper(); m.pass(coord, true) }
	for ; m.now().Sub(m.start) <= shape.PlaceholderGrace+3*time.Minute; time.Sleep(time.Second) {
		pass()
	}
	res, ok := local.FSM.ReservationFor(id)
	if !ok || res.State != state.ReservationHeld || res.Unplaced == 0 {
		t.Fatalf("reservation %+v (found %v); the test needs a held placeholder whose allocation failed", res, ok)
	}
	pallocs, _, err := client.Jobs().Allocations(res.Job, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range pallocs {
		t.Logf("placeholder allocation %s on %s: desired %s, client %s (%s)", a.ID, a.NodeID, a.DesiredStatus, a.ClientStatus, a.ClientDescription)
	}
	r, _ := local.FSM.Act().Request(id)
	if r.State == state.RequestRunning || r.State.Terminal() {
		t.Errorf("%s %s (%s): moved without its room", id, r.State, r.Reason)
	}
	for _, want := range []string{"placeholder cannot be placed", res.Job + "'s task fails on the nodes Nomad places it on", "on node " + target.Name,
		"could not be found", "Error was unrecoverable", "reserve.config", "not scaled for"} {
		if !strings.Contains(r.Reason, want) {
			t.Errorf("%s's reason %q lacks %q", id, r.Reason, want)
		}
	}
	if acts := local.FSM.Act().ScaleActions; len(acts) != 0 {
		t.Errorf("scale actions %+v; want none for a placeholder whose task fails", acts)
	}
	said := 0
	for _, d := range local.FSM.Decisions() {
		if d.Reservation == res.ID && strings.HasPrefix(d.Reason, "placeholder cannot run: ") {
			said++
		}
	}
	if said != 1 {
		t.Errorf("%d decisions that the placeholder cannot run; want one", said)
	}
	reason := r.Reason

	// Restarted with a command that exists: placed anew, and moved.
	coord = coordWith(migrate.Placeholder{Driver: "raw_exec", Config: map[string]any{"command": "/bin/sleep", "args": []string{"infinity"}}})
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Second) {
		pass()
		if r, _ = local.FSM.Act().Request(id); r.State.Terminal() || time.Now().After(deadline) {
			break
		}
	}
	if r.State != state.RequestDone {
		t.Errorf("%s %s (%s) a minute after the restart with a command that exists; want done", id, r.State, r.Reason)
	}
	for _, x := range local.FSM.Act().Reservations {
		if x.ID == res.ID && (x.State != state.ReservationReleased || !strings.Contains(x.Reason, "reserve.driver and reserve.config")) {
			t.Errorf("reservation %s %s (%s); want released, saying reserve.config changed", x.ID, x.State, x.Reason)
		}
	}
	m.notScaled("")
	t.Logf("figures: real Nomad %s: placeholder %s failing on %s past its grace, not scaled for; the request waited: %s; after the restart: %s (%s)",
		addr, res.Job, target.Name, reason, r.State, r.Reason)
}
