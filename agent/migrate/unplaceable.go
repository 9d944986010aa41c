package migrate

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/shape"
	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/policies"
)

// placementFailure is what Nomad's scheduler found for the groups of a
// placeholder job it could not place, as one evaluation's FailedTGAllocs
// records it.
type placementFailure struct {
	eval string
	// evaluated is the most nodes of any failed group Nomad evaluated.
	evaluated int
	// reasons are the filter reasons (ConstraintFiltered: "missing
	// drivers", a constraint) with the most nodes of any group for each.
	reasons map[string]int
	// hopeless is true when no node could take any failed group whatever
	// its size, nor would a node the locality's scale target adds: for
	// each, every node Nomad evaluated was filtered out, none short of
	// room and none by the placeholder's own constraints (groupHopeless).
	hopeless bool
}

// lastFailure reads a placeholder job's evaluations: the newest (highest
// CreateIndex) that records allocations it could not place, the
// evaluation that failed or the blocked evaluation it created, which
// carries the same. False when none does.
func lastFailure(evals []*nomadapi.Evaluation) (placementFailure, bool) {
	var last *nomadapi.Evaluation
	for _, e := range evals {
		if e != nil && len(e.FailedTGAllocs) > 0 && (last == nil || e.CreateIndex > last.CreateIndex) {
			last = e
		}
	}
	if last == nil {
		return placementFailure{}, false
	}
	f := placementFailure{eval: last.ID, reasons: map[string]int{}, hopeless: true}
	for _, m := range last.FailedTGAllocs {
		if m == nil {
			continue
		}
		f.evaluated = max(f.evaluated, m.NodesEvaluated)
		for k, n := range m.ConstraintFiltered {
			f.reasons[k] = max(f.reasons[k], n)
		}
		f.hopeless = f.hopeless && groupHopeless(m)
	}
	return f, true
}

// groupHopeless reports whether one failed group's metric shows that no
// node could take it whatever its size, nor would a node added to the
// locality: Nomad evaluated nodes and filtered out every one, none short
// of room (no quota either), and none by the placeholder's own
// constraints, which a node the locality's scale target adds passes (its
// node class, the nodes it keeps off: ${node.unique.id} != …); a task
// driver the nodes lack is what is left. Not when Nomad found no node to
// evaluate: a locality scaled to zero nodes is what a scale action brings
// back.
func groupHopeless(m *nomadapi.AllocationMetric) bool {
	if m.NodesExhausted > 0 || len(m.QuotaExhausted) > 0 || m.NodesEvaluated == 0 || m.NodesFiltered < m.NodesEvaluated {
		return false
	}
	for k, n := range m.ConstraintFiltered {
		if n > 0 && ownConstraint(k) {
			return false
		}
	}
	return len(m.ConstraintFiltered) > 0
}

// ownConstraint reports whether a filter reason is one of the
// placeholder's own constraints (placeholderJob: the locality's node
// class, the nodes a reservation keeps off).
func ownConstraint(reason string) bool {
	return strings.HasPrefix(reason, "${node.unique.id} !=") || strings.HasPrefix(reason, "${node.class} =")
}

// reasonList is Nomad's filter reasons with their node counts, the most
// nodes first: "missing drivers: 2".
func (f placementFailure) reasonList() string {
	keys := slices.SortedFunc(maps.Keys(f.reasons), func(a, b string) int {
		return cmp.Or(cmp.Compare(f.reasons[b], f.reasons[a]), strings.Compare(a, b))
	})
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s: %d", k, f.reasons[k]))
	}
	return strings.Join(parts, ", ")
}

// unplaceableWhy says why no node of locality can take placeholder job,
// whatever its size, from a hopeless failure, and what to check.
func unplaceableWhy(f placementFailure, locality, job string, ph Placeholder) string {
	why := fmt.Sprintf("no node of %s can run placeholder %s, whatever its size: Nomad filtered out all %d %s it evaluated (%s; evaluation %s), none short of room",
		locality, job, f.evaluated, pick(f.evaluated, "node", "nodes"), f.reasonList(), f.eval)
	var check []string
	if f.reasons["missing drivers"] > 0 {
		check = append(check, fmt.Sprintf("the nodes lack the placeholder's task driver %q: set reserve.driver and reserve.config to a driver they run "+
			"and its config (such as raw_exec with command \"/bin/sleep\" and args [\"infinity\"]) and restart the servers (a reload does not apply them), or enable %q on them (a placeholder whose driver is no longer reserve.driver is placed anew)", ph.Driver, ph.Driver))
	}
	if len(f.reasons) > 1 || f.reasons["missing drivers"] == 0 {
		check = append(check, fmt.Sprintf("check what the nodes of %s lack for the placeholder's task (driver %q, reserve.driver and reserve.config)",
			locality, ph.Driver))
	}
	return why + "; " + strings.Join(check, "; ")
}

