package migrate

import (
	"context"
	"fmt"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/shape"
	"github.com/foreshape/foreshape/agent/state"
)

// viewCache is the coordinator's picture of the cluster. Each table
// (nodes, allocations, jobs) is re-read only when Nomad says it changed:
// its modify index moved since the last read. A changed job is read in full
// only when its own modify index moved.
type viewCache struct {
	jobs     map[string]cachedJob // namespace/id
	allocs   map[string]*nomadapi.AllocationListStub
	nodes    map[string]*nomadapi.NodeListStub
	cluster  *shape.Cluster
	allocIdx uint64
	nodeIdx  uint64
	jobIdx   uint64
	// The planner's views of the last reads, kept for the tables that did
	// not change.
	sn []shape.Node
	sa []shape.Alloc
	sj []shape.Job
	// gone names the nodes seen to leave the node list (purged), by ID,
	// so that decisions about them still name them (at most maxGone).
	gone map[string]string
}

type cachedJob struct {
	modify uint64
	job    shape.Job
	// kept names the job's groups that set disconnect.replace = false,
	// with their disconnect.lost_after: Nomad places no replacement of
	// their allocations while their node is disconnected.
	kept map[string]time.Duration
}

func newViewCache() *viewCache {
	return &viewCache{jobs: map[string]cachedJob{}, allocs: map[string]*nomadapi.AllocationListStub{}, nodes: map[string]*nomadapi.NodeListStub{}}
}

// maxGone bounds viewCache.gone: past it, the names are forgotten.
const maxGone = 1000

// noMatch is an ID prefix no node or allocation has: a list with it
// answers with its table's modify index (X-Nomad-Index) and no rows, which
// costs Nomad and the agent next to nothing.
const noMatch = "ffffffff-ffff-ffff-ffff-ffffffffffff"

// indexes returns the modify indexes of the nodes, allocations and jobs
// tables.
func (c *Coordinator) indexes(ctx context.Context) (nodes, allocs, jobs uint64, err error) {
	q := c.qo(ctx)
	q.Prefix = noMatch
	_, nm, err := c.nomad.Nodes().List(q)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("migrate: nodes index: %w", err)
	}
	_, am, err := c.nomad.Allocations().List(q)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("migrate: allocations index: %w", err)
	}
	_, jm, err := c.nomad.Jobs().List(q)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("migrate: jobs index: %w", err)
	}
	return nm.LastIndex, am.LastIndex, jm.LastIndex, nil
}

// refresh brings the planner's cluster view up to date, re-reading only
// the tables whose index moved.
func (c *Coordinator) refresh(ctx context.Context) (*shape.Cluster, error) {
	v := c.view
	nIdx, aIdx, jIdx, err := c.indexes(ctx)
	if err != nil {
		return nil, err
	}
	changed := v.cluster == nil
	if v.cluster == nil || nIdx != v.nodeIdx {
		q := c.qo(ctx)
		q.Params = map[string]string{"resources": "true"}
		nodes, meta, err := c.nomad.Nodes().List(q)
		if err != nil {
			return nil, fmt.Errorf("migrate: list nodes: %w", err)
		}
		old := v.nodes
		v.nodes = make(map[string]*nomadapi.NodeListStub, len(nodes))
		v.sn = make([]shape.Node, 0, len(nodes))
		for _, n := range nodes {
			v.nodes[n.ID] = n
			v.sn = append(v.sn, shapeNode(n))
			delete(v.gone, n.ID)
		}
		for id, n := range old {
			if v.nodes[id] == nil {
				if v.gone == nil || len(v.gone) >= maxGone {
					v.gone = map[string]string{}
				}
				v.gone[id] = n.Name
			}
		}
		v.nodeIdx, changed = meta.LastIndex, true
	}
	if v.cluster == nil || aIdx != v.allocIdx {
		aq := c.qo(ctx)
		aq.Params = map[string]string{"resources": "true", "task_states": "false"}
		allocs, meta, err := c.nomad.Allocations().List(aq)
		if err != nil {
			return nil, fmt.Errorf("migrate: list allocations: %w", err)
		}
		v.allocs = make(map[string]*nomadapi.AllocationListStub, len(allocs))
		v.sa = make([]shape.Alloc, 0, len(allocs))
		for _, a := range allocs {
			v.allocs[a.ID] = a
			v.sa = append(v.sa, shapeAlloc(a))
		}
		v.allocIdx, changed = meta.LastIndex, true
	}
	if v.cluster == nil || jIdx != v.jobIdx {
		if err := c.refreshJobs(ctx); err != nil {
			return nil, err
		}
		v.jobIdx, changed = jIdx, true
	}
	if changed {
		v.cluster = shape.NewCluster(v.sn, v.sa, v.sj)
	}
	return v.cluster, nil
}

// refreshJobs re-reads the job list, and in full the jobs whose modify
// index moved.
func (c *Coordinator) refreshJobs(ctx context.Context) error {
	v := c.view
	stubs, _, err := c.nomad.Jobs().List(c.qo(ctx))
	if err != nil {
		return fmt.Errorf("migrate: list jobs: %w", err)
	}
	seen := map[string]bool{}
	for _, s := range stubs {
		key := s.Namespace + "/" + s.ID
		seen[key] = true
		if cj, ok := v.jobs[key]; ok && cj.modify == s.JobModifyIndex {
			continue
		}
		if shape.Placeholder(s.ID) {
			v.jobs[key] = cachedJob{modify: s.JobModifyIndex, job: shape.Job{ID: s.ID, Namespace: s.Namespace, Type: s.Type, Priority: s.Priority}}
			continue
		}
		jq := c.qo(ctx)
		jq.Namespace = s.Namespace
		j, _, err := c.nomad.Jobs().Info(s.ID, jq)
		if err != nil {
			return fmt.Errorf("migrate: read job %s: %w", s.ID, err)
		}
		v.jobs[key] = cachedJob{modify: s.JobModifyIndex, job: shapeJob(j), kept: keptOnDisconnect(j)}
	}
	for k := range v.jobs {
		if !seen[k] {
			delete(v.jobs, k)
		}
	}
	v.sj = make([]shape.Job, 0, len(v.jobs))
	for _, cj := range v.jobs {
		v.sj = append(v.sj, cj.job)
	}
	return nil
}

