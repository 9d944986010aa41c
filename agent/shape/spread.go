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

// within reports whether a request moves work between nodes of one
// locality (a spread): it adds no demand to the locality and takes none
// out of it, so neither the locality's forecast nor its reservations
// concern it.
func within(r *state.MigrationRequest) bool {
	return r.Origin == "planner" && r.Source == r.Target && r.Source != ""
}

// spreading reports whether an unfinished spread request works in loc: the
// next spread there is planned once its moves have landed, on the
// placement they left.
func (p *planner) spreading(loc string) bool {
	for i := range p.in.State.Requests {
		r := &p.in.State.Requests[i]
		if !r.State.Terminal() && within(r) && r.Source == loc {
			return true
		}
	}
	return false
}

// spreadNode is one ready node of a locality as spread plans it.
type spreadNode struct {
	i int // index into Cluster.Nodes
	// held is what its live allocations (placeholders excepted) hold of
	// the metric; capacity its allocatable capacity of it.
	held, capacity float64
	// free is its unallocated capacity, placeholders included.
	free state.Resources
}

// spread creates requests for policies with migrate.spread that move the
// fewest allocations off the locality's nodes forecast over the headroom
// line onto its receiving nodes that stay under it. Nomad never moves
// placed work onto nodes added later, so after a scale-out the nodes that
// ran the work congest while the new ones stand empty, though the
// locality as a whole has room.
//
// A node's demand is read as the locality's forecast demand (its absolute
// demand when the forecast carries it, else its planning quantile of the
// capacity now, plus the work moves landed lately, which the forecast has
// not learned) shared among the nodes in proportion to what their
// allocations hold: the planner sees no node's own use. At the forecast's
// peak, each node over the line (hottest first) sheds the running service
// allocations cheapest to transfer (most of the metric per MiB moved) that
// bring it under, each onto the receiving node left lowest, as long as
// that one stays under the line and the locality's mean, has the room to
// allocate it, and holds no more of its group than the node it leaves
// keeps (Nomad's job anti-affinity would send the replacement back); never
// a group whose last spread off that node landed back on it. At most
// max_parallel requests a pass; the next once they have landed.
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
	// The locality's demand at the forecast's peak.
	peak, peakAt := math.Inf(-1), time.Time{}
	for i, t := range f.Times {
		d := f.Planning[i] / 100 * capacity
		if len(f.Demand) == len(f.Planning) {
			d = f.Demand[i]
		}
		if d > peak {
			peak, peakAt = d, t
		}
	}
	for i := range p.in.State.Requests {
		r := &p.in.State.Requests[i]
		if r.State == state.RequestDone && r.Target == li.path && r.Source != r.Target && p.landing(*r) {
			peak += amount(r.Moved)
		}
	}
	nodes := make([]spreadNode, 0, len(li.nodes))
	var held float64
	for _, k := range li.nodes {
		n := &p.c.Nodes[k]
		sn := spreadNode{i: k, capacity: amount(state.Resources{CPU: n.CPU, MemoryMB: n.MemoryMB}),
			free: state.Resources{CPU: n.CPU - p.used[k].CPU, MemoryMB: n.MemoryMB - p.used[k].MemoryMB}}
		for _, ai := range p.c.allocsOfNode[n.ID] {
			if a := &p.c.Allocs[ai]; a.Live && !Placeholder(a.Job) {
				sn.held += amount(a.Size)
			}
		}
		held += sn.held
		nodes = append(nodes, sn)
	}
	if held <= 0 || peak <= 0 {
		return false
	}
	// util is a node's forecast use at the peak, percent of its capacity.
	util := func(n *spreadNode) float64 {
		if n.capacity <= 0 {
			return math.Inf(1)
		}
		return 100 * peak * n.held / held / n.capacity
	}
	// mean is every node's use were the locality's work spread evenly: a
	// node the move would lift over it takes over the imbalance.
	var capSum float64
	for i := range nodes {
		capSum += nodes[i].capacity
	}
	mean := 100 * peak / capSum
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
		if r.State != state.RequestDone || !within(r) || r.Source != li.path || r.Finished.IsZero() || !p.now.Before(r.Finished.Add(p.season(r.Target))) {
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
	// Destinations: receiving nodes whose share is under the line and
	// the mean now (a move only raises it).
	var cool []*spreadNode
	for i := range nodes {
		if u := util(&nodes[i]); u < f.Line && u < mean && p.c.Nodes[nodes[i].i].Receiving() {
			cool = append(cool, &nodes[i])
		}
	}
	if len(cool) == 0 {
		return false
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
	type failKey struct {
		ns, job, group string
		size           state.Resources
		left           int
	}
	failed := map[failKey]bool{}
	for _, h := range hot {
		if len(picks) >= limit {
			break
		}
		// What h must shed for its share of the peak to stay under the line.
		need := h.held - f.Line/100*h.capacity*held/peak
		// Its running service allocations no request moves yet, but those
		// like one no node could take.
		var cands []state.Move
		hn := &p.c.Nodes[h.i]
		for _, ai := range p.c.allocsOfNode[hn.ID] {
			a := &p.c.Allocs[ai]
			if !a.Live || !a.Running || Placeholder(a.Job) || p.queuedAlloc[a.ID] != "" || amount(a.Size) <= 0 {
				continue
			}
			if j, ok := p.c.Job(a.Namespace, a.Job); ok && j.Type != "service" {
				continue
			}
			m := state.Move{Alloc: a.ID, Name: a.Name, Namespace: a.Namespace, Job: a.Job, Group: a.Group, Node: hn.ID, Size: a.Size}
			if back[groupKey(m, m.Node)] || failed[failKey{m.Namespace, m.Job, m.Group, m.Size, groupOn(m, m.Node) - 1}] {
				continue
			}
			cands = append(cands, m)
		}
		// The cheapest first: a move costs the transfer of its memory,
		// so most of the metric shed per MiB moved, then the largest.
		perMiB := func(m state.Move) float64 { return amount(m.Size) / float64(max(m.Size.MemoryMB, 1)) }
		sort.SliceStable(cands, func(i, j int) bool {
			if ci, cj := perMiB(cands[i]), perMiB(cands[j]); ci != cj {
				return ci > cj
			}
			if si, sj := amount(cands[i].Size), amount(cands[j].Size); si != sj {
				return si > sj
			}
			return cands[i].Alloc < cands[j].Alloc
		})
		shed := 0.0
		for _, m := range cands {
			if shed >= need || len(picks) >= limit {
				break
			}
			left := groupOn(m, m.Node) - 1
			// An allocation like one no node could take finds none either
			// (the destinations change only with a pick).
			fk := failKey{m.Namespace, m.Job, m.Group, m.Size, left}
			if failed[fk] {
				continue
			}
			j, jok := p.c.Job(m.Namespace, m.Job)
			var to *spreadNode
			best := math.Inf(1)
			for _, c := range cool {
				n := &p.c.Nodes[c.i]
				if c == h || c.free.CPU < m.Size.CPU || c.free.MemoryMB < m.Size.MemoryMB {
					continue
				}
				c.held += amount(m.Size)
				after := util(c)
				c.held -= amount(m.Size)
				if after > f.Line || after > mean || after > best || groupOn(m, n.ID) > left || (jok && !Feasible(j, m.Group, n)) {
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
			pk := pick{m: m, from: h, to: to, fromBefore: util(h), toBefore: util(to)}
			h.held -= amount(m.Size)
			to.held += amount(m.Size)
			h.free, to.free = h.free.Add(m.Size), to.free.Sub(m.Size)
			planned[groupKey(m, m.Node)]--
			planned[groupKey(m, p.c.Nodes[to.i].ID)]++
			shed += amount(m.Size)
			pk.fromAfter, pk.toAfter = util(h), util(to)
			picks = append(picks, pk)
			if u := util(h); u < f.Line && u < mean && hn.Receiving() && !slices.Contains(cool, h) {
				cool = append(cool, h) // relieved, it may take another's work
			}
		}
	}
	if len(picks) == 0 {
		// Nothing a node with room could take: a locality over its line
		// as a whole is for scaling; a pass records no wait for it, which
		// would repeat every pass.
		return false
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
		r.Reason = fmt.Sprintf("spread: p%.0f %s in %s peaks at %s at %s of its capacity; %s's share (what its allocations hold) would be %s, over the %s line: "+
			"moving %s (%s) onto %s (%s → %s) brings %s to %s",
			100*f.Quantile, metric, li.path, clock(peakAt), pct(100*peak/capacity), from.Name, pct(pk.fromBefore), pct(f.Line),
			m.Name, m.Size, to.Name, pct(pk.toBefore), pct(pk.toAfter), from.Name, pct(pk.fromAfter))
		if p.origins[r.OriginKey] {
			continue
		}
		p.submit(pol, r)
	}
	return true
}
