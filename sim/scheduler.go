package sim

import (
	"maps"
	"math"
	"path"
	"regexp"
	"slices"
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
// the group has affinities or spreads) and takes the best score.
type placer struct {
	c      *Cluster
	j      *job
	g      *group
	cand   []*node
	off    int
	limit  int
	metric *api.AllocationMetric
	// static is metric as the static checks left it: each placement
	// starts from it, as Nomad's scheduler fills a fresh metric for each.
	static *api.AllocationMetric
	// failed is the metric of the first placement that found no node,
	// with how many failed after it (CoalescedFailures): Nomad's
	// failedTGAllocs for the group. Nil before one fails. failedIdx holds
	// the allocation indexes that failed, so that a migration's
	// replacement tried again with the missing placements counts once.
	failed    *api.AllocationMetric
	failedIdx map[int]bool
	// penalty is the nodes Nomad scores a replacement away from (see
	// penaltyNodes), nil for a new allocation.
	penalty map[*node]bool
	// spread is the group's spread blocks as Nomad's SpreadIterator
	// scores them, nil without any.
	spread *spreadScorer
	// conflicts counts placements whose preemption did not make room.
	conflicts int
}

// newPlacer makes the placer of g; st is the evaluation's spread state,
// shared by the placers of the job's groups (nil: a fresh one).
func (c *Cluster) newPlacer(j *job, g *group, st *spreadState) *placer {
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
	p.static = cloneMetric(p.metric)
	c.rng.Shuffle(len(p.cand), func(i, k int) { p.cand[i], p.cand[k] = p.cand[k], p.cand[i] })
	p.limit = 2
	if j.typ != api.JobTypeBatch && base > 0 {
		if l := int(math.Ceil(math.Log2(float64(base)))); l > p.limit {
			p.limit = l
		}
	}
	if len(g.spreads) > 0 {
		if st == nil {
			st = newSpreadState()
		}
		p.spread = newSpreadScorer(j, g, st)
	}
	if len(g.affinities) > 0 || len(g.spreads) > 0 {
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
	pool := jobPool(p.j)
	if pool != "all" && n.pool != pool {
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
	// Nomad's NodesInPool counts the ready nodes of the job's pool and
	// datacenters alike (readyNodesInDCsAndPool), as NodesAvailable does.
	p.metric.NodesInPool++
	p.metric.NodesAvailable[n.dc]++
	// Nomad's stack checks the job's constraints, then the group's task
	// drivers, then the group's and its tasks' constraints.
	for i, con := range p.g.constraints {
		if i == p.g.jobCons && !p.driversOn(n) {
			return false
		}
		if con.Operand == api.ConstraintDistinctHosts {
			continue
		}
		if !constraintHolds(n, con) {
			p.filtered(n, con.LTarget+" "+con.Operand+" "+con.RTarget)
			return false
		}
	}
	return len(p.g.constraints) > p.g.jobCons || p.driversOn(n)
}

// driversOn reports whether n has every task driver of the group, and
// counts it filtered ("missing drivers", as Nomad's driver checker) when
// not.
func (p *placer) driversOn(n *node) bool {
	for _, d := range p.g.drivers {
		if !slices.Contains(n.drivers, d) {
			p.filtered(n, "missing drivers")
			return false
		}
	}
	return true
}

// filtered counts n filtered out for reason.
func (p *placer) filtered(n *node, reason string) {
	p.metric.NodesFiltered++
	p.metric.ConstraintFiltered[reason]++
	if n.class != "" {
		p.metric.ClassFiltered[n.class]++
	}
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

// knownTarget reports whether resolve can read target on the sim's nodes:
// a literal, ${meta.*}, or one of the node fields and attributes it models.
func knownTarget(t string) bool {
	if !strings.HasPrefix(t, "${") || !strings.HasSuffix(t, "}") {
		return true
	}
	key := t[2 : len(t)-1]
	switch key {
	case "node.unique.id", "node.unique.name", "attr.unique.hostname", "node.datacenter", "node.class", "node.pool",
		"attr.kernel.name", "attr.cpu.numcores", "attr.cpu.totalcompute", "attr.memory.totalbytes":
		return true
	}
	return strings.HasPrefix(key, "meta.")
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
	if dim := p.short(n); dim != "" {
		p.exhausted(n, dim)
		return false
	}
	if p.distinct() && p.collisions(n) > 0 {
		p.metric.ConstraintFiltered[api.ConstraintDistinctHosts]++
		return false
	}
	return true
}

// short names the resource n lacks for the group's request now, or "".
func (p *placer) short(n *node) string { return p.shortWith(n, n.resCPU, n.resMem, n.resIOPS) }

// shortWith is short with the node's allocated CPU, memory and IOPS
// given (as a preemption would leave them).
func (p *placer) shortWith(n *node, cpu, mem, iops int64) string {
	g := p.g
	switch {
	case g.cores > int64(n.cores) || cpu+g.cpuOn(n) > n.cpu:
		return "cpu"
	case mem+g.mem > n.mem:
		return "memory"
	case g.iops > 0 && n.iops > 0 && iops+g.iops > n.iops:
		return "iops"
	}
	return ""
}

// fail records that the placement of allocation index found no node: the
// first one's metric is kept as Nomad keeps it, every node of the pool and
// datacenters evaluated (its scheduler runs each through the checks before
// it gives up), and each later one counts as coalesced into it.
func (p *placer) fail(index int) {
	if p.failedIdx[index] {
		return
	}
	if p.failed != nil {
		p.failed.CoalescedFailures++
		p.failedIdx[index] = true
		return
	}
	p.failedIdx = map[int]bool{index: true}
	p.failed = cloneMetric(p.metric)
	p.failed.NodesEvaluated = p.failed.NodesInPool
}

// startPlacement begins the metric of one placement afresh from the
// static checks', as Nomad's scheduler does for each: the nodes an earlier
// placement of the evaluation found full are not counted again.
func (p *placer) startPlacement() { p.metric = cloneMetric(p.static) }

func cloneMetric(m *api.AllocationMetric) *api.AllocationMetric {
	c := *m
	c.NodesAvailable = maps.Clone(m.NodesAvailable)
	c.ClassFiltered = maps.Clone(m.ClassFiltered)
	c.ConstraintFiltered = maps.Clone(m.ConstraintFiltered)
	c.ClassExhausted = maps.Clone(m.ClassExhausted)
	c.DimensionExhausted = maps.Clone(m.DimensionExhausted)
	return &c
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
// and the rescheduling penalty when they apply, with node affinity
// whenever the group has affinities (a node matching none of them adds a
// zero to the average, as Nomad does), and with the preemption score when
// the placement evicts preempt. The fit counts what the node holds now,
// the allocations to evict included (so a node it overfills scores the
// highest fit, 1), as Nomad's does.
func (p *placer) score(n *node, preempt []*alloc) float64 {
	uc := float64(n.resCPU+p.g.cpuOn(n)) / float64(n.cpu)
	um := float64(n.resMem+p.g.mem) / float64(n.mem)
	total := math.Pow(10, 1-uc) + math.Pow(10, 1-um)
	fit := (20 - total) / 18
	if p.c.schedCfg.SchedulerAlgorithm == api.SchedulerAlgorithmSpread {
		fit = (total - 2) / 18
	}
	fit = min(max(fit, 0), 1)
	sum, k := fit, 1.0
	if col := p.collisions(n); col > 0 && p.g.count > 0 {
		sum += -float64(col+1) / float64(p.g.count)
		k++
	}
	if p.penalty[n] {
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
	if p.spread != nil {
		if sp := p.spread.score(n); sp != 0 {
			sum += sp
			k++
		}
	}
	if len(preempt) > 0 {
		sum += preemptionScore(preempt)
		k++
	}
	return sum / k
}

// preemptionScore is Nomad's score of an eviction set: a logistic function
// of its net priority (the highest priority plus the sum over the
// highest), 0.5 at 2048 and close to 1 for the priorities jobs have, so
// that it barely tells options apart: the fit and the other scores decide
// where a placement preempts.
func preemptionScore(set []*alloc) float64 {
	sum, top := 0, 0
	for _, a := range set {
		sum += a.job.priority
		top = max(top, a.job.priority)
	}
	net := float64(top) + float64(sum)/float64(top)
	return 1 / (1 + math.Exp(0.0048*(net-2048)))
}

// next picks a node for one allocation, or nil when none fits.
func (p *placer) next() *node {
	n, _, _ := p.walk(false)
	return n
}

// walk scores the candidates from where the last walk stopped, up to the
// limit of options, and returns the best with the allocations it evicts.
// With evict, a node the group does not fit on is an option when Nomad's
// preemptor finds allocations to evict there (Nomad's second pass, when
// the first found no node); roomy is false when that option's evictions
// do not in fact make room.
func (p *placer) walk(evict bool) (best *node, bestSet []*alloc, roomy bool) {
	n := len(p.cand)
	bestScore := math.Inf(-1)
	consider := func(c *node, s float64, set []*alloc, ok bool) {
		if s > bestScore {
			best, bestScore, bestSet, roomy = c, s, set, ok
		}
	}
	type scored struct {
		n   *node
		s   float64
		set []*alloc
		ok  bool
	}
	var skipped []scored
	if p.spread != nil {
		p.spread.count() // what the previous placement changed
	}
	found := 0
	visited := 0
	for visited < n && found < p.limit {
		cand := p.cand[(p.off+visited)%n]
		visited++
		var set []*alloc
		ok := true
		if evict {
			if p.distinct() && p.collisions(cand) > 0 {
				continue
			}
			if p.short(cand) != "" {
				if set, ok = p.evictionSet(cand); set == nil {
					continue
				}
			}
		} else if !p.fits(cand) {
			continue
		}
		s := p.score(cand, set)
		if s <= skipScoreThreshold && len(skipped) < maxSkip {
			skipped = append(skipped, scored{cand, s, set, ok})
			continue
		}
		found++
		consider(cand, s, set, ok)
	}
	for _, k := range skipped {
		if found == p.limit {
			break
		}
		found++
		consider(k.n, k.s, k.set, k.ok)
	}
	if n > 0 {
		p.off = (p.off + visited) % n
	}
	return best, bestSet, roomy
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

// preempt is Nomad's second pass for a placement no node fits: the walk
// again, where a node is also an option if evicting allocations of jobs
// at least preemptionGap lower in priority makes room, scored like any
// other with the preemption score averaged in. Nothing when the scheduler
// configuration does not let the job's type preempt. roomy is false when
// the chosen evictions do not make room: Nomad's plan applier then rejects
// the placement.
func (p *placer) preempt() (n *node, set []*alloc, roomy bool) {
	if !p.c.preemptionEnabled(p.j.typ) {
		return nil, nil, false
	}
	return p.walk(true)
}

// evictionSet returns the allocations Nomad's preemptor evicts from n so
// the group fits, or nil when evicting every eligible allocation is not
// enough. Candidates are the allocations of other jobs at least
// preemptionGap lower in priority, taken the lowest priority first; within
// a priority, again and again the one closest to what is still needed
// (distance over CPU and memory relative to the request, so an allocation
// of about the request's size before a larger one), until the group fits.
// A last pass keeps, farthest from the request first, only as many as the
// group needs. Nomad counts the room left on n without the allocations of
// the job being placed (its preemptor sets them aside with the
// candidates), so where the job already runs it can pick too few: roomy
// is false when the set does not in fact make room. (Nomad adds a penalty for allocations of a task group that
// already lost migrate.max_parallel allocations to the same plan, but its
// plan records preempted allocations without their task group, so the
// count it reads stays 0: the sim leaves the penalty out.)
func (p *placer) evictionSet(n *node) (set []*alloc, roomy bool) {
	byPrio := map[int][]*alloc{}
	var prios []int
	var ownCPU, ownMem, ownIOPS int64
	for _, a := range n.allocs {
		if a.holds() && a.job == p.j {
			ownCPU, ownMem, ownIOPS = ownCPU+a.reqCPU, ownMem+a.grp.mem, ownIOPS+a.grp.iops
		}
		if !a.holds() || a.job == p.j || a.job.priority > p.j.priority-preemptionGap {
			continue
		}
		if byPrio[a.job.priority] == nil {
			prios = append(prios, a.job.priority)
		}
		byPrio[a.job.priority] = append(byPrio[a.job.priority], a)
	}
	if len(prios) == 0 {
		return nil, false
	}
	sort.Ints(prios)
	g := p.g
	askCPU, askMem := g.cpuOn(n), g.mem
	// Nomad reads a node's allocations in ID order: it breaks ties.
	for _, grp := range byPrio {
		sort.Slice(grp, func(i, k int) bool { return grp[i].id < grp[k].id })
	}
	cpu, mem, iops := n.resCPU-ownCPU, n.resMem-ownMem, n.resIOPS-ownIOPS
	fits := func() bool { return p.shortWith(n, cpu, mem, iops) == "" }
	needCPU, needMem := askCPU, askMem
	var chosen []*alloc
	met := false // as Nomad: at least one is taken even if the room looks enough
	for _, prio := range prios {
		grp := byPrio[prio]
		for len(grp) > 0 && !met {
			at, best := -1, math.MaxFloat64
			for i, a := range grp {
				if d := resourceDistance(needCPU, needMem, a); d < best {
					at, best = i, d
				}
			}
			a := grp[at]
			chosen = append(chosen, a)
			cpu, mem, iops = cpu-a.reqCPU, mem-a.grp.mem, iops-a.grp.iops
			needCPU, needMem = needCPU-a.reqCPU, needMem-a.grp.mem
			grp[at] = grp[len(grp)-1]
			grp = grp[:len(grp)-1]
			met = fits()
		}
		if met {
			break
		}
	}
	if !met {
		return nil, false
	}
	sort.SliceStable(chosen, func(i, k int) bool {
		return resourceDistance(askCPU, askMem, chosen[i]) > resourceDistance(askCPU, askMem, chosen[k])
	})
	cpu, mem, iops = n.resCPU-ownCPU, n.resMem-ownMem, n.resIOPS-ownIOPS
	set = chosen // the whole of it fits: the loop ends by its last at the latest
	for i, a := range chosen {
		cpu, mem, iops = cpu-a.reqCPU, mem-a.grp.mem, iops-a.grp.iops
		if fits() {
			set = chosen[:i+1]
			break
		}
	}
	// With the job's own allocations counted again, as Nomad's plan
	// applier counts them.
	cpu, mem, iops = cpu+ownCPU, mem+ownMem, iops+ownIOPS
	return set, fits()
}

// resourceDistance is Nomad's distance between what is needed and what an
// allocation holds: each resource's difference relative to the need (none
// when nothing more is needed of it), the Euclidean norm of the two.
func resourceDistance(needCPU, needMem int64, a *alloc) float64 {
	var dc, dm float64
	if needCPU > 0 {
		dc = float64(needCPU-a.reqCPU) / float64(needCPU)
	}
	if needMem > 0 {
		dm = float64(needMem-a.grp.mem) / float64(needMem)
	}
	return math.Hypot(dc, dm)
}
