package migrate

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/shape"
	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/policies"
)

// Submission is an operator's migration request: exactly one of Allocation,
// Job with Group, or Node, and a Target locality.
type Submission struct {
	Allocation string
	Job, Group string
	Node       string
	Target     string
	// Priority is 1–100; 0 takes the job's.
	Priority int
	Reason   string
	// Deadline, when set, is when the move must be done: the planner holds
	// it for a congested target only while time is left.
	Deadline time.Time
}

// ErrInvalid is wrapped by every refusal of a submission's content.
var ErrInvalid = errors.New("invalid migration request")

// InvalidError refuses a submission, naming the field at fault.
type InvalidError struct {
	Field  string
	Reason string
}

func (e *InvalidError) Error() string { return e.Field + ": " + e.Reason }

// Unwrap makes errors.Is(err, ErrInvalid) hold.
func (e *InvalidError) Unwrap() error { return ErrInvalid }

func invalid(field, format string, args ...any) error {
	return &InvalidError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Submit validates an operator's submission against Nomad and the policies
// and queues it. A refusal changes nothing: *InvalidError for an unknown
// allocation, job, group or node, an unknown target or one equal to the
// source, or a target the job's constraints forbid; *state.ConflictError
// naming the request that already moves the resource; state.ErrQueueFull.
func (c *Coordinator) Submit(ctx context.Context, now time.Time, pols []*policies.Policy, s Submission) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cluster, err := c.refresh(ctx)
	if err != nil {
		return "", err
	}
	tgt, err := policies.ParseLocality(s.Target)
	if err != nil {
		return "", invalid("target", "%v", err)
	}
	var receiving []*shape.Node
	for i := range cluster.Nodes {
		n := &cluster.Nodes[i]
		if n.Receiving() && shape.In(tgt, n) {
			receiving = append(receiving, n)
		}
	}
	if len(receiving) == 0 {
		return "", invalid("target", "no ready, eligible node is in %s: unknown locality", tgt)
	}
	r := state.MigrationRequest{Target: tgt.String(), Origin: "operator", Created: now.UTC(), State: state.RequestPending,
		Priority: s.Priority, Deadline: s.Deadline.UTC()}
	if s.Deadline.IsZero() {
		r.Deadline = time.Time{}
	}
	var srcNode *shape.Node
	switch {
	case s.Allocation != "":
		a, err := c.findAlloc(ctx, cluster, s.Allocation)
		if err != nil {
			return "", err
		}
		if st := c.view.allocs[a.ID]; st != nil && st.ClientStatus == nomadapi.AllocClientStatusUnknown && st.DesiredStatus == nomadapi.AllocDesiredStatusRun {
			if why := c.keptWhileDisconnected(ctx, st); why != "" {
				return "", invalid("allocation", "%s is unknown: its node is disconnected; %s", a.ID, why)
			}
			return "", invalid("allocation", "%s is unknown: its node is disconnected; Nomad replaces it once its reschedule delay has passed "+
				"and takes it as lost at its group's disconnect.lost_after", a.ID)
		}
		if !a.Live {
			return "", invalid("allocation", "%s is not running (Nomad is stopping or has stopped it)", a.ID)
		}
		if shape.Placeholder(a.Job) {
			return "", invalid("allocation", "%s is a placeholder foreshape holds room with (job %s), not work to move", a.ID, a.Job)
		}
		if j, ok := cluster.Job(a.Namespace, a.Job); ok && everyNode(j) {
			return "", invalid("allocation", "%s belongs to %s job %s, which Nomad runs on every eligible node: it cannot be moved (to empty its node, submit the node: -node)", a.ID, j.Type, j.ID)
		}
		srcNode, _ = cluster.Node(a.Node)
		r.Resource = state.Resource{Kind: state.ResourceAllocation, ID: a.ID, Name: a.Name, Namespace: a.Namespace, Job: a.Job, Group: a.Group}
		r.Moves = []state.Move{{Alloc: a.ID, Name: a.Name, Namespace: a.Namespace, Job: a.Job, Group: a.Group, Node: a.Node, Size: a.Size}}
	case s.Node != "":
		n, err := findNode(cluster, s.Node)
		if err != nil {
			return "", err
		}
		srcNode = n
		r.Resource = state.Resource{Kind: state.ResourceNode, ID: n.ID, Name: n.Name}
		for _, a := range cluster.AllocsOn(n.ID) {
			if !a.Live || shape.Placeholder(a.Job) {
				continue
			}
			if j, ok := cluster.Job(a.Namespace, a.Job); ok && everyNode(j) {
				continue
			}
			r.Moves = append(r.Moves, state.Move{Alloc: a.ID, Name: a.Name, Namespace: a.Namespace, Job: a.Job, Group: a.Group, Node: n.ID, Size: a.Size})
		}
	default:
		j, ok := cluster.Job(c.cfg.Namespace, s.Job)
		if !ok {
			return "", invalid("job", "no job %q", s.Job)
		}
		if _, ok := j.Groups[s.Group]; !ok {
			return "", invalid("group", "job %s has no task group %q; its task groups: %s", s.Job, s.Group, strings.Join(slices.Sorted(maps.Keys(j.Groups)), ", "))
		}
		if shape.Placeholder(j.ID) {
			return "", invalid("job", "%s is a placeholder job foreshape holds room with, not work to move", j.ID)
		}
		if everyNode(j) {
			return "", invalid("job", "%s is a %s job, which Nomad runs on every eligible node: its allocations cannot be moved", j.ID, j.Type)
		}
		r.Resource = state.Resource{Kind: state.ResourceGroup, Namespace: j.Namespace, Job: j.ID, Group: s.Group}
		counts := map[string]int{}
		running := 0
		for i := range cluster.Allocs {
			a := &cluster.Allocs[i]
			if a.Job != j.ID || a.Group != s.Group || !a.Live {
				continue
			}
			running++
			n, ok := cluster.Node(a.Node)
			if !ok || shape.In(tgt, n) {
				continue
			}
			counts[a.Node]++
			r.Moves = append(r.Moves, state.Move{Alloc: a.ID, Name: a.Name, Namespace: a.Namespace, Job: a.Job, Group: a.Group, Node: a.Node, Size: a.Size})
		}
		if running == 0 {
			return "", invalid("group", "no allocation of %s/%s is running", s.Job, s.Group)
		}
		if len(r.Moves) == 0 {
			return "", invalid("target", "every running allocation of %s/%s is in %s already", s.Job, s.Group, tgt)
		}
		// The source is where most of the group runs.
		best := ""
		for id, k := range counts {
			if best == "" || k > counts[best] || (k == counts[best] && id < best) {
				best = id
			}
		}
		srcNode, _ = cluster.Node(best)
	}
	if srcNode == nil {
		return "", invalid("allocation", "its node is not known to Nomad")
	}
	if shape.In(tgt, srcNode) {
		if r.Resource.Kind == state.ResourceNode {
			return "", invalid("target", "%s already runs in %s: the target equals the source", r.Resource, tgt)
		}
		return "", invalid("target", "%s already runs in %s (node %s): the target equals the source", r.Resource, tgt, srcNode.Name)
	}
	src, pol := sourceOf(srcNode, pols)
	r.Source = src
	if pol != nil {
		r.Policy, r.Strategy = pol.Name, string(pol.Migrate.Strategy)
	} else {
		r.Strategy = string(policies.StrategyReschedule)
	}
	if r.Resource.Kind != state.ResourceNode && r.Strategy == string(policies.StrategyDrain) {
		r.Strategy = string(policies.StrategyReschedule)
	}
	for _, m := range r.Moves {
		j, ok := cluster.Job(m.Namespace, m.Job)
		if !ok {
			continue
		}
		feasible := false
		for _, n := range receiving {
			if shape.Feasible(j, m.Group, n) {
				feasible = true
				break
			}
		}
		if !feasible {
			// Said apart: the constraints may allow nodes of the target
			// that are only out of scheduling for now (a maintenance
			// window, a drain), which a later submission may find back.
			out := 0
			for i := range cluster.Nodes {
				n := &cluster.Nodes[i]
				if n.Ready && !n.Receiving() && shape.In(tgt, n) && shape.Feasible(j, m.Group, n) {
					out++
				}
			}
			if out > 0 {
				return "", invalid("target", "every node of %s that job %s may run on (%d) is out of scheduling now (ineligible or draining); submit again once one is eligible, or choose another target",
					tgt, j.ID, out)
			}
			return "", invalid("target", "job %s's constraints forbid %s (datacenters %s, node pool %q, %d constraints)",
				j.ID, tgt, strings.Join(j.Datacenters, ", "), j.NodePool, len(j.Constraints)+len(j.Groups[m.Group].Constraints))
		}
		if s.Priority == 0 {
			r.Priority = max(r.Priority, min(j.Priority, 100))
		}
		r.Moved = r.Moved.Add(m.Size)
	}
	r.Estimated = shape.RequestEstimate(c.cfg.State.Act().Estimates, &r)
	r.Reason = s.Reason
	if r.Reason == "" {
		r.Reason = "submitted by an operator"
	}
	res, err := c.apply(ctx, state.SubmitRequest{Request: r, Limit: c.cfg.MaxQueue})
	if err != nil {
		return "", err
	}
	c.record(ctx, []state.Decision{{Time: now, Kind: "submit", Policy: r.Policy, Locality: r.Source, Request: res.ID,
		Reason: fmt.Sprintf("queue %s from %s to %s (%s): %s", r.Resource, r.Source, r.Target, r.Moved, r.Reason)}})
	return res.ID, nil
}