// readUnplaceable reads, for each held reservation whose placeholder
// allocations Nomad has not all placed once shape.PlaceholderLate, why
// from the placeholder job's evaluations, and returns those no node can
// take whatever their size (by reservation ID, why: shape's
// Input.Unplaceable). Each is a decision, once per locality and filter
// reasons every ten minutes, and an error in the agent's log once while
// it lasts. A reservation whose evaluations cannot be read, or show a
// node short of room, is left out: it counts as one that does not fit,
// which a scale action may bring room for.
func (c *Coordinator) readUnplaceable(ctx context.Context, now time.Time, view state.ActView, ds *[]state.Decision) (out, rescheduling map[string]string) {
	late := map[string]bool{}    // localities with such a reservation
	oneNode := map[string]bool{} // reservations whose task failed on one node only (failedOnOneNode)
	rescheduling = map[string]string{}
	for _, res := range view.Reservations {
		if res.Job == "" || res.Unplaced == 0 || !shape.PlaceholderLate(res, now) {
			continue
		}
		late[res.Locality] = true
		evals, _, err := c.nomad.Jobs().Evaluations(res.Job, c.qo(ctx))
		if ctx.Err() != nil {
			return out, rescheduling // the term or the agent is ending: nothing to say
		}
		if err != nil {
			c.log.Warn("cannot read why Nomad does not place a placeholder: it counts as a reservation that does not fit",
				"job", res.Job, logKeyReservation, res.ID, "locality", res.Locality, logKeyError, err)
			continue
		}
		// The job's registration and task, read once for what follows.
		job, _, jerr := c.nomad.Jobs().Info(res.Job, c.qo(ctx))
		if jerr != nil {
			c.log.Debug("cannot read a placeholder job: its evaluations are all read", "job", res.Job, logKeyError, jerr)
		}
		f, ok := lastFailure(sinceRegistered(job, evals))
		if !ok || !f.hopeless {
			if why, fails := c.taskFails(ctx, now, view, res, job, jerr, oneNode, rescheduling, ds); fails {
				if out == nil {
					out = map[string]string{}
				}
				out[res.ID] = why
			}
			continue
		}
		why := unplaceableWhy(f, res.Locality, res.Job, c.cfg.Placeholder)
		if out == nil {
			out = map[string]string{}
		}
		out[res.ID] = why // this pass's plan reads the view from before any release below
		if f.reasons["missing drivers"] > 0 {
			if drv, _, err := placeholderTask(res.Job, job, jerr); err != nil {
				c.log.Warn("cannot read a placeholder's task driver", "job", res.Job, logKeyReservation, res.ID, logKeyError, err)
			} else if drv != c.cfg.Placeholder.Driver {
				// reserve.driver changed since it was registered (the
				// operator's fix): placed anew with the driver set now
				// rather than left blocked until reserve.ttl.
				rel := fmt.Sprintf("its placeholder's task driver %q, which the nodes of %s lack, is no longer reserve.driver (%q): released to be placed anew",
					drv, res.Locality, c.cfg.Placeholder.Driver)
				if err := c.release(ctx, now, res, rel); err != nil {
					c.log.Warn("release failed", logKeyReservation, res.ID, logKeyError, err)
				} else {
					*ds = append(*ds, state.Decision{Time: now, Kind: shape.KindRelease, Policy: res.Policy, Locality: res.Locality,
						Request: res.Request, Reservation: res.ID, Reason: "release " + res.ID + ": " + rel})
				}
				continue
			} else if c.driverRuns(res.Locality, drv) {
				// The failed metric is the blocked evaluation's as it
				// was created (Nomad re-blocks it unwritten), and a node
				// of the locality runs the driver now: nodes added may
				// too, so it counts as a reservation that does not fit.
				delete(out, res.ID)
				continue
			}
		}
		key := "unplaceable/" + res.Locality + "|" + f.reasonList()
		c.note(ds, now, key, state.Decision{Kind: shape.KindReserve, Policy: res.Policy, Locality: res.Locality, Request: res.Request,
			Reservation: res.ID, Reason: "placeholder cannot be placed: " + why + "; foreshape does not scale for it, and its request waits for its room"})
		if !c.unfitLogged[key] {
			c.unfitLogged[key] = true
			c.log.Error("no node can take a placeholder: scaling cannot help, and its request waits",
				"locality", res.Locality, logKeyReservation, res.ID, logKeyRequest, res.Request, "job", res.Job,
				"driver", c.cfg.Placeholder.Driver, "filtered", f.reasonList(), "reason", why)
		}
	}
	// A locality none of whose placeholders is late any more is logged
	// again should it happen again.
	for key := range c.unfitLogged {
		if id, ok := strings.CutPrefix(key, "taskfails/"); ok {
			if _, still := out[id]; !still {
				delete(c.unfitLogged, key) // its task runs now, or it is gone
			}
			continue
		}
		if id, ok := strings.CutPrefix(key, "onenode/"); ok {
			if !oneNode[id] {
				delete(c.unfitLogged, key)
			}
			continue
		}
		if loc, _, _ := strings.Cut(strings.TrimPrefix(key, "unplaceable/"), "|"); !late[loc] {
			delete(c.unfitLogged, key)
		}
	}
	for id := range c.failedEvents {
		if _, still := out[id]; !still && !oneNode[id] {
			delete(c.failedEvents, id)
		}
	}
	return out, rescheduling
}

