package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/hashicorp/nomad/api"
)

// The spread score of a node, as Nomad's SpreadIterator computes it
// (scheduler/feasible/spread.go), for a group of count 4. Nodes a-* are in
// dc1, rack r1; b-* in dc2, rack r2; none has meta.zone.
func TestSpreadScore(t *testing.T) {
	dc := func(weight int, targets ...api.SpreadTarget) spreadBlock {
		return spreadBlock{attr: "${node.datacenter}", weight: weight, targets: targets}
	}
	for _, tc := range []struct {
		name   string
		blocks []spreadBlock
		on     []string // nodes of the group's live allocations
		want   map[string]float64
	}{
		{"targets: what is left of the count to desire, values no target names share the rest",
			[]spreadBlock{dc(50, api.SpreadTarget{Value: "dc1", Percent: 50})}, []string{"a-1"},
			//lint:ignore SA4000 Nomad's formula, written out: (desired - used) / desired.
			map[string]float64{"a-2": (2 - 2) / 2.0, "b-1": (2 - 1) / 2.0}},
		{"targets covering the count: another value scores -1",
			[]spreadBlock{dc(50, api.SpreadTarget{Value: "dc1", Percent: 100})}, nil,
			map[string]float64{"a-1": (4 - 1) / 4.0, "b-1": -1}},
		{"a target of 0%: the lowest boost so far, -1 at first",
			[]spreadBlock{dc(50, api.SpreadTarget{Value: "dc1", Percent: 100}, api.SpreadTarget{Value: "dc2", Percent: 0})}, nil,
			map[string]float64{"b-1": -1}},
		{"the node lacks the attribute",
			[]spreadBlock{{attr: "${meta.zone}", weight: 50}}, []string{"a-1"},
			map[string]float64{"a-1": -1, "b-1": -1}},
		{"even: nothing placed yet",
			[]spreadBlock{dc(50)}, nil,
			map[string]float64{"a-1": 0, "b-1": 0}},
		{"even: an unused value +1, the only used one -1",
			[]spreadBlock{dc(50)}, []string{"a-1"},
			map[string]float64{"a-2": -1, "b-1": 1}},
		{"even: above the least used (min-used)/min, the least used (max-min)/min",
			[]spreadBlock{dc(50)}, []string{"a-1", "a-2", "a-3", "b-1"},
			map[string]float64{"a-1": (1 - 3) / 1.0, "b-2": (3 - 1) / 1.0}},
		{"two blocks: each target boost weighs its share of the weights; even spread is not weighed",
			[]spreadBlock{
				{attr: "${node.datacenter}", weight: 30, targets: []api.SpreadTarget{{Value: "dc1", Percent: 75}}, job: true},
				{attr: "${meta.rack}", weight: 10},
			}, []string{"a-1", "a-2"},
			map[string]float64{
				//lint:ignore SA4000 Nomad's formula, written out.
				"a-3": (3-3)/3.0*30/40 + -1, // dc1: 2 used of 3; r1 is the only rack used
				//lint:ignore SA4000 Nomad's formula, written out.
				"b-1": (1-1)/1.0*30/40 + 2/2.0, // dc2 counts as "*" (1 desired); r2 unused
			}},
		{"a group block with targets under the job's even block on the same attribute: the node's own value looked up",
			[]spreadBlock{{attr: "${node.datacenter}", weight: 50, job: true}, {attr: "${node.datacenter}", weight: 50, targets: []api.SpreadTarget{{Value: "dc1", Percent: 50}}}},
			[]string{"b-1"},
			map[string]float64{
				"a-1": 1 + 1,  // dc1 unused in both counts
				"b-2": -1 + 1, // the group block counts b-1 under "*" and finds no dc2
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestCluster(t, "")
			nodes := map[string]*node{}
			for _, n := range c.nodes {
				nodes[n.name] = n
			}
			g := &group{name: "g", count: 4, spreads: tc.blocks}
			j := &job{id: "j"}
			for _, name := range tc.on {
				j.allocs = append(j.allocs, &alloc{job: j, grp: g, node: nodes[name], desired: desiredRun, client: allocRunning})
			}
			// A stopped allocation does not count.
			j.allocs = append(j.allocs, &alloc{job: j, grp: g, node: nodes["b-2"], desired: desiredStop, client: allocComplete})
			s := newSpreadScorer(j, g, newSpreadState())
			s.count()
			for name, want := range tc.want {
				if got := s.score(nodes[name]); math.Abs(got-want) > 1e-9 {
					t.Errorf("score of %s = %.4f, want %.4f", name, got, want)
				}
			}
		})
	}
}

