package sim

import (
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
)

// TestRelocateNode: a node whose client is restarted in another
// datacenter, pool and class keeps its ID, CreateIndex, eligibility,
// drain, events and allocations, and moves its ModifyIndex, as Nomad's
// node table keeps a node registered again (upsertNodeTxn). A datacenter
// the scenario does not declare is refused.
func TestRelocateNode(t *testing.T) {
	c := newTestCluster(t, "")
	client := newTestAPI(t, c, "")
	if err := c.Step(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	nodes, _, err := client.Nodes().List(nil)
	if err != nil {
		t.Fatal(err)
	}
	var from, to *api.NodeListStub
	for _, n := range nodes {
		if from == nil {
			from = n
		} else if n.Datacenter != from.Datacenter && to == nil {
			to = n
		}
	}
	if from == nil || to == nil {
		t.Fatalf("nodes %+v; the test needs two datacenters", nodes)
	}
	id := from.ID
	if _, err := client.Nodes().ToggleEligibility(id, false, nil); err != nil {
		t.Fatal(err)
	}
	before, _, err := client.Nodes().Info(id, nil)
	if err != nil {
		t.Fatal(err)
	}
	allocs, _, err := client.Nodes().Allocations(id, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.RelocateNode(id, to.Datacenter, "other", "batch"); err != nil {
		t.Fatal(err)
	}
	after, _, err := client.Nodes().Info(id, nil)
	if err != nil {
		t.Fatal(err)
	}
	if after.Datacenter != to.Datacenter || after.NodePool != "other" || after.NodeClass != "batch" {
		t.Errorf("relocated to %s/%s/%s; want %s/other/batch", after.Datacenter, after.NodePool, after.NodeClass, to.Datacenter)
	}
	if after.CreateIndex != before.CreateIndex || after.ModifyIndex <= before.ModifyIndex {
		t.Errorf("indexes create %d→%d, modify %d→%d; want create kept, modify moved", before.CreateIndex, after.CreateIndex, before.ModifyIndex, after.ModifyIndex)
	}
	if after.SchedulingEligibility != api.NodeSchedulingIneligible || after.DrainStrategy != nil || len(after.Events) != len(before.Events) {
		t.Errorf("relocated node %s, drain %+v, %d events (before %d); want its eligibility, drain and events kept",
			after.SchedulingEligibility, after.DrainStrategy, len(after.Events), len(before.Events))
	}
	again, _, err := client.Nodes().Allocations(id, nil)
	if err != nil {
		t.Fatal(err)
	}
	ids := func(as []*api.Allocation) []string {
		var out []string
		for _, a := range as {
			out = append(out, a.ID)
		}
		slices.Sort(out)
		return out
	}
	if !slices.Equal(ids(allocs), ids(again)) {
		t.Errorf("allocations %v → %v; want them kept", ids(allocs), ids(again))
	}
	if err := c.RelocateNode(id, "nowhere", "default", ""); err == nil {
		t.Error("relocated to an undeclared datacenter")
	}
}
