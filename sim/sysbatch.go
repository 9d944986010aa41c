package sim

import (
	"maps"
	"sort"

	"github.com/hashicorp/nomad/api"
)

// descNodeTainted is what Nomad's system and sysbatch schedulers say when
// they stop an allocation its node's drain marked to migrate.
const descNodeTainted = "alloc not needed as node is tainted"

// reconcileSysbatch reconciles one group of a sysbatch job as Nomad's
// sysbatch scheduler does (its node reconciler, computeForNode): one
// allocation on each ready, eligible node of the job's datacenters and
// pool that meets its constraints and fits, run once. A node where an
// allocation of the job's version ended (complete, failed, lost, or
// stopped by a drain) gets none again; a new version replaces the ended
// ones only when the change is destructive. Nothing is ever placed
// elsewhere for an allocation: a drain marks it at its deadline and it
// stops, a node gone down leaves it as it was (Nomad evaluates no
// sysbatch job for a node), and an evaluation of the job while its node
// is down finds it lost.
func (c *Cluster) reconcileSysbatch(j *job, g *group, evp **eval, trigger string, _ *spreadState) (*api.AllocationMetric, int) {
	ev := func() *eval { return c.lazyEval(j, evp, trigger) }
	latest := map[*node]*alloc{} // the newest allocation of g on each node
	for _, a := range j.allocs {
		if a.grp.name != g.name {
			continue
		}
		if b := latest[a.node]; b == nil || a.createIdx > b.createIdx {
			latest[a.node] = a
		}
	}
	has := map[*node]bool{}
	var update []*alloc // live allocations a destructive change replaces
	for _, a := range j.allocs {
		if a.grp.name != g.name || a.terminal() {
			continue
		}
		n := a.node
		has[n] = true
		switch {
		case j.stopped:
			c.stopAlloc(a, ev(), "alloc not needed due to job update")
		case n.purged || n.status == api.NodeStatusDown:
			ev()
			c.loseAlloc(a, n)
		case a.migrate:
			c.stopAlloc(a, ev(), descNodeTainted)
		case n.status != api.NodeStatusReady || !n.eligible || n.drain != nil:
			// A node out of scheduling keeps it until the job changes.
			if a.jobVersion != j.version {
				c.stopAlloc(a, ev(), "alloc not needed due to job update")
			}
		case !jobRunsIn(j, n):
			c.stopAlloc(a, ev(), "alloc not needed due to job update")
		case a.specHash != g.specHash:
			update = append(update, a)
		case a.jobVersion != j.version || a.grp != g:
			c.updateInPlace(j, g, a)
		}
	}
	if j.stopped {
		return nil, 0
	}
	p := c.newPlacer(j, g, nil)
	sort.Slice(p.cand, func(i, k int) bool { return p.cand[i].idx < p.cand[k].idx })
	prev := map[*node]*alloc{}
	for _, a := range update {
		c.stopAlloc(a, ev(), "alloc is being updated due to job update")
		has[a.node], prev[a.node] = false, a
	}
	var place []*node
	for _, n := range p.cand {
		if has[n] {
			continue
		}
		if a := latest[n]; a == nil || prev[n] != nil {
			// Nothing ran here yet, or a destructive update.
		} else if a.jobVersion == j.version {
			continue // ran here: once is all
		} else if a.specHash == g.specHash {
			continue // an in-place change of an ended allocation: nothing to run
		} else {
			c.stopAlloc(a, ev(), "alloc is being updated due to job update")
			prev[n] = a
		}
		place = append(place, n)
	}
	c.allFiltered(g, p, place, len(latest) > 0, ev)
	return c.placeOnNodes(j, g, p, place, prev, ev)
}

// allFiltered records, as Nomad's system scheduler does, the failure of
// a system or sysbatch group that no node could take for its constraints
// or drivers: with nothing to place, no allocation of the group and nodes
// filtered, the evaluation names the group failed with the filtered
// nodes' metric merged (evaluated and filtered, by what), queues nothing
// and leaves no blocked evaluation (TestFidelityMissingDriver). Filtered
// nodes beside others are left out of the job's status, as Nomad leaves
// them.
func (c *Cluster) allFiltered(g *group, p *placer, place []*node, existing bool, ev func() *eval) {
	if len(place) > 0 || existing || p.static.NodesFiltered == 0 {
		return
	}
	e := ev()
	if e.filtered == nil {
		e.filtered = map[string]*api.AllocationMetric{}
	}
	e.filtered[g.name] = &api.AllocationMetric{
		NodesEvaluated: p.static.NodesFiltered, NodesFiltered: p.static.NodesFiltered,
		ConstraintFiltered: maps.Clone(p.static.ConstraintFiltered), ClassFiltered: maps.Clone(p.static.ClassFiltered),
		NodesAvailable: map[string]int{}, ClassExhausted: map[string]int{}, DimensionExhausted: map[string]int{},
	}
}

// placeOnNodes places one allocation of g on each of nodes, as Nomad's
// system and sysbatch schedulers do, each replacing prev[n] if set, with
// preemption where the job's type allows it. It returns the failed
// placements' metric and count (no metric when they all failed in the
// plan applier). The metric is, as Nomad's, that of the first node it
// could not place on (that node alone evaluated), each later failure
// coalesced into it; the evaluation names that node for its blocked one.
func (c *Cluster) placeOnNodes(j *job, g *group, p *placer, nodes []*node, prev map[*node]*alloc, ev func() *eval) (*api.AllocationMetric, int) {
	failed := 0
	for _, n := range nodes {
		c.placeTries++
		e := ev()
		p.metric = &api.AllocationMetric{NodesAvailable: maps.Clone(p.static.NodesAvailable), NodesInPool: p.static.NodesInPool,
			NodePool: p.static.NodePool, NodesEvaluated: 1, DimensionExhausted: map[string]int{}, ClassExhausted: map[string]int{},
			ConstraintFiltered: map[string]int{}, ClassFiltered: map[string]int{}}
		if p.fits(n) {
			c.newAlloc(j, g, n, e, 0, prev[n], nil).resched = nil // an update, not a reschedule
			continue
		}
		if c.preemptionEnabled(j.typ) && p.short(n) != "" {
			if set, roomy := p.evictionSet(n); set != nil && roomy {
				c.newAlloc(j, g, n, e, 0, prev[n], set).resched = nil
				continue
			} else if set != nil {
				// Placed as the scheduler saw it; the plan applier refuses.
				e.conflict = true
				p.conflicts++
				failed++
				continue
			}
		}
		failed++
		if p.failed != nil {
			p.failed.CoalescedFailures++
		} else {
			p.failed = p.metric
			e.blockedNode = n.id
		}
	}
	if failed > 0 && failed == p.conflicts {
		return nil, failed
	}
	return c.failedMetric(p), failed
}
