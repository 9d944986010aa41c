package shape

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// batchPolicy shapes the batch nodes of every datacenter: it may share
// nodes with a policy of a datacenter without holding it or lying within
// it.
const batchPolicy = `
shaping "batch" {
  locality {
    node_class = "batch"
  }
}
`

// TestDefaultTargetsSkipALocalityThatMayShareTheSourcesNodes: without
// migrate.targets, a drain of all of dc1 does not send its work to
// */*/batch, though batch is the locality with the most room (10% CPU
// against dc2's 40%): one of its nodes, dc1-batch-1, is in dc1, and an
// explicit target that may share nodes so is refused when the policy
// loads (policies: TestTargetSharingNodesWithTheOwnLocalityNamesThem).
// Before, the web allocations were queued into */*/batch and cache-0,
// which may run only in dc1, was queued there too, feasible only on
// dc1-batch-1, a node of the window it leaves. Now the web allocations
// go to dc2 and cache-0 waits for lack of a target.
func TestDefaultTargetsSkipALocalityThatMayShareTheSourcesNodes(t *testing.T) {
	f := baseFixture(t, "reschedule")
	f.pols = append(f.pols, parsePolicies(t, batchPolicy)...)
	f.pols[0].Migrate.Targets = nil
	f.pols[0].Schedules[0].Nodes = "" // all of dc1
	for _, dc := range []string{"dc1", "dc3"} {
		f.nodes = append(f.nodes, Node{ID: "id-" + dc + "-batch-1", Name: dc + "-batch-1", Datacenter: dc, NodePool: "default", NodeClass: "batch",
			CPU: 16000, MemoryMB: 32768, Ready: true, Eligible: true})
	}
	f.jobs[0].Datacenters = append(f.jobs[0].Datacenters, "dc3")
	for _, metric := range []string{"cpu", "memory"} {
		fc := flat("*/*/batch", metric, 10, 80)
		fc.Policy = "batch"
		f.fcs = append(f.fcs, fc)
	}
	f.now = at(100 * time.Minute) // 07:40: in dc1's 30m lead time
	plan := Run(f.input())
	queued, _ := queuedTargets(plan)
	want := []string{"web-0>dc2", "web-1>dc2", "web-2>dc2", "web-3>dc2"}
	if !slices.Equal(queued, want) {
		t.Errorf("queued %v; want %v", queued, want)
	}
	cache := cacheWaits(plan)
	if len(cache) != 1 || strings.Contains(cache[0], "batch") {
		t.Errorf("cache-0's wait decisions %q; want one, naming no */*/batch", cache)
	}
}

// TestTargetsSkipALocalityThatMayShareTheDrainedNodes: a policy's listed
// target that may share a node with the locality a drain window empties
// is skipped for that window's moves, as a default one is: ops (dc3)
// drains all of dc1 and lists dc1/*/batch, which the loader accepts (it
// shares no node with dc3) but which lies within dc1. Before, the
// planner queued dc1's work into it, onto dc1-batch-1, a node of the
// window the work leaves (the move keeps off it, and nowhere else in
// dc1/*/batch is left). Now the web allocations go to dc2, and cache-0,
// which may run only in dc1, waits, its decision saying why dc1/*/batch
// was not taken.
func TestTargetsSkipALocalityThatMayShareTheDrainedNodes(t *testing.T) {
	f := baseFixture(t, "reschedule")
	f.pols = append(f.pols, parsePolicies(t, strings.Replace(opsPolicy, `targets   = ["dc2"]`, `targets   = ["dc1/*/batch", "dc2"]`, 1))...)
	f.nodes = append(f.nodes, Node{ID: "id-dc1-batch-1", Name: "dc1-batch-1", Datacenter: "dc1", NodePool: "default", NodeClass: "batch",
		CPU: 16000, MemoryMB: 32768, Ready: true, Eligible: true})
	f.pols[0].Schedules = nil     // dc1's own rack-a drain: ops's alone here
	f.now = at(100 * time.Minute) // 07:40: in ops's 2h lead time
	plan := Run(f.input())
	queued, _ := queuedTargets(plan)
	want := []string{"web-0>dc2", "web-1>dc2", "web-2>dc2", "web-3>dc2"}
	if !slices.Equal(queued, want) {
		t.Errorf("queued %v; want %v", queued, want)
	}
	cache := cacheWaits(plan)
	if len(cache) != 1 || !strings.Contains(cache[0], "dc1/*/batch may share nodes with dc1, which the work leaves") {
		t.Errorf("cache-0's wait decisions %q; want one saying dc1/*/batch may share nodes with dc1", cache)
	}
}

