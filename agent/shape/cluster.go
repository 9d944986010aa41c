package shape

import (
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/policies"
)

// Node is a Nomad client node as the planner sees it.
type Node struct {
	ID, Name   string
	Datacenter string
	NodePool   string
	NodeClass  string
	// Meta is the node's meta; nil when the view does not know it.
	Meta map[string]string
	// CPU (MHz) and MemoryMB are its allocatable capacity (total minus
	// reserved).
	CPU, MemoryMB int64
	// Ready is status "ready"; Eligible is scheduling eligibility; Draining
	// is an active drain.
	Ready, Eligible, Draining bool
}

// Receiving reports whether Nomad may place new allocations on the node.
func (n *Node) Receiving() bool { return n.Ready && n.Eligible && !n.Draining }

// Alloc is an allocation as the planner sees it.
type Alloc struct {
	ID, Name  string
	Namespace string
	Job       string
	Group     string
	Node      string
	// Size is what Nomad allocated to it.
	Size state.Resources
	// Live is desired status "run" with client status pending or running:
	// it holds capacity.
	Live bool
	// Running is client status "running"; for a placeholder's allocation
	// (migrate's shapeAlloc), placed on a node and not terminal, which
	// holds its room whether its task runs or not.
	Running bool
}

// Job is a Nomad job's scheduling-relevant settings.
type Job struct {
	ID, Namespace string
	Type          string // service, batch, system, sysbatch
	Priority      int
	Datacenters   []string
	NodePool      string
	Meta          map[string]string
	Constraints   []Constraint
	Groups        map[string]Group
}

// Group is a task group's scheduling-relevant settings.
type Group struct {
	Count       int
	Meta        map[string]string
	Constraints []Constraint
	// Checks is true when a task or the group has service checks, so a
	// replacement counts only once healthy.
	Checks bool
}

// Constraint is a Nomad constraint.
type Constraint struct {
	LTarget, RTarget, Operand string
}

// Cluster is a view of the cluster the planner reads. Build it with
// NewCluster, which indexes it; it is read-only afterwards and safe to share.
type Cluster struct {
	Nodes  []Node
	Allocs []Alloc
	Jobs   []Job

	nodeByID     map[string]int
	allocByID    map[string]int
	allocsOfNode map[string][]int
	jobByKey     map[string]int
}

// NewCluster indexes nodes, allocations and jobs (sorted by ID for
// determinism; the slices are kept, not copied).
func NewCluster(nodes []Node, allocs []Alloc, jobs []Job) *Cluster {
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].ID < nodes[j].ID })
	sort.Slice(allocs, func(i, j int) bool { return allocs[i].ID < allocs[j].ID })
	sort.Slice(jobs, func(i, j int) bool {
		return jobKey(jobs[i].Namespace, jobs[i].ID) < jobKey(jobs[j].Namespace, jobs[j].ID)
	})
	c := &Cluster{Nodes: nodes, Allocs: allocs, Jobs: jobs,
		nodeByID: make(map[string]int, len(nodes)), allocByID: make(map[string]int, len(allocs)),
		allocsOfNode: map[string][]int{}, jobByKey: make(map[string]int, len(jobs))}
	for i := range nodes {
		c.nodeByID[nodes[i].ID] = i
	}
	for i := range allocs {
		c.allocByID[allocs[i].ID] = i
		c.allocsOfNode[allocs[i].Node] = append(c.allocsOfNode[allocs[i].Node], i)
	}
	for i := range jobs {
		c.jobByKey[jobKey(jobs[i].Namespace, jobs[i].ID)] = i
	}
	return c
}

func jobKey(ns, id string) string {
	if ns == "" {
		ns = "default"
	}
	return ns + "/" + id
}

// Node returns the node with an ID.
func (c *Cluster) Node(id string) (*Node, bool) {
	i, ok := c.nodeByID[id]
	if !ok {
		return nil, false
	}
	return &c.Nodes[i], true
}

// NodeByName returns the node with a name, or nil.
func (c *Cluster) NodeByName(name string) (*Node, bool) {
	for i := range c.Nodes {
		if c.Nodes[i].Name == name {
			return &c.Nodes[i], true
		}
	}
	return nil, false
}

// Alloc returns the allocation with an ID.
func (c *Cluster) Alloc(id string) (*Alloc, bool) {
	i, ok := c.allocByID[id]
	if !ok {
		return nil, false
	}
	return &c.Allocs[i], true
}

// AllocsOn returns the allocations on a node, by ID.
func (c *Cluster) AllocsOn(node string) []*Alloc {
	idx := c.allocsOfNode[node]
	out := make([]*Alloc, len(idx))
	for i, k := range idx {
		out[i] = &c.Allocs[k]
	}
	return out
}

// Job returns a job.
func (c *Cluster) Job(namespace, id string) (*Job, bool) {
	i, ok := c.jobByKey[jobKey(namespace, id)]
	if !ok {
		return nil, false
	}
	return &c.Jobs[i], true
}

