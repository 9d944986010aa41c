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
//   - no node it took out of scheduling is still owed back (givesBack:
//     owedBack, the rule the restores act on): a node is back, or given
//     back, or was never foreshape's to give back (an operator's cordon,
//     one a killed leader left unconfirmed: a hold decision said so), or
//     stays out by design (a whole node moved away);
//   - for a drain window's requests, all of the window's are forgettable
//     (they read each other's intents).
//
// A drain window a reload took away (shape.WindowGone: its policy or
// schedule gone, its cron no longer opening it) is forgotten sooner: once
// every request of it ended (cancelled, done or failed; none runs), no
// node is owed back and no intent is open, whatever queue.keep_finished,
// so that a reload that puts the schedule back queues the window as a new
// one. Kept, its requests' origin keys blocked the window's new requests
// (the state takes one request per origin key; the planner queues none it
// holds) and its intents (the window's take-out, given back) the take-out
// of its nodes: the re-added window queued nothing and its nodes stayed
// in scheduling, the work placed on them since left where it was. The
// decision log keeps their moves, cancels and give-backs. A window a
// reload put back before it ended drops what the reload's cancels left
// (readded), so that it queues that work again.
//
// Callers hold c.mu.
func (c *Coordinator) forget(ctx context.Context, now time.Time, view state.ActView) {
	keep := c.cfg.KeepFinished
	if keep <= 0 {
		keep = DefaultKeepFinished
	}
	busy := busyRequests(view)
	ok := map[string]bool{}
	windowOK, windowGone := map[string]bool{}, map[string]bool{}
	for _, r := range view.Requests {
		free := r.State.Terminal() && !r.Finished.IsZero() && !busy[r.ID] && !c.givesBack(view, now, r)
		done := free && !now.Before(r.Finished.Add(keep)) && shape.Spent(&r, now, c.pols)
		ok[r.ID] = done
		if r.Origin == "schedule" {
			key := windowKey(r)
			prev, seen := windowOK[key]
			windowOK[key] = done && (prev || !seen)
			gone := free && shape.WindowGone(&r, c.pols) != ""
			prev, seen = windowGone[key]
			windowGone[key] = gone && (prev || !seen)
		}
	}
	var ids []string
	for _, r := range view.Requests {
		if ok[r.ID] && (r.Origin != "schedule" || windowOK[windowKey(r)]) || r.Origin == "schedule" && windowGone[windowKey(r)] {
			ids = append(ids, r.ID)
		}
	}
	if more, _ := c.readded(now, view, busy); len(more) > 0 {
		listed := map[string]bool{}
		for _, id := range ids {
			listed[id] = true
		}
		for _, id := range more {
			if !listed[id] {
				ids = append(ids, id)
			}
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

// busyRequests names the requests of view with an open intent or a held
// reservation.
func busyRequests(view state.ActView) map[string]bool {
	busy := map[string]bool{}
	for _, in := range view.OpenIntents {
		busy[in.Request] = true
	}
	for _, rs := range view.Reservations {
		if rs.State != state.ReservationReleased {
			busy[rs.Request] = true
		}
	}
	return busy
}

// givesBack reports whether the finished request r still owes back a
// node it took out of scheduling (owedBack, the rule the restores act
// on), due now or later, and the node is still out of scheduling in the
// view: a node back in scheduling (someone made it eligible) or gone from
// the cluster is owed nothing more.
func (c *Coordinator) givesBack(view state.ActView, now time.Time, r state.MigrationRequest) bool {
	for _, node := range append(backNodes(r), c.joinedNodes(now, r)...) {
		if c.owedBack(view, now, r, node).owes != owesNothing && c.outOfScheduling(node) {
			return true
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