// findAlloc finds an allocation by ID or unique ID prefix.
func (c *Coordinator) findAlloc(ctx context.Context, cluster *shape.Cluster, id string) (*shape.Alloc, error) {
	if a, ok := cluster.Alloc(id); ok {
		return a, nil
	}
	var found *shape.Alloc
	for i := range cluster.Allocs {
		if strings.HasPrefix(cluster.Allocs[i].ID, id) {
			if found != nil {
				return nil, invalid("allocation", "%q is the prefix of more than one allocation", id)
			}
			found = &cluster.Allocs[i]
		}
	}
	if found == nil {
		return nil, invalid("allocation", "no allocation %q", id)
	}
	return found, nil
}

// findNode finds a node by ID, name or unique ID prefix, in that order.
func findNode(cluster *shape.Cluster, s string) (*shape.Node, error) {
	if n, ok := cluster.Node(s); ok {
		return n, nil
	}
	if n, ok := cluster.NodeByName(s); ok {
		return n, nil
	}
	var found *shape.Node
	for i := range cluster.Nodes {
		if n := &cluster.Nodes[i]; strings.HasPrefix(n.ID, s) {
			if found != nil {
				return nil, invalid("node", "%q is the prefix of more than one node's ID", s)
			}
			found = n
		}
	}
	if found == nil {
		return nil, invalid("node", "no node has the ID, ID prefix or name %q", s)
	}
	return found, nil
}

// sourceOf names the locality a node's work leaves: the most specific
// policy locality holding it, else its datacenter.
func sourceOf(n *shape.Node, pols []*policies.Policy) (string, *policies.Policy) {
	var cands []*policies.Policy
	for _, p := range pols {
		if shape.In(p.Locality, n) {
			cands = append(cands, p)
		}
	}
	if len(cands) == 0 {
		return policies.Locality{Datacenter: n.Datacenter}.String(), nil
	}
	spec := func(l policies.Locality) int {
		k := 0
		for _, f := range []string{l.Datacenter, l.NodePool, l.NodeClass} {
			if f != "" {
				k++
			}
		}
		return k
	}
	sort.SliceStable(cands, func(i, j int) bool { return spec(cands[i].Locality) > spec(cands[j].Locality) })
	return cands[0].Locality.String(), cands[0]
}

// everyNode says whether Nomad places j on every eligible node (system
// and sysbatch jobs): such allocations go where the nodes are, not where a
// request would move them.
func everyNode(j *shape.Job) bool {
	return j.Type == nomadapi.JobTypeSystem || j.Type == nomadapi.JobTypeSysbatch
}
