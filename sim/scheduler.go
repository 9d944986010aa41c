package sim

import (
	"math"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/nomad/api"
)

// preemptionGap is the priority difference Nomad requires before a job may
// preempt another: only allocations of jobs at least this much lower are
// candidates.
const preemptionGap = 10

const (
	// skipScoreThreshold and maxSkip are Nomad's limit iterator's: up to
	// maxSkip nodes scoring at most skipScoreThreshold (a node made
	// unattractive by job anti-affinity or a rescheduling penalty) are set
	// aside without counting against the limit, and scored only if the
	// walk runs out of nodes first.
	skipScoreThreshold = 0.0
	maxSkip            = 3

	// defaultNodeLimit is Nomad's node_limit_for_feasibility_checks when
	// the scheduler configuration leaves it unset: how many fitting nodes a
	// group with affinities scores (at least its count).
	defaultNodeLimit = 100
)

// placer places the allocations of one task group during one evaluation,
// the way Nomad's default scheduler does: feasible nodes are shuffled once
// (seeded), then each placement walks on from where the previous one
// stopped, scores the first few nodes that fit (log2 of the number of ready
// nodes in the job's datacenters and pool for service jobs, 2 for batch;
// node_limit_for_feasibility_checks, or the group's count if larger, when
// the group has affinities) and takes the best score.
type placer struct {
	c      *Cluster
	j      *job
	g      *group
	cand   []*node
	off    int
	limit  int
	metric *api.AllocationMetric
	// penalty is the node a failed allocation being replaced ran on: Nomad
	// scores it down so the replacement goes elsewhere if it can.
	penalty *node
}

func (c *Cluster) newPlacer(j *job, g *group) *placer {
	p := &placer{c: c, j: j, g: g, metric: &api.AllocationMetric{
		NodesAvailable:     map[string]int{},
		ClassFiltered:      map[string]int{},
		ConstraintFiltered: map[string]int{},
		ClassExhausted:     map[string]int{},
		DimensionExhausted: map[string]int{},
		NodePool:           jobPool(j),
	}}
	for _, n := range c.nodes {
		if !p.staticFeasible(n) {
			continue
		}
		p.cand = append(p.cand, n)
	}
	base := 0 // ready nodes in the job's datacenters and pool
	for _, k := range p.metric.NodesAvailable {
		base += k
	}
	p.metric.NodesEvaluated = len(p.cand)
	c.rng.Shuffle(len(p.cand), func(i, k int) { p.cand[i], p.cand[k] = p.cand[k], p.cand[i] })
	p.limit = 2
	if j.typ != api.JobTypeBatch && base > 0 {
		if l := int(math.Ceil(math.Log2(float64(base)))); l > p.limit {
			p.limit = l
		}
	}
	if len(g.affinities) > 0 {
		p.limit = defaultNodeLimit
		if l := c.schedCfg.NodeLimitForFeasibilityChecks; l > 0 {
			p.limit = int(l)
		}
		if g.count > p.limit {
			p.limit = g.count
		}
	}
	return p
}

func jobPool(j *job) string {
	if j.spec.NodePool == nil || *j.spec.NodePool == "" {
		return "default"
	}
	return *j.spec.NodePool
}

// staticFeasible checks what does not change while an evaluation places:
// status, eligibility, datacenter, node pool and constraints.
func (p *placer) staticFeasible(n *node) bool {
	if n.status != api.NodeStatusReady || !n.eligible || n.drain != nil {
		return false
	}
	p.metric.NodesInPool++
	pool := jobPool(p.j)
	if pool != "all" && n.pool != pool {
		p.metric.NodesInPool--
		return false
	}
	dcOK := false
	for _, pat := range p.j.spec.Datacenters {
		if ok, _ := path.Match(pat, n.dc); ok {
			dcOK = true
			break
		}
	}
	if !dcOK {
		return false
	}
	p.metric.NodesAvailable[n.dc]++
	for _, con := range p.g.constraints {
		if con.Operand == api.ConstraintDistinctHosts {
			continue
		}
		if !constraintHolds(n, con) {
			p.metric.NodesFiltered++
			p.metric.ConstraintFiltered[con.LTarget+" "+con.Operand+" "+con.RTarget]++
			if n.class != "" {
				p.metric.ClassFiltered[n.class]++
			}
			return false
		}
	}
	return true
}

// resolve returns the value of a constraint target on n, and whether it is set.
func resolve(n *node, t string) (string, bool) {
	if !strings.HasPrefix(t, "${") || !strings.HasSuffix(t, "}") {
		return t, true
	}
	key := t[2 : len(t)-1]
	switch key {
	case "node.unique.id":
		return n.id, true
	case "node.unique.name", "attr.unique.hostname":
		return n.name, true
	case "node.datacenter":
		return n.dc, true
	case "node.class":
		return n.class, n.class != ""
	case "node.pool":
		return n.pool, true
	case "attr.kernel.name":
		return "linux", true
	case "attr.cpu.numcores":
		return strconv.Itoa(n.cores), true
	case "attr.cpu.totalcompute":
		return strconv.FormatInt(n.cpu, 10), true
	case "attr.memory.totalbytes":
		return strconv.FormatInt(n.mem<<20, 10), true
	}
	if k, ok := strings.CutPrefix(key, "meta."); ok {
		v, set := n.meta[k]
		return v, set
	}
	return "", false
}

