package migrate

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/shape"
	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/policies"
)

// owes is what foreshape still owes a node a request took out of
// scheduling.
type owes int

const (
	// owesNothing: the node was never foreshape's to give back (an
	// operator's cordon, one a killed leader left unconfirmed), is given
	// back already, or stays out by design (a whole node moved away).
	owesNothing owes = iota
	// owesEligible: make the node eligible again (ending foreshape's
	// drain if it still runs).
	owesEligible
	// owesDrainEnd: end foreshape's drain of a node an operator had
	// cordoned (or was draining) before it; the operator's choice stays
	// (keepOperators).
	owesDrainEnd
)

// debt is what a request owes one node, and whether it is due.
type debt struct {
	owes owes
	// before is, for owesDrainEnd, what the node was before foreshape's
	// drain: state.NodeWasIneligible or state.NodeWasDraining.
	before string
	// due: the give-back is to be made now. An owed node not due waits:
	// its window has not ended, another spread still moves work off it,
	// it drains, or the view does not show it.
	due bool
	// window, when the give-back would be due but for a drain window of
	// the policies under way that takes the node down (held), is that
	// window: the node waits for its end.
	window *openWindow
	// left: a drain window's late joiner that has left the window's
	// localities (leftWindow), due before the window's end.
	left bool
}

// owedBack is the one rule for giving back a node: what request r still
// owes node, which r took out of scheduling. restoreWindows,
// restoreAbandoned and restoreSpreads act on it when it is due; forget
// keeps r while it owes a node that is still out of scheduling, due or
// not. It reads only the replicated state and the view:
//   - a drain window's request (origin "schedule", no longer queued,
//     cancelled included) owes, once the window has ended, each of the
//     window's nodes it took out with a cordon it saw made (its own or
//     the window's) or drained: back to scheduling, except a node an
//     operator had cordoned (or was draining) before foreshape's drain,
//     whose drain only ends; a node it took out as a late joiner that has
//     left the window's localities (leftWindow) it owes at once;
//   - a whole-node request that was cancelled or failed owes its node the
//     same, at once; a done one owes nothing (the node stays out by
//     design, as after `nomad node drain`), and neither does a given-up
//     one whose node a later whole-node request moved away (done);
//   - a spread that ended owes each node it cordoned (seen made), once no
//     other spread moves work off it and it does not drain.
//
// A node two of them hold (a spread's cordon and a drain window, say)
// goes back only once nothing foreshape runs holds it (held): a
// give-back waits while a spread moves work off the node, a drain window
// that lists it (or takes it down as a node that joined its localities
// late: joinsWindow) has begun and not ended, a drain window of the policies
// that takes it down runs (whether or not it queued a request: another
// policy's drain may have moved its work), or a whole-node request of it
// is queued (not while the queue is paused, which takes nothing out:
// paused, nor planned dry) or running. Ending foreshape's drain of a node that stays out
// (owesDrainEnd) gives nothing back and waits for none of them: a given-up
// request's drain does not run on under a spread's cordon. A node a
// whole-node request moved away (done) after a spread, a window or a
// given-up whole-node request took it out is owed nothing by them: it
// stays out of scheduling by design.
//
// A node whose give-back intent (eligibility/node/key/-1) is announced is
// owed nothing more.
func (c *Coordinator) owedBack(view state.ActView, now time.Time, r state.MigrationRequest, node string) debt {
	return c.debtOf(view, now, r, node, true)
}

// owesNode is what r owes node (owedBack's owes), without reading what
// else holds it, which decides only when the give-back is due:
// stillHolds reads it of a window whose requests were all cancelled, and
// held reads such a window (heldByRequest), so that two of them do not
// read each other without end.
func (c *Coordinator) owesNode(view state.ActView, now time.Time, r state.MigrationRequest, node string) owes {
	return c.debtOf(view, now, r, node, false).owes
}

