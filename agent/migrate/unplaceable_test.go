package migrate

import (
	"strings"
	"testing"

	nomadapi "github.com/hashicorp/nomad/api"
)

// TestLastFailure: which placeholder failures no node could take whatever
// their size (no scale helps), read from evaluations as Nomad records them.
// The first is what a real Nomad 2.0.6 recorded for a job whose task
// driver no node has.
func TestLastFailure(t *testing.T) {
	missing := func() *nomadapi.AllocationMetric {
		return &nomadapi.AllocationMetric{NodesEvaluated: 2, NodesFiltered: 2, NodesInPool: 2,
			ConstraintFiltered: map[string]int{"missing drivers": 2}, NodesAvailable: map[string]int{"dc1": 1, "dc2": 1}}
	}
	full := func() *nomadapi.AllocationMetric {
		return &nomadapi.AllocationMetric{NodesEvaluated: 2, NodesExhausted: 2, NodesInPool: 2,
			DimensionExhausted: map[string]int{"memory": 2}, NodesAvailable: map[string]int{"dc2": 2}}
	}
	eval := func(id string, index uint64, groups map[string]*nomadapi.AllocationMetric) *nomadapi.Evaluation {
		return &nomadapi.Evaluation{ID: id, CreateIndex: index, FailedTGAllocs: groups}
	}
	tests := []struct {
		name     string
		evals    []*nomadapi.Evaluation
		found    bool
		hopeless bool
		reasons  string
	}{
		{name: "no failed placement", evals: []*nomadapi.Evaluation{eval("e1", 10, nil)}},
		{name: "driver missing on every node", evals: []*nomadapi.Evaluation{eval("e1", 10, map[string]*nomadapi.AllocationMetric{"g": missing()})},
			found: true, hopeless: true, reasons: "missing drivers: 2"},
		{name: "nodes full", evals: []*nomadapi.Evaluation{eval("e1", 10, map[string]*nomadapi.AllocationMetric{"g": full()})}, found: true},
		{name: "one filtered, one full", evals: []*nomadapi.Evaluation{eval("e1", 10, map[string]*nomadapi.AllocationMetric{"g": {
			NodesEvaluated: 2, NodesFiltered: 1, NodesExhausted: 1, ConstraintFiltered: map[string]int{"missing drivers": 1}}})},
			found: true, reasons: "missing drivers: 1"},
		{name: "its class filters every node: nodes of that class added pass", evals: []*nomadapi.Evaluation{eval("e1", 10, map[string]*nomadapi.AllocationMetric{"g": {
			NodesEvaluated: 3, NodesFiltered: 3, ConstraintFiltered: map[string]int{"${node.class} = web": 2, "${node.unique.id} != n1": 1}}})},
			found: true, reasons: "${node.class} = web: 2, ${node.unique.id} != n1: 1"},
		{name: "a driver some lack, its class the others: nodes of that class added may run it", evals: []*nomadapi.Evaluation{eval("e1", 10, map[string]*nomadapi.AllocationMetric{"g": {
			NodesEvaluated: 3, NodesFiltered: 3, ConstraintFiltered: map[string]int{"missing drivers": 2, "${node.class} = web": 1}}})},
			found: true, reasons: "missing drivers: 2, ${node.class} = web: 1"},
		{name: "another checker's reason on every node", evals: []*nomadapi.Evaluation{eval("e1", 10, map[string]*nomadapi.AllocationMetric{"g": {
			NodesEvaluated: 2, NodesFiltered: 2, ConstraintFiltered: map[string]int{"missing devices": 2}}})},
			found: true, hopeless: true, reasons: "missing devices: 2"},
		{name: "only its own exclusions: a new node passes them", evals: []*nomadapi.Evaluation{eval("e1", 10, map[string]*nomadapi.AllocationMetric{"g": {
			NodesEvaluated: 2, NodesFiltered: 2, ConstraintFiltered: map[string]int{"${node.unique.id} != n1": 1, "${node.unique.id} != n2": 1}}})},
			found: true, reasons: "${node.unique.id} != n1: 1, ${node.unique.id} != n2: 1"},
		{name: "no node at all: a locality scaled to zero, which a scale brings back", evals: []*nomadapi.Evaluation{eval("e1", 10, map[string]*nomadapi.AllocationMetric{"g": {NodesAvailable: map[string]int{"dc2": 0}}})},
			found: true},
		{name: "the newest failure counts, in any order", evals: []*nomadapi.Evaluation{
			eval("e1", 10, map[string]*nomadapi.AllocationMetric{"g": full()}),
			eval("e3", 30, nil),
			eval("e2", 20, map[string]*nomadapi.AllocationMetric{"g": missing()})},
			found: true, hopeless: true, reasons: "missing drivers: 2"},
		{name: "one group full, one filtered out", evals: []*nomadapi.Evaluation{eval("e1", 10, map[string]*nomadapi.AllocationMetric{"a": missing(), "b": full()})},
			found: true, reasons: "missing drivers: 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, ok := lastFailure(tt.evals)
			if ok != tt.found || f.hopeless != tt.hopeless || f.reasonList() != tt.reasons {
				t.Errorf("found %v hopeless %v reasons %q; want %v, %v, %q", ok, f.hopeless, f.reasonList(), tt.found, tt.hopeless, tt.reasons)
			}
		})
	}
}

// TestUnplaceableWhy: the reason names the locality, Nomad's filter
// reasons with counts, and what to check: the driver when it is missing,
// the placeholder's constraints otherwise.
func TestUnplaceableWhy(t *testing.T) {
	ph := Placeholder{Driver: "docker", Config: map[string]any{"image": "registry.k8s.io/pause:3.10"}}
	tests := []struct {
		name      string
		f         placementFailure
		want, not []string
	}{
		{name: "missing driver", f: placementFailure{eval: "e1", evaluated: 2, reasons: map[string]int{"missing drivers": 2}},
			want: []string{"no node of dc2 can run placeholder foreshape-reserve-rs-1", "filtered out all 2 nodes it evaluated (missing drivers: 2; evaluation e1)",
				`task driver "docker"`, "set reserve.driver and reserve.config", "restart the servers (a reload does not apply them)"},
			not: []string{"constraints"}},
		{name: "another reason", f: placementFailure{eval: "e1", evaluated: 1, reasons: map[string]int{"missing devices": 1}},
			want: []string{"filtered out all 1 node it evaluated (missing devices: 1; evaluation e1)",
				`check what the nodes of dc2 lack for the placeholder's task (driver "docker", reserve.driver and reserve.config)`},
			not: []string{"restart"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			why := unplaceableWhy(tt.f, "dc2", "foreshape-reserve-rs-1", ph)
			for _, w := range tt.want {
				if !strings.Contains(why, w) {
					t.Errorf("%q lacks %q", why, w)
				}
			}
			for _, w := range tt.not {
				if strings.Contains(why, w) {
					t.Errorf("%q says %q", why, w)
				}
			}
		})
	}
}
