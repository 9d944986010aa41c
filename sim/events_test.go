package sim

import (
	"testing"

	"github.com/hashicorp/nomad/api"
)

// TestNodeEventsCap: a node keeps at most Nomad's 10 events, the oldest
// dropped; setting the eligibility a node has adds none and moves no index;
// removing a drain from a node without one adds none but moves its index.
func TestNodeEventsCap(t *testing.T) {
	c := newTestCluster(t, "")
	client := newTestAPI(t, c, "")
	nodes, _, err := client.Nodes().List(nil)
	if err != nil {
		t.Fatal(err)
	}
	id := nodes[0].ID
	events := func() ([]*api.NodeEvent, uint64) {
		t.Helper()
		n, _, err := client.Nodes().Info(id, nil)
		if err != nil {
			t.Fatal(err)
		}
		return n.Events, n.ModifyIndex
	}
	evs, _ := events()
	if len(evs) != 1 || evs[0].Message != nodeEventRegistered || evs[0].Subsystem != nodeEventSubsystemCluster || evs[0].CreateIndex != 0 {
		t.Fatalf("registered node's events = %+v, want one %q at index 0", evs, nodeEventRegistered)
	}
	_, before := events()
	if _, err := client.Nodes().ToggleEligibility(id, true, nil); err != nil {
		t.Fatal(err)
	}
	if evs, idx := events(); len(evs) != 1 || idx != before {
		t.Fatalf("eligible node made eligible: %d events, index %d → %d; want no change", len(evs), before, idx)
	}
	if _, err := client.Nodes().UpdateDrain(id, nil, false, nil); err != nil {
		t.Fatal(err)
	}
	if evs, idx := events(); len(evs) != 1 || idx == before {
		t.Fatalf("drain removed from an undrained node: %d events, index %d → %d; want no event and a new index", len(evs), before, idx)
	}
	for i := range 12 {
		if _, err := client.Nodes().ToggleEligibility(id, i%2 == 1, nil); err != nil {
			t.Fatal(err)
		}
	}
	evs, idx := events()
	if len(evs) != maxNodeEvents {
		t.Fatalf("%d events, want %d", len(evs), maxNodeEvents)
	}
	last := evs[len(evs)-1]
	if last.Message != nodeEventEligible || last.CreateIndex != idx {
		t.Fatalf("last event %q at %d, want %q at the node's ModifyIndex %d", last.Message, last.CreateIndex, nodeEventEligible, idx)
	}
	if evs[0].Message != nodeEventIneligible {
		t.Fatalf("oldest kept event %q, want %q (registration and the first two toggles dropped)", evs[0].Message, nodeEventIneligible)
	}
}
