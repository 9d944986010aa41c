package shape

import (
	"cmp"
	"fmt"
	"math"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/policies"
)

// Run runs one planning pass; see the package comment.
func Run(in Input) Plan {
	p := newPlanner(in)
	p.schedules()
	p.rebalance()
	p.spread()
	p.releases()
	p.queue()
	p.hotspots()
	return p.plan
}

// planner holds one pass's derived data. It is built and dropped by Run.
type planner struct {
	in   Input
	c    *Cluster
	now  time.Time
	pols map[string]*policies.Policy
	// polByLoc maps a locality path to the first policy shaping it.
	polByLoc map[string]*policies.Policy
	fc       map[string]*Forecast // locality path + ":" + metric
	fcDemand map[string]*Forecast // the same, read as demand over the capacity now
	// groupFc holds per-allocation forecasts by group key + ":" + metric.
	groupFc map[string]*Forecast
	used    []state.Resources // per node index: what live allocations hold
	// work is, per node index, what its live allocations other than
	// placeholders hold: the basis of a node's share of its locality's
	// demand.
	work []state.Resources
	// drainedByRequest marks the nodes an unfinished whole-node request
	// moves the work off: its arrival counts that work in its target.
	drainedByRequest map[string]bool
	// spreadFrom marks the nodes spreads move work off while they run or
	// ended less than SpreadCordonLag ago: the coordinator holds such a
	// node out of scheduling only while its spread runs.
	spreadFrom map[string]bool
	// unplaced is, per node index, what the placeholder allocations of the
	// reservations held that Nomad has not placed yet are packed onto it
	// (see holdUnplaced).
	unplaced []state.Resources
	// spreadHeld is, per node index, the room the spreads not finished yet
	// will take for the allocations they have not moved yet (see
	// holdSpreads).
	spreadHeld []state.Resources
	// reqByID indexes the state's requests.
	reqByID map[string]*state.MigrationRequest
	// runningOf counts each job ID's running allocations.
	runningOf map[string]int
	// byShape groups ready nodes by datacenter, pool and class.
	byShape map[policies.Locality][]int
	locs    map[string]*localityInfo
	plan    Plan

	// running counts the moves running per locality path (source and
	// target) and in all.
	running    map[string]int
	runningIDs map[string][]string
	total      int
	// startedNow is, per locality path, the request this pass started
	// through it (as source or target).
	startedNow map[string]string
	// arrivals are the moves into each target locality that are running,
	// hold a reservation, or were planned earlier in this pass, by request.
	arrivals map[string]map[string]arrival
	// held is what each policy's reservations hold, for its caps.
	held map[string]state.Resources
	// queued marks resources and allocations of unfinished requests.
	queuedRes   map[string]string
	queuedAlloc map[string]string
	origins     map[string]bool
	// originBy names the request of the state that holds each origin key.
	originBy map[string]string
	// scaled marks policies that got a scale action (or were refused one)
	// in this pass.
	scaled map[string]string
	// submitted counts submissions per source locality in this pass.
	submitted map[string]int
	// urgent marks the requests whose deadline presses (see deadlines).
	urgent map[string]bool
	// lateNote says, per locality, that its caps cannot meet every
	// deadline of the requests through it.
	lateNote map[string]string
	// roomWait is, per target locality, the first request in score order
	// held in this pass for room there: requests after it into the same
	// target do not start unless their deadline presses (head of line).
	roomWait map[string]string
	// displaced marks the requests planned dry that a drain window
	// cancels in this pass (see displace).
	displaced map[string]bool
}

type arrival struct {
	from time.Time
	size state.Resources
}

// localityInfo is what the planner derives about one locality once per pass.
type localityInfo struct {
	path  string
	loc   policies.Locality
	nodes []int // indexes into Cluster.Nodes, ready nodes only
	// capCPU and capMem sum the ready nodes' allocatable capacity, the base
	// of the forecasts' percentages.
	capCPU, capMem int64
	// receiving counts the ready nodes Nomad places new allocations on
	// (Node.Receiving, and those a running spread holds out of scheduling
	// for a few minutes: see takesWork); recvCPU and recvMem sum their
	// capacity, the room a move's replacement or a placeholder can take;
	// shareCPU and shareMem are the part of the locality's demand read as
	// running on them (see receivingShare).
	receiving        int
	recvCPU, recvMem int64
	shareCPU         float64
	shareMem         float64
	// leaving counts the nodes of a drain of some of its nodes read out of
	// its room for new work ahead of the drain (see rest).
	leaving int
	// free is each receiving node's unallocated capacity less the
	// unplaced chunks of the reservations held (see holdUnplaced) and the
	// room of the spreads not finished (see holdSpreads), in node order;
	// reservations and spreads planned in this pass take from it.
	free []freeNode
	// meanNode is the mean ready node's capacity: the unit of scaling.
	meanNode state.Resources
}

func newPlanner(in Input) *planner {
	c := in.Cluster
	if c == nil {
		c = NewCluster(nil, nil, nil)
	}
	p := &planner{in: in, c: c, now: in.Now, pols: map[string]*policies.Policy{}, polByLoc: map[string]*policies.Policy{},
		fc: map[string]*Forecast{}, fcDemand: map[string]*Forecast{}, groupFc: map[string]*Forecast{}, locs: map[string]*localityInfo{}, running: map[string]int{},
		runningIDs: map[string][]string{}, startedNow: map[string]string{},
		arrivals: map[string]map[string]arrival{}, held: map[string]state.Resources{}, queuedRes: map[string]string{},
		queuedAlloc: map[string]string{}, origins: map[string]bool{}, originBy: map[string]string{}, scaled: map[string]string{}, submitted: map[string]int{},
		roomWait: map[string]string{}, displaced: map[string]bool{}}
	p.plan.Now = in.Now
	for _, pol := range in.Policies {
		p.pols[pol.Name] = pol
		if _, ok := p.polByLoc[pol.Locality.String()]; !ok {
			p.polByLoc[pol.Locality.String()] = pol
		}
	}
	// A locality's own policy's forecast wins over others of the same
	// locality.
	for i := range in.Forecasts {
		f := &in.Forecasts[i]
		if f.Group != "" {
			p.groupFc[f.Group+":"+f.Metric] = f
			continue
		}
		key := f.Locality + ":" + f.Metric
		if cur, ok := p.fc[key]; ok {
			if own := p.polByLoc[f.Locality]; own == nil || own.Name != f.Policy || cur.Policy == own.Name {
				continue
			}
		}
		p.fc[key] = lessDrained(f)
	}
	p.used = make([]state.Resources, len(c.Nodes))
	p.work = make([]state.Resources, len(c.Nodes))
	p.runningOf = map[string]int{}
	p.byShape = map[policies.Locality][]int{}
	for i := range c.Nodes {
		n := &c.Nodes[i]
		if n.Ready {
			k := LocalityOf(n)
			p.byShape[k] = append(p.byShape[k], i)
		}
	}
	for i := range c.Allocs {
		a := &c.Allocs[i]
		if !a.Live {
			continue
		}
		if a.Running {
			p.runningOf[a.Job]++
		}
		if k, ok := c.nodeByID[a.Node]; ok {
			p.used[k] = p.used[k].Add(a.Size)
			if !Placeholder(a.Job) {
				p.work[k] = p.work[k].Add(a.Size)
			}
		}
	}
	p.reqByID = make(map[string]*state.MigrationRequest, len(in.State.Requests))
	p.drainedByRequest = map[string]bool{}
	p.spreadFrom = map[string]bool{}
	for i := range in.State.Requests {
		r := &in.State.Requests[i]
		p.reqByID[r.ID] = r
		if r.Resource.Kind == state.ResourceNode && !r.State.Terminal() && !WindowHold(r) {
			p.drainedByRequest[r.Resource.ID] = true
		}
		if Within(r) && (r.State == state.RequestRunning ||
			r.State.Terminal() && !r.Finished.IsZero() && in.Now.Sub(r.Finished) < SpreadCordonLag) {
			for _, m := range r.Moves {
				p.spreadFrom[m.Node] = true
			}
		}
	}
	p.holdUnplaced()
	p.holdSpreads()
	p.demandOverCapacity()
	// A reservation holds what its placeholder still holds. A running
	// move's arrival below replaces it: each stop hands the room of the
	// allocation it moves over to its replacement, which is then in the
	// target, so the move counts at its whole size.
	within := map[string]*state.MigrationRequest{}
	for i := range in.State.Requests {
		if r := &in.State.Requests[i]; r.Target == r.Source {
			within[r.ID] = r
		}
	}
	for _, res := range in.State.Reservations {
		if res.State == state.ReservationReleased {
			continue
		}
		p.held[res.Policy] = p.held[res.Policy].Add(res.Total())
		// A move within its locality (a drain of some of its nodes) brings
		// it only what its demand on the nodes that stay does not show
		// (arriving): its reservation holds room on those nodes
		// (localityInfo.free).
		if r, ok := within[res.Request]; ok {
			p.arrive(res.Locality, res.Request, p.now, p.arriving(r))
		} else {
			p.arrive(res.Locality, res.Request, p.now, res.Total())
		}
	}
	for _, r := range in.State.Requests {
		if r.OriginKey != "" {
			p.origins[r.OriginKey] = true
			p.originBy[r.OriginKey] = r.ID
		}
		if r.State == state.RequestDone && r.Target != r.Source && p.landing(r) {
			// Work this planner moved in lately is in the target, but
			// not yet in what its forecast learned from: count it as
			// there since it finished. Only what landed there: Nomad
			// may have placed a replacement elsewhere (back in the
			// source, when the target had no room left).
			if in := landedIn(r); !in.IsZero() {
				p.arrive(r.Target, r.ID, r.Finished, in)
			}
		}
		if r.State.Terminal() {
			continue
		}
		p.queuedRes[r.Resource.Key()] = r.ID
		for _, m := range r.Moves {
			p.queuedAlloc[m.Alloc] = r.ID
		}
		// A window's hold request moves nothing: it takes no place of
		// max_parallel while it waits for its nodes to leave scheduling.
		if r.State == state.RequestRunning && !WindowHold(&r) {
			p.running[r.Source]++
			p.runningIDs[r.Source] = append(p.runningIDs[r.Source], r.ID)
			if r.Target != r.Source {
				p.running[r.Target]++
				p.runningIDs[r.Target] = append(p.runningIDs[r.Target], r.ID)
			}
			p.total++
			if !Within(&r) {
				p.arrive(r.Target, r.ID, p.now, p.arriving(&r))
			}
		}
	}
	return p
}

