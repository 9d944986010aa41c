package migrate

import (
	"slices"
	"time"

	"github.com/foreshape/foreshape/agent/shape"
	"github.com/foreshape/foreshape/agent/state"
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
//     whose drain only ends;
//   - a whole-node request that was cancelled or failed owes its node the
//     same, at once; a done one owes nothing (the node stays out by
//     design, as after `nomad node drain`);
//   - a spread that ended owes each node it cordoned (seen made), once no
//     other spread moves work off it and it does not drain.
//
// A node two of them hold (a spread's cordon and a drain window) goes back
// only once neither holds it: a window's give-back waits while a spread
// moves work off the node, a spread's while a window that lists the node
// has begun and not ended.
//
// A node whose give-back intent (eligibility/node/key/-1) is announced is
// owed nothing more.
func (c *Coordinator) owedBack(view state.ActView, now time.Time, r state.MigrationRequest, node string) debt {
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
		took, unconfirmed := c.tookOut(append(attemptIntents(node, r), intentID(state.IntentNodeEligibility, node, key, 0))...)
		if unconfirmed || (!took && !c.drained(node, r)) {
			return debt{}
		}
		// Due once the window has ended and no spread moves work off
		// the node any more (a spread that began while the node was out
		// of scheduling cordoned nothing and relies on it staying out).
		end, ok := c.windowEnd(r)
		d := debt{owes: owesEligible, due: ok && !now.Before(end) && !c.spreadRuns(view, node)}
		// Drained and not cordoned by foreshape: what the node was
		// before the drain decides. An operator's cordon (or drain) from
		// before stays; foreshape ends only its own drain.
		if before := c.drainedFrom(node, r); !took && (before == state.NodeWasIneligible || before == state.NodeWasDraining) {
			d.owes, d.before = owesDrainEnd, before
		}
		return d
	case r.Resource.Kind == state.ResourceNode:
		if node != r.Resource.ID || (r.State != state.RequestCancelled && r.State != state.RequestFailed) ||
			c.announced(intentID(state.IntentNodeEligibility, node, r.ID, -1)) {
			return debt{}
		}
		taken, unconfirmed := c.tookOut(attemptIntents(node, r)...)
		switch before := c.drainedFrom(node, r); {
		case taken:
			return debt{owes: owesEligible, due: true}
		case unconfirmed || !c.drained(node, r):
		case before == state.NodeWasIneligible || before == state.NodeWasDraining:
			// Drained, not cordoned, by foreshape: its drain ends, an
			// operator's cordon (or drain) from before stays.
			return debt{owes: owesDrainEnd, before: before, due: true}
		case before == state.NodeWasEligible:
			return debt{owes: owesEligible, due: true}
		}
		return debt{}
	case shape.Within(&r):
		if !r.State.Terminal() || !c.cordoned(r, node) || c.announced(intentID(state.IntentNodeEligibility, node, r.ID, -1)) {
			return debt{}
		}
		// A node draining by then (an operator's or a drain's now) stays
		// as it is until the drain ends; one another spread moves work
		// off, or a drain window holds, until they end (the window found
		// it out of scheduling and took nothing out of its own).
		n, ok := c.view.nodes[node]
		return debt{owes: owesEligible, due: ok && !n.Drain && !c.spreadRuns(view, node) && !c.windowHolds(view, now, node)}
	}
	return debt{}
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

// windowHolds reports whether a drain window that has begun (a request of
// it started: running or finished, not cancelled) and not yet ended lists
// node: the window keeps it out of scheduling until it ends.
func (c *Coordinator) windowHolds(view state.ActView, now time.Time, node string) bool {
	for _, r := range view.Requests {
		if r.Origin != "schedule" || r.Deadline.IsZero() || r.State == state.RequestCancelled || r.State.Queued() ||
			!slices.Contains(windowNodes(r), node) {
			continue
		}
		if end, ok := c.windowEnd(r); ok && now.Before(end) {
			return true
		}
	}
	return false
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