// supportedOperand reports whether the sim can evaluate a constraint operand.
func supportedOperand(op string) bool {
	switch op {
	case "", "=", "==", "is", "!=", "not", "<", "<=", ">", ">=",
		api.ConstraintRegex, api.ConstraintSetContains, api.ConstraintSetContainsAll,
		api.ConstraintSetContainsAny, api.ConstraintDistinctHosts, "is_set", "is_not_set":
		return true
	}
	return false
}

func constraintHolds(n *node, con *api.Constraint) bool {
	l, lset := resolve(n, con.LTarget)
	r, _ := resolve(n, con.RTarget)
	switch con.Operand {
	case "", "=", "==", "is":
		return lset && l == r
	case "!=", "not":
		return !lset || l != r
	case "is_set":
		return lset
	case "is_not_set":
		return !lset
	case "<", "<=", ">", ">=":
		if !lset {
			return false
		}
		cmp := strings.Compare(l, r)
		lf, e1 := strconv.ParseFloat(l, 64)
		rf, e2 := strconv.ParseFloat(r, 64)
		if e1 == nil && e2 == nil {
			cmp = 0
			if lf < rf {
				cmp = -1
			} else if lf > rf {
				cmp = 1
			}
		}
		switch con.Operand {
		case "<":
			return cmp < 0
		case "<=":
			return cmp <= 0
		case ">":
			return cmp > 0
		}
		return cmp >= 0
	case api.ConstraintRegex:
		re, err := regexp.Compile(r)
		return err == nil && lset && re.MatchString(l)
	case api.ConstraintSetContains, api.ConstraintSetContainsAll:
		have := setOf(l)
		for _, w := range strings.Split(r, ",") {
			if !have[strings.TrimSpace(w)] {
				return false
			}
		}
		return lset
	case api.ConstraintSetContainsAny:
		have := setOf(l)
		for _, w := range strings.Split(r, ",") {
			if have[strings.TrimSpace(w)] {
				return true
			}
		}
		return false
	}
	return false
}

func setOf(s string) map[string]bool {
	out := map[string]bool{}
	for _, v := range strings.Split(s, ",") {
		out[strings.TrimSpace(v)] = true
	}
	return out
}

// fits reports whether the group's request fits on n now, counting
// distinct_hosts.
func (p *placer) fits(n *node) bool {
	g := p.g
	if g.cores > int64(n.cores) || n.resCPU+g.cpuOn(n) > n.cpu {
		p.exhausted(n, "cpu")
		return false
	}
	if n.resMem+g.mem > n.mem {
		p.exhausted(n, "memory")
		return false
	}
	if g.iops > 0 && n.iops > 0 && n.resIOPS+g.iops > n.iops {
		p.exhausted(n, "iops")
		return false
	}
	if p.distinct() && p.collisions(n) > 0 {
		p.metric.ConstraintFiltered[api.ConstraintDistinctHosts]++
		return false
	}
	return true
}

func (p *placer) exhausted(n *node, dim string) {
	p.metric.NodesExhausted++
	p.metric.DimensionExhausted[dim]++
	if n.class != "" {
		p.metric.ClassExhausted[n.class]++
	}
}

func (p *placer) distinct() bool {
	for _, con := range p.g.constraints {
		if con.Operand == api.ConstraintDistinctHosts {
			return true
		}
	}
	return false
}

// collisions counts allocations of the same job and group that hold
// capacity on n.
func (p *placer) collisions(n *node) int {
	k := 0
	for _, a := range n.allocs {
		if a.job == p.j && a.grp.name == p.g.name && a.holds() {
			k++
		}
	}
	return k
}

// score is Nomad's binpack (or spread) fit, averaged with job anti-affinity
// and the rescheduling penalty when they apply, and with node affinity
// whenever the group has affinities: a node matching none of them adds a
// zero to the average, as Nomad does.
func (p *placer) score(n *node) float64 {
	uc := float64(n.resCPU+p.g.cpuOn(n)) / float64(n.cpu)
	um := float64(n.resMem+p.g.mem) / float64(n.mem)
	total := math.Pow(10, 1-uc) + math.Pow(10, 1-um)
	fit := (20 - total) / 18
	if p.c.schedCfg.SchedulerAlgorithm == api.SchedulerAlgorithmSpread {
		fit = (total - 2) / 18
	}
	sum, k := fit, 1.0
	if col := p.collisions(n); col > 0 && p.g.count > 0 {
		sum += -float64(col+1) / float64(p.g.count)
		k++
	}
	if n == p.penalty {
		sum += -1
		k++
	}
	if len(p.g.affinities) > 0 {
		var got, all float64
		for _, a := range p.g.affinities {
			w := 50.0
			if a.Weight != nil {
				w = float64(*a.Weight)
			}
			all += math.Abs(w)
			if constraintHolds(n, &api.Constraint{LTarget: a.LTarget, RTarget: a.RTarget, Operand: a.Operand}) {
				got += w
			}
		}
		if all > 0 {
			sum += got / all
			k++
		}
	}
	return sum / k
}

