package shape

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/policies"
)

// Within reports whether a request moves work between nodes of one
// locality (a spread): it adds no demand to the locality and takes none
// out of it, so neither the locality's forecast nor its reservations
// concern it.
func Within(r *state.MigrationRequest) bool {
	return r.Origin == "planner" && r.Source == r.Target && r.Source != ""
}

// spreading reports whether an unfinished spread request works in loc: the
// next spread there is planned once its moves have landed, on the
// placement they left.
func (p *planner) spreading(loc string) bool {
	for i := range p.in.State.Requests {
		r := &p.in.State.Requests[i]
		if !r.State.Terminal() && Within(r) && r.Source == loc {
			return true
		}
	}
	return false
}

// spreadNode is one ready node of a locality as spread plans it.
type spreadNode struct {
	i int // index into Cluster.Nodes
	// use holds, for each reading of its live allocations (placeholders
	// excepted) and each of the forecast's times, their use of the
	// metric: first what they hold, then (spreading by use) their own
	// forecast use. capacity is its allocatable capacity of the metric.
	use      []float64
	capacity float64
	// free is its unallocated capacity, less what placeholders hold (those
	// Nomad placed, and the chunks of the reservations held that it has
	// not placed yet: see holdUnplaced) and the room of unfinished spreads
	// (see holdSpreads).
	free state.Resources
}

// spread creates requests for policies with migrate.spread that move the
// fewest allocations off the locality's nodes forecast over the headroom
// line onto its receiving nodes that stay under it. Nomad never moves
// placed work onto nodes added later, so after a scale-out the nodes that
// ran the work congest while the new ones stand empty, though the
// locality as a whole has room.
//
// A node's demand at each of the forecast's times is its share of the
// locality's forecast demand then (its absolute demand when the forecast
// carries it, else its planning quantile of the capacity now, plus the
// work moves landed lately, which the forecast has not learned), in
// proportion to what its allocations hold: the planner sees no node's own
// use. With migrate.spread_by_use it is read a second way, in proportion
// to its allocations' own forecast use (their task group's forecast per
// allocation, Forecast.Group; what an allocation holds where its group has
// none), so that jobs that peak at different times, or use more or less
// than they hold, load their nodes as they will; the planner cannot tell
// which reading the day will bear out, so a node is as hot as the hotter
// reading says, and a move must suit both. Each node whose share goes
// over the line within the horizon (hottest first) sheds the running
// service allocations cheapest to transfer (most of the metric at the
// node's peak per MiB moved) that bring it under, each onto the receiving
// node left lowest, as long as that one stays under the line and the
// locality's mean at its peak (or, once no such move is left and the node
// is still over the line, stays under its capacity while the move lowers
// the higher of the two nodes' peaks by a point of capacity or more), has
// the room to allocate it, and holds no more of its group than the node it
// leaves keeps (Nomad's job anti-affinity would send the replacement
// back); never a group whose last spread off that node landed back on it.
// At most max_parallel requests a pass; the next once they have landed.
func (p *planner) spread() {
	for _, pol := range p.in.Policies {
		if !pol.Migrate.Spread {
			continue
		}
		loc := pol.Locality.String()
		if p.spreading(loc) {
			continue
		}
		li, ok := p.locality(loc)
		if !ok || len(li.nodes) < 2 {
			continue
		}
		for _, metric := range []string{"cpu", "memory"} {
			if p.spreadMetric(pol, li, metric) {
				break
			}
		}
	}
}

// groupUse returns an allocation's own forecast use at times, from its
// group's forecast (the value in force at each time; the last one past
// its horizon), or nil when its group has none. Vectors are cached per
// group in memo.
func (p *planner) groupUse(a *Alloc, metric string, times []time.Time, memo map[string][]float64) []float64 {
	key := GroupKey(a.Namespace, a.Job, a.Group) + ":" + metric
	if v, ok := memo[key]; ok {
		return v
	}
	var v []float64
	if g := p.groupFc[key]; g != nil && len(g.Times) > 0 && len(g.Planning) == len(g.Times) {
		v = make([]float64, len(times))
		k := 0
		for i, t := range times {
			for k+1 < len(g.Times) && !g.Times[k+1].After(t) {
				k++
			}
			v[i] = max(g.Planning[k], 0)
		}
	}
	memo[key] = v
	return v
}