// demandOverCapacity reads forecasts that carry their absolute demand as
// that demand over the capacity of the locality's ready nodes now, into
// fcDemand (hotspots read it; see Forecast.Demand).
func (p *planner) demandOverCapacity() {
	for key, f := range p.fc {
		if len(f.Demand) != len(f.Planning) || len(f.Demand) == 0 {
			continue
		}
		li, ok := p.locality(f.Locality)
		if !ok {
			continue
		}
		capacity := li.capCPU
		if f.Metric == "memory" {
			capacity = li.capMem
		}
		if capacity <= 0 {
			continue
		}
		g := *f
		g.Planning = make([]float64, len(f.Demand))
		for i, d := range f.Demand {
			g.Planning[i] = 100 * d / float64(capacity)
		}
		p.fcDemand[key] = &g
	}
}

// lessDrained is f as the planner reads it: its Planning less DrainAdded
// and its Demand less DemandDrainAdded, the demand of drains of all of
// other localities that predict added and that comes only as the
// planner sends their moves, counted where they go (see
// Forecast.DrainAdded). Less exactly what was added: where the drained
// demand was unknown predict added nothing and nothing is taken off,
// once the moves have begun it added what the forecast's level had not
// shown arriving, and two windows that drain the same nodes at once
// added their work once. f itself when nothing was added.
func lessDrained(f *Forecast) *Forecast {
	less := func(v, added []float64) ([]float64, bool) {
		if len(added) != len(v) || !slices.ContainsFunc(added, func(a float64) bool { return a != 0 }) {
			return v, false
		}
		out := make([]float64, len(v))
		for i := range v {
			out[i] = v[i] - added[i]
		}
		return out, true
	}
	planning, p := less(f.Planning, f.DrainAdded)
	demand, d := less(f.Demand, f.DemandDrainAdded)
	if !p && !d {
		return f
	}
	g := *f
	g.Planning, g.Demand, g.DrainAdded, g.DemandDrainAdded = planning, demand, nil, nil
	return &g
}

// landing reports whether a finished move's work is too recent for the
// target's forecast to know: it finished less than the target policy's
// longest season ago (a day when the policy detects its seasons), the time
// a seasonal model takes to see the moved load at every time of day.
func (p *planner) landing(r state.MigrationRequest) bool {
	if r.Finished.IsZero() || r.Finished.After(p.now) {
		return false
	}
	return p.now.Sub(r.Finished) < p.season(r.Target)
}

// season is the longest season of the policy shaping loc: a day when it
// detects its seasons.
func (p *planner) season(loc string) time.Duration {
	return seasonOf(p.in.Policies, loc)
}

// landedIn is the size of r's moves whose replacements landed in its
// target (the locality path the coordinator recorded, Move.Landed). A
// move whose landing was not seen counts nothing.
func landedIn(r state.MigrationRequest) state.Resources {
	tgt, err := policies.ParseLocality(r.Target)
	if err != nil {
		return state.Resources{}
	}
	var in state.Resources
	for _, m := range r.Moves {
		if !m.Done || m.Landed == "" {
			continue
		}
		l, err := policies.ParseLocality(m.Landed)
		if err == nil && In(tgt, &Node{Datacenter: l.Datacenter, NodePool: l.NodePool, NodeClass: l.NodeClass}) {
			in = in.Add(m.Size)
		}
	}
	return in
}

func (p *planner) arrive(loc, request string, from time.Time, size state.Resources) {
	m := p.arrivals[loc]
	if m == nil {
		m = map[string]arrival{}
		p.arrivals[loc] = m
	}
	if cur, ok := m[request]; ok && cur.from.Before(from) {
		from = cur.from
	}
	m[request] = arrival{from: from, size: size}
}

// locality returns the derived information of a locality path; ok is false
// for a path that does not parse.
func (p *planner) locality(path string) (*localityInfo, bool) {
	if li, ok := p.locs[path]; ok {
		return li, li != nil
	}
	l, err := policies.ParseLocality(path)
	if err != nil {
		p.locs[path] = nil
		return nil, false
	}
	li := &localityInfo{path: path, loc: l}
	for shape, idx := range p.byShape {
		if In(l, &Node{Datacenter: shape.Datacenter, NodePool: shape.NodePool, NodeClass: shape.NodeClass}) {
			li.nodes = append(li.nodes, idx...)
		}
	}
	slices.Sort(li.nodes)
	var work, recvWork state.Resources
	for _, i := range li.nodes {
		n := &p.c.Nodes[i]
		li.capCPU += n.CPU
		li.capMem += n.MemoryMB
		work = work.Add(p.work[i])
		takes := p.takesWork(n)
		if p.inShare(n) {
			recvWork = recvWork.Add(p.work[i])
		}
		if takes {
			li.receiving++
			li.recvCPU += n.CPU
			li.recvMem += n.MemoryMB
		}
		if n.Receiving() {
			li.free = append(li.free, freeNode{id: n.ID, free: p.freeOn(i)})
		}
	}
	li.shareCPU = receivingShare(recvWork.CPU, work.CPU, li.recvCPU, li.capCPU)
	li.shareMem = receivingShare(recvWork.MemoryMB, work.MemoryMB, li.recvMem, li.capMem)
	if k := int64(len(li.nodes)); k > 0 {
		li.meanNode = state.Resources{CPU: li.capCPU / k, MemoryMB: li.capMem / k}
	}
	p.locs[path] = li
	return li, true
}

// takesWork reports whether a ready node's room counts in its locality's
// room for new work (see placeable): Nomad places new allocations on it,
// or it is out of scheduling only while a spread moves work off it (the
// coordinator's cordon, given back once the spread ends: within
// SpreadCordonLag of its end, the node is read as given back). Read out,
// that node's room would be missing from every check over the forecast's
// hours for a cordon of minutes, and the locality would look fuller than
// it will be once the spread has run: measured on the proof's scenarios,
// moves were held and nodes added for it. Its free room still takes no
// reservation now (localityInfo.free).
func (p *planner) takesWork(n *Node) bool {
	return n.Receiving() || n.Ready && !n.Draining && p.spreadFrom[n.ID]
}

// receivingShare is the part of a locality's demand read as running on
// the nodes Nomad places new work on: in proportion to what its
// allocations hold there (recv of all), as spreading reads a node's share
// (the planner sees no node's own use); by capacity when nothing runs.
// An ineligible node's work stays on it and takes none of the others'
// room; a draining node's counts with them, since Nomad is placing it
// there, unless an unfinished whole-node request of the queue drains the
// node: that request's arrival counts the work in its target.
func receivingShare(recv, all, recvCap, capacity int64) float64 {
	switch {
	case all > 0:
		return float64(recv) / float64(all)
	case capacity > 0:
		return float64(recvCap) / float64(capacity)
	}
	return 0
}

