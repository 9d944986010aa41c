package proof

import (
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/sim"
)

// arrivals hands requests to a controller as they come due, resolving a
// wave's request to one allocation by the same rule on every cluster: the
// running allocation of the group, on a node the wave selects, that comes
// first by name (then by age) and was not requested before. A wave retires
// the nodes it selects: when its first request arrives, they are marked
// ineligible (on every cluster alike), so that nothing new lands on them
// and a moved allocation's replacement goes where else its job may run.
type arrivals struct {
	reqs     []Request
	next     int
	nc       *nomadapi.Client
	log      hclog.Logger
	picked   map[string]bool   // allocation IDs already requested
	retired  map[string]bool   // waves whose nodes were marked ineligible
	resolved map[string]string // request ID → allocation ID
	// nodes and allocs are read once per cycle, when needed.
	nodes  []*nomadapi.NodeListStub
	allocs map[string][]*nomadapi.AllocationListStub // by job
}

// nodeList lists the nodes once per cycle (retiring nodes resets it).
func (a *arrivals) nodeList() ([]*nomadapi.NodeListStub, error) {
	if a.nodes != nil {
		return a.nodes, nil
	}
	nodes, _, err := a.nc.Nodes().List(nil)
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	a.nodes = nodes
	return nodes, nil
}

func newArrivals(reqs []Request, nc *nomadapi.Client, log hclog.Logger) *arrivals {
	return &arrivals{reqs: reqs, nc: nc, log: log, picked: map[string]bool{}, retired: map[string]bool{}, resolved: map[string]string{}}
}

// due returns the requests that arrived at or before now and were not
// handed out yet.
func (a *arrivals) due(now time.Time) ([]Request, error) {
	var out []Request
	a.nodes, a.allocs = nil, map[string][]*nomadapi.AllocationListStub{}
	for a.next < len(a.reqs) && !a.reqs[a.next].Arrive.After(now) {
		r := a.reqs[a.next]
		a.next++
		if r.IsNode() {
			id, err := a.nodeID(r.Node)
			if err != nil {
				return nil, err
			}
			r.NodeID = id
			out = append(out, r)
			continue
		}
		if !a.retired[r.Origin] {
			if err := a.retire(r); err != nil {
				return nil, err
			}
			a.retired[r.Origin] = true
		}
		picks, err := a.pick(r)
		if err != nil {
			return nil, err
		}
		if len(picks) == 0 {
			a.log.Warn("no allocation left to move for a wave request", logKeyRequest, r.ID)
			continue
		}
		for i, id := range picks {
			rr := r
			if r.all {
				rr.ID = r.Origin + "/" + strconv.Itoa(i+1)
			}
			rr.AllocID = id
			a.resolved[rr.ID] = id
			out = append(out, rr)
		}
	}
	return out, nil
}

// nodeID resolves a node's name: Nomad's node endpoints take IDs.
func (a *arrivals) nodeID(name string) (string, error) {
	nodes, err := a.nodeList()
	if err != nil {
		return "", err
	}
	for _, n := range nodes {
		if n.Name == name {
			return n.ID, nil
		}
	}
	return "", fmt.Errorf("no node named %q", name)
}

// pick returns the allocation a wave request moves (every matching one for
// a wave without a count).
func (a *arrivals) pick(r Request) ([]string, error) {
	nodes, err := a.nodeList()
	if err != nil {
		return nil, err
	}
	byID := map[string]*nomadapi.NodeListStub{}
	for _, n := range nodes {
		byID[n.ID] = n
	}
	allocs, ok := a.allocs[r.Job]
	if !ok {
		if allocs, _, err = a.nc.Jobs().Allocations(r.Job, false, nil); err != nil {
			return nil, fmt.Errorf("list allocations of %s: %w", r.Job, err)
		}
		a.allocs[r.Job] = allocs
	}
	var cands []*nomadapi.AllocationListStub
	for _, al := range allocs {
		n := byID[al.NodeID]
		if n == nil || al.DesiredStatus != nomadapi.AllocDesiredStatusRun || al.ClientStatus != nomadapi.AllocClientStatusRunning ||
			(r.Group != "" && al.TaskGroup != r.Group) || a.picked[al.ID] || !selects(r.sel, n) {
			continue
		}
		cands = append(cands, al)
	}
	sort.Slice(cands, func(i, k int) bool {
		if cands[i].Name != cands[k].Name {
			return cands[i].Name < cands[k].Name
		}
		return cands[i].CreateIndex < cands[k].CreateIndex
	})
	if !r.all && len(cands) > 1 {
		cands = cands[:1]
	}
	var out []string
	for _, al := range cands {
		a.picked[al.ID] = true
		out = append(out, al.ID)
	}
	return out, nil
}