// keptOnDisconnect returns the groups of j that set disconnect.replace =
// false, with their disconnect.lost_after; nil when none does.
func keptOnDisconnect(j *nomadapi.Job) map[string]time.Duration {
	var kept map[string]time.Duration
	for _, tg := range j.TaskGroups {
		d := tg.Disconnect
		if d == nil || d.Replace == nil || *d.Replace {
			continue
		}
		if kept == nil {
			kept = map[string]time.Duration{}
		}
		kept[deref(tg.Name)] = deref(d.LostAfter)
	}
	return kept
}

func shapeNode(n *nomadapi.NodeListStub) shape.Node {
	out := shape.Node{ID: n.ID, Name: n.Name, Datacenter: n.Datacenter, NodePool: n.NodePool, NodeClass: n.NodeClass,
		Ready: n.Status == nomadapi.NodeStatusReady, Eligible: n.SchedulingEligibility == nomadapi.NodeSchedulingEligible, Draining: n.Drain}
	if r := n.NodeResources; r != nil {
		out.CPU, out.MemoryMB = r.Cpu.CpuShares, r.Memory.MemoryMB
	}
	if r := n.ReservedResources; r != nil {
		out.CPU -= int64(r.Cpu.CpuShares)
		out.MemoryMB -= int64(r.Memory.MemoryMB)
	}
	// Node meta is not in the list; constraints on it are left to Nomad.
	return out
}

// allocSize is what Nomad allocated to an allocation.
func allocSize(r *nomadapi.AllocatedResources) state.Resources {
	var s state.Resources
	if r == nil {
		return s
	}
	for _, t := range r.Tasks {
		if t == nil {
			continue
		}
		s.CPU += t.Cpu.CpuShares
		s.MemoryMB += t.Memory.MemoryMB
	}
	return s
}

// shapeAlloc is an allocation as the planner sees it. A placeholder's
// allocation counts as running once it is placed (placedHold): it holds
// the room it reserves whether its task runs or not, and the planner
// counts a reservation's running placeholder allocations as the room it
// holds (see notRunning for one whose task does not start).
func shapeAlloc(a *nomadapi.AllocationListStub) shape.Alloc {
	live := a.DesiredStatus == nomadapi.AllocDesiredStatusRun &&
		(a.ClientStatus == nomadapi.AllocClientStatusPending || a.ClientStatus == nomadapi.AllocClientStatusRunning)
	running := live && a.ClientStatus == nomadapi.AllocClientStatusRunning
	if shape.Placeholder(a.JobID) {
		running = placedHold(a)
	}
	return shape.Alloc{ID: a.ID, Name: a.Name, Namespace: a.Namespace, Job: a.JobID, Group: a.TaskGroup, Node: a.NodeID,
		Size: allocSize(a.AllocatedResources), Live: live, Running: running}
}

// placedHold reports whether Nomad placed an allocation on a node and
// holds its room there: desired to run, on a node, and not terminal on
// its client (pending, its task not started yet or restarting after a
// failure, or running). Nomad's scheduler counts every such allocation
// against its node's capacity (AllocsFit takes all not terminal), whether
// its task runs or not. A failed, complete or lost one holds nothing.
func placedHold(a *nomadapi.AllocationListStub) bool {
	return a.NodeID != "" && a.DesiredStatus == nomadapi.AllocDesiredStatusRun &&
		(a.ClientStatus == nomadapi.AllocClientStatusPending || a.ClientStatus == nomadapi.AllocClientStatusRunning)
}

func deref[T any](p *T) T {
	var z T
	if p == nil {
		return z
	}
	return *p
}

func constraints(cs []*nomadapi.Constraint) []shape.Constraint {
	var out []shape.Constraint
	for _, c := range cs {
		if c != nil {
			out = append(out, shape.Constraint{LTarget: c.LTarget, RTarget: c.RTarget, Operand: c.Operand})
		}
	}
	return out
}

func shapeJob(j *nomadapi.Job) shape.Job {
	out := shape.Job{ID: deref(j.ID), Namespace: deref(j.Namespace), Type: deref(j.Type), Priority: deref(j.Priority),
		Datacenters: j.Datacenters, NodePool: deref(j.NodePool), Meta: j.Meta, Constraints: constraints(j.Constraints),
		Groups: map[string]shape.Group{}}
	if out.Namespace == "" {
		out.Namespace = nomadapi.DefaultNamespace
	}
	for _, tg := range j.TaskGroups {
		g := shape.Group{Count: deref(tg.Count), Meta: tg.Meta, Constraints: constraints(tg.Constraints)}
		for _, s := range tg.Services {
			if s != nil && len(s.Checks) > 0 {
				g.Checks = true
			}
		}
		for _, t := range tg.Tasks {
			if t == nil {
				continue
			}
			g.Constraints = append(g.Constraints, constraints(t.Constraints)...)
			for _, s := range t.Services {
				if s != nil && len(s.Checks) > 0 {
					g.Checks = true
				}
			}
		}
		out.Groups[deref(tg.Name)] = g
	}
	return out
}
