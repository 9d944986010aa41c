package shape

import (
	"fmt"
	"math"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/policies"
)

// scored is a queued request with its score and the parts it came from.
type scored struct {
	r     *state.MigrationRequest
	pol   *policies.Policy // governs the source
	tp    *policies.Policy // shapes the target, or nil
	est   time.Duration
	score float64
	parts string
}

// queue scores the queued requests and walks them in score order,
// deciding for each: wait (with why), reserve, scale, or start.
func (p *planner) queue() {
	var qs []scored
	due := p.windowsDue()
	for i := range p.in.State.Requests {
		r := &p.in.State.Requests[i]
		if !r.State.Queued() {
			continue
		}
		if p.expired(r) || p.displaced[r.ID] {
			continue
		}
		r = due.tighten(r)
		s := scored{r: r, pol: p.policyOf(r), tp: p.polByLoc[r.Target]}
		s.est = RequestEstimate(p.in.State.Estimates, r)
		s.score, s.parts = p.score(r, s.pol, s.tp)
		qs = append(qs, s)
	}
	sortedRequests(qs)
	p.deadlines(qs)
	slots := p.slots()
	for _, s := range qs {
		p.walk(s, slots)
	}
}

// ReloadCancel begins the reason of a drain window's request the planner
// cancelled because a reload took its window away (WindowGone), followed
// by ": " and what the reload changed, which varies. The coordinator reads
// it to tell these cancels from the others: when a later reload puts the
// window back, a request cancelled so before it started is forgotten, so
// that the window queues its work again (its origin key is free), or,
// kept for the intents it names, its work is queued again under a key of
// its own (Input.Requeue).
const ReloadCancel = "a reload took its drain window away"

// ReloadCancelled reports whether r was cancelled before it started
// because a reload took its drain window away (ReloadCancel).
func ReloadCancelled(r *state.MigrationRequest) bool {
	return r.Origin == "schedule" && r.State == state.RequestCancelled && r.Started.IsZero() && strings.HasPrefix(r.Reason, ReloadCancel+": ")
}

// expired cancels a schedule request whose window is over before its move
// started, or whose schedule a reload took out of the policies (its
// policy, or the schedule in it, is gone): the window it was to empty its
// nodes for no longer comes, and moved, its work would stay moved and its
// nodes out of scheduling until the window's start. The request's reason
// for the latter begins with ReloadCancel; its decision says only why.
func (p *planner) expired(r *state.MigrationRequest) bool {
	if r.Origin != "schedule" || r.Deadline.IsZero() {
		return false
	}
	gone := func(why string) bool {
		pol := p.policyOf(r)
		p.plan.Cancel = append(p.plan.Cancel, Cancel{Request: r.ID, Reason: ReloadCancel + ": " + why, DryRun: p.dry(pol)})
		d := state.Decision{Kind: KindCancel, Locality: r.Source, Request: r.ID, Reason: "cancel: " + why, DryRun: p.dry(pol)}
		if pol != nil {
			d.Policy = pol.Name
		}
		p.decide(d)
		return true
	}
	if why := WindowGone(r, p.in.Policies); why != "" {
		return gone(why)
	}
	pol := p.pols[r.Policy]
	for _, s := range pol.Schedules {
		if !strings.HasPrefix(r.OriginKey, fmt.Sprintf("schedule/%s/%s/", pol.Name, s.Name)) {
			continue
		}
		if end := r.Deadline.Add(s.Duration); !p.now.Before(end) {
			why := fmt.Sprintf("the window of %q ended at %s before the move could start", s.Name, clock(end))
			if r.Attempts > 0 {
				// Its move ran and failed; what did not start is the
				// retry, and the failure is what to look into.
				why = fmt.Sprintf("the window of %q ended at %s before attempt %d could start; %s", s.Name, clock(end), r.Attempts+1, r.Reason)
			}
			p.plan.Cancel = append(p.plan.Cancel, Cancel{Request: r.ID, Reason: why, DryRun: p.dry(pol)})
			p.decide(state.Decision{Policy: pol.Name, Kind: KindCancel, Locality: r.Source, Request: r.ID, Reason: "cancel: " + why, DryRun: p.dry(pol)})
			return true
		}
	}
	return false
}

// nodesDue is, per node ID, the earliest start of a drain window in its
// lead time (schedules queues its moves) that takes the node down.
type nodesDue map[string]time.Time

// windowsDue lists the nodes of every drain window schedules reads in
// this pass, whichever policy declares it, at its window's start.
func (p *planner) windowsDue() nodesDue {
	due := nodesDue{}
	p.eachDrainWindow(func(_ *policies.Policy, s *policies.Schedule, w policies.Window, l policies.Locality) {
		for i := range p.c.Nodes {
			n := &p.c.Nodes[i]
			if !n.Ready || !In(l, n) {
				continue
			}
			if s.Nodes != "" {
				if ok, _ := path.Match(s.Nodes, n.Name); !ok {
					continue
				}
			}
			if at, ok := due[n.ID]; !ok || w.Start.Before(at) {
				due[n.ID] = w.Start
			}
		}
	})
	return due
}

// tighten returns r due by the earliest drain window that takes down a
// node it moves work off, when that is before r's own deadline (or r has
// none): a copy of r with that deadline, else r. A window queues no
// request for an allocation another request moves already (taken), so
// that request is what empties the window's nodes, and must be done by
// its start: two drains of shared nodes in windows that overlap, the one
// whose lead time opened first queued their allocations for its own
// window's start, which may come after the other's (and a rebalance or
// an operator's request has no deadline at all).
func (due nodesDue) tighten(r *state.MigrationRequest) *state.MigrationRequest {
	first := r.Deadline
	check := func(node string) {
		if at, ok := due[node]; ok && (first.IsZero() || at.Before(first)) {
			first = at
		}
	}
	if r.Resource.Kind == state.ResourceNode && !WindowHold(r) {
		check(r.Resource.ID)
	}
	for _, m := range r.Moves {
		check(m.Node)
	}
	if first.Equal(r.Deadline) {
		return r
	}
	c := *r
	c.Deadline = first
	return &c
}

