package migrate

import (
	"context"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/shape"
	"github.com/foreshape/foreshape/agent/state"
)

// DefaultKeepFinished is how long a finished request stays in the queue at
// least (queue.keep_finished).
const DefaultKeepFinished = 24 * time.Hour

// forget removes from the queue the finished requests nothing reads any
// more, so that the replicated state of a long-lived cluster (and each of
// its snapshots) does not grow with every move it ever made. A request is
// forgotten, with its closed intents and released reservations, once all
// of these hold:
//   - it finished at least KeepFinished ago;
//   - the planner is done with it (shape.Spent): its origin submits no more
//     and the work it moved no longer counts at its target;
//   - no intent of it is open and no reservation of it is held;
//   - no node it took out of scheduling is still owed back (givesBack,
//     as the restores read it): a node is back, or given back, or was
//     never foreshape's to give back (an operator's cordon, one a killed
//     leader left unconfirmed: a hold decision said so), or stays out by
//     design (a whole node moved away);
//   - for a drain window's requests, all of the window's are forgettable
//     (they read each other's intents).
//
// Callers hold c.mu.
func (c *Coordinator) forget(ctx context.Context, now time.Time, view state.ActView) {
	keep := c.cfg.KeepFinished
	if keep <= 0 {
		keep = DefaultKeepFinished
	}
	busy := map[string]bool{}
	for _, in := range view.OpenIntents {
		busy[in.Request] = true
	}
	for _, rs := range view.Reservations {
		if rs.State != state.ReservationReleased {
			busy[rs.Request] = true
		}
	}
	ok := map[string]bool{}
	windowOK := map[string]bool{}
	for _, r := range view.Requests {
		done := r.State.Terminal() && !r.Finished.IsZero() && !now.Before(r.Finished.Add(keep)) && !busy[r.ID] &&
			shape.Spent(&r, now, c.pols) && !c.givesBack(r)
		ok[r.ID] = done
		if r.Origin == "schedule" {
			key := windowKey(r)
			prev, seen := windowOK[key]
			windowOK[key] = done && (prev || !seen)
		}
	}
	var ids []string
	for _, r := range view.Requests {
		if ok[r.ID] && (r.Origin != "schedule" || windowOK[windowKey(r)]) {
			ids = append(ids, r.ID)
		}
	}
	if len(ids) == 0 {
		return
	}
	res, err := c.apply(ctx, state.PruneRequests{IDs: ids})
	if err != nil {
		c.log.Warn("could not forget finished requests; tried again next pass", "requests", len(ids), logKeyError, err)
		return
	}
	c.log.Debug("forgot finished requests", "requests", res.Applied, "first", ids[0], "keep_finished", keep)
}

// givesBack reports whether a node the finished request r took out of
// scheduling is still out and foreshape still owes it back: whether
// restoreWindows, restoreAbandoned or restoreSpreads would act on it (or
// keep failing to). It reads what they read; a node it is not theirs to
// give back (an operator's, one a killed leader left unconfirmed, a whole
// node moved away) owes nothing.
func (c *Coordinator) givesBack(r state.MigrationRequest) bool {
	switch {
	case r.Origin == "schedule":
		if r.Deadline.IsZero() || r.State == state.RequestCancelled {
			return false
		}
		key := windowKey(r)
		for _, node := range windowNodes(r) {
			if !c.outOfScheduling(node) || c.announced(intentID(state.IntentNodeEligibility, node, key, -1)) {
				continue
			}
			took, unconfirmed := c.tookOut(append(attemptIntents(node, r), intentID(state.IntentNodeEligibility, node, key, 0))...)
			if !unconfirmed && (took || c.drained(node, r)) {
				return true
			}
		}
	case r.Resource.Kind == state.ResourceNode:
		node := r.Resource.ID
		if (r.State != state.RequestCancelled && r.State != state.RequestFailed) || !c.outOfScheduling(node) ||
			c.announced(intentID(state.IntentNodeEligibility, node, r.ID, -1)) {
			return false
		}
		taken, unconfirmed := c.tookOut(attemptIntents(node, r)...)
		return taken || (!unconfirmed && c.drained(node, r) && c.drainedFrom(node, r) != "")
	case shape.Within(&r):
		for _, m := range r.Moves {
			if c.outOfScheduling(m.Node) && c.cordoned(r, m.Node) && !c.announced(intentID(state.IntentNodeEligibility, m.Node, r.ID, -1)) {
				return true
			}
		}
	}
	return false
}

// outOfScheduling reports whether the view shows node ineligible or
// draining (a node gone from the cluster is not).
func (c *Coordinator) outOfScheduling(node string) bool {
	n, ok := c.view.nodes[node]
	return ok && (n.SchedulingEligibility != nomadapi.NodeSchedulingEligible || n.Drain)
}