// debtOf is owedBack; readHeld false leaves held unread (due false, no
// window): the debt's owes alone.
func (c *Coordinator) debtOf(view state.ActView, now time.Time, r state.MigrationRequest, node string, readHeld bool) debt {
	held := func() (bool, *openWindow) {
		if !readHeld {
			return true, nil
		}
		return c.held(view, now, node, r)
	}
	switch {
	case r.Origin == "schedule":
		// A cancelled request owes what it took out too: one that waited
		// queued through its window (cancelled at its end) had its node
		// held (holdNodes).
		if r.Deadline.IsZero() || r.State.Queued() {
			return debt{}
		}
		key := windowKey(r)
		if c.announced(intentID(state.IntentNodeEligibility, node, key, -1)) {
			return debt{}
		}
		// Only what foreshape took out is given back: a cordon it saw
		// made, or its drain of the node. A node already out of
		// scheduling when the window began (an operator's cordon: no
		// intent was opened for it) stays out, and so does a cordon the
		// next leader only found in effect (settle said so).
		ids := append(attemptIntents(node, r), intentID(state.IntentNodeEligibility, node, key, 0))
		took, unconfirmed := c.tookOut(ids...)
		if unconfirmed || (!took && !c.drained(node, r)) {
			return debt{}
		}
		if c.movedAway(view, node, c.firstDone(append(ids, perAttempt(state.IntentDrainNode, node, r)...)...)) {
			return debt{}
		}
		// Due once the window has ended and nothing else holds the node
		// (a spread that began while the node was out of scheduling
		// cordoned nothing and relies on it staying out).
		end, ok := c.windowEnd(r)
		ended := ok && !now.Before(end)
		if !ended && ok && shape.WindowGone(&r, c.pols) != "" && !windowMoving(view, r) {
			// A reload took its schedule out of the policies, or moved
			// it (shape.WindowGone): its window no longer comes, and once
			// none of its moves runs, nothing is left to hold the node
			// for (its queued requests are cancelled). Held until its
			// start, the node stood out of scheduling for nothing up to
			// migrate.lead_time.
			ended = true
		}
		left := !ended && c.leftWindow(r, node)
		if left {
			// A late joiner that left the window's localities: the window
			// no longer takes it down, and another locality's scheduling
			// would lose it until the window's end.
			ended = true
		}
		if !ended && ok && c.operatorCancelled(view, r) {
			// An operator cancelled the window's requests before any
			// started: the window moves nothing more (carryOut queues
			// none of it again until its end), and nothing is left to
			// hold its nodes for.
			ended = true
		}
		// Drained and not cordoned by foreshape: what the node was
		// before the drain decides. An operator's cordon (or drain) from
		// before stays; foreshape ends only its own drain, at once: the
		// node stays out of scheduling, which is all anything else that
		// holds it needs.
		if before := c.drainedFrom(node, r); !took && (before == state.NodeWasIneligible || before == state.NodeWasDraining) {
			return debt{owes: owesDrainEnd, before: before, due: ended}
		}
		held, w := held()
		d := debt{owes: owesEligible, due: ended && !held, left: left}
		if ended {
			d.window = w
		}
		return d
	case r.Resource.Kind == state.ResourceNode:
		if node != r.Resource.ID || (r.State != state.RequestCancelled && r.State != state.RequestFailed) ||
			c.announced(intentID(state.IntentNodeEligibility, node, r.ID, -1)) {
			return debt{}
		}
		taken, unconfirmed := c.tookOut(attemptIntents(node, r)...)
		// Emptied since by a later whole-node request (done): the node
		// stays out by design, as after a spread's or a window's hold.
		if c.movedAway(view, node, c.firstDone(append(attemptIntents(node, r), perAttempt(state.IntentDrainNode, node, r)...)...)) {
			return debt{}
		}
		held, w := held()
		free := !held
		switch before := c.drainedFrom(node, r); {
		case taken:
			return debt{owes: owesEligible, due: free, window: w}
		case unconfirmed || !c.drained(node, r):
		case before == state.NodeWasIneligible || before == state.NodeWasDraining:
			// Drained, not cordoned, by foreshape: its drain ends, at once
			// (the node stays out of scheduling, so nothing that holds it
			// waits on that), an operator's cordon (or drain) from before
			// stays.
			return debt{owes: owesDrainEnd, before: before, due: true}
		case before == state.NodeWasEligible:
			return debt{owes: owesEligible, due: free, window: w}
		}
		return debt{}
	case shape.Within(&r):
		if !r.State.Terminal() || !c.cordoned(r, node) || c.announced(intentID(state.IntentNodeEligibility, node, r.ID, -1)) {
			return debt{}
		}
		if c.movedAway(view, node, c.firstDone(attemptIntents(node, r)...)) {
			return debt{}
		}
		// A node draining by then (an operator's or a drain's now) stays
		// as it is until the drain ends; one something else holds (another
		// spread, a drain window, a whole-node move: each found it out of
		// scheduling and took nothing out of its own), until it ends.
		n, ok := c.view.nodes[node]
		held, w := held()
		d := debt{owes: owesEligible, due: ok && !n.Drain && !held}
		if ok && !n.Drain {
			d.window = w
		}
		return d
	}
	return debt{}
}