// LocalityOf returns the node's locality in path form for a policy's
// locality shape: the datacenter, and the pool and class where l names
// them.
func LocalityOf(n *Node) policies.Locality {
	return policies.Locality{Datacenter: n.Datacenter, NodePool: n.NodePool, NodeClass: n.NodeClass}
}

// In reports whether node n belongs to locality l.
func In(l policies.Locality, n *Node) bool { return l.Matches(n.Datacenter, n.NodePool, n.NodeClass) }

// Feasible reports whether Nomad may place the job's group on the node:
// datacenters, node pool and the job's and group's constraints. Attributes
// the view does not know (most ${attr.*}) count as satisfied, so a
// constraint the planner cannot judge never blocks a move Nomad would
// allow; Nomad has the last word.
func Feasible(j *Job, group string, n *Node) bool {
	if !dcAllowed(j.Datacenters, n.Datacenter) {
		return false
	}
	pool := j.NodePool
	if pool == "" {
		pool = "default"
	}
	if pool != "all" && pool != n.NodePool {
		return false
	}
	for _, c := range j.Constraints {
		if !satisfied(c, n) {
			return false
		}
	}
	for _, c := range j.Groups[group].Constraints {
		if !satisfied(c, n) {
			return false
		}
	}
	return true
}

func dcAllowed(dcs []string, dc string) bool {
	if len(dcs) == 0 {
		return true
	}
	for _, d := range dcs {
		if ok, _ := path.Match(d, dc); ok || d == dc {
			return true
		}
	}
	return false
}

// attribute resolves ${node.*}, ${meta.*} and a few ${attr.*}.
func attribute(target string, n *Node) (string, bool, bool) {
	t := strings.TrimSpace(target)
	if !strings.HasPrefix(t, "${") || !strings.HasSuffix(t, "}") {
		return t, true, true // a literal
	}
	name := t[2 : len(t)-1]
	switch name {
	case "node.datacenter":
		return n.Datacenter, true, true
	case "node.class":
		return n.NodeClass, true, true
	case "node.pool":
		return n.NodePool, true, true
	case "node.unique.id":
		return n.ID, true, true
	case "node.unique.name", "attr.unique.hostname":
		return n.Name, true, true
	}
	if k, ok := strings.CutPrefix(name, "meta."); ok {
		if n.Meta == nil {
			return "", false, false // the view does not know the node's meta
		}
		v, set := n.Meta[k]
		return v, set, true
	}
	return "", false, false // unknown to the view
}

func satisfied(c Constraint, n *Node) bool {
	switch c.Operand {
	case "distinct_hosts", "distinct_property", "version", "semver":
		return true
	}
	l, lset, lknown := attribute(c.LTarget, n)
	if !lknown {
		return true
	}
	r, _, rknown := attribute(c.RTarget, n)
	if !rknown {
		return true
	}
	switch c.Operand {
	case "", "=", "==", "is":
		return lset && l == r
	case "!=", "not":
		return !lset || l != r
	case "is_set":
		return lset
	case "is_not_set":
		return !lset
	case "regexp":
		re, err := regexp.Compile(r)
		return err != nil || (lset && re.MatchString(l))
	case "set_contains", "set_contains_all":
		have := splitSet(l)
		for want := range splitSet(r) {
			if !have[want] {
				return false
			}
		}
		return lset
	case "set_contains_any":
		have := splitSet(l)
		for want := range splitSet(r) {
			if have[want] {
				return true
			}
		}
		return false
	case "<", "<=", ">", ">=":
		return lset && compare(l, r, c.Operand)
	}
	return true
}

func splitSet(s string) map[string]bool {
	out := map[string]bool{}
	for _, p := range strings.Split(s, ",") {
		out[strings.TrimSpace(p)] = true
	}
	return out
}

func compare(l, r, op string) bool {
	lf, err1 := strconv.ParseFloat(l, 64)
	rf, err2 := strconv.ParseFloat(r, 64)
	c := strings.Compare(l, r)
	if err1 == nil && err2 == nil {
		switch {
		case lf < rf:
			c = -1
		case lf > rf:
			c = 1
		default:
			c = 0
		}
	}
	switch op {
	case "<":
		return c < 0
	case "<=":
		return c <= 0
	case ">":
		return c > 0
	}
	return c >= 0
}

// Critical reports whether a job's group is marked critical with
// meta.foreshape_critical = "true" on the group or job.
func Critical(j *Job, group string) bool {
	if v, ok := j.Groups[group].Meta["foreshape_critical"]; ok {
		return v == "true"
	}
	return j.Meta["foreshape_critical"] == "true"
}

// Placeholder reports whether a job is a foreshape placeholder.
func Placeholder(jobID string) bool { return strings.HasPrefix(jobID, state.PlaceholderPrefix) }
