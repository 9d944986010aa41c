package migrate

import (
	"time"

	"github.com/foreshape/foreshape/agent/shape"
	"github.com/foreshape/foreshape/agent/state"
)

// readded lists the requests forget drops from a drain window a reload
// took away and a later reload put back before its end (its schedule
// fires at its start again: shape.WindowGone says nothing), so that the
// window queues again the work the first reload's cancels left unmoved.
// Kept, a request cancelled so (shape.ReloadCancelled) held its origin key
// (the state takes one request per origin key; the planner queues none it
// holds): a schedule removed while one of its moves ran, and put back
// before the window's end, left the work of its other requests on its
// nodes through the window.
//
//   - A window none of whose requests runs or is queued, none of whose
//     nodes is owed back (its give-back made while it was away, or it took
//     none out) and none of whose requests has an open intent is forgotten
//     whole, whatever its requests moved, as a window still away is
//     (forget): its new requests take its nodes out again under the
//     window's intents, which its forgotten requests' take-out and
//     give-back no longer block.
//   - Otherwise, its nodes still out and owed back at its end, only its
//     requests a reload cancelled before they started are forgotten, and
//     of those only the ones that name no intent of a node (the window's
//     take-out or give-back, a drain strategy's hold of its node): the
//     state forgets a request's closed intents with it, and the window's
//     other requests read those to give its nodes back. Such a request is
//     kept until the window ends, and listed in keep: its origin key
//     stays taken, and the planner queues its work again under a key of
//     its own (shape.Input.Requeue). Kept and not queued again, its work
//     stayed where it was through the re-added window.
//
// A window an operator called off (windowCalledOff) is left as it is: the
// operator said no to it. A window whose every request was cancelled
// before it started, one of them by an operator, is left too: forgetting
// the reload's cancels would leave the operator's as the last and call the
// window off.
//
// busy names the requests with an open intent or a held reservation
// (busyRequests).
func (c *Coordinator) readded(now time.Time, view state.ActView, busy map[string]bool) (forget, keep []string) {
	windows := map[string][]state.MigrationRequest{}
	var keys []string
	for _, r := range view.Requests {
		if r.Origin != "schedule" || r.Deadline.IsZero() {
			continue
		}
		key := windowKey(r)
		if _, ok := windows[key]; !ok {
			keys = append(keys, key)
		}
		windows[key] = append(windows[key], r)
	}
	for _, key := range keys {
		rs := windows[key]
		reloaded, started, byOperator := false, false, false
		for i := range rs {
			reloaded = reloaded || shape.ReloadCancelled(&rs[i])
			started = started || !rs[i].Started.IsZero()
			byOperator = byOperator || rs[i].State == state.RequestCancelled && rs[i].Reason == OperatorCancel
		}
		if !reloaded || shape.WindowGone(&rs[0], c.pols) != "" {
			continue
		}
		if end, ok := c.windowEnd(rs[0]); !ok || !now.Before(end) {
			continue
		}
		if c.windowCalledOff(view, key) {
			continue
		}
		whole := true
		for _, r := range rs {
			if !r.State.Terminal() || r.Finished.IsZero() || busy[r.ID] || c.givesBack(view, now, r) {
				whole = false
				break
			}
		}
		if whole {
			for _, r := range rs {
				forget = append(forget, r.ID)
			}
			continue
		}
		if !started && byOperator {
			continue
		}
		for i := range rs {
			r := rs[i]
			if !shape.ReloadCancelled(&r) || busy[r.ID] {
				continue
			}
			if c.namesNodeIntent(now, r) {
				keep = append(keep, r.ID)
			} else {
				forget = append(forget, r.ID)
			}
		}
	}
	return forget, keep
}

// requeued names the requests readded keeps in view (shape.Input.Requeue).
func (c *Coordinator) requeued(now time.Time, view state.ActView) map[string]bool {
	_, keep := c.readded(now, view, busyRequests(view))
	if len(keep) == 0 {
		return nil
	}
	out := make(map[string]bool, len(keep))
	for _, id := range keep {
		out[id] = true
	}
	return out
}

// namesNodeIntent reports whether an intent the state keeps on a node of
// r's window names r: the window's take-out or give-back of the node, or
// r's own (a drain strategy's hold of its node, its give-back), through
// their redos.
func (c *Coordinator) namesNodeIntent(now time.Time, r state.MigrationRequest) bool {
	key := windowKey(r)
	for _, node := range append(windowNodes(r), c.joinedNodes(now, r)...) {
		ids := append(perAttempt(state.IntentNodeEligibility, node, r), perAttempt(state.IntentDrainNode, node, r)...)
		ids = append(ids, intentID(state.IntentNodeEligibility, node, key, 0), intentID(state.IntentNodeEligibility, node, key, -1),
			intentID(state.IntentNodeEligibility, node, r.ID, -1))
		for _, id := range ids {
			for n := 1; n <= maxRedos; n++ {
				in, ok := c.cfg.State.Intent(redoID(id, n))
				if !ok {
					break
				}
				if in.Request == r.ID {
					return true
				}
			}
		}
	}
	return false
}
