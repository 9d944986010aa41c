package sim

import (
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
)

// TestPurgedNodesClientReportsWhatItRan: a-1 drains, one allocation at a
// time, when it is purged: the allocation the drain is moving (stopped by
// the servers, still running on the client) is left as its client last
// reported it, and the others are stopped as lost. a-1's client still
// runs and registers the node again at its next heartbeat; it then stops
// both and reports them complete ("All tasks have completed"), the lost
// ones keeping the purge's desired status and description, as a real
// Nomad's client does (TestFidelityNodePurge). Before, the simulated
// client reported nothing more: the moving allocation ran for good and
// the lost ones stayed lost.
func TestPurgedNodesClientReportsWhatItRan(t *testing.T) {
	c := drainSetup(t, 4, 1, 1000, BreakBeforeMake)
	drain(t, c, "a-1", time.Hour)
	var moving *alloc
	for range 30 {
		do(c, func() {
			for _, a := range c.nodeByName["a-1"].allocs {
				if a.desired != desiredRun && !a.clientTerminal() {
					moving = a
				}
			}
		})
		if moving != nil {
			break
		}
		if err := c.Step(10 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if moving == nil {
		t.Fatal("the drain moves no allocation off a-1")
	}
	var id string
	var lost []*alloc
	do(c, func() {
		n := c.nodeByName["a-1"]
		id = n.id
		if _, err := c.purge(id); err != nil {
			t.Fatal(err)
		}
		for _, a := range n.history {
			if a.client == allocLost {
				lost = append(lost, a)
			}
		}
		if moving.client != allocRunning || len(lost) == 0 {
			t.Fatalf("after the purge: the moving allocation %s, %d lost; want it running, some lost", moving.client, len(lost))
		}
	})
	back := false
	for range 10 {
		if err := c.Step(10 * time.Second); err != nil {
			t.Fatal(err)
		}
		if do(c, func() { back = c.nodeByID[id] != nil }); back {
			break
		}
	}
	if !back {
		t.Fatal("a-1 did not register again")
	}
	do(c, func() {
		for _, a := range append([]*alloc{moving}, lost...) {
			if a.client != allocComplete || a.clientDesc != "All tasks have completed" || a.desired == desiredRun {
				t.Errorf("%s after a-1 registered again: %s (%q) / %s (%q); want stopped, complete (All tasks have completed)",
					a.name, a.desired, a.desiredDesc, a.client, a.clientDesc)
			}
		}
		for _, a := range lost {
			if a.desiredDesc != "alloc is lost since its node is down" {
				t.Errorf("%s after a-1 registered again: desired %q; want the purge's", a.name, a.desiredDesc)
			}
		}
		if n := c.nodeByID[id]; len(n.allocs) != 0 || n.status != api.NodeStatusReady {
			t.Errorf("a-1 %s holds %d allocations; want ready, its client's stopped", n.status, len(n.allocs))
		}
	})
}