// WindowGone says why the drain window that queued r, a schedule's
// request, no longer comes under pols, "" while it does: a reload took its
// policy out, or the schedule out of the policy (the maintenance called
// off), or changed the schedule's cron so that it no longer fires at the
// window's start (the maintenance moved). The planner cancels such a
// request; the coordinator gives its nodes back early.
func WindowGone(r *state.MigrationRequest, pols []*policies.Policy) string {
	if r.Origin != "schedule" {
		return ""
	}
	i := slices.IndexFunc(pols, func(p *policies.Policy) bool { return p != nil && p.Name == r.Policy })
	if i < 0 {
		return fmt.Sprintf("policy %q, whose drain schedule queued it, is no longer loaded", r.Policy)
	}
	pol := pols[i]
	name, start, ok := windowOrigin(r.OriginKey)
	if !ok {
		return ""
	}
	j := slices.IndexFunc(pol.Schedules, func(s policies.Schedule) bool { return s.Name == name })
	if j < 0 {
		return fmt.Sprintf("schedule %q is no longer in policy %q", name, pol.Name)
	}
	if s := &pol.Schedules[j]; !s.Fires(start) {
		return fmt.Sprintf("schedule %q of policy %q no longer opens a window at %s (its cron is now %q)",
			s.Name, pol.Name, start.Format(time.RFC3339), s.Cron)
	}
	return ""
}

// windowOrigin reads a drain window's origin key,
// schedule/POLICY/SCHEDULE/START/RESOURCE, to which windowOriginKey may
// add /again/ID (drainWindow makes it): the schedule's name and the
// window's start; false for another key.
func windowOrigin(key string) (schedule string, start time.Time, ok bool) {
	parts := strings.SplitN(key, "/", 5)
	if len(parts) < 5 || parts[0] != "schedule" || parts[2] == "" {
		return "", time.Time{}, false
	}
	sec, err := strconv.ParseInt(parts[3], 10, 64)
	if err != nil {
		return "", time.Time{}, false
	}
	return parts[2], time.Unix(sec, 0).UTC(), true
}

// slots are, per source locality, when each of its max_parallel places
// frees up: running moves hold theirs until their estimated end.
func (p *planner) slots() map[string][]time.Time {
	out := map[string][]time.Time{}
	for i := range p.in.State.Requests {
		r := &p.in.State.Requests[i]
		if r.State != state.RequestRunning {
			continue
		}
		end := r.Started.Add(RequestEstimate(p.in.State.Estimates, r))
		if end.Before(p.now) {
			end = p.now
		}
		out[r.Source] = append(out[r.Source], end)
	}
	return out
}

// peekSlot returns when a move out of src can start: when the earliest of
// its max_parallel places frees up.
func peekSlot(slots map[string][]time.Time, src string, n int, now time.Time) time.Time {
	s := slots[src]
	for len(s) < n {
		s = append(s, now)
	}
	sort.Slice(s, func(i, j int) bool { return s[i].Before(s[j]) })
	slots[src] = s
	if s[0].Before(now) {
		return now
	}
	return s[0]
}

// bookSlot takes the earliest place of src until start + est.
func bookSlot(slots map[string][]time.Time, src string, start time.Time, est time.Duration) {
	slots[src][0] = start.Add(est)
}

// fit is the verdict of the demand check at a target.
type fit struct {
	ok     bool
	metric string
	at     time.Time
	// planning, committed and incoming are percent of the target's
	// capacity at the crossing; line is the headroom line.
	planning, committed, incoming, line float64
	quantile                            float64
	// shortfall is how much capacity would keep it under the line.
	shortfall state.Resources
	note      string
	// basis says on which of the target's nodes the room was read, when
	// not on all its ready ones (see placeable).
	basis string
}

// later looks past the move's window to the end of the forecast: the moved
// work stays in the target, so a crossing there needs more capacity before
// it comes (a scale action), though it does not hold the move.
func (p *planner) later(target string, after time.Time, size state.Resources, self string, leaving ...string) fit {
	return p.check(target, after, time.Time{}, size, self, true, leaving...)
}

func (f fit) reason(target string) string {
	if f.ok || f.metric == "capacity" {
		return f.note
	}
	figs, line := againstLine(true, f.line, f.planning, f.incoming, f.committed)
	why := fmt.Sprintf("%s %s demand %s + incoming %s + held %s would cross the %s line in %s at %s",
		policies.QuantileName(f.quantile), f.metric, figs[0], figs[1], figs[2], line, target, clock(f.at))
	if f.basis != "" {
		why += ", " + f.basis
	}
	return why
}