// selects applies a wave's node selectors to a node.
func selects(e sim.EventSpec, n *nomadapi.NodeListStub) bool {
	if e.Datacenter != "" && n.Datacenter != e.Datacenter {
		return false
	}
	if e.NodePool != "" && n.NodePool != e.NodePool {
		return false
	}
	if e.NodeClass != "" && n.NodeClass != e.NodeClass {
		return false
	}
	if e.Node != "" {
		if ok, _ := path.Match(e.Node, n.Name); !ok {
			return false
		}
	}
	return true
}

// retire marks the nodes a wave selects ineligible.
func (a *arrivals) retire(r Request) error {
	nodes, err := a.nodeList()
	if err != nil {
		return err
	}
	defer func() { a.nodes = nil }()
	sort.Slice(nodes, func(i, k int) bool { return nodes[i].Name < nodes[k].Name })
	k := 0
	for _, n := range nodes {
		if !selects(r.sel, n) || n.SchedulingEligibility == nomadapi.NodeSchedulingIneligible {
			continue
		}
		if _, err := a.nc.Nodes().ToggleEligibility(n.ID, false, nil); err != nil {
			return fmt.Errorf("retire %s: %w", n.Name, err)
		}
		k++
	}
	a.log.Debug("wave retires its nodes", logKeyRequest, r.ID, logKeyCount, k)
	return nil
}

// moveStarts returns when each request's first transfer began, from the
// ground truth: the first migration off a drained node, or of the wave's
// allocation.
func moveStarts(tr sim.Truth, reqs []Request, resolved map[string]string) map[string]time.Time {
	byAlloc := map[string]time.Time{}
	byNode := map[string]time.Time{}
	for _, m := range tr.Migrations {
		if t, ok := byAlloc[m.AllocID]; !ok || m.Start.Before(t) {
			byAlloc[m.AllocID] = m.Start
		}
		if t, ok := byNode[m.SourceNode]; !ok || m.Start.Before(t) {
			byNode[m.SourceNode] = m.Start
		}
	}
	out := map[string]time.Time{}
	for _, r := range reqs {
		if r.IsNode() {
			if t, ok := byNode[r.Node]; ok && !t.Before(r.Arrive) {
				out[r.ID] = t
			}
		}
	}
	for id, alloc := range resolved {
		if t, ok := byAlloc[alloc]; ok {
			out[id] = t
		}
	}
	return out
}

// unfinished reads from the cluster what the requests handed out left
// undone, and counts the transfers of their work that landed outside
// their target.
func unfinished(nc *nomadapi.Client, tr sim.Truth, a *arrivals) ([]string, int, error) {
	var out []string
	outside := 0
	for _, r := range a.reqs[:a.next] {
		if !r.IsNode() {
			continue
		}
		id, err := a.nodeID(r.Node)
		if err != nil {
			return nil, 0, err
		}
		allocs, _, err := nc.Nodes().Allocations(id, nil)
		if err != nil {
			return nil, 0, fmt.Errorf("allocations of %s: %w", r.Node, err)
		}
		left := 0
		for _, al := range allocs {
			if al.DesiredStatus == nomadapi.AllocDesiredStatusRun && !al.ClientTerminalStatus() &&
				(al.Job == nil || al.Job.Type == nil || *al.Job.Type != nomadapi.JobTypeSystem) {
				left++
			}
		}
		if left > 0 {
			out = append(out, fmt.Sprintf("%s: %s still runs %d allocations", r.ID, r.Node, left))
		}
		for _, m := range tr.Migrations {
			if m.SourceNode == r.Node && r.To != "" && m.TargetLocality != r.To {
				outside++
			}
		}
	}
	ids := sortedKeys(a.resolved)
	for _, rid := range ids {
		alloc := a.resolved[rid]
		al, _, err := nc.Allocations().Info(alloc, nil)
		if err == nil && al.DesiredStatus == nomadapi.AllocDesiredStatusRun && !al.ClientTerminalStatus() {
			out = append(out, fmt.Sprintf("%s: allocation %s still runs on %s", rid, alloc[:8], al.NodeName))
		}
		to := ""
		for _, r := range a.reqs[:a.next] {
			if r.Origin == strings.SplitN(rid, "/", 2)[0] {
				to = r.To
				break
			}
		}
		for _, m := range tr.Migrations {
			if m.AllocID == alloc && to != "" && m.TargetLocality != to {
				outside++
			}
		}
	}
	return out, outside, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