// OperatorCancel is the reason of an operator's cancel of a request
// (shape.OperatorCancel).
const OperatorCancel = shape.OperatorCancel

// operatorCancelled reports whether an operator called off r's drain
// window before it moved anything: every request of the window was
// cancelled before it started, and the last cancel was an operator's
// (the others, say, found nothing to move as they were to start, before
// the operator cancelled what was left). Its nodes are given back at once
// (owedBack), not at its end, and the planner's new requests of it are
// not queued again until its end (carryOut): the operator said no to this
// window. An operator who cancels one move and leaves the rest to run
// does not: the cancels foreshape makes later (a job stopped, its work
// gone) leave the window under way, its nodes out until its end. A hold
// request (shape.WindowHold) that started holds the nodes: the window is
// not called off then.
func (c *Coordinator) operatorCancelled(view state.ActView, r state.MigrationRequest) bool {
	if r.Origin != "schedule" || r.Deadline.IsZero() || r.State != state.RequestCancelled || !r.Started.IsZero() {
		return false
	}
	return c.calledOffWindows(view)[windowKey(r)].off
}

// windowMoving reports whether a request of r's drain window runs.
func windowMoving(view state.ActView, r state.MigrationRequest) bool {
	key := windowKey(r)
	return slices.ContainsFunc(view.Requests, func(x state.MigrationRequest) bool {
		return x.Origin == "schedule" && x.State == state.RequestRunning && windowKey(x) == key
	})
}

// backNodes are the nodes request r may owe back (owedBack): a window's
// nodes, a whole node, the nodes a spread moves work off.
func backNodes(r state.MigrationRequest) []string {
	switch {
	case r.Origin == "schedule":
		return windowNodes(r)
	case r.Resource.Kind == state.ResourceNode:
		return []string{r.Resource.ID}
	case shape.Within(&r):
		var nodes []string
		for _, m := range r.Moves {
			if !slices.Contains(nodes, m.Node) {
				nodes = append(nodes, m.Node)
			}
		}
		return nodes
	}
	return nil
}

// held reports whether anything else foreshape runs holds node out of
// scheduling: a spread moving work off it, a drain
// window that has begun (a request of it started: running or finished, not
// cancelled) and not yet ended and lists it or takes it down as a node
// that joined its localities late (joinsWindow), or one all of whose
// requests foreshape cancelled while it still holds a node it took out
// (cancelledHolds) that takes it down so, a whole-node request of it
// (not a window's) queued (not while the queue is paused: paused, nor
// planned dry) or running, or a drain window of the policies
// that takes it down running now (windowHold), which it names (w) when
// nothing else holds the node. r's own holds, and its window's, do not
// count. Before the term's first pass (c.planned) every node is held:
// without the term's policies no window's end is known (windowEnd reads
// one under way as ended at its start, or by a term-old schedule), and
// the follower of a new leader runs as its term's reconciliation ends,
// before its first plan.
func (c *Coordinator) held(view state.ActView, now time.Time, node string, r state.MigrationRequest) (held bool, w *openWindow) {
	if !c.planned {
		return true, nil
	}
	if c.heldByRequest(view, now, node, r) {
		return true, nil
	}
	except := ""
	if r.Origin == "schedule" {
		except = windowKey(r)
	}
	if w, ok := c.holdRequestHold(view, now, node, except); ok {
		return true, &w
	}
	if w, ok := c.windowHold(view, now, node, except); ok {
		return true, &w
	}
	return false, nil
}