// spreadMetric plans one metric's spread in a locality; it reports whether
// it submitted requests.
func (p *planner) spreadMetric(pol *policies.Policy, li *localityInfo, metric string) bool {
	f := p.forecast(li.path, metric)
	if f == nil || !f.HasLine || len(f.Times) == 0 {
		return false
	}
	amount := func(r state.Resources) float64 {
		if metric == "cpu" {
			return float64(r.CPU)
		}
		return float64(r.MemoryMB)
	}
	capacity := float64(li.capCPU)
	if metric == "memory" {
		capacity = float64(li.capMem)
	}
	// The locality's demand at each time, and at the forecast's peak.
	times := f.Times
	demand := make([]float64, len(times))
	for i := range times {
		demand[i] = f.Planning[i] / 100 * capacity
		if len(f.Demand) == len(f.Planning) {
			demand[i] = f.Demand[i]
		}
	}
	var landed float64
	for i := range p.in.State.Requests {
		r := &p.in.State.Requests[i]
		if r.State == state.RequestDone && r.Target == li.path && r.Source != r.Target && p.landing(*r) {
			landed += amount(r.Moved)
		}
	}
	peak, peakAt := math.Inf(-1), time.Time{}
	for i, t := range times {
		demand[i] += landed
		if demand[i] > peak {
			peak, peakAt = demand[i], t
		}
	}
	if !pol.Migrate.SpreadByUse || len(p.groupFc) == 0 {
		// Read by what allocations hold alone, every node's share peaks
		// with the locality: its peak is the only point to read.
		times, demand = []time.Time{peakAt}, []float64{peak}
	}
	// A node's use is read as what its allocations hold, and spreading
	// by use (with group forecasts to read) also as their own forecast
	// use: the readings follow each other in one vector, nt points each,
	// so that a node's peak is the higher reading's.
	nt := len(times)
	memo := map[string][]float64{}
	own := false
	// allocUse adds an allocation's use at each time, both readings, to
	// dst.
	allocUse := func(a *Alloc, dst []float64) {
		held := amount(a.Size)
		var v []float64
		if pol.Migrate.SpreadByUse {
			v = p.groupUse(a, metric, times, memo)
		}
		own = own || v != nil
		for i := range nt {
			dst[i] += held
			if v != nil {
				dst[nt+i] += v[i]
			} else {
				dst[nt+i] += held
			}
		}
	}
	nodes := make([]spreadNode, 0, len(li.nodes))
	total := make([]float64, 2*nt)
	uses := make([]float64, 2*nt*len(li.nodes)) // the nodes' use, one block each
	for x, k := range li.nodes {
		n := &p.c.Nodes[k]
		sn := spreadNode{i: k, capacity: amount(state.Resources{CPU: n.CPU, MemoryMB: n.MemoryMB}), use: uses[2*nt*x : 2*nt*(x+1) : 2*nt*(x+1)],
			free: p.freeOn(k)}
		for _, ai := range p.c.allocsOfNode[n.ID] {
			if a := &p.c.Allocs[ai]; a.Live && !Placeholder(a.Job) {
				allocUse(a, sn.use)
			}
		}
		for i, u := range sn.use {
			total[i] += u
		}
		nodes = append(nodes, sn)
	}
	if peak <= 0 {
		return false
	}
	readings := 1
	if own {
		readings = 2
	}
	for i := range nodes {
		nodes[i].use = nodes[i].use[:readings*nt]
	}
	total = total[:readings*nt]
	for _, t := range total {
		if t <= 0 {
			return false
		}
	}
	// utilAt is a node's forecast use at point i (of a reading's times),
	// percent of its capacity: its share of the locality's demand then,
	// with extra (an allocation's use, times sign) added.
	utilAt := func(n *spreadNode, i int, extra []float64, sign float64) float64 {
		u := n.use[i]
		if extra != nil {
			u += sign * extra[i]
		}
		return 100 * demand[i%nt] * u / total[i] / n.capacity
	}
	// peakOf is a node's highest forecast use over the horizon, percent
	// of its capacity, and when.
	peakOf := func(n *spreadNode, extra []float64, sign float64) (float64, int) {
		if n.capacity <= 0 {
			return math.Inf(1), 0
		}
		best, at := math.Inf(-1), 0
		for i := range total {
			if u := utilAt(n, i, extra, sign); u > best {
				best, at = u, i
			}
		}
		return best, at
	}
	util := func(n *spreadNode) float64 { u, _ := peakOf(n, nil, 0); return u }
	// mean is every node's use were the locality's work spread evenly
	// over the nodes that can take it: a node the move would lift over it
	// takes over the imbalance. It is read as the locality's room is
	// (placeable): a node that takes no new work takes none of it (its own
	// work stays on it; a draining node's is being placed on the others),
	// so an empty cordoned node does not pull the mean under what any
	// spread can reach.
	mean := li.placeable(metric, 100*peak/capacity)
	var hot []*spreadNode
	for i := range nodes {
		if util(&nodes[i]) > f.Line {
			hot = append(hot, &nodes[i])
		}
	}
	if len(hot) == 0 {
		return false
	}
	sort.SliceStable(hot, func(i, j int) bool {
		if ui, uj := util(hot[i]), util(hot[j]); ui != uj {
			return ui > uj
		}
		return p.c.Nodes[hot[i].i].ID < p.c.Nodes[hot[j].i].ID
	})
	type gkey struct{ node, ns, job, group string }
	groupKey := func(m state.Move, node string) gkey { return gkey{node, m.Namespace, m.Job, m.Group} }
	// Groups whose spread off a node landed back on it lately: Nomad
	// chose that node again, and would again.
	back := map[gkey]bool{}
	for i := range p.in.State.Requests {
		r := &p.in.State.Requests[i]
		if r.State != state.RequestDone || !Within(r) || r.Source != li.path || r.Finished.IsZero() || !p.now.Before(r.Finished.Add(p.season(r.Target))) {
			continue
		}
		for _, m := range r.Moves {
			if m.TargetNode != "" && m.TargetNode == m.Node {
				back[groupKey(m, m.Node)] = true
			}
		}
	}
	// groupOn counts a group's live allocations on each node: Nomad
	// spreads a job's allocations over nodes (job anti-affinity), so a
	// replacement goes back to the node it left rather than to one that
	// holds more of its group than that node keeps.
	planned := map[gkey]int{} // the moves this pass plans onto (+) and off (−) nodes
	groupOn := func(m state.Move, node string) int {
		k := planned[groupKey(m, node)]
		for _, ai := range p.c.allocsOfNode[node] {
			if a := &p.c.Allocs[ai]; a.Live && a.Job == m.Job && a.Group == m.Group && a.Namespace == m.Namespace {
				k++
			}
		}
		return k
	}
	// Destinations: receiving nodes whose share is under the line now (a
	// move only raises it); which of them may take a move is decided per
	// move (admit).
	var cool []*spreadNode
	for i := range nodes {
		if util(&nodes[i]) < f.Line && p.c.Nodes[nodes[i].i].Receiving() {
			cool = append(cool, &nodes[i])
		}
	}
	if len(cool) == 0 {
		return false
	}
	// admit reports whether a move may leave a node at peak `from` after
	// it (fromAfter) and bring its receiver to `to`: a receiver that stays
	// under the line and the mean takes it; one that does not, if it
	// stays under its capacity and the move lowers the higher of the two
	// nodes' peaks by at least a point of capacity. A locality whose
	// allocations are each a large share of a node cannot always bring
	// every node under the line, but two nodes under capacity are better
	// than one over it; the point keeps a move that would only swap which
	// node is hot, or gain a rounding error, from being made.
	admit := func(tier int, from, fromAfter, to float64) bool {
		if to <= f.Line && to <= mean {
			return true
		}
		return tier == 1 && to < 100 && max(to, fromAfter) <= from-1
	}
	limit := maxParallel(pol)
	// A pick is one planned move and the shares of the peak (percent of
	// capacity) of the nodes it leaves and lands on, before and after.
	type pick struct {
		m                                        state.Move
		from, to                                 *spreadNode
		fromBefore, fromAfter, toBefore, toAfter float64
	}
	var picks []pick
	// failed remembers the allocations like one no receiver could take
	// (the destinations change only with a pick): in the first tier for
	// any hot node; in the second, whose admission depends on the node
	// left, for that node (node is its index, −1 in the first tier).
	type failKey struct {
		ns, job, group string
		size           state.Resources
		left, node     int
	}
	failed := map[failKey]bool{}
	for _, h := range hot {
		if len(picks) >= limit {
			break
		}
		// Its running service allocations no request moves yet, with their
		// own use at each time.
		type cand struct {
			m      state.Move
			use    []float64
			picked bool
		}
		var cands []cand
		hn := &p.c.Nodes[h.i]
		_, hAt := peakOf(h, nil, 0)
		for _, ai := range p.c.allocsOfNode[hn.ID] {
			a := &p.c.Allocs[ai]
			if !a.Live || !a.Running || Placeholder(a.Job) || p.queuedAlloc[a.ID] != "" || amount(a.Size) <= 0 {
				continue
			}
			if j, ok := p.c.Job(a.Namespace, a.Job); ok && j.Type != "service" {
				continue
			}
			m := state.Move{Alloc: a.ID, Name: a.Name, Namespace: a.Namespace, Job: a.Job, Group: a.Group, Node: hn.ID, Size: a.Size}
			if back[groupKey(m, m.Node)] {
				continue
			}
			use := make([]float64, 2*nt)
			allocUse(a, use)
			cands = append(cands, cand{m: m, use: use[:readings*nt]})
		}
		// The cheapest first: a move costs the transfer of its memory,
		// so most of the metric shed at the node's peak per MiB moved,
		// then the largest.
		perMiB := func(c cand) float64 { return c.use[hAt] / float64(max(c.m.Size.MemoryMB, 1)) }
		sort.SliceStable(cands, func(i, j int) bool {
			if ci, cj := perMiB(cands[i]), perMiB(cands[j]); ci != cj {
				return ci > cj
			}
			if si, sj := amount(cands[i].m.Size), amount(cands[j].m.Size); si != sj {
				return si > sj
			}
			return cands[i].m.Alloc < cands[j].m.Alloc
		})
		// Two tiers: first only moves whose receiver stays under the line
		// and the locality's mean; if the node is still over the line,
		// also those that lower the higher of the two nodes' peaks.
		for tier := range 2 {
			for ci := range cands {
				cd := &cands[ci]
				m := cd.m
				if util(h) <= f.Line || len(picks) >= limit {
					break
				}
				if cd.picked || cd.use[hAt] <= 0 {
					continue // moved already, or it sheds nothing at the node's peak
				}
				left := groupOn(m, m.Node) - 1
				fk := failKey{m.Namespace, m.Job, m.Group, m.Size, left, -1}
				if tier == 1 {
					fk.node = h.i
				}
				if failed[fk] {
					continue
				}
				j, jok := p.c.Job(m.Namespace, m.Job)
				hBefore := util(h)
				hAfter, _ := peakOf(h, cd.use, -1)
				var to *spreadNode
				best := math.Inf(1)
				for _, c := range cool {
					n := &p.c.Nodes[c.i]
					if c == h || c.free.CPU < m.Size.CPU || c.free.MemoryMB < m.Size.MemoryMB {
						continue
					}
					after, _ := peakOf(c, cd.use, 1)
					if after > best || !admit(tier, hBefore, hAfter, after) || groupOn(m, n.ID) > left || (jok && !Feasible(j, m.Group, n)) {
						continue
					}
					if after < best || (after == best && n.ID < p.c.Nodes[to.i].ID) {
						to, best = c, after
					}
				}
				if to == nil {
					failed[fk] = true
					continue
				}
				clear(failed)
				cd.picked = true
				pk := pick{m: m, from: h, to: to, fromBefore: hBefore, toBefore: util(to)}
				for i, u := range cd.use {
					h.use[i] -= u
					to.use[i] += u
				}
				h.free, to.free = h.free.Add(m.Size), to.free.Sub(m.Size)
				planned[groupKey(m, m.Node)]--
				planned[groupKey(m, p.c.Nodes[to.i].ID)]++
				pk.fromAfter, pk.toAfter = util(h), util(to)
				picks = append(picks, pk)
				if u := util(h); u < f.Line && hn.Receiving() && !slices.Contains(cool, h) {
					cool = append(cool, h) // relieved, it may take another's work
				}
			}
		}
	}
	if len(picks) == 0 {
		// Nothing a node with room could take: a locality over its line
		// as a whole is for scaling; a pass records no wait for it, which
		// would repeat every pass.
		return false
	}
	basis := "what its allocations hold"
	if own {
		basis = "the higher of what its allocations hold and their own forecast use"
	}
	for _, pk := range picks {
		m := pk.m
		from, to := &p.c.Nodes[pk.from.i], &p.c.Nodes[pk.to.i]
		r := state.MigrationRequest{
			Resource: state.Resource{Kind: state.ResourceAllocation, ID: m.Alloc, Name: m.Name, Namespace: m.Namespace, Job: m.Job, Group: m.Group},
			Moves:    []state.Move{m}, Moved: m.Size, Source: li.path, Target: li.path, Policy: pol.Name,
			Strategy: string(policies.StrategyReschedule), Origin: "planner", Created: p.now, State: state.RequestPending,
			OriginKey: fmt.Sprintf("spread/%s/%d/%s", pol.Name, peakAt.Unix(), m.Alloc),
			Exclude:   []string{from.ID},
		}
		if j, ok := p.c.Job(m.Namespace, m.Job); ok {
			r.Priority = min(j.Priority, 100)
		}
		r.Estimated = RequestEstimate(p.in.State.Estimates, &r)
		// The figures with the decimals at which each reads over the
		// line exactly when it is (a receiver brought to 80.4% of an 80%
		// line is over it, not at it; a node left at 80.3%, over).
		figs, line := eachAgainstLine(f.Line, pk.fromBefore, pk.toBefore, pk.toAfter, pk.fromAfter, 100*peak/capacity)
		r.Reason = fmt.Sprintf("spread: %s %s in %s peaks at %s at %s of its capacity; %s's share (%s) would be %s, over the %s line: "+
			"moving %s (%s) onto %s (%s → %s) brings %s to %s",
			policies.QuantileName(f.Quantile), metric, li.path, clock(peakAt), figs[4], from.Name, basis, figs[0], line,
			m.Name, m.Size, to.Name, figs[1], figs[2], from.Name, figs[3])
		if p.origins[r.OriginKey] {
			continue
		}
		p.submit(pol, r)
		p.holdSpread(pk.to.i, m.Size)
	}
	return true
}