// opsOfDC3 is opsPolicy without migrate.targets: its drain of all of dc1
// may send dc1's work to any other policy's locality, dc3 its own
// included, and its forecast of dc3 adds dc1's demand inside the window.
const opsOfDC3 = `
shaping "ops" {
  locality {
    datacenter = "dc3"
  }
  migrate {
    strategy  = "reschedule"
    lead_time = "2h"
  }
  schedule "dc1-all" {
    cron       = "30 8 * * *"
    duration   = "1h"
    action     = "drain"
    localities = ["dc1"]
  }
}
`

// TestDrainIntoTheDeclaringLocalityCountsItsWorkOnce: ops, of dc3, drains
// all of dc1 from 08:30 without migrate.targets; its forecast of dc3 is
// 30% and, from the window's start, carries dc1's 4,500 MHz (+28 points
// of dc3's 16,000), as predict adds a drain of another locality there.
// dc2 is at 40%. dc3, ops's own locality, is tried first and takes every
// move: before the window 30 + 4 × 6.25 = 55 points, inside it the
// forecast less dc1's work plus the moves queued there. Before db9522f,
// dc3 was read up to the window's start, its point at 08:30 holding
// dc1's work twice (58 + 6.25: 15.75 points of room), and every move
// went to dc2, though ops's forecast of dc3 took them in.
func TestDrainIntoTheDeclaringLocalityCountsItsWorkOnce(t *testing.T) {
	f := baseFixture(t, "reschedule")
	f.pols = append(f.pols, parsePolicies(t, opsOfDC3)...)
	f.pols[0].Schedules = nil // dc1's own rack-a drain: ops's alone here
	for i := 1; i <= 4; i++ {
		name := "dc3-" + strconv.Itoa(i)
		f.nodes = append(f.nodes, Node{ID: "id-" + name, Name: name, Datacenter: "dc3", NodePool: "default", NodeClass: "web",
			CPU: 4000, MemoryMB: 8192, Ready: true, Eligible: true})
	}
	f.jobs[0].Datacenters = append(f.jobs[0].Datacenters, "dc3")
	for _, metric := range []string{"cpu", "memory"} {
		fc := flat("dc3", metric, 30, 80)
		fc.Policy = "ops"
		fc.DrainAdded = make([]float64, len(fc.Times))
		for i, tt := range fc.Times {
			if !tt.Before(at(150*time.Minute)) && tt.Before(at(210*time.Minute)) {
				fc.Planning[i] += 28
				fc.DrainAdded[i] = 28
			}
		}
		f.fcs = append(f.fcs, fc)
	}
	f.now = at(40 * time.Minute) // 06:40: in ops's 2h lead time
	plan := Run(f.input())
	queued, why := queuedTargets(plan)
	for alloc, reason := range why {
		if !strings.Contains(reason, "to dc3, the policy's own locality, first: it stays under its line through the window's end at 09:30") {
			t.Errorf("%s: reason %q; want dc3 chosen first, as the policy's own locality", alloc, reason)
		}
	}
	if want := []string{"web-0>dc3", "web-1>dc3", "web-2>dc3", "web-3>dc3"}; !slices.Equal(queued, want) {
		t.Errorf("queued %v; want %v", queued, want)
	}
}

// cacheWaits are the reasons of a plan's wait decisions that cache-0 (the
// fixture's allocation that may run only in dc1) was given no request.
func cacheWaits(plan Plan) []string {
	var out []string
	for _, d := range decisionsOf(plan, KindWait) {
		if strings.Contains(d.Reason, "no request for allocation cache.cache[0]") {
			out = append(out, d.Reason)
		}
	}
	return out
}