// driverRuns reports whether a ready node of locality reports driver
// detected and healthy, as the pass's node list has them.
func (c *Coordinator) driverRuns(locality, driver string) bool {
	return c.driverRunsBeside(locality, driver, "")
}

// sinceRegistered keeps the evaluations of job made since its
// registration: Nomad keeps a purged job's evaluations until its garbage
// collection (an hour by default) and lists them under the job's ID, so a
// placeholder registered under the ID of one purged before (a reservation
// ID used again: a state restored from an older backup, a new cluster
// against the same Nomad) would be read by an earlier placeholder's
// failures. The job's registration and its first evaluation share a Raft
// index. When the job could not be read (nil), all are kept.
func sinceRegistered(job *nomadapi.Job, evals []*nomadapi.Evaluation) []*nomadapi.Evaluation {
	if job == nil || job.CreateIndex == nil {
		return evals
	}
	return slices.DeleteFunc(slices.Clone(evals), func(e *nomadapi.Evaluation) bool { return e != nil && e.CreateIndex < *job.CreateIndex })
}

// placeholderTask is the task driver and config placeholder id was
// registered with, from its job j as read (err, the read's error).
func placeholderTask(id string, j *nomadapi.Job, err error) (string, map[string]any, error) {
	if err != nil {
		return "", nil, err
	}
	for _, tg := range j.TaskGroups {
		for _, t := range tg.Tasks {
			if t != nil && t.Driver != "" {
				return t.Driver, t.Config, nil
			}
		}
	}
	return "", nil, fmt.Errorf("placeholder %s has no task", id)
}

// sameConfig reports whether two task configs say the same once written
// as Nomad's API does (JSON): a config read back from Nomad holds []any
// where reserve.config held []string.
func sameConfig(a, b map[string]any) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	if errA != nil || errB != nil {
		return false
	}
	var na, nb any
	if json.Unmarshal(ja, &na) != nil || json.Unmarshal(jb, &nb) != nil {
		return false
	}
	return reflect.DeepEqual(na, nb)
}

