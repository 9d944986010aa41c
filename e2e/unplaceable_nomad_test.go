package e2e

import (
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/migrate"
	"github.com/foreshape/foreshape/agent/shape"
	"github.com/foreshape/foreshape/agent/state"
)

// TestActUnplaceablePlaceholderOnRealNomad: a real Nomad (NOMAD_ADDR with
// two datacenters, raw_exec on each) accepts a move's placeholder whose
// task driver no node of the target runs, and cannot place it: its
// evaluation filters every node ("missing drivers"). Past the placeholder's
// grace the coordinator reads why from Nomad and does not scale the
// target's scale block (a real job it would scale), and the request waits,
// its reason naming the missing driver and reserve.driver. The passes' now
// runs a minute ahead a second.
func TestActUnplaceablePlaceholderOnRealNomad(t *testing.T) {
	addr, client, nodes := realNomadNodes(t)
	source := rawExecNode(t, nodes)
	var target string
	for _, n := range nodes {
		if rawExecReady(n) && n.Datacenter != source.Datacenter {
			target = n.Datacenter
		}
	}
	if target == "" {
		t.Skip("NOMAD_ADDR has no second datacenter with a ready raw_exec node (join a client agent in another datacenter)")
	}
	driver := "podman"
	for _, n := range nodes {
		if n.Drivers[driver] != nil {
			t.Skipf("node %s runs %s: this test needs a task driver no node runs", n.Name, driver)
		}
	}
	m := newPlaceholderMove(t, addr, client, "unplaceable", source.Datacenter, target, source.Datacenter)
	local := m.local
	coord := m.coordinator(migrate.Placeholder{Driver: driver, Config: map[string]any{"image": "registry.k8s.io/pause:3.10"}})
	id := m.submit()
	for {
		at := m.now()
		m.pass(coord, false)
		if at.Sub(m.start) > shape.PlaceholderGrace+3*time.Minute {
			break
		}
		time.Sleep(time.Second)
	}
	res, ok := local.FSM.ReservationFor(id)
	if !ok || res.Unplaced == 0 {
		t.Fatalf("reservation %+v (found %v); the test needs a placeholder Nomad cannot place", res, ok)
	}
	pj, _, err := client.Jobs().Info(res.Job, nil)
	if err != nil || pj.TaskGroups[0].Tasks[0].Driver != driver {
		t.Fatalf("placeholder %s as Nomad holds it: %+v, %v", res.Job, pj, err)
	}
	r, _ := local.FSM.Act().Request(id)
	if r.State == state.RequestRunning || r.State.Terminal() {
		t.Errorf("%s %s (%s): moved without its room", id, r.State, r.Reason)
	}
	for _, want := range []string{"no node of " + target + " can run placeholder " + res.Job, "missing drivers: 1",
		`task driver "` + driver + `"`, "reserve.driver", "not scaled for"} {
		if !strings.Contains(r.Reason, want) {
			t.Errorf("%s's reason %q lacks %q", id, r.Reason, want)
		}
	}
	m.notScaled(" for a placeholder no node can take")
	var fm *nomadapi.AllocationMetric
	evals, _, err := client.Jobs().Evaluations(res.Job, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evals {
		for _, m := range e.FailedTGAllocs {
			fm = m
		}
	}
	t.Logf("Nomad's failed metric for %s: %+v; the request's reason: %s", res.Job, fm, r.Reason)
}