// heldByRequest is held's part read from the queue: a spread, a begun
// drain window's requests, a whole-node request.
func (c *Coordinator) heldByRequest(view state.ActView, now time.Time, node string, r state.MigrationRequest) bool {
	joins := map[string]bool{} // by window: joinsWindow, read once a call
	holds := map[string]bool{} // by window: cancelledHolds, read once a call
	for _, x := range view.Requests {
		if x.ID == r.ID {
			continue
		}
		switch {
		case shape.WindowHold(&x), x.Origin == "schedule" && x.State.Queued():
			// Read by holdRequestHold, which names its window.
		case x.Origin == "schedule":
			if x.Deadline.IsZero() || (r.Origin == "schedule" && windowKey(x) == windowKey(r)) {
				continue
			}
			listed := slices.Contains(windowNodes(x), node)
			if x.State == state.RequestCancelled {
				if listed {
					// Its own take-out, if any, it gives back at its end.
					continue
				}
				if end, ok := c.windowEnd(x); !ok || !now.Before(end) {
					// Ended: cancelledHolds, which reads the queue, need
					// not be asked.
					continue
				}
			}
			if !listed {
				// A node that joined the window's localities after its
				// requests were made: holdJoined takes it out too, and so
				// it does while a window all of whose requests foreshape
				// cancelled still holds a node it took out (cancelledHolds).
				key := windowKey(x)
				j, read := joins[key]
				if !read {
					j = c.joinsWindow(x, node)
					joins[key] = j
				}
				if !j {
					continue
				}
				if x.State == state.RequestCancelled {
					h, read := holds[key]
					if !read {
						h = c.cancelledHolds(view, now, x)
						holds[key] = h
					}
					if !h {
						continue
					}
				}
			}
			if end, ok := c.windowEnd(x); ok && now.Before(end) {
				return true
			}
		case x.Resource.Kind == state.ResourceNode:
			// A queued one holds nothing while the queue is paused
			// (paused): it takes its node out after the resume; nor one
			// planned dry (forecast_only), which never starts and takes
			// nothing out (holdNodes).
			if x.Resource.ID == node && !x.State.Terminal() && !(x.State.Queued() && (c.paused() || c.cfg.ForecastOnly || c.plannedDryNow()(x))) {
				return true
			}
		case shape.Within(&x):
			if x.State != state.RequestRunning {
				continue
			}
			if slices.ContainsFunc(x.Moves, func(m state.Move) bool { return m.Node == node }) {
				return true
			}
		}
	}
	return false
}

// movedAway reports whether a whole-node request of node (not a window's)
// finished done after since: the node was emptied and stays out of
// scheduling by design.
func (c *Coordinator) movedAway(view state.ActView, node string, since time.Time) bool {
	for _, x := range view.Requests {
		if x.Resource.Kind == state.ResourceNode && x.Resource.ID == node && x.Origin != "schedule" &&
			x.State == state.RequestDone && x.Finished.After(since) {
			return true
		}
	}
	return false
}

// firstDone is when the first of the intents ids (each through its redos)
// was seen done; zero when none was.
func (c *Coordinator) firstDone(ids ...string) time.Time {
	var first time.Time
	for _, id := range ids {
		if in, ok := c.latestIntent(id); ok && in.Outcome == state.OutcomeDone && (first.IsZero() || in.Closed.Before(first)) {
			first = in.Closed
		}
	}
	return first
}

// foreshapeHold names a request other than r that took node out of
// scheduling itself (seen made) and has not given it back yet: a spread,
// running or ended (spreadCordoned; spread is true), or a whole-node
// request given up or a drain window (not r's) that still owes the node
// back (owedBack). "" when none did: the node was out of scheduling by
// an operator's hand, or by a cordon no leader saw made.
func (c *Coordinator) foreshapeHold(view state.ActView, now time.Time, node string, r state.MigrationRequest) (id string, spread bool) {
	if s := c.spreadCordoned(view, node); s != "" {
		return s, true
	}
	for _, x := range view.Requests {
		if x.ID == r.ID || shape.Within(&x) || (r.Origin == "schedule" && x.Origin == "schedule" && windowKey(x) == windowKey(r)) {
			continue
		}
		if d := c.owedBack(view, now, x, node); d.owes == owesEligible {
			if x.Origin == "schedule" {
				return windowKey(x), false
			}
			return x.ID, false
		}
	}
	return "", false
}