// placeable reads v, a percent of the locality's capacity (a forecast's
// planning quantile or its demand over the capacity now), as the demand
// on the nodes that take new work in percent of their capacity: what the
// checks of room for moves, reservations and scaling read, since Nomad
// places nothing new on an ineligible or draining node. v itself while
// every ready node takes new work; +Inf when none does.
func (li *localityInfo) placeable(metric string, v float64) float64 {
	capacity, recv, share := li.capCPU, li.recvCPU, li.shareCPU
	if metric == "memory" {
		capacity, recv, share = li.capMem, li.recvMem, li.shareMem
	}
	switch {
	case li.receiving == len(li.nodes) && recv == capacity:
		return v
	case recv <= 0:
		return math.Inf(1)
	}
	return v * float64(capacity) / float64(recv) * share
}

// shortfall is the capacity excess points over the line of the
// locality's room for new work (see placeable, recvPct) amount to, in the
// metric's units rounded up: what would keep it under the line.
func (li *localityInfo) shortfall(metric string, excess float64) state.Resources {
	if metric == "cpu" {
		return state.Resources{CPU: int64(math.Ceil(excess / 100 * float64(li.recvCPU)))}
	}
	return state.Resources{MemoryMB: int64(math.Ceil(excess / 100 * float64(li.recvMem)))}
}

// placeNote says, when some of the locality's ready nodes take no new
// work, on what its room for new work is read.
func (li *localityInfo) placeNote() string {
	if li.receiving == len(li.nodes) {
		return ""
	}
	if li.leaving > 0 {
		return fmt.Sprintf("on the %d of its %d ready nodes that take new work once the %d drained leave (the others ineligible or draining)",
			li.receiving, len(li.nodes), li.leaving)
	}
	return fmt.Sprintf("on the %d of its %d ready nodes that take new work (the others ineligible or draining)", li.receiving, len(li.nodes))
}

// inShare reports whether a ready node's work counts in its locality's
// demand on the nodes that take new work (receivingShare): it does, or it
// drains and Nomad places its work on them.
func (p *planner) inShare(n *Node) bool {
	return p.takesWork(n) || n.Draining && !p.drainedByRequest[n.ID]
}

// arriving is what a request brings its target: its moved work; for a
// move within its locality (a drain of some of its nodes), the part of it
// on nodes whose work its demand on the others does not show (inShare:
// the window's nodes once the coordinator has made them ineligible, or
// drains them), which lands there all the same; the rest is in that
// demand already, and counted again it read the locality fuller than it
// would be. Nothing for a spread.
func (p *planner) arriving(r *state.MigrationRequest) state.Resources {
	switch {
	case r.Target != r.Source:
		return r.Moved
	case Within(r):
		return state.Resources{}
	}
	return p.outOfShare(r.Moves)
}

// outOfShare is the work of moves whose nodes' work is out of their
// locality's share (inShare).
func (p *planner) outOfShare(moves []state.Move) state.Resources {
	var out state.Resources
	for _, m := range moves {
		if n, ok := p.c.Node(m.Node); ok && !p.inShare(n) {
			out = out.Add(m.Size)
		}
	}
	return out
}

// rest is the locality as its work will find it once the nodes of a drain
// of some of them (leaving) are gone: their room for new work out of it
// and their work on the others. Its demand stays (the forecasts'
// percentages are of all its ready nodes), so placeable reads it on the
// fewer nodes left, and a move within it brings nothing it did not hold
// already. li itself when none of leaving takes new work now.
func (p *planner) rest(li *localityInfo, leaving []string) *localityInfo {
	if len(leaving) == 0 {
		return li
	}
	r := *li
	for _, i := range li.nodes {
		n := &p.c.Nodes[i]
		if slices.Contains(leaving, n.ID) && p.takesWork(n) {
			r.leaving++
			r.receiving--
			r.recvCPU -= n.CPU
			r.recvMem -= n.MemoryMB
		}
	}
	if r.leaving == 0 {
		return li
	}
	return &r
}

func (p *planner) forecast(loc, metric string) *Forecast { return p.fc[loc+":"+metric] }

func (p *planner) decide(d state.Decision) {
	d.Time = p.now
	p.plan.Decisions = append(p.plan.Decisions, d)
}

func (p *planner) dry(pols ...*policies.Policy) bool {
	if p.in.ForecastOnly {
		return true
	}
	for _, pol := range pols {
		if pol != nil && pol.ForecastOnly {
			return true
		}
	}
	return false
}

// policyOf returns the policy governing a request: the one it names, else
// the one shaping its source.
func (p *planner) policyOf(r *state.MigrationRequest) *policies.Policy {
	if pol, ok := p.pols[r.Policy]; ok {
		return pol
	}
	return p.polByLoc[r.Source]
}

func maxParallel(pol *policies.Policy) int {
	if pol == nil || pol.Migrate.MaxParallel < 1 {
		return policies.DefaultMaxParallel
	}
	return pol.Migrate.MaxParallel
}

// schedules creates the requests of drain windows that start within their
// policy's migrate.lead_time.
func (p *planner) schedules() {
	p.eachDrainWindow(p.drainWindow)
}

// eachDrainWindow calls f with each locality of each drain window of the
// policies that is in its lead time (migrate.lead_time before its start)
// or under way at now.
func (p *planner) eachDrainWindow(f func(pol *policies.Policy, s *policies.Schedule, w policies.Window, l policies.Locality)) {
	for _, pol := range p.in.Policies {
		for si := range pol.Schedules {
			s := &pol.Schedules[si]
			if s.Action != policies.ActionDrain {
				continue
			}
			lead := pol.Migrate.LeadTime
			for _, w := range s.Windows(p.now, p.now.Add(lead+time.Nanosecond)) {
				if p.now.Before(w.Start.Add(-lead)) || !p.now.Before(w.End) {
					continue
				}
				for _, l := range s.Localities {
					f(pol, s, w, l)
				}
			}
		}
	}
}