// taskFails reports whether every placeholder allocation of a late held
// reservation that does not hold its room is one Nomad placed on a node
// and whose task failed there for good (desired to run, its client
// reports it failed: a driver error Nomad does not restart after, such as
// raw_exec's command missing), and why. Such a placeholder holds no room,
// Nomad reschedules it to fail alike, and nodes a scale action adds would
// fail it alike: like one no node can take, it is not scaled for (the
// planner reads it from Input.Unplaceable), a decision says so every ten
// minutes with the task's last events, and the agent's log once at
// ERROR. One registered with another task than reserve.driver and
// reserve.config say now (the operator's fix, applied at the servers'
// restart) is released, to be placed anew with it (not scaled for in the
// pass that releases it either).
// A placeholder whose allocations failed on one node only, while
// another ready node of its locality runs the driver, is not taken as
// failing for good while Nomad places it anew or it may be that node's
// own failure (oneNodeFails; oneNode[res.ID] set): once Nomad placed it
// there again, the others having no room for it, it counts as a
// reservation that does not fit, which a scale action brings room for;
// while Nomad's reschedule is due, rescheduling[res.ID] says so.
// job and jerr are the placeholder's job as readUnplaceable read it.
func (c *Coordinator) taskFails(ctx context.Context, now time.Time, view state.ActView, res state.Reservation, job *nomadapi.Job, jerr error,
	oneNode map[string]bool, rescheduling map[string]string, ds *[]state.Decision) (string, bool) {
	ns := c.placeholderNamespace()
	var last *nomadapi.AllocationListStub
	var failed []*nomadapi.AllocationListStub
	for _, a := range c.view.allocs {
		if a.JobID != res.Job || a.Namespace != ns || a.NodeID == "" || a.DesiredStatus != nomadapi.AllocDesiredStatusRun ||
			a.ClientStatus != nomadapi.AllocClientStatusFailed {
			continue
		}
		failed = append(failed, a)
		if last == nil || a.CreateIndex > last.CreateIndex {
			last = a
		}
	}
	if len(failed) == 0 || len(failed) < res.Unplaced {
		return "", false // some not placed at all: that may be room, which a scale brings
	}
	drv, cfg, err := placeholderTask(res.Job, job, jerr)
	if err != nil {
		c.log.Warn("cannot read a placeholder's task", "job", res.Job, logKeyReservation, res.ID, logKeyError, err)
	} else if drv != c.cfg.Placeholder.Driver || !sameConfig(cfg, c.cfg.Placeholder.Config) {
		rel := fmt.Sprintf("its placeholder's task (driver %q) fails on the nodes of %s, and reserve.driver and reserve.config (driver %q) changed since it was registered: released to be placed anew",
			drv, res.Locality, c.cfg.Placeholder.Driver)
		if err := c.release(ctx, now, res, rel); err != nil {
			c.log.Warn("release failed", logKeyReservation, res.ID, logKeyError, err)
		} else {
			*ds = append(*ds, state.Decision{Time: now, Kind: shape.KindRelease, Policy: res.Policy, Locality: res.Locality,
				Request: res.Request, Reservation: res.ID, Reason: "release " + res.ID + ": " + rel})
		}
		// This pass's plan reads the view from before the release: it
		// is not scaled for there either.
		return rel, true
	}
	if times, pending, one := c.failedOnOneNode(res, failed, last.NodeID); one && c.oneNodeFails(ctx, now, view, res, last, times, pending, rescheduling, ds) {
		oneNode[res.ID] = true
		return "", false
	}
	key := "taskfails/" + res.ID
	events := c.dueEvents(ctx, now, key, res.ID, last.ID)
	why := fmt.Sprintf("placeholder %s's task fails on the nodes Nomad places it on: allocation %s on node %s failed (%s; the task's last events: %s), and Nomad reschedules it to fail alike; "+
		"it holds no room, and nodes added to %s would fail it alike; set reserve.driver and reserve.config to a task the nodes run "+
		"(such as raw_exec with command \"/bin/sleep\" and args [\"infinity\"]) and restart the servers (a reload does not apply them): the placeholder is placed anew with it; nomad alloc status %s",
		res.Job, shortID(last.ID), c.decisionName(last.NodeID), last.ClientDescription, events, res.Locality, last.ID)
	c.note(ds, now, key, state.Decision{Kind: shape.KindReserve, Policy: res.Policy, Locality: res.Locality, Request: res.Request,
		Reservation: res.ID, Reason: "placeholder cannot run: " + why + "; foreshape does not scale for it, and its request waits for its room"})
	if !c.unfitLogged[key] {
		c.unfitLogged[key] = true
		c.log.Error("a placeholder's task fails on the nodes Nomad places it on: scaling cannot help, and its request waits",
			"locality", res.Locality, logKeyReservation, res.ID, logKeyRequest, res.Request, "job", res.Job, "alloc", last.ID,
			"node", c.decisionName(last.NodeID), "driver", c.cfg.Placeholder.Driver, "events", events)
	}
	return why, true
}

// dueEvents is the last task events of a reservation's failed
// placeholder allocation alloc, read when the decision under key is due
// (note), not every pass.
func (c *Coordinator) dueEvents(ctx context.Context, now time.Time, key, res, alloc string) string {
	events := c.failedEvents[res]
	if events == "" || !c.noted(now, key) {
		events = c.taskEvents(ctx, alloc)
		c.failedEvents[res] = events
	}
	return events
}