// spreadCordoned names a spread that cordoned node (seen made) and has
// not given it back yet, running or ended; "" when none did.
func (c *Coordinator) spreadCordoned(view state.ActView, node string) string {
	for _, r := range view.Requests {
		if shape.Within(&r) && c.cordoned(r, node) && !c.announced(intentID(state.IntentNodeEligibility, node, r.ID, -1)) {
			return r.ID
		}
	}
	return ""
}

// openWindow is a drain window of the policies under way: it takes down
// the nodes of its localities whose names match its glob, as the planner
// reads them (shape's drainWindow), until its end. A node down now counts
// too: it may come back before the end.
type openWindow struct {
	// key is windowKey's form of it, window/POLICY/SCHEDULE/START.
	key string
	// policy and schedule name it.
	policy, schedule string
	end              time.Time
	localities       []policies.Locality
	nodes            string
}

// takes reports whether w takes down node n (in one of its localities,
// its name matching its glob).
func (w openWindow) takes(n *nomadapi.NodeListStub) bool {
	if w.nodes != "" {
		if ok, _ := path.Match(w.nodes, n.Name); !ok {
			return false
		}
	}
	return slices.ContainsFunc(w.localities, func(l policies.Locality) bool { return l.Matches(n.Datacenter, n.NodePool, n.NodeClass) })
}

// openWindows are the drain windows of the current policies (c.pols)
// that have begun and not ended at now, whether or not they queued a
// request: two policies may drain shared nodes at once, and the planner
// moves each allocation once (shape's taken), so a window may find its
// nodes emptied by another's requests and queue none, its nodes out of
// scheduling by that other window's hold. A forecast_only policy's are
// left out: its requests are planned dry and take nothing out. Read once
// a pass (c.pols and now), as held asks for each node owed back.
func (c *Coordinator) openWindows(now time.Time) []openWindow {
	if c.open.read && c.open.at.Equal(now) && slices.Equal(c.open.pols, c.pols) {
		return c.open.windows
	}
	var out []openWindow
	for _, p := range c.pols {
		if p == nil || p.ForecastOnly {
			continue
		}
		for si := range p.Schedules {
			s := &p.Schedules[si]
			if s.Action != policies.ActionDrain {
				continue
			}
			for _, w := range s.Windows(now, now.Add(time.Nanosecond)) {
				out = append(out, openWindow{key: "window/" + p.Name + "/" + s.Name + "/" + strconv.FormatInt(w.Start.Unix(), 10),
					policy: p.Name, schedule: s.Name, end: w.End, localities: s.Localities, nodes: s.Nodes})
			}
		}
	}
	c.open.read, c.open.at, c.open.pols, c.open.windows = true, now, c.pols, out
	return out
}

// windowHold finds a drain window of the policies running at now that
// takes node down, other than the one keyed except (a window's own end
// does not wait for itself): the one that ends last when several do.
// A node the view does not list (purged) is held by none, and a window an
// operator called off (windowCalledOff) holds none: it gave its own nodes
// back and takes nothing out until its end.
func (c *Coordinator) windowHold(view state.ActView, now time.Time, node, except string) (openWindow, bool) {
	n, listed := c.view.nodes[node]
	if !listed {
		return openWindow{}, false
	}
	var last openWindow
	found := false
	for _, w := range c.openWindows(now) {
		if w.key != except && w.takes(n) && (!found || w.end.After(last.end)) && !c.windowCalledOff(view, w.key) {
			last, found = w, true
		}
	}
	return last, found
}