func (p *planner) drainWindow(pol *policies.Policy, s *policies.Schedule, w policies.Window, l policies.Locality) {
	src := l.String()
	var nodes []*Node
	inLocality, matched := 0, 0
	for i := range p.c.Nodes {
		n := &p.c.Nodes[i]
		if !In(l, n) {
			continue
		}
		inLocality++
		if s.Nodes != "" {
			if ok, _ := path.Match(s.Nodes, n.Name); !ok {
				continue
			}
		}
		matched++
		if n.Ready {
			nodes = append(nodes, n)
		}
	}
	why := fmt.Sprintf("drain %q of %s from %s", s.Name, describeNodes(l, s.Nodes), clock(w.Start))
	if len(nodes) == 0 {
		// Said, not skipped silently: a glob or locality that matches
		// nothing is most often a typo, and the window would pass with
		// nothing drained and no word of why.
		var none string
		switch {
		case inLocality == 0:
			none = fmt.Sprintf("no node of the cluster is in %s; check the schedule's localities", l)
		case matched == 0:
			none = fmt.Sprintf("no node of %s (%d in all) has a name matching nodes = %q; check the glob", l, inLocality, s.Nodes)
		default:
			none = fmt.Sprintf("no matching node is ready (%d match)", matched)
		}
		p.decide(state.Decision{Policy: pol.Name, Kind: KindWait, Locality: src, DryRun: p.dry(pol),
			Reason: why + ": nothing to drain: " + none})
		return
	}
	var windowNodes []string
	for _, n := range nodes {
		windowNodes = append(windowNodes, n.ID)
	}
	prefix := fmt.Sprintf("schedule/%s/%s/%d/", pol.Name, s.Name, w.Start.Unix())
	home := p.newHomeDrain(pol, s, w, l, prefix)
	var reqs []state.MigrationRequest
	// The requests the window needs that could not be made (no target),
	// and why the first could not.
	var unmade []state.Resource
	var unmadeWhy string
	for _, n := range nodes {
		moves := p.movable(n)
		switch pol.Migrate.Strategy {
		case policies.StrategyDrain:
			reqs = append(reqs, state.MigrationRequest{Resource: state.Resource{Kind: state.ResourceNode, ID: n.ID, Name: n.Name}, Moves: moves})
		default:
			for _, m := range moves {
				reqs = append(reqs, state.MigrationRequest{Resource: state.Resource{Kind: state.ResourceAllocation, ID: m.Alloc, Name: m.Name,
					Namespace: m.Namespace, Job: m.Job, Group: m.Group}, Moves: []state.Move{m}})
			}
		}
	}
	displacing := false
	for _, r := range reqs {
		var after string
		r.OriginKey, after = p.windowOriginKey(prefix + r.Resource.Key())
		if p.origins[r.OriginKey] {
			continue
		}
		if p.taken(&r) {
			if p.displace(pol, &r, why, prefix) {
				displacing = true
			}
			continue
		}
		var exclude []string
		if s.Nodes != "" {
			exclude = windowNodes
		}
		// The targets are read from now to the window's start, while its
		// moves land, or, for a window under way, whose moves land now,
		// to its end: read to its start, past already, they read no
		// point of any forecast, and every target had room (+Inf, "no
		// forecast for it").
		to := w.Start
		if !p.now.Before(w.Start) {
			to = w.End.Add(-time.Nanosecond)
		}
		target, note := p.chooseTarget(pol, src, r.Moves, p.now, to, exclude, home)
		// The window's nodes: its moves keep off them, and the coordinator
		// takes them all out of scheduling as the window's first request
		// is queued (holdWindows), else at its first move's start.
		r.Exclude = windowNodes
		if target == "" {
			if len(unmade) == 0 {
				unmadeWhy = note
			}
			unmade = append(unmade, r.Resource)
			p.decide(state.Decision{Policy: pol.Name, Kind: KindWait, Locality: src,
				Reason: fmt.Sprintf("%s: no request for %s: %s", why, r.Resource, note), DryRun: p.dry(pol)})
			continue
		}
		r.Source, r.Target, r.Policy = src, target, pol.Name
		r.Strategy = string(pol.Migrate.Strategy)
		r.Origin, r.Created, r.Deadline, r.State = "schedule", p.now, w.Start, state.RequestPending
		for _, m := range r.Moves {
			r.Moved = r.Moved.Add(m.Size)
			if j, ok := p.c.Job(m.Namespace, m.Job); ok {
				r.Priority = max(r.Priority, min(j.Priority, 100))
			}
		}
		r.Estimated = RequestEstimate(p.in.State.Estimates, &r)
		r.Reason = fmt.Sprintf("%s; to %s", why, note)
		if after != "" {
			r.Reason += fmt.Sprintf("; again, in place of %s, which a reload cancelled before it started", after)
		}
		p.submit(pol, r)
		if home != nil && target == pol.Locality.String() {
			home.sent = home.sent.Add(r.Moved)
		}
	}
	if displacing {
		// Its own requests of the displaced work come at the next pass,
		// which decides whether it needs a hold request then.
		return
	}
	p.holdWindow(pol, s, w, l, nodes, unmade, unmadeWhy)
}