// failedOnOneNode reports whether a placeholder's failed allocations,
// and the ones they replaced (their reschedule trackers), failed on node
// only, while another ready node of the reservation's locality runs the
// placeholder's driver; how many times at most one of them did, and
// whether Nomad's reschedule of one is due (its follow-up evaluation).
func (c *Coordinator) failedOnOneNode(res state.Reservation, failed []*nomadapi.AllocationListStub, node string) (times int, pending, ok bool) {
	for _, a := range failed {
		n := 1
		if a.NodeID != node {
			return 0, false, false
		}
		if rt := a.RescheduleTracker; rt != nil {
			for _, ev := range rt.Events {
				if ev == nil || ev.PrevNodeID != node {
					return 0, false, false // it failed on another node too
				}
				n++
			}
		}
		times = max(times, n)
		pending = pending || a.FollowupEvalID != ""
	}
	return times, pending, c.driverRunsBeside(res.Locality, c.cfg.Placeholder.Driver, node)
}

// oneNodeFails decides for a late placeholder whose allocations failed
// on one node only (failedOnOneNode), one of them times times. Nomad
// reschedules a failed allocation away from the nodes it failed on when
// another has room: placed there again (times ≥ 2), the others had none,
// and the failure may be that node's own (its disk, its runtime), which
// nodes a scale action adds would not share: unless a scale action of its
// policy came since Nomad last placed it, it counts as a reservation that
// does not fit (left out of rescheduling), a decision says so every ten
// minutes and the agent's log once at WARN. Otherwise, while Nomad's
// reschedule of one is due (pending: its follow-up evaluation), Nomad places it
// anew, on another node should one have room: rescheduling says so, and
// it is not scaled for meanwhile. Should the task fail on another node
// too, it has failed on two, and taskFails takes it as failing on every
// node: for a task that fails everywhere, a scale action that brings a
// node is issued once. False when none of this holds (no reschedule due):
// taskFails decides as for any failed placeholder.
func (c *Coordinator) oneNodeFails(ctx context.Context, now time.Time, view state.ActView, res state.Reservation, last *nomadapi.AllocationListStub,
	times int, pending bool, rescheduling map[string]string, ds *[]state.Decision) bool {
	placed := time.Unix(0, last.CreateTime)
	var since *state.ScaleAction
	for i, sa := range view.ScaleActions {
		if sa.Policy == res.Policy && sa.Error == "" && !sa.At.Before(placed) {
			since = &view.ScaleActions[i]
		}
	}
	unfit := times >= 2 && since == nil
	if !unfit && !pending {
		return false
	}
	node := c.decisionName(last.NodeID)
	key := "onenode/" + res.ID
	events := c.failedEvents[res.ID]
	if events == "" || unfit {
		events = c.dueEvents(ctx, now, key, res.ID, last.ID)
	}
	failed := fmt.Sprintf("placeholder %s's task failed on node %s only, %d %s (allocation %s, %s; the task's last events: %s)",
		res.Job, node, times, pick(times, "time", "times"), shortID(last.ID), last.ClientDescription, events)
	if unfit {
		c.note(ds, now, key, state.Decision{Kind: shape.KindReserve, Policy: res.Policy, Locality: res.Locality, Request: res.Request,
			Reservation: res.ID, Reason: failed + fmt.Sprintf(": Nomad placed it there again, the other nodes of %s having no room for it; "+
				"it may be that node's own failure, so it counts as a reservation that does not fit, and a node a scale action brings tells: "+
				"should the task fail there too, foreshape takes it as failing on every node; nomad alloc status %s", res.Locality, last.ID)})
		if !c.unfitLogged[key] {
			c.unfitLogged[key] = true
			c.log.Warn("a placeholder's task fails on one node only, the locality's other nodes having no room for it: it counts as a reservation that does not fit",
				"locality", res.Locality, logKeyReservation, res.ID, logKeyRequest, res.Request, "job", res.Job, "alloc", last.ID,
				"node", node, "failures", times, "events", events)
		}
		return true
	}
	why := failed + fmt.Sprintf("; Nomad places it anew, on another node of %s should one have room", res.Locality)
	if since != nil {
		why += fmt.Sprintf(" (scale %q was asked for at %s)", since.Scale, since.At.UTC().Format(time.TimeOnly))
	}
	rescheduling[res.ID] = why + "; nomad alloc status " + last.ID
	return true
}

// driverRunsBeside reports whether a ready node of locality other than
// node ("": any) reports driver detected and healthy, as the pass's node
// list has them.
func (c *Coordinator) driverRunsBeside(locality, driver, node string) bool {
	l, err := policies.ParseLocality(locality)
	if err != nil {
		return false
	}
	for _, n := range c.view.nodes {
		if n.ID == node || n.Status != nomadapi.NodeStatusReady || !l.Matches(n.Datacenter, n.NodePool, n.NodeClass) {
			continue
		}
		if d := n.Drivers[driver]; d != nil && d.Detected && d.Healthy {
			return true
		}
	}
	return false
}