// check tests whether size fits in the target over [from, to] (to the end
// of the forecast when to is zero) on top of its planning quantile and the
// other committed arrivals, on the target's nodes that take new work (see
// placeable). describe builds the reason of a fit. leaving, for a move
// within the target (a drain of some of its nodes), are the drained nodes:
// the room is read on the rest of it (see rest), and size is only what
// its demand there does not show yet (arriving).
func (p *planner) check(target string, from, to time.Time, size state.Resources, self string, describe bool, leaving ...string) fit {
	li, ok := p.locality(target)
	if !ok || len(li.nodes) == 0 {
		return fit{note: "target " + target + " has no ready node", metric: "capacity", at: from}
	}
	if len(leaving) > 0 {
		li = p.rest(li, leaving)
	}
	if li.receiving == 0 {
		return fit{note: fmt.Sprintf("target %s has no node that takes new work: its %d ready nodes are ineligible or draining", target, len(li.nodes)),
			metric: "capacity", at: from}
	}
	out := fit{ok: true}
	seen := false
	for _, metric := range []string{"cpu", "memory"} {
		f := p.forecast(target, metric)
		if f == nil || !f.HasLine || len(f.Times) == 0 {
			continue
		}
		seen = true
		add := p.recvPct(li, metric, size)
		maxNeed := math.Inf(-1)
		var at time.Time
		var plan, comm float64
		arr := p.sortedArrivals(li.path, self)
		var sum state.Resources
		k := 0
		checked := false
		for i, t := range f.Times {
			if i+1 < len(f.Times) && !f.Times[i+1].After(from) {
				continue
			}
			// The point in effect at from, or, before the forecast's
			// first point (a pass runs between steps), the first: a
			// window shorter than a step is never checked against none.
			if !to.IsZero() && t.After(to) && checked {
				break
			}
			checked = true
			for k < len(arr) && !arr[k].from.After(t) {
				sum = sum.Add(arr[k].size)
				k++
			}
			c := p.recvPct(li, metric, sum)
			planning := li.placeable(metric, f.Planning[i])
			need := planning + c + add
			if need > maxNeed {
				maxNeed, at, plan, comm = need, t, planning, c
			}
			if need > f.Line && out.ok {
				out = fit{metric: metric, at: t, planning: planning, committed: c, incoming: add, line: f.Line, quantile: f.Quantile, basis: li.placeNote()}
			}
		}
		if !out.ok && out.metric == metric {
			out.shortfall = li.shortfall(metric, maxNeed-f.Line)
		}
		if describe && out.ok && !math.IsInf(maxNeed, -1) {
			until := to
			if until.IsZero() {
				until = f.Times[len(f.Times)-1]
			}
			figs, line := againstLine(false, f.Line, plan, add, comm)
			note := fmt.Sprintf("%s %s %s + incoming %s + held %s stays under the %s line until %s (peak at %s)",
				policies.QuantileName(f.Quantile), metric, figs[0], figs[1], figs[2], line, clock(until), clock(at))
			if b := li.placeNote(); b != "" {
				note += ", " + b
			}
			out.note = appendNote(out.note, note)
		}
	}
	if !seen {
		out.note = "no forecast for " + target + ": planned on its free capacity alone"
	}
	return out
}

func appendNote(a, b string) string {
	if a == "" {
		return b
	}
	if b == "" {
		return a
	}
	return a + "; " + b
}

// chunks groups a request's moves by size: one placeholder group per size,
// so a hand-over shrinks it by exactly the moved allocation.
func chunks(moves []state.Move) []state.Chunk {
	var out []state.Chunk
	for _, m := range moves {
		if m.Size.IsZero() {
			continue
		}
		found := false
		for i := range out {
			if out[i].Size == m.Size {
				out[i].Count++
				found = true
				break
			}
		}
		if !found {
			out = append(out, state.Chunk{Size: m.Size, Count: 1})
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Size.MemoryMB != out[j].Size.MemoryMB {
			return out[i].Size.MemoryMB > out[j].Size.MemoryMB
		}
		return out[i].Size.CPU > out[j].Size.CPU
	})
	return out
}

// pack places chunks first-fit, largest first, onto the free capacity of a
// locality's receiving nodes; when they all fit it takes the room and
// returns true, otherwise it leaves free unchanged.
func pack(cs []state.Chunk, free []freeNode, exclude []string) bool {
	trial := append([]freeNode(nil), free...)
	for _, c := range cs {
		for range c.Count {
			placed := false
			for i := range trial {
				f := trial[i].free
				if !slices.Contains(exclude, trial[i].id) && f.CPU >= c.Size.CPU && f.MemoryMB >= c.Size.MemoryMB {
					trial[i].free = f.Sub(c.Size)
					placed = true
					break
				}
			}
			if !placed {
				return false
			}
		}
	}
	copy(free, trial)
	return true
}

func freeTotal(free []freeNode, exclude []string) (state.Resources, int) {
	var t state.Resources
	n := 0
	for _, f := range free {
		if slices.Contains(exclude, f.id) {
			continue
		}
		n++
		t = t.Add(state.Resources{CPU: max(f.free.CPU, 0), MemoryMB: max(f.free.MemoryMB, 0)})
	}
	return t, n
}