// displace cancels the requests that keep a drain window of pol from
// queueing r (taken) when each is planned dry (dryRequest), and reports
// whether it did: such a request never starts and moves nothing, nor
// takes its node out of scheduling, yet the state refuses a second
// request of its node or of its allocations while it is queued, so the
// window would neither move the node's work nor hold it. Such are an
// operator's request to a forecast_only policy's locality, of the node,
// of an allocation on it or of a group with one there, and a
// forecast_only policy's drain window's requests (whose nodes are to
// stay free for another policy's drain). The cancel is applied after this
// pass's new requests (the coordinator queues them first), so the window
// queues r at the next pass. A window planned dry itself displaces nothing: it would
// queue its own dry request, and its cancel would not be one; nor does a
// window an operator called off (calledOff), whose new requests the
// coordinator refuses. why names the window, prefix begins its requests'
// origin keys.
func (p *planner) displace(pol *policies.Policy, r *state.MigrationRequest, why, prefix string) bool {
	if p.dry(pol) {
		return false
	}
	var ids []string
	if id := p.queuedRes[r.Resource.Key()]; id != "" {
		ids = append(ids, id)
	}
	for _, m := range r.Moves {
		if id := p.queuedAlloc[m.Alloc]; id != "" && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	var xs []*state.MigrationRequest
	for _, id := range ids {
		x := p.reqByID[id]
		if x == nil || !p.dryRequest(x) {
			return false
		}
		xs = append(xs, x)
	}
	if p.calledOff(prefix) {
		return false
	}
	for _, x := range xs {
		if p.displaced[x.ID] {
			continue
		}
		p.displaced[x.ID] = true
		tp := p.polByLoc[x.Target]
		dryBy := "forecast_only"
		switch xp := p.policyOf(x); {
		case xp != nil && xp.ForecastOnly:
			dryBy = fmt.Sprintf("policy %q is forecast_only", xp.Name)
		case tp != nil && tp.ForecastOnly:
			dryBy = fmt.Sprintf("%s's policy %q is forecast_only", x.Target, tp.Name)
		}
		var reason string
		if x.Resource.Kind == state.ResourceNode {
			reason = fmt.Sprintf("%s takes %s down: this request of it, planned dry (%s), would never move its work nor take it out of scheduling, "+
				"and kept the window from doing so; the window queues its own", why, x.Resource, dryBy)
		} else {
			// The window's work it holds, and the node that work is on.
			var names []string
			var node string
			for _, m := range r.Moves {
				if p.queuedAlloc[m.Alloc] != x.ID {
					continue
				}
				names = append(names, m.Name)
				if node == "" {
					node = m.Node
					if n, ok := p.c.Node(m.Node); ok {
						node = n.Name
					}
				}
			}
			reason = fmt.Sprintf("%s takes node %s down: this request of %s, planned dry (%s), would never move %s off it, "+
				"and kept the window from doing so; the window queues its own", why, node, x.Resource, dryBy, strings.Join(names, ", "))
		}
		p.plan.Cancel = append(p.plan.Cancel, Cancel{Request: x.ID, Reason: reason})
		p.decide(state.Decision{Policy: pol.Name, Kind: KindCancel, Locality: x.Source, Request: x.ID, Reason: "cancel: " + reason})
	}
	return true
}

// OperatorCancel is the reason of an operator's cancel of a request (the
// agent's act backend writes it: `foreshape queue cancel`, the API, the
// dashboard); the planner and the coordinator read a window called off
// by it.
const OperatorCancel = "cancelled by an operator"

// calledOff reports whether an operator called off the drain window whose
// requests' origin keys begin with prefix, as the coordinator reads it
// (migrate's calledOffWindows): it has requests, each cancelled before it
// started, and the last cancel was an operator's. The coordinator queues
// none of its new requests until its end, so a request it would queue in
// place of another's is not: the other is left queued. Foreshape's own
// cancels (a job stopped, a request displaced) call no window off.
func (p *planner) calledOff(prefix string) bool {
	n := 0
	var byOperator, byOthers time.Time
	for i := range p.in.State.Requests {
		x := &p.in.State.Requests[i]
		if x.Origin != "schedule" || !strings.HasPrefix(x.OriginKey, prefix) {
			continue
		}
		if x.State != state.RequestCancelled || !x.Started.IsZero() {
			return false
		}
		n++
		last := &byOthers
		if x.Reason == OperatorCancel {
			last = &byOperator
		}
		if x.Finished.After(*last) {
			*last = x.Finished
		}
	}
	return n > 0 && !byOperator.IsZero() && !byOperator.Before(byOthers)
}

// dryRequest reports whether r is queued, not started, planned dry (its
// policy's or its target's forecast_only, or the agent's, as walk reads
// it) and holding no reservation (one queued before its target became
// forecast_only: its cancel would leave its placeholder to a release
// planned dry). A drain window's request counts only if its policy is
// forecast_only: a window that is not, whose target is a forecast_only
// policy's locality, keeps its requests (and a window planned dry itself
// displaces nothing, so no window cancels its own).
func (p *planner) dryRequest(r *state.MigrationRequest) bool {
	if !r.State.Queued() || !r.Started.IsZero() {
		return false
	}
	if r.Origin == "schedule" && !p.dry(p.policyOf(r)) {
		return false
	}
	if !p.dry(p.policyOf(r), p.polByLoc[r.Target]) {
		return false
	}
	_, held := p.in.State.ReservationFor(r.ID)
	return !held
}

// againKey marks, in a drain window's origin key, the work of a request
// a reload cancelled before it started that is queued again in its place
// (windowOriginKey): schedule/POLICY/SCHEDULE/START/RESOURCE/again/ID.
const againKey = "/again/"

// windowOriginKey returns the origin key under which a drain window
// queues the work whose key is base (schedule/POLICY/SCHEDULE/START/
// RESOURCE), and the request it is queued in place of, if any. That is
// base, unless base is held by a request the coordinator keeps though a
// reload cancelled it before it started, in a window a later reload put
// back (Input.Requeue): its work is then queued under base followed by
// againKey and that request's ID, and so on should that key be held so
// too. The key names the request it replaces, so every leader derives
// the same one and the state refuses a second request of it; it begins
// as base does, so whatever reads a window's origin keys (its policy,
// schedule and start) reads the new request as one of the window's.
func (p *planner) windowOriginKey(base string) (key, after string) {
	key = base
	for p.origins[key] {
		id := p.originBy[key]
		if r := p.reqByID[id]; r == nil || !p.in.Requeue[id] || !ReloadCancelled(r) {
			break
		}
		key, after = base+againKey+id, id
	}
	return key, after
}

// holdKey is the part of a window's origin key that marks its hold
// request (WindowHold): schedule/POLICY/SCHEDULE/START/hold/LOCALITY.
const holdKey = "hold/"

// WindowHold reports whether r is a drain window's hold request: one that
// moves nothing and only takes the window's nodes (Exclude) out of
// scheduling, queued for a window that has no request of its own to do it
// (holdWindow). Its resource is one of those nodes, so that it is a
// resource the state knows; it is not a whole-node request.
func WindowHold(r *state.MigrationRequest) bool {
	if r.Origin != "schedule" || len(r.Moves) > 0 {
		return false
	}
	parts := strings.SplitN(r.OriginKey, "/", 5)
	return len(parts) == 5 && strings.HasPrefix(parts[4], holdKey)
}

// holdWindow queues, for a drain window of locality l in its lead time
// that has no request of its own there to take its nodes out of
// scheduling, a request that moves nothing and does only that. A window's
// queued request takes every node of the window out (the coordinator's
// holdWindows, from Exclude) from its queueing, whether or not its moves
// can start yet; a window without one, its nodes empty or their work
// moved or queued by another window (the planner moves each allocation
// once), or its requests not made (unmade: no target for their work, why
// says why), took nothing out, and Nomad could place new work on nodes
// about to go down, from the lead time through the window. The hold
// request starts at once and is done once Nomad shows the nodes out; the
// window's end gives them back (restoreWindows). A drain-strategy
// policy's windows queue a request per node, empty or not, which holds
// its own node from its queueing: they need one only for the nodes whose
// request could not be made.
func (p *planner) holdWindow(pol *policies.Policy, s *policies.Schedule, w policies.Window, l policies.Locality, nodes []*Node, unmade []state.Resource, why string) {
	drain := pol.Migrate.Strategy == policies.StrategyDrain
	if drain && len(unmade) == 0 {
		return
	}
	src := l.String()
	prefix := fmt.Sprintf("schedule/%s/%s/%d/", pol.Name, s.Name, w.Start.Unix())
	key := prefix + holdKey + src
	if p.origins[key] {
		return
	}
	// Any request of its own counts, cancelled too: an operator's cancel
	// of the window's moves is not undone by a hold in their place. Under
	// the drain strategy each holds its own node only.
	own := func(r *state.MigrationRequest) bool {
		return r.Source == src && strings.HasPrefix(r.OriginKey, prefix)
	}
	for i := range p.in.State.Requests {
		if !drain && own(&p.in.State.Requests[i]) {
			return
		}
	}
	for i := range p.plan.Submit {
		if !drain && own(&p.plan.Submit[i].Request) {
			return
		}
	}
	var windowNodes []string
	var at *Node
	for _, n := range nodes {
		windowNodes = append(windowNodes, n.ID)
		if at == nil && p.queuedRes[(state.Resource{Kind: state.ResourceNode, ID: n.ID}).Key()] == "" {
			at = n
		}
	}
	if at == nil {
		// Each node is a whole-node request's, queued or running, which
		// holds it out of scheduling already.
		return
	}
	which := fmt.Sprintf("the %d nodes of %s", len(nodes), src)
	switch {
	case len(nodes) == 1 && s.Nodes != "":
		which = fmt.Sprintf("the node of %s matching %s", src, s.Nodes)
	case len(nodes) == 1:
		which = "the node of " + src
	case s.Nodes != "":
		which += " matching " + s.Nodes
	}
	cause := "nothing to move"
	switch {
	case len(unmade) == 1:
		cause = fmt.Sprintf("no request could be made for %s (%s)", unmade[0], why)
	case len(unmade) > 1 && drain:
		cause = fmt.Sprintf("no request could be made for %d nodes (%s)", len(unmade), why)
	case len(unmade) > 1:
		cause = fmt.Sprintf("no request could be made for %d allocations (%s)", len(unmade), why)
	}
	reason := fmt.Sprintf("hold %s out of scheduling for window %s %s–%s: %s", which, s.Name, clock(w.Start), clock(w.End), cause)
	if p.dry(pol) {
		// Planned dry, it is said, not queued: it would take nothing out,
		// and queued it would claim its node for good (a dry request's
		// cancel at its window's end is dry too), so that another
		// policy's drain of the node, or an operator's request of it,
		// found it queued already.
		p.decide(state.Decision{Policy: pol.Name, Kind: KindWait, Locality: src, DryRun: true,
			Reason: "would queue a request that moves nothing: " + reason})
		return
	}
	// Not a drain strategy's, which would make it a request to drain its
	// node: it moves nothing, and its strategy says nothing.
	strategy := pol.Migrate.Strategy
	if drain {
		strategy = policies.StrategyReschedule
	}
	r := state.MigrationRequest{Resource: state.Resource{Kind: state.ResourceNode, ID: at.ID, Name: at.Name},
		Source: src, Target: src, Policy: pol.Name, Strategy: string(strategy), Exclude: windowNodes,
		Origin: "schedule", OriginKey: key, Created: p.now, Deadline: w.Start, State: state.RequestPending, Reason: reason}
	p.submit(pol, r)
}

func describeNodes(l policies.Locality, glob string) string {
	if glob == "" {
		return l.String()
	}
	return fmt.Sprintf("%s nodes %s", l, glob)
}

// movable lists the allocations a drain of n must move: live ones of
// service and batch jobs, not placeholders or system jobs.
func (p *planner) movable(n *Node) []state.Move {
	var out []state.Move
	for _, a := range p.c.AllocsOn(n.ID) {
		if !a.Live || Placeholder(a.Job) {
			continue
		}
		if j, ok := p.c.Job(a.Namespace, a.Job); ok && (j.Type == "system" || j.Type == "sysbatch") {
			continue
		}
		out = append(out, state.Move{Alloc: a.ID, Name: a.Name, Namespace: a.Namespace, Job: a.Job, Group: a.Group, Node: n.ID, Size: a.Size})
	}
	return out
}

// taken reports whether an unfinished request already moves r's resource
// or one of its allocations.
func (p *planner) taken(r *state.MigrationRequest) bool {
	if p.queuedRes[r.Resource.Key()] != "" {
		return true
	}
	for _, m := range r.Moves {
		if p.queuedAlloc[m.Alloc] != "" {
			return true
		}
	}
	return false
}

func (p *planner) submit(pol *policies.Policy, r state.MigrationRequest) {
	p.queuedRes[r.Resource.Key()] = "new"
	for _, m := range r.Moves {
		p.queuedAlloc[m.Alloc] = "new"
	}
	p.origins[r.OriginKey] = true
	// A window's hold request moves nothing out of its locality.
	if !Within(&r) && !WindowHold(&r) {
		p.submitted[r.Source]++
	}
	dry := p.dry(pol)
	what := r.Resource.String()
	if WindowHold(&r) {
		what = "a request that moves nothing"
	}
	p.plan.Submit = append(p.plan.Submit, Submission{Request: r, DryRun: dry})
	p.decide(state.Decision{Policy: pol.Name, Kind: KindSubmit, Locality: r.Source, Reason: fmt.Sprintf("queue %s: %s", what, r.Reason), DryRun: dry})
}

// candidates are the localities moves out of src may go to under pol: its
// migrate.targets, else every policy's locality but one that may share a
// node with src: src itself, one that holds src or that src holds ("dc1"
// for a src of "dc1/*/web", and "dc1/*/web" for one of "dc1"), and one
// that overlaps src without either holding the other ("*/*/batch" for
// "dc1", which share dc1's batch nodes). A move there may land back on
// the nodes it leaves, or never leave src, relieving nothing; the loader
// refuses an explicit target that shares nodes with the policy's own
// locality for the same reason, whether or not such a node is up, and a
// default one is skipped alike. With own, src itself comes first: a
// drain of some of its nodes leaves the rest to take their work,
// whichever policy declares the drain.
func (p *planner) candidates(pol *policies.Policy, src string, own bool) []string {
	var out []string
	if len(pol.Migrate.Targets) > 0 {
		for _, l := range pol.Migrate.Targets {
			out = append(out, l.String())
		}
		return out
	}
	seen := map[string]bool{src: true}
	if own {
		out = append(out, src)
	}
	from, fromErr := policies.ParseLocality(src)
	for _, other := range p.in.Policies {
		loc := other.Locality.String()
		if fromErr == nil && other.Locality.SharesNodes(from) {
			continue
		}
		if !seen[loc] {
			seen[loc] = true
			out = append(out, loc)
		}
	}
	return out
}

// chooseTarget picks, among the localities pol allows, the one whose nodes
// the most moves' jobs may run on and, among those, the one with the most
// room at its planning quantile over [from, to]. note says why.
//
// home is set for the moves of a drain window of all of another locality
// when pol lists no migrate.targets: pol's own locality, whose forecast
// carries the drained work inside the window, comes first (see
// homeDrain).
func (p *planner) chooseTarget(pol *policies.Policy, src string, moves []state.Move, from, to time.Time, exclude []string, home *homeDrain) (string, string) {
	best, bestFeasible, bestRoom := "", -1, math.Inf(-1)
	homeRoom := math.NaN()
	// homeUnknown is the policy's own locality, for its drain of all of
	// another, when it has no forecast: passed over for every target
	// read, and taken only when no other could be.
	homeUnknown := ""
	var tried []string
	var total state.Resources
	for _, m := range moves {
		total = total.Add(m.Size)
	}
	cands := p.candidates(pol, src, len(exclude) > 0)
	if home != nil {
		if i := slices.Index(cands, pol.Locality.String()); i > 0 {
			cands = slices.Insert(slices.Delete(cands, i, i+1), 0, pol.Locality.String())
		}
	}
	srcLoc, srcErr := policies.ParseLocality(src)
	for _, cand := range cands {
		// A listed target that may share a node with src (dc1/*/batch
		// for a drain of all of dc1 that another policy declares, which
		// the loader does not refuse, as it shares no node with that
		// policy's own locality) could take the work back onto the
		// nodes it leaves: skipped for this move, as a default one is
		// (candidates). The rest of src, for a drain of some of its
		// nodes, is not a target of that kind.
		if to, err := policies.ParseLocality(cand); srcErr == nil && err == nil && !(cand == src && len(exclude) > 0) && to.SharesNodes(srcLoc) {
			tried = append(tried, fmt.Sprintf("%s may share nodes with %s, which the work leaves", cand, src))
			continue
		}
		li, ok := p.locality(cand)
		if !ok || len(li.nodes) == 0 {
			tried = append(tried, cand+" has no ready node")
			continue
		}
		if li.receiving == 0 {
			tried = append(tried, fmt.Sprintf("%s has no node that takes new work (its %d ready nodes are ineligible or draining)", cand, len(li.nodes)))
			continue
		}
		if cand == src && len(exclude) > 0 {
			if r := p.rest(li, exclude); r.receiving == 0 {
				tried = append(tried, fmt.Sprintf("the rest of %s has no node that takes new work once the %d drained leave (its other ready nodes are ineligible or draining)", cand, r.leaving))
				continue
			}
		}
		feasible := 0
		for _, m := range moves {
			if p.feasibleIn(m, li, exclude...) {
				feasible++
			}
		}
		if len(moves) > 0 && feasible == 0 {
			tried = append(tried, cand+" is forbidden by the jobs' constraints")
			continue
		}
		var room float64
		if cand == src && len(exclude) > 0 {
			// The rest of a locality some of whose nodes drain: their work
			// is in its demand already, on fewer nodes once they leave. It
			// comes first: chosen while every move may run there and it
			// stays under its line.
			room = p.room(p.rest(li, exclude), from, to, p.outOfShare(moves))
			if feasible == len(moves) && room >= 0 {
				best, bestFeasible, bestRoom = cand, feasible, room
				break
			}
		} else if home != nil && cand == pol.Locality.String() && !p.hasForecast(cand) {
			// Its room is not known (no forecast yet: no history), not
			// unlimited: the drained work is not sent there first, nor
			// for a room of +Inf over targets whose room is read.
			homeUnknown = cand
			continue
		} else if home != nil && cand == pol.Locality.String() {
			// The policy's own locality, for its drain of all of another
			// without migrate.targets: its forecast carries the drained
			// locality's work inside the window (predict), so it comes
			// first, as the rest of a locality does for a drain of some
			// of its nodes: chosen while every move may run there and
			// it stays under its line from now through the window's end
			// with this move and the window's moves queued there before
			// it, their work counted as it arrives, not as the forecast
			// carries it (lessDrained). Otherwise it competes for the most
			// room on that reading, and the operator reads why.
			room = p.room(li, from, home.w.End.Add(-time.Nanosecond), total.Add(home.sent))
			if feasible == len(moves) && room >= 0 {
				best, bestFeasible, bestRoom = cand, feasible, room
				break
			}
			homeRoom = room
		} else {
			room = p.room(li, from, to, total)
		}
		if feasible > bestFeasible || (feasible == bestFeasible && room > bestRoom) {
			best, bestFeasible, bestRoom = cand, feasible, room
		}
	}
	if best == "" && homeUnknown != "" {
		return homeUnknown, fmt.Sprintf("%s, the policy's own locality: no other allowed target can take the move; %s has no forecast, so its room is not known",
			homeUnknown, homeUnknown)
	}
	if best == "" {
		if len(tried) == 0 {
			return "", "the policy allows no target locality"
		}
		return "", strings.Join(tried, "; ")
	}
	unknownNote := ""
	if homeUnknown != "" {
		unknownNote = fmt.Sprintf(" (%s, the policy's own locality, has no forecast: its room is not known, so the drained work is not sent there first)", homeUnknown)
	}
	where := best
	if best == src && len(exclude) > 0 {
		where = "the rest of " + best
	}
	if math.IsInf(bestRoom, 1) {
		return best, where + ": no forecast for it; chosen for its free capacity" + unknownNote
	}
	if home != nil && best == pol.Locality.String() && !math.IsNaN(homeRoom) && bestRoom == homeRoom {
		// Its own locality had no room, and no other more.
		return best, fmt.Sprintf("%s, the policy's own locality, tried first: the allowed target with the most room, %s its line at the planning quantile through the window's end at %s",
			where, byLine(bestRoom), clock(home.w.End))
	}
	if home != nil && best == pol.Locality.String() {
		return best, fmt.Sprintf("%s, the policy's own locality, first: it stays under its line through the window's end at %s with the window's moves queued there, %s below at the planning quantile after the move",
			where, clock(home.w.End), signed(bestRoom))
	}
	note := fmt.Sprintf("%s: the allowed target with the most room, %s its line at the planning quantile after the move", where, byLine(bestRoom)) + unknownNote
	switch {
	case math.IsNaN(homeRoom):
	case homeRoom < 0:
		note += fmt.Sprintf(" (%s, the policy's own locality, tried first, would be %s over its line by the window's end at %s with the window's moves queued there)",
			pol.Locality, signed(-homeRoom), clock(home.w.End))
	default:
		note += fmt.Sprintf(" (%s, the policy's own locality, tried first, may run only some of the moves)", pol.Locality)
	}
	return best, note
}

// hasForecast reports whether the planner reads a forecast of loc's CPU
// or memory against a line: without one, room reads +Inf, which for a
// target means room not known.
func (p *planner) hasForecast(loc string) bool {
	for _, metric := range []string{"cpu", "memory"} {
		if f := p.forecast(loc, metric); f != nil && f.HasLine {
			return true
		}
	}
	return false
}

// homeDrain is what chooseTarget reads of a drain window of all of another
// locality declared by a policy without migrate.targets: the window, and
// the work of its moves queued into the policy's own locality that is not
// counted there yet as arriving (made in this pass, or queued earlier
// and neither running nor holding a reservation).
type homeDrain struct {
	w    policies.Window
	sent state.Resources
}

// newHomeDrain is the homeDrain of pol's drain window w of all of the
// locality src, or nil when the policy's own locality is not read first
// for its moves: the drain names nodes, the policy lists migrate.targets
// (its forecast then carries nothing of it), or its own locality may
// share nodes with src (no candidate). prefix is the window's origin keys'.
func (p *planner) newHomeDrain(pol *policies.Policy, s *policies.Schedule, w policies.Window, l policies.Locality, prefix string) *homeDrain {
	if s.Nodes != "" || len(pol.Migrate.Targets) > 0 || l.SharesNodes(pol.Locality) {
		return nil
	}
	h := &homeDrain{w: w}
	own := pol.Locality.String()
	for i := range p.in.State.Requests {
		r := &p.in.State.Requests[i]
		if r.State.Terminal() || r.Target != own || r.Source != l.String() || !strings.HasPrefix(r.OriginKey, prefix) {
			continue
		}
		if _, counted := p.arrivals[own][r.ID]; !counted {
			h.sent = h.sent.Add(r.Moved)
		}
	}
	return h
}

// freeNode is a receiving node's free capacity.
type freeNode struct {
	id   string
	free state.Resources
}

// feasibleIn reports whether a move's job may run on some receiving node of
// the locality other than those excluded.
func (p *planner) feasibleIn(m state.Move, li *localityInfo, exclude ...string) bool {
	j, ok := p.c.Job(m.Namespace, m.Job)
	for _, k := range li.nodes {
		n := &p.c.Nodes[k]
		if slices.Contains(exclude, n.ID) {
			continue
		}
		if n.Receiving() && (!ok || Feasible(j, m.Group, n)) {
			return true
		}
	}
	return false
}

// room is the least margin, in percent points, between the locality's
// line and its planning quantile plus committed arrivals plus size over
// [from, to], across CPU and memory, on the nodes that take new work (see
// placeable); +Inf without forecasts, -Inf when no node takes new work.
// The planning quantile is read less the demand of drains of other
// localities that predict added and that comes as it is sent (see
// lessDrained).
func (p *planner) room(li *localityInfo, from, to time.Time, size state.Resources) float64 {
	if li.receiving == 0 {
		return math.Inf(-1)
	}
	room := math.Inf(1)
	for _, metric := range []string{"cpu", "memory"} {
		f := p.forecast(li.path, metric)
		if f == nil || !f.HasLine {
			continue
		}
		add := p.recvPct(li, metric, size)
		for i, t := range f.Times {
			if t.Before(from) && (i+1 >= len(f.Times) || !f.Times[i+1].After(from)) {
				continue
			}
			if t.After(to) {
				break
			}
			need := li.placeable(metric, f.Planning[i]) + p.committed(li, metric, t, "") + add
			room = min(room, f.Line-need)
		}
	}
	return room
}

// pctOf is size's share of the locality's capacity for a metric, in
// percent: of all its ready nodes, as the forecasts' percentages are (the
// locality's load; see recvPct for its room).
func (p *planner) pctOf(li *localityInfo, metric string, size state.Resources) float64 {
	return sharePct(metric, size, li.capCPU, li.capMem)
}

// recvPct is size's share of the capacity of the locality's nodes that
// take new work, in percent: what arriving work and placeholders take of
// the room they can land in (see placeable); 0 when none does.
func (p *planner) recvPct(li *localityInfo, metric string, size state.Resources) float64 {
	return sharePct(metric, size, li.recvCPU, li.recvMem)
}

// sharePct is size's share, in percent, of a capacity of cpu MHz and mem
// MiB for a metric; 0 for a capacity of none.
func sharePct(metric string, size state.Resources, cpu, mem int64) float64 {
	switch metric {
	case "cpu":
		if cpu > 0 {
			return 100 * float64(size.CPU) / float64(cpu)
		}
	case "memory":
		if mem > 0 {
			return 100 * float64(size.MemoryMB) / float64(mem)
		}
	}
	return 0
}

// sortedArrivals lists the arrivals into a locality other than except's,
// earliest first.
func (p *planner) sortedArrivals(loc, except string) []arrival {
	m := p.arrivals[loc]
	out := make([]arrival, 0, len(m))
	for id, a := range m {
		if id != except {
			out = append(out, a)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].from.Equal(out[j].from) {
			return out[i].from.Before(out[j].from)
		}
		return out[i].size.CPU < out[j].size.CPU || (out[i].size.CPU == out[j].size.CPU && out[i].size.MemoryMB < out[j].size.MemoryMB)
	})
	return out
}