// claimed is what node i's room holds or is promised to: its live
// allocations, the unplaced chunks of the reservations held packed onto it
// (holdUnplaced), and the room of the unfinished spreads held on it
// (holdSpreads).
func (p *planner) claimed(i int) state.Resources {
	return p.used[i].Add(p.unplaced[i]).Add(p.spreadHeld[i])
}

// freeOn is node i's CPU and memory that nothing claims (see claimed).
func (p *planner) freeOn(i int) state.Resources {
	n, c := &p.c.Nodes[i], p.claimed(i)
	return state.Resources{CPU: n.CPU - c.CPU, MemoryMB: n.MemoryMB - c.MemoryMB}
}

// holdSpreads holds, for each unfinished spread, the room its moves'
// replacements will take, on the nodes of its locality they will land
// on, into spreadHeld: reservations are packed onto what is left. A spread
// records no destination and may wait in line for passes (behind every
// transfer through its locality, such as the moves a reservation there is
// for); without this, a reservation was packed onto the room the spread
// was planned for, and either the placeholder took it (the spread's
// replacement landing on a node as hot as the one it left, or nowhere) or
// the replacement did (the placeholder then waiting for room that does
// not come). A move holds room until its allocation has stopped (in
// Nomad's view, not live): its replacement is then in its node's
// allocations. It is held on the receiving node of the locality, other
// than the one it leaves and those it excludes, that the job may run on
// and that has the most room left, as a share of the node's capacity
// summed over CPU and memory: where Nomad's spread scheduler places a
// replacement, and, for a spread planned in the same pass, where the
// planner sends it (see holdSpread). One that fits on no node holds none.
// Unplaced placeholders are held first: they were registered with Nomad
// before, and spreads were planned off their room.
func (p *planner) holdSpreads() {
	p.spreadHeld = make([]state.Resources, len(p.c.Nodes))
	for i := range p.in.State.Requests {
		r := &p.in.State.Requests[i]
		if r.State.Terminal() || !Within(r) {
			continue
		}
		l, err := policies.ParseLocality(r.Source)
		if err != nil {
			continue
		}
		for _, m := range r.Moves {
			if m.Done || m.Size.IsZero() {
				continue
			}
			if a, ok := p.c.Alloc(m.Alloc); !ok || !a.Live {
				continue
			}
			j, jok := p.c.Job(m.Namespace, m.Job)
			best, bestScore := -1, math.Inf(-1)
			for k := range p.c.Nodes {
				n := &p.c.Nodes[k]
				if !n.Receiving() || n.ID == m.Node || !In(l, n) || slices.Contains(r.Exclude, n.ID) || (jok && !Feasible(j, m.Group, n)) {
					continue
				}
				free := p.freeOn(k)
				if free.CPU < m.Size.CPU || free.MemoryMB < m.Size.MemoryMB {
					continue
				}
				if s := sharePct("cpu", free, n.CPU, n.MemoryMB) + sharePct("memory", free, n.CPU, n.MemoryMB); s > bestScore {
					best, bestScore = k, s
				}
			}
			if best >= 0 {
				p.spreadHeld[best] = p.spreadHeld[best].Add(m.Size)
			}
		}
	}
}

// spreadHeldOn is the room held for the spreads not finished (see
// holdSpreads) on the nodes of free but those excluded: what a reservation
// that does not fit there could not take.
func (p *planner) spreadHeldOn(free []freeNode, exclude []string) state.Resources {
	var t state.Resources
	for _, f := range free {
		if i, ok := p.c.nodeByID[f.id]; ok && !slices.Contains(exclude, f.id) {
			t = t.Add(p.spreadHeld[i])
		}
	}
	return t
}

// holdSpread holds size on node i for a spread planned in this pass onto
// it: in spreadHeld, and in the free room of the localities derived so
// far, which reservations are packed onto.
func (p *planner) holdSpread(i int, size state.Resources) {
	size = state.Resources{CPU: size.CPU, MemoryMB: size.MemoryMB}
	p.spreadHeld[i] = p.spreadHeld[i].Add(size)
	id := p.c.Nodes[i].ID
	for _, li := range p.locs {
		if li == nil {
			continue
		}
		for k := range li.free {
			if li.free[k].id == id {
				li.free[k].free = li.free[k].free.Sub(size)
			}
		}
	}
}
