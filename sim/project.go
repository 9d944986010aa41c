package sim

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/nomad/api"
)

// NodeProjection is one node's demand at a list of times as the load model
// gives it for the allocations that hold capacity on the node now: what the
// node would demand at each time if nothing moved, started or stopped.
// Scheduled surges are applied; batch allocations end when their work is
// due to finish. Times before the run's start read the traces backwards, so
// a projection over the past is the history the node would have had with
// today's placement.
type NodeProjection struct {
	Node           string
	NodeID         string
	Datacenter     string
	NodePool       string
	NodeClass      string
	Status         string // ready, initializing, down
	Eligible       bool
	CPUCapacityMHz float64
	MemCapacityMB  float64
	IOPSCapacity   float64
	// CPUMHz, MemMB and IOPS hold the demand at each of the requested
	// times, in order.
	CPUMHz []float64
	MemMB  []float64
	IOPS   []float64
}

// Project returns every node's projected demand at times, in node creation
// order. It reads the model under the lock and changes nothing, so the
// same state always projects the same way: it is the perfect foresight of
// exogenous demand that a forecaster can at best approach.
func (c *Cluster) Project(times []time.Time) []NodeProjection {
	c.mu.Lock()
	defer c.unlock()
	out := make([]NodeProjection, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = NodeProjection{
			Node: n.name, NodeID: n.id, Datacenter: n.dc, NodePool: n.pool, NodeClass: n.class,
			Status: n.status, Eligible: n.eligible && n.drain == nil,
			CPUCapacityMHz: float64(n.cpu), MemCapacityMB: float64(n.mem), IOPSCapacity: float64(n.iops),
			CPUMHz: make([]float64, len(times)), MemMB: make([]float64, len(times)), IOPS: make([]float64, len(times)),
		}
	}
	c.project(times, func(i int, _ *alloc, k int, cpu, mem, iops float64) {
		out[i].CPUMHz[k] += cpu
		out[i].MemMB[k] += mem
		out[i].IOPS[k] += iops
	})
	return out
}

// GroupProjection is one task group's demand at a list of times, summed
// over its allocations that hold capacity now, as Project gives it per
// node.
type GroupProjection struct {
	Namespace, Job, Group string
	// Allocs counts the allocations summed.
	Allocs int
	// CPUMHz and MemMB hold the demand at each of the requested times.
	CPUMHz []float64
	MemMB  []float64
}

// ProjectGroups returns every task group's projected demand at times, by
// namespace, job and group name: what Project sums per node, summed per
// group instead.
func (c *Cluster) ProjectGroups(times []time.Time) []GroupProjection {
	c.mu.Lock()
	defer c.unlock()
	type key struct{ ns, job, group string }
	byKey := map[key]*GroupProjection{}
	counted := map[*alloc]bool{}
	c.project(times, func(_ int, a *alloc, k int, cpu, mem, _ float64) {
		gk := key{api.DefaultNamespace, a.job.id, a.grp.name}
		g := byKey[gk]
		if g == nil {
			g = &GroupProjection{Namespace: gk.ns, Job: gk.job, Group: gk.group, CPUMHz: make([]float64, len(times)), MemMB: make([]float64, len(times))}
			byKey[gk] = g
		}
		if !counted[a] {
			counted[a] = true
			g.Allocs++
		}
		g.CPUMHz[k] += cpu
		g.MemMB[k] += mem
	})
	out := make([]GroupProjection, 0, len(byKey))
	for _, g := range byKey {
		out = append(out, *g)
	}
	slices.SortFunc(out, func(a, b GroupProjection) int {
		return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Job, b.Job), strings.Compare(a.Group, b.Group))
	})
	return out
}

// project calls add for every allocation that holds capacity on a node
// that is not down, at each of times it still runs: the node's index, the
// allocation, the time's index and its CPU (MHz), memory (MB) and IOPS
// demand then. Scheduled surges are applied. c.mu must be held.
func (c *Cluster) project(times []time.Time, add func(node int, a *alloc, k int, cpu, mem, iops float64)) {
	surge := make([][]float64, len(c.nodes)) // per node and time; nil when 1 throughout
	for _, e := range c.sc.Events {
		if e.Kind != EventSurge {
			continue
		}
		from := c.sc.Start.Add(e.At)
		to := from.Add(e.Duration)
		for i, n := range c.nodes {
			if !e.matchNode(n) {
				continue
			}
			for k, t := range times {
				if t.Before(from) || !t.Before(to) {
					continue
				}
				if surge[i] == nil {
					surge[i] = make([]float64, len(times))
					for x := range surge[i] {
						surge[i][x] = 1
					}
				}
				surge[i][k] *= e.Factor
			}
		}
	}
	for i, n := range c.nodes {
		for _, a := range n.allocs {
			if !a.holds() || a.node.status == api.NodeStatusDown {
				continue
			}
			g := a.grp
			for k, t := range times {
				if !a.finishAt.IsZero() && !t.Before(a.finishAt) {
					continue
				}
				f := 1.0
				if surge[i] != nil {
					f = surge[i][k]
				}
				d := t.Sub(c.sc.Start) + a.phase
				add(i, a, k, float64(a.reqCPU)*g.load.cpu.at(d)*f, float64(g.mem)*g.load.mem.at(d), float64(g.iops)*g.load.iops.at(d)*f)
			}
		}
	}
}