// committed is what arrivals into li other than except's hold at t, in
// percent of the capacity of its nodes that take new work.
func (p *planner) committed(li *localityInfo, metric string, t time.Time, except string) float64 {
	var sum state.Resources
	for id, a := range p.arrivals[li.path] {
		if id != except && !a.from.After(t) {
			sum = sum.Add(a.size)
		}
	}
	return p.recvPct(li, metric, sum)
}

// rebalance creates requests for localities of policies with
// migrate.rebalance whose planning quantile crosses the line.
func (p *planner) rebalance() {
	for _, pol := range p.in.Policies {
		if !pol.Migrate.Rebalance {
			continue
		}
		src := pol.Locality.String()
		if p.relieved(src) {
			continue
		}
		li, ok := p.locality(src)
		if !ok || len(li.nodes) == 0 {
			continue
		}
		metric, cross, excess := p.crossing(src, false)
		if metric == "" {
			continue
		}
		var need float64
		if metric == "cpu" {
			need = excess / 100 * float64(li.capCPU)
		} else {
			need = excess / 100 * float64(li.capMem)
		}
		var cands []state.Move
		for _, k := range li.nodes {
			for _, m := range p.movable(&p.c.Nodes[k]) {
				if p.queuedAlloc[m.Alloc] == "" {
					cands = append(cands, m)
				}
			}
		}
		size := func(m state.Move) int64 {
			if metric == "cpu" {
				return m.Size.CPU
			}
			return m.Size.MemoryMB
		}
		sort.SliceStable(cands, func(i, j int) bool {
			if size(cands[i]) != size(cands[j]) {
				return size(cands[i]) > size(cands[j])
			}
			return cands[i].Alloc < cands[j].Alloc
		})
		var picked []state.Move
		var got float64
		for _, m := range cands {
			if got >= need {
				break
			}
			picked = append(picked, m)
			got += float64(size(m))
		}
		f := p.forecast(src, metric)
		figs, line := againstLine(true, f.Line, f.Line+excess)
		why := fmt.Sprintf("rebalance: %s %s %s crosses the %s line at %s (%s over)", policies.QuantileName(f.Quantile), metric, figs[0], line, clock(cross), signed(excess))
		if got < need || len(picked) == 0 {
			p.decide(state.Decision{Policy: pol.Name, Kind: KindWait, Locality: src, DryRun: p.dry(pol),
				Reason: why + "; its movable allocations cannot bring it under the line"})
			continue
		}
		horizon := f.Times[len(f.Times)-1]
		target, note := p.chooseTarget(pol, src, picked, p.now, horizon, nil, nil)
		var total state.Resources
		for _, m := range picked {
			total = total.Add(m.Size)
		}
		tli, ok := p.locality(target)
		if target == "" || !ok || p.room(tli, p.now, horizon, total) < 0 {
			if target != "" {
				note = target + " has no room for them over the whole window"
			}
			p.decide(state.Decision{Policy: pol.Name, Kind: KindWait, Locality: src, DryRun: p.dry(pol), Reason: why + "; no target: " + note})
			continue
		}
		for _, m := range picked {
			r := state.MigrationRequest{
				Resource: state.Resource{Kind: state.ResourceAllocation, ID: m.Alloc, Name: m.Name, Namespace: m.Namespace, Job: m.Job, Group: m.Group},
				Moves:    []state.Move{m}, Moved: m.Size, Source: src, Target: target, Policy: pol.Name,
				Strategy: string(pol.Migrate.Strategy), Origin: "planner", Created: p.now, State: state.RequestPending,
				OriginKey: fmt.Sprintf("rebalance/%s/%d/%s", pol.Name, cross.Unix(), m.Alloc),
			}
			if r.Strategy == string(policies.StrategyDrain) {
				r.Strategy = string(policies.StrategyReschedule)
			}
			if j, ok := p.c.Job(m.Namespace, m.Job); ok {
				r.Priority = min(j.Priority, 100)
			}
			r.Estimated = RequestEstimate(p.in.State.Estimates, &r)
			r.Reason = fmt.Sprintf("%s; moving the %d largest allocations (%s) to %s (%s)", why, len(picked), total, target, note)
			if p.origins[r.OriginKey] {
				continue
			}
			p.submit(pol, r)
		}
	}
}