// walk decides one queued request: its planned start (its source's next
// free place, later while its target is forecast congested), its
// reservation (reserve.lead_time before that start), scale actions, and
// whether it starts now.
func (p *planner) walk(s scored, slots map[string][]time.Time) {
	r := s.r
	dry := p.dry(s.pol, s.tp)
	polName := r.Policy
	if WindowHold(r) {
		// It moves nothing: no reservation, no place in max_parallel, no
		// forecast to wait for. It starts at once, its window's nodes
		// out of scheduling from its lead time, unless the queue is
		// paused (nothing starts then). Its target is its own locality
		// only as a formality: nothing moves there, so only its own
		// policy's forecast_only makes it dry, as for the window's
		// moves out of that locality, which it stands in for
		// (holdWindow queues it by that alone).
		dry = p.dry(s.pol)
		if p.in.State.Paused {
			p.rescore(s, state.RequestWaiting, "queue paused: resume it to start moves", dry)
			return
		}
		why := fmt.Sprintf("start %s: %s", r.ID, r.Reason)
		p.plan.Start = append(p.plan.Start, Start{Request: r.ID, Reason: why, DryRun: dry})
		p.decide(state.Decision{Policy: polName, Kind: KindStart, Locality: r.Source, Request: r.ID, Reason: why, DryRun: dry})
		p.rescore(s, "", "", dry)
		return
	}
	n := maxParallel(s.pol)
	start := peekSlot(slots, r.Source, n, p.now)
	if r.NotBefore.After(start) {
		start = r.NotBefore
	}
	// Its deadline presses: it moves now, within the caps, whatever the
	// forecast says of its target.
	urgent := !r.Deadline.IsZero() && (!p.now.Add(2*s.est).Before(r.Deadline) || p.urgent[r.ID])
	// A drain of some of its nodes that stays in its locality is read on
	// the rest of it, its work already there.
	var leaving []string
	if r.Target == r.Source {
		leaving = r.Exclude
	}
	moved := p.arriving(r)
	var f, congested fit
	if Within(r) {
		// A spread moves work between the locality's nodes: nothing
		// arrives in it, and its forecast over the line is why it moves.
		f = fit{ok: true, note: "within " + r.Target + ": onto its nodes with room"}
		congested = f
	} else {
		f = p.check(r.Target, start, start.Add(s.est), moved, r.ID, true, leaving...)
		// Whether it may start now: a move started now lands in the
		// target now, whatever its place in line (start is later when
		// the moves ahead of it booked its source's places, though they
		// wait).
		congested = f
		if start.After(p.now) {
			congested = p.check(r.Target, p.now, p.now.Add(s.est), moved, r.ID, true, leaving...)
		}
		// A request whose deadline presses is not planned for later, when
		// its target has room: that start would come after its deadline.
		if !f.ok && !urgent {
			if later, ok := p.firstFit(r.Target, start, s.est, moved, r.ID, leaving...); ok {
				start = later
				f = p.check(r.Target, start, start.Add(s.est), moved, r.ID, true, leaving...)
			}
		}
	}
	bookSlot(slots, r.Source, start, s.est)
	end := start.Add(s.est)
	deadlineNote := p.lateNotes(&s)
	res, hasRes := p.in.State.ReservationFor(r.ID)
	commit := func(from time.Time) {
		// Work moved within its locality arrives only as far as its
		// demand on the nodes that stay does not show it (arriving).
		if !Within(r) {
			p.arrive(r.Target, r.ID, from, moved)
		}
	}
	// forRoom is set when the request lacks room in its target now: its
	// forecast there, its reservation, or the capacity a scale brings.
	forRoom := !congested.ok
	hold := func(st state.RequestState, reason string) {
		if hasRes && st != state.RequestPending {
			st = state.RequestReserving
		}
		if forRoom && !Within(r) && p.roomWait[r.Target] == "" {
			p.roomWait[r.Target] = r.ID
		}
		p.rescore(s, st, appendNote(reason, deadlineNote), dry)
	}

	// Capacity the target lacks: in the move's window, or after it, since
	// the moved work stays.
	var scaleNote string
	awaitScale := false
	if !f.ok {
		why := "target congested: " + f.reason(r.Target)
		scaleNote = p.scaleFor(s.tp, r.Target, f.shortfall, f.at, why, r.ID, dry)
	} else if lf := p.later(r.Target, end, moved, r.ID, leaving...); !Within(r) && !lf.ok {
		// Nomad never moves placed work onto nodes added later: the
		// capacity must be there when the move lands, so it is needed by
		// the start, however far off the crossing is, and the move waits
		// for it while its deadline allows.
		why := "after the move: " + lf.reason(r.Target)
		if sc := p.scaleFor(s.tp, r.Target, lf.shortfall, start, why, r.ID, dry); sc != "" {
			scaleNote = why + "; " + sc
			awaitScale = strings.HasPrefix(sc, "scaling") || p.scaleInFlight(s.tp)
		}
	}

	// The reservation, reserve.lead_time before the planned start.
	needRes := s.tp != nil && s.tp.Reserve.Enabled && len(r.Moves) > 0 && !r.Moved.IsZero() && !Within(r)
	placing := false
	var noRoom string
	if needRes && !hasRes && !start.Add(-s.tp.Reserve.LeadTime).After(p.now) {
		if gap := p.priorityGap(r, s.tp); gap != "" {
			p.decide(state.Decision{Policy: s.tp.Name, Kind: KindReserve, Locality: r.Target, Request: r.ID, Reason: gap, DryRun: dry})
			needRes = false
		} else if capWhy := p.overCaps(s.tp, r.Moved); capWhy != "" {
			noRoom = "reservation caps: " + capWhy
		} else {
			li, _ := p.locality(r.Target)
			cs := chunks(r.Moves)
			if pack(cs, li.free, r.Exclude) {
				until := end.Add(s.tp.Reserve.LeadTime)
				expires := p.now.Add(s.tp.Reserve.TTL)
				if until.After(expires) {
					until = expires
				}
				why := fmt.Sprintf("reserve %s in %s from %s for %s: %s", r.Moved, r.Target, clock(start), r.ID, f.reason(r.Target))
				p.plan.Reserve = append(p.plan.Reserve, Reserve{Request: r.ID, Policy: s.tp.Name, Locality: r.Target, Chunks: cs, Exclude: r.Exclude,
					Priority: s.tp.Reserve.Priority, From: start, Until: until, Expires: expires, Reason: why, DryRun: dry})
				p.decide(state.Decision{Policy: s.tp.Name, Kind: KindReserve, Locality: r.Target, Request: r.ID, Reason: why, DryRun: dry})
				p.held[s.tp.Name] = p.held[s.tp.Name].Add(r.Moved)
				placing = true
			} else {
				free, nodes := freeTotal(li.free, r.Exclude)
				short := r.Moved.Sub(free)
				short.CPU, short.MemoryMB = max(short.CPU, 0), max(short.MemoryMB, 0)
				if short.IsZero() {
					short = r.Moved // fragmented: no node has room for some chunk
				}
				noRoom = fmt.Sprintf("reservation does not fit: %s in chunks of the moved allocations does not pack onto %s's free capacity (%s on %d eligible nodes",
					r.Moved, r.Target, free, nodes)
				if held := p.spreadHeldOn(li.free, r.Exclude); !held.IsZero() {
					noRoom += fmt.Sprintf(", after %s held for the spreads not finished there", held)
				}
				noRoom += ")"
				if sc := p.scaleFor(s.tp, r.Target, short, start, noRoom, r.ID, dry); sc != "" {
					noRoom += "; " + sc
				}
			}
		}
	}
	forRoom = forRoom || noRoom != "" || awaitScale
	withScale := func(reason string) string { return appendNote(reason, scaleNote) }
	fitNote := f.reason(r.Target)
	if start.After(p.now) && congested.ok {
		fitNote = congested.reason(r.Target) // it starts now, not at its place in line
	}

	// Whether it starts now.
	switch {
	case placing && dry:
		// A dry run places nothing: show the move it would start once the
		// placeholder runs.
		fitNote = appendNote("would hand over the planned reservation", fitNote)
	case placing:
		commit(p.now)
		why := "reserving: placeholder for " + r.Moved.String() + " in " + r.Target + " from " + clock(start)
		if !congested.ok {
			why = appendNote(why, "target congested: "+congested.reason(r.Target))
		}
		hold(state.RequestReserving, withScale(why))
		return
	case noRoom != "" && !urgent:
		commit(start)
		hold(state.RequestWaiting, noRoom)
		return
	case noRoom != "":
		fitNote = "window near: moving without a reservation: " + noRoom
	case needRes && !hasRes:
		commit(start)
		hold(state.RequestPending, withScale(fmt.Sprintf("in line: planned start %s; its reservation is placed reserve.lead_time (%s) before; %s",
			clock(start), s.tp.Reserve.LeadTime, fitNote)))
		return
	}
	if hasRes {
		want, run := 0, p.placeholdersRunning(res.Job)
		for _, c := range res.Chunks {
			want += c.Count
		}
		if res.State != state.ReservationHeld || run < want {
			late := PlaceholderLate(res, p.now)
			why := fmt.Sprintf("placeholder placing: %s holds %d of %d placeholder allocations in %s", res.ID, run, want, res.Locality)
			unfit, unplaceable := p.in.Unplaceable[res.ID]
			anew, rescheduling := p.in.Rescheduling[res.ID]
			switch {
			case late && unplaceable:
				// No node could take it, whatever its size: nodes a scale
				// action adds would not take it either, so none is
				// issued for it. The request waits as for a reservation
				// that does not fit (never moved without its room before
				// its deadline presses).
				forRoom = true
				why = fmt.Sprintf("placeholder cannot be placed: %s placed %s ago and %d of %d placeholder allocations run in %s: %s; "+
					"not scaled for: nodes added to %s would not take it either; %s",
					res.ID, p.now.Sub(res.Placed).Round(time.Second), run, want, res.Locality, unfit, res.Locality, unplaceableWait(r))
			case late && rescheduling:
				// Nomad places it anew: not scaled for meanwhile; the
				// request waits as for a reservation that does not fit.
				forRoom = true
				why = fmt.Sprintf("placeholder placing anew: %s placed %s ago and %d of %d placeholder allocations run in %s: %s; %s",
					res.ID, p.now.Sub(res.Placed).Round(time.Second), run, want, res.Locality, anew, unplaceableWait(r))
			case late:
				forRoom = true
				why = fmt.Sprintf("reservation does not fit: %s placed %s ago and %d of %d placeholder allocations run in %s",
					res.ID, p.now.Sub(res.Placed).Round(time.Second), run, want, res.Locality)
				if sc := p.scaleFor(s.tp, r.Target, r.Moved, start, why, r.ID, dry); sc != "" {
					why += "; " + sc
				}
			}
			if !urgent || !late {
				commit(p.now)
				hold(state.RequestReserving, why)
				return
			}
			fitNote = "window near: moving without waiting for the placeholder: " + why
		}
		fitNote = appendNote(fmt.Sprintf("hand over %s", res.ID), fitNote)
	}
	if !congested.ok {
		if !urgent {
			why := "target congested: " + congested.reason(r.Target)
			if start.After(p.now) && f.ok {
				why += "; planned start " + clock(start) + " when it fits"
			}
			commit(start)
			hold(state.RequestWaiting, withScale(why))
			return
		}
		fitNote = appendNote(fitNote, "window near: moving despite the forecast: "+congested.reason(r.Target))
	}
	if awaitScale && !urgent {
		commit(start)
		hold(state.RequestWaiting, "waiting for capacity: "+scaleNote)
		return
	}
	if ahead := p.roomWait[r.Target]; ahead != "" && !urgent && !Within(r) {
		// Head of line: the moved work stays, so room taken now by a
		// request lower in line is taken from the one ahead of it for
		// good.
		commit(start)
		hold(state.RequestWaiting, fmt.Sprintf("head of line: behind %s, which waits for room in %s", ahead, r.Target))
		return
	}
	if p.in.State.Paused {
		commit(start)
		hold(state.RequestWaiting, "queue paused: resume it to start moves")
		return
	}
	if r.NotBefore.After(p.now) {
		commit(r.NotBefore)
		hold(state.RequestWaiting, "not before "+clock(r.NotBefore))
		return
	}
	tn := maxParallel(s.tp)
	switch {
	case p.running[r.Source] >= n:
		commit(start)
		hold(state.RequestWaiting, fmt.Sprintf("max_parallel: %d moves run in %s (%s), the cap of policy %s", p.running[r.Source], r.Source, strings.Join(p.runningIDs[r.Source], ", "), polName))
		return
	case r.Target != r.Source && p.running[r.Target] >= tn:
		commit(start)
		hold(state.RequestWaiting, fmt.Sprintf("max_parallel: %d moves run in %s (%s)", p.running[r.Target], r.Target, strings.Join(p.runningIDs[r.Target], ", ")))
		return
	case p.in.Limits.MaxParallel > 0 && p.total >= p.in.Limits.MaxParallel:
		commit(start)
		hold(state.RequestWaiting, fmt.Sprintf("max_parallel: %d moves run across the cluster, the agent's cap", p.total))
		return
	case Within(r) && p.running[r.Source] > 0:
		// A spread is the locality's own choice: it takes none of the
		// bandwidth the requested transfers through it share.
		commit(start)
		hold(state.RequestWaiting, fmt.Sprintf("spread yields to the transfers through %s (%s)", r.Source, strings.Join(p.runningIDs[r.Source], ", ")))
		return
	case !urgent && p.startedNow[r.Source] != "":
		// Transfers through a locality share its bandwidth: two started
		// together each take as long as both would one after the other.
		commit(start)
		hold(state.RequestWaiting, fmt.Sprintf("one new transfer a pass through %s: %s started in this pass", r.Source, p.startedNow[r.Source]))
		return
	case !urgent && r.Target != r.Source && p.startedNow[r.Target] != "":
		commit(start)
		hold(state.RequestWaiting, fmt.Sprintf("one new transfer a pass through %s: %s started in this pass", r.Target, p.startedNow[r.Target]))
		return
	}
	p.startedNow[r.Source] = r.ID
	p.startedNow[r.Target] = r.ID
	p.running[r.Source]++
	p.runningIDs[r.Source] = append(p.runningIDs[r.Source], r.ID)
	if r.Target != r.Source {
		p.running[r.Target]++
		p.runningIDs[r.Target] = append(p.runningIDs[r.Target], r.ID)
	}
	p.total++
	commit(p.now)
	why := fmt.Sprintf("start %s of %s to %s (score %.2f: %s): %s", r.ID, r.Resource, r.Target, s.score, s.parts, appendNote(withScale(fitNote), deadlineNote))
	p.plan.Start = append(p.plan.Start, Start{Request: r.ID, Reason: why, DryRun: dry})
	p.decide(state.Decision{Policy: polName, Kind: KindStart, Locality: r.Source, Request: r.ID, Reason: why, DryRun: dry})
	p.rescore(s, "", "", dry)
}