// holdRequestHold finds a drain window other than the one keyed except
// that holds node from its lead time, before windowHold reads the window
// as under way: a request of it is queued (holdWindows takes the window's
// nodes out from its queueing; not one planned dry, nor while the queue
// is paused, which takes nothing out: paused), or its hold request (shape.WindowHold) has started and was not
// cancelled; the request lists node, or the window takes it down as a
// node that joined its localities late (joinsWindow: holdJoined takes such
// a node out too), and the window has not ended at now nor been taken
// away by a reload (windowGone).
// The one that ends last when several do.
func (c *Coordinator) holdRequestHold(view state.ActView, now time.Time, node, except string) (openWindow, bool) {
	var last openWindow
	found := false
	seen := map[string]bool{}
	for _, x := range view.Requests {
		if x.Origin != "schedule" || x.Deadline.IsZero() || x.State == state.RequestCancelled ||
			!x.State.Queued() && !shape.WindowHold(&x) || windowKey(x) == except || seen[windowKey(x)] {
			continue
		}
		if x.State.Queued() && (c.cfg.ForecastOnly || c.paused() || c.plannedDryNow()(x)) {
			continue
		}
		if !slices.Contains(windowNodes(x), node) && !c.joinsWindow(x, node) {
			continue
		}
		seen[windowKey(x)] = true
		end, ok := c.windowEnd(x)
		name, _, named := windowStart(x)
		if !ok || !named || !now.Before(end) || found && !end.After(last.end) || c.windowGone(view, x) {
			continue
		}
		last, found = openWindow{key: windowKey(x), policy: x.Policy, schedule: name, end: end}, true
	}
	return last, found
}

// windowGone reports whether a reload took x's drain window away (its
// policy or schedule gone, its cron no longer opening it: shape.WindowGone)
// and none of the window's moves runs: it holds no node then, another's
// as little as its own (owedBack), or a give-back waits for a window that
// never comes (its start when the schedule is gone, its old end when the
// cron moved).
func (c *Coordinator) windowGone(view state.ActView, x state.MigrationRequest) bool {
	return shape.WindowGone(&x, c.pols) != "" && !windowMoving(view, x)
}

// sayWindowHold says, once per node, owner (a window's key or a
// request's ID) and holding window, that a node owner would give back
// now stays out of scheduling because a drain window of the policies
// takes it down until its end.
func (c *Coordinator) sayWindowHold(ds *[]state.Decision, now time.Time, r state.MigrationRequest, owner, node string, w openWindow) {
	key := "windowhold/" + owner + "/" + node + "/" + w.key
	if _, said := c.recent[key]; said {
		return
	}
	c.recent[key] = now
	took := "request " + r.ID + ", which took it out, has ended"
	if shape.Within(&r) {
		took = "spread " + r.ID + ", which took it out, has ended"
	} else if r.Origin == "schedule" {
		took = "the window that took it out (" + windowName(r) + ") is over"
	}
	*ds = append(*ds, state.Decision{Time: now, Kind: "hold", Policy: r.Policy, Locality: r.Source, Request: r.ID,
		Reason: fmt.Sprintf("node %s stays out of scheduling: drain window %s/%s holds it until %s; %s, and foreshape gives the node back once %s ends, unless something else of foreshape's holds it then",
			c.decisionName(node), w.policy, w.schedule, clockOn(now, w.end), took, w.schedule)})
}

// clockOn says t as 15:04 UTC, with its date when that is not now's.
func clockOn(now, t time.Time) string {
	now, t = now.UTC(), t.UTC()
	if y, m, d := t.Date(); y != now.Year() || m != now.Month() || d != now.Day() {
		return t.Format("2006-01-02 15:04 UTC")
	}
	return t.Format("15:04 UTC")
}

// windowName names a schedule request's window for people:
// "POLICY/SCHEDULE from 15:04 UTC".
func windowName(r state.MigrationRequest) string {
	name, start, ok := windowStart(r)
	if !ok {
		return windowKey(r)
	}
	return r.Policy + "/" + name + " from " + start.Format("15:04 UTC")
}

// windowStart reads a schedule request's origin key,
// schedule/POLICY/SCHEDULE/START/RESOURCE (and, for work queued again in
// place of a kept request, /again/ID): its schedule and its window's
// start.
func windowStart(r state.MigrationRequest) (string, time.Time, bool) {
	parts := strings.SplitN(r.OriginKey, "/", 5)
	if len(parts) < 5 || parts[0] != "schedule" {
		return "", time.Time{}, false
	}
	sec, err := strconv.ParseInt(parts[3], 10, 64)
	if err != nil {
		return "", time.Time{}, false
	}
	return parts[2], time.Unix(sec, 0).UTC(), true
}