// relieved reports whether an unfinished (or just created) request moves
// work out of loc (a spread moves it only between loc's nodes).
func (p *planner) relieved(loc string) bool {
	if p.submitted[loc] > 0 {
		return true
	}
	for i := range p.in.State.Requests {
		r := &p.in.State.Requests[i]
		if !r.State.Terminal() && r.Source == loc && !Within(r) && !WindowHold(r) {
			return true
		}
	}
	return false
}

// crossing finds the metric whose planning quantile crosses the line
// first, when, and by how much it peaks above it. Without demand it reads
// the locality's load, on all its ready nodes (rebalancing). With demand
// (a hotspot, for scaling) it reads the forecasts' demand over the
// capacity now where they carry it, and on the nodes that take new work
// (see placeable): room Nomad places nothing on is no room to scale for.
// A locality with ready nodes none of which takes new work has no such
// crossing: its nodes were taken out of scheduling (an operator's cordon,
// a drain window), and nodes added there are not what that asked for.
// Either reads the forecast less the demand of drains of other
// localities that predict added (lessDrained): that work comes as its
// moves are queued, here or elsewhere, and the queue checks, and scales
// for, the moves into this locality as it does any move, so read here
// too it scaled for work that went to another locality, or for work
// counted twice.
func (p *planner) crossing(loc string, demand bool) (metric string, at time.Time, excess float64) {
	var li *localityInfo
	if demand {
		if l, ok := p.locality(loc); ok && len(l.nodes) > 0 {
			if l.receiving == 0 {
				return "", time.Time{}, 0
			}
			li = l
		}
	}
	for _, m := range []string{"cpu", "memory"} {
		f := p.forecast(loc, m)
		if g := p.fcDemand[loc+":"+m]; demand && g != nil {
			f = g
		}
		if f == nil || !f.HasLine {
			continue
		}
		var first time.Time
		peak := math.Inf(-1)
		for i, v := range f.Planning {
			if li != nil {
				v = li.placeable(m, v)
			}
			if v > f.Line && first.IsZero() {
				first = f.Times[i]
			}
			peak = max(peak, v)
		}
		if first.IsZero() {
			continue
		}
		if metric == "" || first.Before(at) {
			metric, at, excess = m, first, peak-f.Line
		}
	}
	return metric, at, excess
}