// unplaceableWait says what a request whose placeholder no node can take
// does meanwhile.
func unplaceableWait(r *state.MigrationRequest) string {
	if r.Deadline.IsZero() {
		return "the request does not move without its room: it waits until Nomad places the placeholder (once a node can take it) or it is cancelled"
	}
	return fmt.Sprintf("the request does not move without its room: it waits until Nomad places the placeholder (once a node can take it), "+
		"or until its deadline %s presses, when it moves without it", clock(r.Deadline))
}

// firstFit finds the first forecast step at or after from where a move of
// est fits in the target, within the horizon.
func (p *planner) firstFit(target string, from time.Time, est time.Duration, size state.Resources, self string, leaving ...string) (time.Time, bool) {
	var grid []time.Time
	for _, metric := range []string{"cpu", "memory"} {
		if f := p.forecast(target, metric); f != nil && len(f.Times) > len(grid) {
			grid = f.Times
		}
	}
	for _, t := range grid {
		if !t.After(from) {
			continue
		}
		if t.Add(est).After(grid[len(grid)-1]) {
			break
		}
		if p.check(target, t, t.Add(est), size, self, false, leaving...).ok {
			return t, true
		}
	}
	return time.Time{}, false
}

// rescore records a request's new score, state and reason when they
// changed, and a wait decision when the kind of wait changed.
func (p *planner) rescore(s scored, st state.RequestState, reason string, dry bool) {
	r := s.r
	changed := st != "" && (st != r.State || reason != r.Reason)
	if math.Abs(s.score-r.Score) > 0.005*max(1, math.Abs(r.Score)) || s.est != r.Estimated {
		changed = true
	}
	if !changed {
		return
	}
	p.plan.Rescore = append(p.plan.Rescore, state.Rescore{ID: r.ID, Score: s.score, State: st, Reason: reason, Estimated: s.est})
	if st == state.RequestWaiting || (st == state.RequestReserving && categoryOf(reason) != "reserving") || st == state.RequestPending {
		if st != r.State || categoryOf(reason) != categoryOf(r.Reason) {
			p.decide(state.Decision{Policy: r.Policy, Kind: KindWait, Locality: r.Source, Request: r.ID, Reason: "wait: " + reason, DryRun: dry})
		}
	}
}