// rescanEvenSpreadBoost is Nomad's evenSpreadScoreBoost as written: the
// least and most used counts found by scanning every value, per node.
func rescanEvenSpreadBoost(use map[string]int, v string) float64 {
	if len(use) == 0 {
		return 0
	}
	cur := use[v]
	lo, hi := 0, 0
	for _, k := range use {
		if lo == 0 || k < lo {
			lo = k
		}
		if hi == 0 || k > hi {
			hi = k
		}
	}
	switch {
	case cur != lo:
		return float64(lo-cur) / float64(lo)
	case lo == hi:
		return -1
	}
	return float64(hi-lo) / float64(lo)
}

// The even-spread boost from the bounds kept with the counts is the boost
// Nomad's scan gives, bit for bit, for every value used and unused, over
// counts of many shapes; and a placement's spread scores do not change
// when the counts are kept this way.
func TestEvenSpreadBoostSameAsRescan(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for trial := range 2000 {
		u := valueUse{by: map[string]int{}}
		for range rng.IntN(12) {
			u.by[fmt.Sprintf("v%d", rng.IntN(15))] += 1 + rng.IntN(1+trial%5)
		}
		u.bounds()
		for k := range 16 {
			v := fmt.Sprintf("v%d", k)
			if got, want := evenSpreadBoost(u, v), rescanEvenSpreadBoost(u.by, v); math.Float64bits(got) != math.Float64bits(want) {
				t.Fatalf("counts %v, value %s: boost %v, the scan gives %v", u.by, v, got, want)
			}
		}
	}

	// Every node scored at each of 30 placements of a group spreading over
	// node IDs and datacenters.
	c := newTestCluster(t, "")
	j := &job{id: "j"}
	g := &group{name: "g", count: 12, spreads: []spreadBlock{{attr: "${node.unique.id}", weight: 50}, {attr: "${node.datacenter}", weight: 20}}}
	st := newSpreadState()
	s := newSpreadScorer(j, g, st)
	for i := range 30 {
		s.count()
		for _, n := range c.nodes {
			want := 0.0
			for bi, b := range s.blocks {
				v, _ := b.value(n)
				want += rescanEvenSpreadBoost(s.used[bi].by, v)
			}
			if got := s.score(n); math.Float64bits(got) != math.Float64bits(want) {
				t.Fatalf("placement %d, node %s: score %v, the scan gives %v", i, n.name, got, want)
			}
		}
		n := c.nodes[rng.IntN(len(c.nodes))]
		j.allocs = append(j.allocs, &alloc{job: j, grp: g, node: n, desired: desiredRun, client: allocRunning})
	}
}

// The weights a target's boost is weighed against are summed over every
// group the evaluation has scored, each group counted once, its own blocks
// and the job's: a group whose allocations are checked for an in-place
// update counts before any placement, whatever the groups' order; a group
// with nothing to update in place does not count until it is placed.
func TestSpreadWeightsAcrossGroups(t *testing.T) {
	c := newTestCluster(t, "")
	dc1 := c.nodes[0]
	jobBlock := spreadBlock{attr: "${meta.rack}", weight: 5, job: true}
	b := &group{name: "b", count: 4, specHash: "b", spreads: []spreadBlock{jobBlock,
		{attr: "${node.datacenter}", weight: 10, targets: []api.SpreadTarget{{Value: "dc1", Percent: 50}, {Value: "dc2", Percent: 50}}}}}
	a := &group{name: "a", count: 1, specHash: "a", spreads: []spreadBlock{jobBlock, {attr: "${node.datacenter}", weight: 90}}}
	quiet := &group{name: "quiet", count: 1, specHash: "q", spreads: []spreadBlock{jobBlock}}
	j := &job{id: "j", version: 2, groups: []*group{b, a, quiet}}
	j.allocs = []*alloc{
		{job: j, grp: a, jobVersion: 1, specHash: "a", node: dc1, desired: desiredRun, client: allocRunning},
		{job: j, grp: quiet, jobVersion: 2, specHash: "q", node: dc1, desired: desiredRun, client: allocRunning},
	}
	st := newSpreadState()
	for _, g := range j.groups {
		checkInPlaceSpreads(j, g, st)
	}
	if st.weights != 95 {
		t.Fatalf("after the in-place checks: weights %d, want 95 (group a's 90 and the job's 5; nothing of b or quiet)", st.weights)
	}
	s := newSpreadScorer(j, b, st)
	newSpreadScorer(j, b, st) // a group counts once
	s.count()
	// The job's even block: nothing of b placed, 0. b's own: dc1 desires
	// 2 of 4, none used, weighed 10 of 95+5+10.
	if got, want := s.score(dc1), (2-1)/2.0*10/110; math.Abs(got-want) > 1e-12 || st.weights != 110 {
		t.Errorf("b's score on dc1 %v with weights %d, want %v with 110", got, st.weights, want)
	}
}