// releases gives back reservations that are no longer needed or have
// expired, and ends schedule requests whose window is over.
func (p *planner) releases() {
	for _, res := range p.in.State.Reservations {
		if res.State == state.ReservationReleased {
			continue
		}
		why := p.releaseWhy(res)
		if why == "" {
			continue
		}
		r := p.reqByID[res.Request]
		pol := p.pols[res.Policy]
		dry := p.dry(pol)
		p.plan.Release = append(p.plan.Release, Release{Reservation: res.ID, Request: res.Request, Reason: why, DryRun: dry})
		p.decide(state.Decision{Policy: res.Policy, Kind: KindRelease, Locality: res.Locality, Request: res.Request, Reservation: res.ID, Reason: why, DryRun: dry})
		if m := p.arrivals[res.Locality]; m != nil && (r == nil || r.State != state.RequestRunning) {
			delete(m, res.Request)
			// The release gives back the placeholder's room, not the
			// work that landed (see newPlanner).
			if r != nil && r.State == state.RequestDone && r.Target == res.Locality && r.Target != r.Source && p.landing(*r) {
				if in := landedIn(*r); !in.IsZero() {
					p.arrive(r.Target, r.ID, r.Finished, in)
				}
			}
		}
		p.held[res.Policy] = p.held[res.Policy].Sub(res.Total())
	}
}

// releaseWhy says why a reservation not yet released is given back in this
// pass, or "" when it is kept.
func (p *planner) releaseWhy(res state.Reservation) string {
	r := p.reqByID[res.Request]
	switch {
	case r == nil:
		return fmt.Sprintf("release %s in %s: request %s is gone", res.ID, res.Locality, res.Request)
	case r.State.Terminal():
		return fmt.Sprintf("release %s in %s: request %s is %s", res.ID, res.Locality, r.ID, r.State)
	case !p.now.Before(res.Expires):
		return fmt.Sprintf("release %s in %s: it expired at %s (reserve.ttl from its placement at %s)", res.ID, res.Locality, clock(res.Expires), clock(res.Placed))
	}
	return ""
}

// holdUnplaced packs the chunks of the reservations kept in this pass that
// Nomad has not placed yet (a placeholder registered a moment ago, or one
// Nomad is slow to place or has room for only in part) onto their
// locality's receiving nodes, into unplaced. The capacity check and the
// caps count a reservation at its whole size from the start, but a node's
// allocations hold only what is placed: without this, a later pass packed
// the next reservation into the room an earlier one still needs, and the
// two placeholders raced for it. A chunk's placed allocations (live ones
// of the placeholder job of its size) are in the node's allocations
// already and count no more. Reservations go in the order they were made
// (by ID), each chunk first fit in node order, as pack places them; a
// chunk that fits on no node holds none: it waits in Nomad for room, and
// its request, once PlaceholderGrace passes, for a reservation that fits
// (see walk), so it never keeps another reservation from room it could
// not take itself. For the same reason a reservation no node can take
// (Input.Unplaceable: its task driver missing on every node, a
// constraint none meets) holds none: packed onto room Nomad never gives
// it, it left the next request into its locality a reservation that does
// not fit, and a scale action for it.
func (p *planner) holdUnplaced() {
	p.unplaced = make([]state.Resources, len(p.c.Nodes))
	var kept []state.Reservation
	for _, res := range p.in.State.Reservations {
		if _, unplaceable := p.in.Unplaceable[res.ID]; unplaceable {
			continue // no node can take it: it holds no room
		}
		if res.State != state.ReservationReleased && res.Job != "" && p.releaseWhy(res) == "" {
			kept = append(kept, res)
		}
	}
	if len(kept) == 0 {
		return
	}
	slices.SortStableFunc(kept, func(a, b state.Reservation) int { return compareIDs(a.ID, b.ID) })
	type jobSize struct {
		job      string
		cpu, mem int64
	}
	placed := map[jobSize]int{}
	for i := range p.c.Allocs {
		a := &p.c.Allocs[i]
		if a.Live && Placeholder(a.Job) {
			placed[jobSize{a.Job, a.Size.CPU, a.Size.MemoryMB}]++
		}
	}
	for _, res := range kept {
		l, err := policies.ParseLocality(res.Locality)
		if err != nil {
			continue
		}
		for _, c := range res.Chunks {
			k := jobSize{res.Job, c.Size.CPU, c.Size.MemoryMB}
			in := min(c.Count, placed[k])
			placed[k] -= in
			for range c.Count - in {
				for i := range p.c.Nodes {
					n := &p.c.Nodes[i]
					if !n.Receiving() || !In(l, n) || slices.Contains(res.Exclude, n.ID) {
						continue
					}
					taken := p.used[i].Add(p.unplaced[i])
					if n.CPU-taken.CPU >= c.Size.CPU && n.MemoryMB-taken.MemoryMB >= c.Size.MemoryMB {
						p.unplaced[i] = p.unplaced[i].Add(state.Resources{CPU: c.Size.CPU, MemoryMB: c.Size.MemoryMB})
						break
					}
				}
			}
		}
	}
}

// clock formats a time as the planner's reasons show it.
func clock(t time.Time) string { return t.UTC().Format("15:04") }

// categoryOf is a reason's part before its first colon, which names the
// kind of wait.
func categoryOf(reason string) string {
	if i := strings.IndexByte(reason, ':'); i > 0 {
		return reason[:i]
	}
	return reason
}

// sortedRequests returns the queued requests in score order.
func sortedRequests(rs []scored) {
	slices.SortStableFunc(rs, func(a, b scored) int {
		switch {
		case a.score > b.score:
			return -1
		case a.score < b.score:
			return 1
		case a.r.Priority != b.r.Priority:
			return b.r.Priority - a.r.Priority
		case !a.r.Created.Equal(b.r.Created):
			return a.r.Created.Compare(b.r.Created)
		}
		return compareIDs(a.r.ID, b.r.ID)
	})
}

// compareIDs orders the state's IDs ("mr-2", "rs-10") by their number,
// then as strings.
func compareIDs(a, b string) int {
	return cmp.Or(cmp.Compare(idNum(a), idNum(b)), strings.Compare(a, b))
}

func idNum(id string) uint64 {
	i := strings.LastIndexByte(id, '-')
	var n uint64
	for _, c := range id[i+1:] {
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + uint64(c-'0')
	}
	return n
}