// placeholdersRunning counts a placeholder job's running allocations.
func (p *planner) placeholdersRunning(job string) int { return p.runningOf[job] }

// priorityGap refuses a reservation whose placeholder priority is not at
// least 10 below every job it protects (Nomad preempts only across that
// gap).
func (p *planner) priorityGap(r *state.MigrationRequest, tp *policies.Policy) string {
	for _, m := range r.Moves {
		j, ok := p.c.Job(m.Namespace, m.Job)
		if ok && tp.Reserve.Priority > j.Priority-10 {
			return fmt.Sprintf("no reservation for %s: reserve.priority %d of policy %s is not at least 10 below job %s's priority %d; moving without one",
				r.ID, tp.Reserve.Priority, tp.Name, j.ID, j.Priority)
		}
	}
	return ""
}

// overCaps says why adding size would exceed the policy's reserve.max_cpu
// or max_memory, or "".
func (p *planner) overCaps(tp *policies.Policy, size state.Resources) string {
	h := p.held[tp.Name].Add(size)
	switch {
	case tp.Reserve.MaxCPU > 0 && h.CPU > int64(tp.Reserve.MaxCPU):
		return fmt.Sprintf("policy %s would hold %d MHz, over its reserve.max_cpu %d", tp.Name, h.CPU, tp.Reserve.MaxCPU)
	case tp.Reserve.MaxMemory > 0 && h.MemoryMB > int64(tp.Reserve.MaxMemory):
		return fmt.Sprintf("policy %s would hold %d MiB, over its reserve.max_memory %d", tp.Name, h.MemoryMB, tp.Reserve.MaxMemory)
	}
	return ""
}