// next picks a node for one allocation, or nil when none fits.
func (p *placer) next() *node {
	n := len(p.cand)
	var best *node
	bestScore := math.Inf(-1)
	consider := func(c *node, s float64) {
		if s > bestScore {
			best, bestScore = c, s
		}
	}
	type scored struct {
		n *node
		s float64
	}
	var skipped []scored
	found := 0
	visited := 0
	for visited < n && found < p.limit {
		cand := p.cand[(p.off+visited)%n]
		visited++
		if !p.fits(cand) {
			continue
		}
		s := p.score(cand)
		if s <= skipScoreThreshold && len(skipped) < maxSkip {
			skipped = append(skipped, scored{cand, s})
			continue
		}
		found++
		consider(cand, s)
	}
	for _, k := range skipped {
		if found == p.limit {
			break
		}
		found++
		consider(k.n, k.s)
	}
	if n > 0 {
		p.off = (p.off + visited) % n
	}
	return best
}

// preemptionEnabled reports whether the scheduler configuration lets this
// job type preempt.
func (c *Cluster) preemptionEnabled(typ string) bool {
	pc := c.schedCfg.PreemptionConfig
	switch typ {
	case api.JobTypeService:
		return pc.ServiceSchedulerEnabled
	case api.JobTypeBatch:
		return pc.BatchSchedulerEnabled
	case api.JobTypeSystem:
		return pc.SystemSchedulerEnabled
	case api.JobTypeSysbatch:
		return pc.SysBatchSchedulerEnabled
	}
	return false
}

// preempt looks for a node where evicting allocations of jobs at least
// preemptionGap lower in priority makes the group fit. It prefers the node
// needing the fewest evictions, then the lowest evicted priority. only
// restricts the search to one node (system jobs).
func (p *placer) preempt(only *node) (*node, []*alloc) {
	if !p.c.preemptionEnabled(p.j.typ) {
		return nil, nil
	}
	nodes := p.cand
	if only != nil {
		nodes = []*node{only}
	}
	var best *node
	var bestSet []*alloc
	bestCost := [2]int{math.MaxInt, math.MaxInt}
	found := 0
	for i := 0; i < len(nodes) && found < p.limit; i++ {
		n := nodes[(p.off+i)%len(nodes)]
		set := p.evictionSet(n)
		if set == nil {
			continue
		}
		found++
		prio := 0
		for _, a := range set {
			prio += a.job.priority
		}
		if cost := [2]int{len(set), prio}; cost[0] < bestCost[0] || (cost[0] == bestCost[0] && cost[1] < bestCost[1]) {
			best, bestSet, bestCost = n, set, cost
		}
	}
	return best, bestSet
}

// evictionSet returns the allocations to evict from n so the group fits, or
// nil when evicting every eligible allocation is not enough.
func (p *placer) evictionSet(n *node) []*alloc {
	var pool []*alloc
	for _, a := range n.allocs {
		if a.holds() && a.job.priority <= p.j.priority-preemptionGap {
			pool = append(pool, a)
		}
	}
	if len(pool) == 0 {
		return nil
	}
	sort.SliceStable(pool, func(i, k int) bool {
		if pool[i].job.priority != pool[k].job.priority {
			return pool[i].job.priority < pool[k].job.priority
		}
		si := float64(pool[i].reqCPU)/float64(n.cpu) + float64(pool[i].grp.mem)/float64(n.mem)
		sk := float64(pool[k].reqCPU)/float64(n.cpu) + float64(pool[k].grp.mem)/float64(n.mem)
		if si != sk {
			return si > sk
		}
		return pool[i].createIdx < pool[k].createIdx
	})
	cpu, mem, iops := n.resCPU, n.resMem, n.resIOPS
	g := p.g
	fit := func() bool {
		return g.cores <= int64(n.cores) && cpu+g.cpuOn(n) <= n.cpu && mem+g.mem <= n.mem && (g.iops == 0 || n.iops == 0 || iops+g.iops <= n.iops)
	}
	var set []*alloc
	for _, a := range pool {
		if fit() {
			break
		}
		set = append(set, a)
		cpu -= a.reqCPU
		mem -= a.grp.mem
		iops -= a.grp.iops
	}
	if !fit() {
		return nil
	}
	return set
}
