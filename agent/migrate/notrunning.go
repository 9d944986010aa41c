package migrate

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/shape"
	"github.com/foreshape/foreshape/agent/state"
)

// notRunning says of each held reservation whose placeholder Nomad placed
// (placedHold) but whose task has not started shape.PlaceholderGrace after
// Nomad placed its allocation (pending on its node: an image that cannot
// be pulled or whose pull hangs, a task restarting after each start
// fails) that it is so: Nomad holds the room on the node all the same, so
// the planner counts it held (shapeAlloc) and foreshape scales for none
// of it, but the operator should know the placeholder's task does not
// run. A decision per reservation every ten minutes while it lasts names
// the allocation, its node, its client status and the task's last events
// (one read of the allocation when the decision is due), and the agent's
// log says it at WARN once while it lasts. A placeholder whose task
// failed for good (its client reports it failed: an unrecoverable driver
// error) holds no room and is not one of these.
func (c *Coordinator) notRunning(ctx context.Context, now time.Time, view state.ActView, ds *[]state.Decision) {
	ns := c.placeholderNamespace()
	still := map[string]bool{}
	for _, res := range view.Reservations {
		if res.State != state.ReservationHeld || res.Job == "" || !shape.PlaceholderLate(res, now) {
			continue
		}
		var stuck []*nomadapi.AllocationListStub
		placed := 0
		for _, a := range c.view.allocs {
			if a.JobID != res.Job || a.Namespace != ns || !placedHold(a) {
				continue
			}
			placed++
			if a.ClientStatus == nomadapi.AllocClientStatusPending && (a.CreateTime == 0 || now.Sub(time.Unix(0, a.CreateTime)) >= shape.PlaceholderGrace) {
				stuck = append(stuck, a)
			}
		}
		if len(stuck) == 0 {
			continue
		}
		still[res.ID] = true
		key := "notrunning/" + res.ID
		if c.noted(now, key) {
			continue // said within ten minutes: no read
		}
		slices.SortFunc(stuck, func(a, b *nomadapi.AllocationListStub) int { return strings.Compare(a.ID, b.ID) })
		a := stuck[0]
		events := c.taskEvents(ctx, a.ID)
		since := ""
		if a.CreateTime != 0 {
			since = fmt.Sprintf(" %s after Nomad placed it", now.Sub(time.Unix(0, a.CreateTime)).Round(time.Second))
		}
		why := fmt.Sprintf("placeholder %s is placed but its task is not running: %d of its %d allocations placed in %s %s pending, allocation %s on node %s%s (%s); "+
			"the task's last events: %s; Nomad holds the room on the nodes all the same, so foreshape does not scale for it; "+
			"check the placeholder's task there (reserve.driver %q, reserve.config): nomad alloc status %s",
			res.Job, len(stuck), placed, res.Locality, pick(len(stuck), "is", "are"), shortID(a.ID), c.decisionName(a.NodeID), since, a.ClientDescription,
			events, c.cfg.Placeholder.Driver, a.ID)
		c.note(ds, now, key, state.Decision{Kind: shape.KindReserve, Policy: res.Policy, Locality: res.Locality, Request: res.Request,
			Reservation: res.ID, Reason: why})
		if !c.notRunningLogged[res.ID] {
			c.notRunningLogged[res.ID] = true
			c.log.Warn("a placeholder is placed but its task is not running: its room is held, and foreshape does not scale for it",
				logKeyReservation, res.ID, logKeyRequest, res.Request, "job", res.Job, "alloc", a.ID, "node", c.decisionName(a.NodeID),
				"client_status", a.ClientStatus, "events", events, "driver", c.cfg.Placeholder.Driver)
		}
	}
	// One whose task runs now, or that is gone, is logged again should it
	// happen again.
	for id := range c.notRunningLogged {
		if !still[id] {
			delete(c.notRunningLogged, id)
		}
	}
}

// lastTaskEvents is the last n events of an allocation's tasks, each as
// "Type: message", oldest first, tasks by name.
func lastTaskEvents(a *nomadapi.Allocation, n int) string {
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(a.TaskStates)) {
		ts := a.TaskStates[name]
		if ts == nil {
			continue
		}
		evs := ts.Events[max(0, len(ts.Events)-n):]
		for _, e := range evs {
			if e == nil {
				continue
			}
			msg := e.DisplayMessage
			if msg == "" {
				msg = e.Message
			}
			p := e.Type
			if msg != "" {
				p += ": " + msg
			}
			if len(a.TaskStates) > 1 {
				p = name + " " + p
			}
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, "; ")
}