// scaleFor issues a scale action for pol's locality loc when one is due,
// and returns a note for the reason that asked ("" when pol has no scale
// block). dry is whether what asked is planned dry: a request whose
// source's policy is forecast_only moves nothing, so the capacity it
// lacks is scaled for dry, whatever pol's own forecast_only says (it
// scaled in earnest for a move that never starts). A scale planned in
// earnest this pass answers a dry one too; one planned dry does not
// answer one that is not.
func (p *planner) scaleFor(pol *policies.Policy, loc string, short state.Resources, neededBy time.Time, why, request string, dry bool) string {
	if pol == nil || len(pol.Scales) == 0 {
		return ""
	}
	dry = dry || p.dry(pol)
	if note, done := p.scaled[pol.Name]; done {
		return note
	}
	memo := pol.Name
	if dry {
		memo += dryScaled
		if note, done := p.scaled[memo]; done {
			return note
		}
	}
	var sc *policies.Scale
	// cooling says why each block before the one chosen was passed
	// over; passed, those passed over as asked for their max, which the
	// chosen block's reason names (no other decision says it). asked is
	// the first of those: with no later block that can act, it is asked
	// again, since its receiver may have come down from its max unseen
	// (a receiver at it changes nothing).
	var cooling, passed []string
	var asked *policies.Scale
	for i := range pol.Scales {
		s := &pol.Scales[i]
		if n, ok := p.in.AtMax[state.CooldownKey(pol.Name, s.Name)]; ok {
			cooling = append(cooling, fmt.Sprintf("scale %q is at its max %d (its target's count %d)", s.Name, s.Max, n))
			continue
		}
		if in, ok := p.calling(pol.Name, s.Name); ok {
			cooling = append(cooling, fmt.Sprintf("scale %q is in flight since %s: its target has not answered", s.Name, clock(in.Opened)))
			continue
		}
		if cd, ok := p.in.State.Cooldowns[state.CooldownKey(pol.Name, s.Name)]; ok && p.now.Before(cd.Add(s.Cooldown)) {
			cooling = append(cooling, fmt.Sprintf("scale %q cools down until %s", s.Name, clock(cd.Add(s.Cooldown))))
			continue
		}
		if f, ok := p.lastFailed(pol.Name, s.Name); ok {
			// The back-off runs from the failure, not the decision: a
			// target may work for long before it fails (a webhook's
			// retries, a deployment waited out, an exec timeout).
			failed := f.At
			if f.Finished.After(failed) {
				failed = f.Finished
			}
			if retry := failed.Add(FailedScaleBackoff(s.Cooldown)); p.now.Before(retry) {
				cooling = append(cooling, fmt.Sprintf("scale %q failed at %s (%s); next try at %s", s.Name, clock(failed), f.Error, clock(retry)))
				continue
			}
		}
		// Checked after the rest: a block asked for its max is asked
		// again when no later block can act, so only once it could act
		// were it not (its cooldown over, no call of it open).
		if a, ok := p.in.MaxAsked[state.CooldownKey(pol.Name, s.Name)]; ok {
			from, _ := a.CooldownFrom()
			note := fmt.Sprintf("scale %q was asked for its max (count %d, %s) at %s and cannot tell its count: taken to be at it until %s",
				s.Name, a.Count, a.ID, clock(from), clock(from.Add(MaxAskedHold(s.Cooldown))))
			cooling, passed = append(cooling, note), append(passed, note)
			if asked == nil {
				asked = s
			}
			continue
		}
		sc = s
		break
	}
	again := ""
	if sc == nil && asked != nil {
		sc, passed = asked, nil
		again = fmt.Sprintf("; asked again though asked for its max before: no later block can act, and its target cannot tell whether it came down since (%s)",
			strings.Join(cooling, "; "))
	}
	if sc == nil {
		note := strings.Join(cooling, "; ")
		p.scaled[memo] = note
		return note
	}
	lead := DefaultScaleLead
	if e, ok := p.in.State.Estimates[ScaleLeadKey(pol.Name, sc.Name)]; ok && e.Samples > 0 {
		lead = e.Mean
	}
	if due := neededBy.Add(-lead - pol.Reserve.LeadTime); p.now.Before(due) {
		note := fmt.Sprintf("scale %q due at %s (lead %s + reserve.lead_time %s before %s)", sc.Name, clock(due), lead, pol.Reserve.LeadTime, clock(neededBy))
		p.scaled[memo] = note
		return note
	}
	li, _ := p.locality(loc)
	amount := 1
	if li != nil {
		var units float64
		if li.meanNode.CPU > 0 {
			units = math.Max(units, float64(short.CPU)/float64(li.meanNode.CPU))
		}
		if li.meanNode.MemoryMB > 0 {
			units = math.Max(units, float64(short.MemoryMB)/float64(li.meanNode.MemoryMB))
		}
		amount = max(1, int(math.Ceil(units)))
	}
	reason := fmt.Sprintf("scale %q up by %d for %s (needed by %s, target lead %s): %s", sc.Name, amount, loc, clock(neededBy), lead, why)
	if len(passed) > 0 {
		reason += "; passed over: " + strings.Join(passed, "; ")
	}
	reason += again
	p.plan.Scale = append(p.plan.Scale, Scale{Policy: pol.Name, Scale: sc.Name, Plugin: sc.Target.Plugin, Locality: loc, Direction: "up",
		Amount: amount, Min: sc.Min, Max: sc.Max, NeededBy: neededBy, Request: request, Reason: reason, DryRun: dry})
	p.decide(state.Decision{Policy: pol.Name, Kind: KindScale, Locality: loc, Request: request, Reason: reason, DryRun: dry})
	note := fmt.Sprintf("scaling %q up by %d", sc.Name, amount)
	p.scaled[memo] = note
	return note
}

// dryScaled marks, after a policy's name in planner.scaled, the note of
// a scale planned dry for it.
const dryScaled = "\x00dry"

// FailedScaleBackoff is how long a scale block waits after an action that
// failed or was refused (starting no cooldown) before the next, from when
// the target answered: a quarter of its cooldown, at least a minute.
func FailedScaleBackoff(cooldown time.Duration) time.Duration { return max(cooldown/4, time.Minute) }

// MaxAskedHold is how long a scale block whose target cannot tell its
// count (webhook, exec) is taken to be at its max once an action asking
// its max took effect: four cooldowns, at least an hour, as the back-off
// after a failure is a quarter of one, at least a minute. foreshape never
// lowers such a count and cannot read it back, so it cannot see the
// receiver, the cluster's autoscaler or an operator scale in: past the
// hold the block is chosen again, and its next action asks its max again
// (a receiver already there changes nothing).
func MaxAskedHold(cooldown time.Duration) time.Duration { return max(4*cooldown, time.Hour) }

// AskedMax returns a scale block's latest action, when its hold ends, and
// whether that action succeeded asking the block's max or more (a max
// lowered since) and its hold (MaxAskedHold, from when it took effect,
// as its cooldown runs) has not ended at now. A later action of the block
// (one asking less, one that failed) ends it at once, as does a max
// raised above the count asked. The actions are the replicated state's,
// which keeps each block's latest successful one whatever its age, so a
// new leader finds the same. For a target that tells its count the
// coordinator reads the count instead (Input.AtMax).
func AskedMax(acts []state.ScaleAction, policy string, s *policies.Scale, now time.Time) (state.ScaleAction, time.Time, bool) {
	for i := len(acts) - 1; i >= 0; i-- {
		a := acts[i]
		if a.Policy != policy || a.Scale != s.Name {
			continue
		}
		if a.Outcome != state.OutcomeDone || a.Count < s.Max {
			return a, time.Time{}, false
		}
		from, _ := a.CooldownFrom()
		until := from.Add(MaxAskedHold(s.Cooldown))
		return a, until, now.Before(until)
	}
	return state.ScaleAction{}, time.Time{}, false
}

// calling returns the open intent of a scale block's target call: the
// target has not answered yet (a nomad-job target waits out a deployment
// before it scales), however long ago the action was decided. A leader
// that dies meanwhile leaves it open until the next leader reconciles it.
func (p *planner) calling(policy, scale string) (state.Intent, bool) {
	key := state.CooldownKey(policy, scale)
	for _, in := range p.in.State.OpenIntents {
		if in.Kind == state.IntentScaleTarget && in.Object == key {
			return in, true
		}
	}
	return state.Intent{}, false
}

// lastFailed returns a scale block's latest action when it failed.
func (p *planner) lastFailed(policy, scale string) (state.ScaleAction, bool) {
	acts := p.in.State.ScaleActions
	for i := len(acts) - 1; i >= 0; i-- {
		a := acts[i]
		if a.Policy != policy || a.Scale != scale {
			continue
		}
		return a, a.Outcome == state.OutcomeFailed
	}
	return state.ScaleAction{}, false
}

// scaleInFlight reports whether one of the policy's scale blocks acted
// recently enough that its capacity may still be coming: its target has
// not answered yet, or it did within the target's lead time (observed,
// else DefaultScaleLead) and PlaceholderGrace of its last action. A move worth holding for capacity
// waits no longer than that.
func (p *planner) scaleInFlight(pol *policies.Policy) bool {
	if pol == nil {
		return false
	}
	for i := range pol.Scales {
		s := &pol.Scales[i]
		if _, ok := p.calling(pol.Name, s.Name); ok {
			return true
		}
		cd, ok := p.in.State.Cooldowns[state.CooldownKey(pol.Name, s.Name)]
		if !ok {
			continue
		}
		lead := DefaultScaleLead
		if e, ok := p.in.State.Estimates[ScaleLeadKey(pol.Name, s.Name)]; ok && e.Samples > 0 {
			lead = e.Mean
		}
		if p.now.Before(cd.Add(lead + PlaceholderGrace)) {
			return true
		}
	}
	return false
}

// hotspots scales policies whose locality is forecast to cross its line
// when no request relieves it.
func (p *planner) hotspots() {
	for _, pol := range p.in.Policies {
		if len(pol.Scales) == 0 {
			continue
		}
		if _, done := p.scaled[pol.Name]; done {
			continue
		}
		loc := pol.Locality.String()
		metric, at, excess := p.crossing(loc, true)
		if metric == "" || p.relieved(loc) {
			continue
		}
		li, ok := p.locality(loc)
		if !ok {
			continue
		}
		short := li.shortfall(metric, excess)
		f := p.forecast(loc, metric)
		if g := p.fcDemand[loc+":"+metric]; g != nil {
			f = g
		}
		figs, line := againstLine(true, f.Line, f.Line+excess)
		why := fmt.Sprintf("hotspot: %s %s %s crosses the %s line in %s at %s and no request relieves it",
			policies.QuantileName(f.Quantile), metric, figs[0], line, loc, clock(at))
		if b := li.placeNote(); b != "" {
			why += " (" + b + ")"
		}
		p.scaleFor(pol, loc, short, at, why, "", false)
	}
}
