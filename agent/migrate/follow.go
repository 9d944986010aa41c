package migrate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/shape"
	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/internal/backoff"
	"github.com/foreshape/foreshape/internal/blocking"
	"github.com/foreshape/foreshape/internal/failing"
	"github.com/foreshape/foreshape/policies"
)

// MinMoveTimeout is the least time a move gets before it is retried; a move
// otherwise gets three times its estimate.
const MinMoveTimeout = 10 * time.Minute

// Follow advances the move follower once at now: it reads the cluster and
// settles, retries, extends and releases as the moves require. Watch calls
// it on every change of Nomad's allocations; the proof harness calls it
// directly.
func (c *Coordinator) Follow(ctx context.Context, now time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	now = now.UTC()
	if _, err := c.refresh(ctx); err != nil {
		return err
	}
	c.closeLeftOpen(ctx, now)
	c.record(ctx, c.follow(ctx, c.stamp(ctx, now), true))
	return nil
}

// Watch follows moves while ctx lives: a blocking query on Nomad's
// allocations wakes it on every change (and at least every wait), and each
// wake runs Follow at the time clock gives. The query's failures are
// retried with backoff and logged as a failing.Streak: the first at once,
// the same again every failing.RemindEvery, and the first answer after
// them once.
func (c *Coordinator) Watch(ctx context.Context, clock func(context.Context) (time.Time, error), wait time.Duration) {
	var index uint64
	var retry time.Duration // after a failure; zero after a success
	var fails failing.Streak
	for ctx.Err() == nil {
		// Each request ends a little after Nomad must have answered it,
		// so that a connection gone silent is logged and asked again
		// rather than freeze the follower.
		margin := c.watchMargin
		if margin == 0 {
			margin = blocking.Margin
		}
		q, end := blocking.Bound(ctx, &nomadapi.QueryOptions{WaitIndex: index, WaitTime: wait, Params: map[string]string{"task_states": "false"}}, margin)
		_, meta, err := c.nomad.Allocations().List(q)
		err = end(err)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			retry = backoff.Next(retry)
			fails.Fail(c.log, time.Now(), "follower: allocation watch failed; retrying", err, "backoff", retry)
			select {
			case <-ctx.Done():
				return
			case <-time.After(retry):
			}
			continue
		}
		retry = 0
		fails.OK(c.log, time.Now(), "follower: allocation watch answers again")
		if meta.LastIndex == index {
			continue
		}
		index = meta.LastIndex
		now, err := clock(ctx)
		if err != nil {
			continue
		}
		if err := c.Follow(ctx, now); err != nil && ctx.Err() == nil {
			c.log.Warn("follower pass failed", logKeyError, err)
		}
	}
}

// follow settles running moves against the refreshed view. Callers hold
// c.mu.
func (c *Coordinator) follow(ctx context.Context, now time.Time, _ bool) []state.Decision {
	ds := c.settleMoves(ctx, now)
	if c.planned {
		// Both read the policies: transfer caps, windows' ends.
		c.continueMoves(ctx, now, &ds)
		c.restoreWindows(ctx, now, c.cfg.State.Act(), &ds)
	}
	c.restoreAbandoned(ctx, now, c.cfg.State.Act(), &ds)
	c.completeDrains(ctx, now, c.cfg.State.Act(), &ds)
	c.restoreSpreads(ctx, now, c.cfg.State.Act(), &ds)
	c.giveBackAgainAll(ctx, now, c.cfg.State.Act(), &ds)
	c.watchLeads(ctx, now)
	c.reap(ctx, now, c.cfg.State.Act(), &ds)
	return ds
}

// settleMoves advances each running request's moves against the refreshed
// view once (followOne): moves whose replacements run are done, and a
// request whose moves are all done ends. Callers hold c.mu.
func (c *Coordinator) settleMoves(ctx context.Context, now time.Time) []state.Decision {
	var ds []state.Decision
	view := c.cfg.State.Act()
	for _, r := range view.Requests {
		if r.State == state.RequestRunning {
			c.followOne(ctx, now, r, view, &ds)
		}
	}
	return ds
}

// continueMoves stops the next allocations of running requests whose
// moves wait for a transfer slot (see transferSlots), in request order.
func (c *Coordinator) continueMoves(ctx context.Context, now time.Time, ds *[]state.Decision) {
	// A paused queue starts no new request; running ones go on (docs/api.md).
	if c.cfg.ForecastOnly {
		return
	}
	for _, r := range c.cfg.State.Act().Requests {
		if r.State != state.RequestRunning {
			continue
		}
		waiting, begun := false, false
		for _, m := range r.Moves {
			if m.Stopped.IsZero() && !m.Done {
				waiting = true
			} else {
				begun = true
			}
		}
		if !waiting {
			continue
		}
		// A leader that stopped after marking a request running and
		// before its first action (start) left it running with nothing
		// under way: what start does first is done here.
		if r.Strategy == string(policies.StrategyDrain) {
			if r.Resource.Kind == state.ResourceNode && !begun {
				c.log.Info("draining the node of a running request whose drain was never made (a leader stopped before it)", logKeyRequest, r.ID)
				if err := c.drainNode(ctx, now, r); err != nil {
					c.log.Warn("could not drain the node of a running request", logKeyRequest, r.ID, logKeyError, err)
					c.retry(ctx, now, r.ID, err.Error(), ds)
				}
			}
			continue
		}
		n := c.transferSlots(r, c.cfg.State.Act())
		if n <= 0 {
			continue
		}
		if r.Strategy == string(policies.StrategyAffinity) && !begun {
			if err := c.addAffinity(ctx, now, &r); err != nil {
				c.log.Warn("next move did not start", logKeyRequest, r.ID, logKeyError, err)
				c.retry(ctx, now, r.ID, err.Error(), ds)
				continue
			}
		}
		if err := c.stopMoves(ctx, now, r, r.Moves, n, ds); errors.Is(err, errNotOut) {
			c.waitOut(ctx, now, r, err, ds)
		} else if err != nil {
			c.log.Warn("next move did not start", logKeyRequest, r.ID, logKeyError, err)
			c.retry(ctx, now, r.ID, err.Error(), ds)
		}
	}
}

// replacementOf follows an allocation's chain of replacements to the
// newest one known.
func (c *Coordinator) replacementOf(id string) *nomadapi.AllocationListStub {
	a := c.view.allocs[id]
	var last *nomadapi.AllocationListStub
	for range 10 {
		if a == nil {
			return last
		}
		if a.NextAllocation == "" {
			if last == nil && a.ClientStatus == nomadapi.AllocClientStatusLost {
				return c.unlinkedReplacement(a)
			}
			return last
		}
		next := c.view.allocs[a.NextAllocation]
		if next == nil {
			return last
		}
		last, a = next, next
	}
	return last
}

// unmarkedUnknown counts the moves whose allocation is unknown (its node
// disconnected) and not marked to migrate by Nomad's drain: each runs
// again if its node comes back before the drain marks it, and Nomad
// stops its replacement. The list does not show DesiredTransition, so
// each unknown allocation is read in full; one that cannot be read is
// not counted.
func (c *Coordinator) unmarkedUnknown(ctx context.Context, moves []state.Move) int {
	k := 0
	for _, m := range moves {
		if a := c.view.allocs[m.Alloc]; a == nil || a.ClientStatus != nomadapi.AllocClientStatusUnknown || a.DesiredStatus != nomadapi.AllocDesiredStatusRun {
			continue
		}
		full, _, err := c.nomad.Allocations().Info(m.Alloc, c.qo(ctx))
		if err != nil {
			c.log.Debug("reading an unknown allocation's migrate mark failed", "alloc", m.Alloc, logKeyError, err)
			continue
		}
		if !full.DesiredTransition.ShouldMigrate() {
			k++
		}
	}
	return k
}

// sysbatchLeft names the sysbatch allocations that hold Nomad's drain of
// node back when nothing else does (every other allocation there ended on
// its client, or is a system job's, which the drain stops last): those
// still running, which the drain leaves to end and stops at its deadline,
// and those that ended on their own since the drain began or last changed
// (LastDrain), which it never marked: Nomad's drainer watches no sysbatch
// job, so it does not see them end and completes at its deadline or its
// next change (TestFidelitySysbatchDrain). None when anything else holds
// the drain back.
func (c *Coordinator) sysbatchLeft(node string) (running, ended []string) {
	var since int64
	if n := c.view.nodes[node]; n != nil && n.LastDrain != nil {
		t := n.LastDrain.UpdatedAt
		if t.IsZero() {
			t = n.LastDrain.StartedAt
		}
		since = t.UnixNano()
	}
	for _, a := range c.view.allocs {
		if a.NodeID != node || a.JobType == nomadapi.JobTypeSystem {
			continue
		}
		sysbatch := a.JobType == nomadapi.JobTypeSysbatch && a.DesiredStatus == nomadapi.AllocDesiredStatusRun
		switch {
		case sysbatch && !clientTerminal(a.ClientStatus):
			running = append(running, a.Name)
		case sysbatch && a.ClientStatus != nomadapi.AllocClientStatusLost && a.ModifyTime >= since:
			ended = append(ended, a.Name)
		case !clientTerminal(a.ClientStatus):
			return nil, nil
		}
	}
	slices.Sort(running)
	slices.Sort(ended)
	return running, ended
}

// pick is one when n is 1, more otherwise.
func pick(n int, one, more string) string {
	if n == 1 {
		return one
	}
	return more
}

// unlinkedReplacement is the replacement of a, a lost allocation Nomad
// replaced without linking the two: where its group sets
// disconnect.stop_on_client_after, Nomad places the replacement at a
// follow-up evaluation (alloc-failure) that long (plus the kill timeout)
// after the loss, with no PreviousAllocation, and a keeps no
// NextAllocation (measured on a real Nomad 2.0.6-dev). It is the newest
// allocation of a's job and name (its index in the group) created after
// a and desired to run; nil when there is none.
func (c *Coordinator) unlinkedReplacement(a *nomadapi.AllocationListStub) *nomadapi.AllocationListStub {
	var best *nomadapi.AllocationListStub
	for _, b := range c.view.allocs {
		if b.ID == a.ID || b.JobID != a.JobID || b.Namespace != a.Namespace || b.Name != a.Name || b.CreateIndex <= a.CreateIndex ||
			b.DesiredStatus != nomadapi.AllocDesiredStatusRun {
			continue
		}
		if best == nil || b.CreateIndex > best.CreateIndex {
			best = b
		}
	}
	return best
}

// localityPath is a node's locality in the shape of target: its
// datacenter, and its pool and class where target names them.
func localityPath(n *nomadapi.NodeListStub, target policies.Locality) string {
	l := policies.Locality{Datacenter: n.Datacenter}
	if target.NodePool != "" {
		l.NodePool = n.NodePool
	}
	if target.NodeClass != "" {
		l.NodeClass = n.NodeClass
	}
	return l.String()
}

func (c *Coordinator) followOne(ctx context.Context, now time.Time, r state.MigrationRequest, view state.ActView, ds *[]state.Decision) {
	if shape.WindowHold(&r) {
		if err := c.settleHold(ctx, now, r, view, ds); err != nil {
			c.log.Warn("a drain window's nodes not taken out of scheduling", logKeyRequest, r.ID, logKeyError, err)
		}
		return
	}
	tgt, _ := policies.ParseLocality(r.Target)
	changed := false
	var pending []string
	handing := 0 // moves progressing or queued for a slot: no timeout applies
	// A move whose job someone stopped or purged while the request ran
	// gets no replacement: Nomad places none. It ends here, and nothing
	// more of that job is stopped, rather than hold the request, its
	// reservation and its max_parallel place until the settle timeout.
	// The job is read (once a pass) only for moves that wait on Nomad.
	how := map[string]string{}
	var ended []string
	var kept []string // moves Nomad does not replace while their node is disconnected
	jobEnded := func(m *state.Move) bool {
		if m.Job == "" {
			return false
		}
		key := m.Namespace + "/" + m.Job
		if _, ok := how[key]; !ok {
			h, err := c.jobEnded(ctx, *m)
			if err != nil {
				// The move waits as before; its settle timeout bounds it.
				c.log.Debug("could not read the job of a move that waits", logKeyRequest, r.ID, logKeyError, err)
			}
			how[key] = h
		}
		if how[key] == "" {
			return false
		}
		why := fmt.Sprintf("job %s was %s while the request ran", m.Job, how[key])
		if !slices.Contains(ended, why) {
			ended = append(ended, why)
		}
		m.Done, m.Error = true, notMovedPrefix+why+", so Nomad places no replacement"
		r.Moved = r.Moved.Sub(m.Size)
		changed = true
		return true
	}
	for i := range r.Moves {
		m := &r.Moves[i]
		if m.Done {
			continue
		}
		a := c.view.allocs[m.Alloc]
		if a == nil {
			if jobEnded(m) {
				continue
			}
			if !m.Stopped.IsZero() {
				m.Done, m.Running, m.Error = true, now, "the allocation was collected before its replacement was seen"
				changed = true
			} else {
				pending = append(pending, m.Alloc)
			}
			continue
		}
		// The list does not show DesiredTransition: an unknown allocation
		// (its node disconnected) is taken as marked to migrate once it
		// was stopped, which marks it only.
		unknownStopped := a.ClientStatus == nomadapi.AllocClientStatusUnknown && !m.Stopped.IsZero()
		if !alreadyMoving(a.DesiredStatus, a.ClientStatus, a.NextAllocation, false) && !unknownStopped {
			pending = append(pending, shortID(m.Alloc)+" (not stopped yet)")
			if m.Stopped.IsZero() {
				handing++ // waits for a transfer slot: not a stall
			}
			continue
		}
		if m.Stopped.IsZero() {
			m.Stopped = now
			changed = true
		}
		repl := c.replacementOf(m.Alloc)
		if repl == nil {
			if a.ClientStatus == nomadapi.AllocClientStatusComplete && a.JobType == nomadapi.JobTypeBatch {
				m.Done, m.Running = true, now
				changed = true
				continue
			}
			if jobEnded(m) {
				continue
			}
			if a.ClientStatus == nomadapi.AllocClientStatusUnknown {
				if why := c.keptWhileDisconnected(ctx, a); why != "" {
					// Nomad places none while the node is disconnected:
					// waiting would hold the request, its reservation and
					// its max_parallel place until the settle timeout, and
					// each retry would wait as long (three of them).
					if !slices.Contains(kept, why) {
						kept = append(kept, why)
					}
					m.Done, m.Error = true, notMovedPrefix+why
					r.Moved = r.Moved.Sub(m.Size)
					changed = true
					continue
				}
				// Nomad places it after the reschedule delay; not while
				// the job's deployment runs (then once the node is back).
				pending = append(pending, shortID(m.Alloc)+" (no replacement yet: its node is disconnected)")
				continue
			}
			pending = append(pending, shortID(m.Alloc)+" (no replacement yet)")
			continue
		}
		m.Replacement, m.TargetNode = repl.ID, repl.NodeID
		running := repl.ClientStatus == nomadapi.AllocClientStatusRunning && repl.DesiredStatus == nomadapi.AllocDesiredStatusRun
		if running && c.needsHealth(repl) {
			if repl.DeploymentStatus != nil && repl.DeploymentStatus.Healthy != nil {
				running = *repl.DeploymentStatus.Healthy
			} else {
				running = c.noHealthComing(ctx, repl)
			}
		}
		if !running {
			if jobEnded(m) {
				continue
			}
			pending = append(pending, shortID(m.Alloc)+" (replacement "+repl.ClientStatus+")")
			continue
		}
		if !clientTerminal(a.ClientStatus) && a.ClientStatus != nomadapi.AllocClientStatusUnknown && c.view.nodes[a.NodeID] != nil {
			// Make-before-break: the replacement runs while the old
			// allocation still hands over its state; the move holds the
			// source (and its bandwidth) until the old one has stopped.
			// That is progress, not a stall: no timeout applies to it.
			// Not on a node purged from Nomad: no client reports the
			// stop any more, and Nomad keeps the allocation as its
			// client last reported it, running, for good. Nor on a
			// disconnected node (the old allocation unknown): it hands
			// over nothing, and its client stops it when the node comes
			// back (it was stopped: marked to migrate) or Nomad takes it
			// as lost at the group's disconnect.lost_after, which may be
			// hours.
			pending = append(pending, shortID(m.Alloc)+" (still stopping)")
			handing++
			continue
		}
		if a.ClientStatus == nomadapi.AllocClientStatusUnknown {
			c.log.Info("move settles while its old allocation's node is disconnected: Nomad stops the old one when the node comes back",
				logKeyRequest, r.ID, "alloc", m.Alloc, "replacement", repl.ID)
		}
		m.Done, m.Running = true, now
		if n := c.view.nodes[repl.NodeID]; n != nil {
			m.Landed = localityPath(n, tgt)
			switch {
			case !shape.In(tgt, &shape.Node{Datacenter: n.Datacenter, NodePool: n.NodePool, NodeClass: n.NodeClass}):
				m.Error = fmt.Sprintf("landed in %s, outside the target %s", m.Landed, r.Target)
			case slices.Contains(r.Exclude, n.ID):
				m.Error = fmt.Sprintf("landed back on %s, a node it was to leave (the request excludes it)", n.Name)
			}
		}
		changed = true
	}
	done := len(pending) == 0
	drainOn := "" // why Nomad's drain of the node goes on after the request
	if r.Resource.Kind == state.ResourceNode && r.Strategy == string(policies.StrategyDrain) {
		n := c.view.nodes[r.Resource.ID]
		if n != nil && !n.Drain && done && !r.Started.Before(now) {
			// Drained in this pass, after the view was read: the next
			// pass sees Nomad's drain.
			done = false
			pending = append(pending, "the drain of "+r.Resource.String())
		} else if n != nil && n.Drain {
			if done && n.Status == nomadapi.NodeStatusDisconnected {
				// Every move's replacement runs, yet Nomad's drain cannot
				// complete: it waits for each allocation on the node to
				// stop on its client, and those of a disconnected node
				// stay unknown until its client is back (then they stop),
				// their group's disconnect.lost_after (lost) or the
				// drain's deadline (TestFidelityDrainDisconnectedNode).
				// Waiting would hold the request, and its place, until
				// its settle timeout, then drain the node again.
				drainOn = fmt.Sprintf("; Nomad's drain of %s goes on while the node is disconnected: it completes when its client is back, "+
					"at its allocations' disconnect.lost_after or at the drain's deadline", r.Resource)
				if k := c.unmarkedUnknown(ctx, r.Moves); k > 0 {
					// Their replacements are Nomad's reschedules, which a
					// reconnect undoes (TestFidelityNodeDisconnected).
					drainOn += fmt.Sprintf("; its drain has not marked %d of the %d %s to migrate yet: should the node come back first, "+
						"Nomad keeps %s there, stops %s replacement%s and its drain then moves %s again",
						k, len(r.Moves), allocations(len(r.Moves)), pick(k, "it", "them"), pick(k, "its", "their"), pick(k, "", "s"), pick(k, "it", "them"))
				}
				c.log.Info("drain request done while its node is disconnected: Nomad's drain completes later", logKeyRequest, r.ID, "node", r.Resource.ID)
			} else if running, ended := c.sysbatchLeft(r.Resource.ID); done && len(running)+len(ended) > 0 {
				// Nomad's drain leaves a sysbatch allocation, which no
				// move takes (everyNode), to end as a batch one, and
				// cannot complete before its deadline: not while one
				// runs, nor once it ended on its own, unmarked
				// (TestFidelitySysbatchDrain). Waiting would hold the
				// request, and its place, until its settle timeout,
				// then drain the node again.
				drainOn = fmt.Sprintf("; Nomad's drain of %s goes on", r.Resource)
				if k := len(running); k > 0 {
					drainOn += fmt.Sprintf(": it leaves sysbatch %s %s to end, and stops %s at the drain's deadline if %s then "+
						"(should %s end before, foreshape updates the drain for Nomad to complete it)",
						pick(k, "allocation", "allocations"), strings.Join(running, ", "), pick(k, "it", "them"), pick(k, "it runs", "they run"), pick(k, "it", "they"))
				}
				if k := len(ended); k > 0 {
					drainOn += fmt.Sprintf("; sysbatch %s %s ended while it drained, which Nomad's drain does not watch: foreshape updates the drain, its deadline as it was, for Nomad to complete it",
						pick(k, "allocation", "allocations"), strings.Join(ended, ", "))
				}
				c.log.Info("drain request done while sysbatch allocations hold its node's drain back: Nomad's drain completes later", logKeyRequest, r.ID, "node", r.Resource.ID)
			} else {
				done = false
				pending = append(pending, "the drain of "+r.Resource.String())
			}
		}
	}
	if done && len(ended)+len(kept) > 0 && r.Resource.Kind != state.ResourceNode && !landed(r.Moves) {
		// Nothing of it moved and nothing is left to: cancelled, as when
		// the job ended before it started (start). A node's request ends
		// done instead: the node it empties is empty, or Nomad's drain
		// of it goes on.
		why := "nothing left to move: " + strings.Join(ended, "; ")
		if len(ended) == 0 {
			why = "cannot move: " + strings.Join(kept, "; ")
		} else if len(kept) > 0 {
			why += "; and cannot move: " + strings.Join(kept, "; ")
		}
		c.cancelRunning(ctx, now, r, why, ds)
		return
	}
	if len(ended) > 0 {
		c.log.Info("moves end without a replacement: their job ended", logKeyRequest, r.ID, "reason", strings.Join(ended, "; "))
	}
	if len(kept) > 0 {
		c.log.Info("moves end without a replacement: Nomad places none while their node is disconnected", logKeyRequest, r.ID, "reason", strings.Join(kept, "; "))
	}
	if done {
		c.finish(ctx, now, r, view, drainOn, ds)
		return
	}
	if changed {
		id := r.ID
		moves, moved := r.Moves, r.Moved
		c.updateRequest(ctx, id, func(x *state.MigrationRequest) bool {
			if x.State != state.RequestRunning {
				return false
			}
			x.Moves, x.Moved = moves, moved
			return true
		})
	}
	// The timeout runs from the first stop of a move not done yet: time
	// the request spent running before anything was stopped (a leader
	// killed in its start, a move waiting for a slot or for its nodes to
	// leave scheduling) is not time the move ran.
	since, what := r.Started, "its start"
	first := time.Time{}
	for _, m := range r.Moves {
		if !m.Done && !m.Stopped.IsZero() && (first.IsZero() || m.Stopped.Before(first)) {
			first = m.Stopped
		}
	}
	if !first.IsZero() && first.After(since) {
		since, what = first, "its first stop"
	}
	timeout := settleTimeout(r)
	if now.Sub(since) > timeout && handing < len(pending) {
		c.retry(ctx, now, r.ID, fmt.Sprintf("not settled %s after %s (timeout %s): waiting for %s",
			now.Sub(since).Round(time.Second), what, timeout, strings.Join(pending, ", ")), ds)
		return
	}
}

// clientTerminal reports whether an allocation's client status is final.
func clientTerminal(status string) bool {
	switch status {
	case nomadapi.AllocClientStatusComplete, nomadapi.AllocClientStatusFailed, nomadapi.AllocClientStatusLost:
		return true
	}
	return false
}

// needsHealth reports whether the replacement's group has checks, so it
// counts only once healthy (unless Nomad's client will set it no health:
// noHealthComing).
func (c *Coordinator) needsHealth(a *nomadapi.AllocationListStub) bool {
	j, ok := c.view.jobs[a.Namespace+"/"+a.JobID]
	return ok && j.job.Groups[a.TaskGroup].Checks
}

// noHealthComing reports whether Nomad's client will never set health on
// a, which runs without any: its client watches the health of an
// allocation that carries a deployment's ID with the group's update block,
// and watches nothing when that block is empty (max_parallel 0: the
// deployment does not track the group) or sets health_check = "manual".
// Such an allocation, placed while a deployment of its job runs, counts
// once it runs: Nomad watches none of its checks either (the deployment
// neither waits for it nor reschedules on them), and Nomad shows no other
// field for checks a move could wait on. One with no deployment ID is
// watched with the group's migrate block and gets health. It reads the
// allocation in full (the list omits its deployment ID and job version);
// on an error it answers false, and the move waits for the next pass.
func (c *Coordinator) noHealthComing(ctx context.Context, a *nomadapi.AllocationListStub) bool {
	full, _, err := c.nomad.Allocations().Info(a.ID, c.qo(ctx))
	if err != nil {
		c.log.Warn("a replacement's health: reading the allocation failed", "alloc", a.ID, logKeyError, err)
		return false
	}
	if full.DeploymentID == "" || full.Job == nil {
		return false
	}
	tg := full.Job.LookupTaskGroup(full.TaskGroup)
	if tg == nil {
		return false
	}
	u := tg.Update
	if u == nil || u.MaxParallel == nil || *u.MaxParallel == 0 || (u.HealthCheck != nil && *u.HealthCheck == "manual") {
		c.log.Debug("a replacement counts once it runs: Nomad's client sets no health on it", "alloc", a.ID, "deployment", full.DeploymentID)
		return true
	}
	return false
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// doneReason says what a finished request did: how many allocations it
// moved in how long, and, when Nomad placed some of them elsewhere than
// the plan (outside the target, or back on a node the request leaves),
// how many went as planned and which did not. notMoved are the reasons of
// moves that ended without a replacement (their job ended under the
// request); they are counted apart, not as moved.
func doneReason(r state.MigrationRequest, took time.Duration, misplaced, notMoved []string) string {
	took = took.Round(time.Second)
	if shape.WindowHold(&r) {
		n := len(windowNodes(r))
		return fmt.Sprintf("held the window's %d %s out of scheduling until its end (one out already stays as it was); moved nothing; done in %s",
			n, pick(n, "node", "nodes"), took)
	}
	if len(r.Moves) == 0 {
		return fmt.Sprintf("%s held nothing to move; done in %s", r.Resource, took)
	}
	skipped := len(notMoved)
	var why []string
	for _, w := range notMoved {
		if !slices.Contains(why, w) {
			why = append(why, w)
		}
	}
	n := len(r.Moves) - skipped
	var s string
	switch {
	case n == 0:
		s = fmt.Sprintf("moved nothing in %s (estimated %s)", took, r.Estimated)
	case len(misplaced) == 0:
		s = fmt.Sprintf("moved %d %s to %s in %s (estimated %s)", n, allocations(n), r.Target, took, r.Estimated)
	default:
		s = fmt.Sprintf("moved %d %s in %s (estimated %s): %d to %s as planned, %d not (%s)",
			n, allocations(n), took, r.Estimated, n-len(misplaced), r.Target, len(misplaced), strings.Join(misplaced, "; "))
	}
	if skipped > 0 {
		s += fmt.Sprintf("; %d %s not moved (%s)", skipped, allocations(skipped), strings.Join(why, "; "))
	}
	return s
}

func allocations(n int) string {
	if n == 1 {
		return "allocation"
	}
	return "allocations"
}

// keptWhileDisconnected says why Nomad places no replacement of a, an
// unknown allocation (its node disconnected) that was stopped, while the
// node stays disconnected: its group sets disconnect.replace = false, or
// Nomad scheduled no reschedule of it (its follow-up evaluation is the
// max-disconnect-timeout at lost_after rather than an alloc-reschedule),
// as for an allocation of the job's deployment running at the disconnect.
// Its stop marked it to migrate, which Nomad does once the node is back;
// at the group's disconnect.lost_after Nomad takes it as lost and replaces
// it (TestFidelityNodeDisconnectedUnreplaced,
// TestFidelityNodeDisconnectedMidDeployment). "" when Nomad replaces it,
// or that cannot be read (the move waits; its settle timeout bounds it).
func (c *Coordinator) keptWhileDisconnected(ctx context.Context, a *nomadapi.AllocationListStub) string {
	cj, ok := c.view.jobs[a.Namespace+"/"+a.JobID]
	if !ok {
		return ""
	}
	if lost, ok := cj.kept[a.TaskGroup]; ok {
		return fmt.Sprintf("node %s is disconnected and group %s of job %s sets disconnect.replace = false: Nomad places no replacement "+
			"until the node is back (then it moves the allocations marked to migrate) or disconnect.lost_after (%s) has passed",
			a.NodeName, a.TaskGroup, a.JobID, lost)
	}
	if a.FollowupEvalID == "" {
		return ""
	}
	trigger, ok := c.triggers[a.FollowupEvalID]
	if !ok {
		q := c.qo(ctx)
		q.Namespace = a.Namespace
		e, _, err := c.nomad.Evaluations().Info(a.FollowupEvalID, q)
		if err != nil {
			c.log.Debug("could not read the follow-up evaluation of an unknown allocation", "alloc", a.ID, logKeyError, err)
			return ""
		}
		if c.triggers == nil || len(c.triggers) >= maxTriggers {
			c.triggers = map[string]string{}
		}
		trigger = e.TriggeredBy
		c.triggers[a.FollowupEvalID] = trigger
	}
	if trigger != triggerMaxDisconnect {
		return ""
	}
	return fmt.Sprintf("node %s is disconnected and Nomad scheduled no reschedule of %s (its follow-up evaluation is the disconnect timeout, "+
		"as for an allocation of a deployment running at the disconnect): Nomad places no replacement until the node is back "+
		"(then it moves the allocations marked to migrate) or disconnect.lost_after has passed", a.NodeName, a.Name)
}

// maxTriggers bounds Coordinator.triggers: past it, they are read again.
const maxTriggers = 1000

// triggerMaxDisconnect is the TriggeredBy of the evaluation Nomad creates
// to time a disconnected node's unknown allocations out at lost_after.
const triggerMaxDisconnect = "max-disconnect-timeout"

// notMovedMove reports whether m ended without a replacement because its
// job ended while the request ran (followOne's jobEnded), or because Nomad
// places none while its node is disconnected (keptWhileDisconnected).
func notMovedMove(m state.Move) bool {
	return m.Done && m.Running.IsZero() && strings.HasPrefix(m.Error, notMovedPrefix)
}

// notMovedPrefix begins the error of a move that ended without a
// replacement (notMovedMove).
const notMovedPrefix = "not moved: "

// finish records a settled request: done, its durations against the
// estimate (which learns from them), what is left of its reservation
// released, and eligibility restored where the move changed it. note, when
// not empty, ends the reason.
func (c *Coordinator) finish(ctx context.Context, now time.Time, r state.MigrationRequest, view state.ActView, note string, ds *[]state.Decision) {
	took := now.Sub(r.Started)
	var misplaced, notMoved []string
	srcDC := dcOf(r.Source)
	for _, m := range r.Moves {
		switch {
		case notMovedMove(m):
			notMoved = append(notMoved, strings.TrimPrefix(m.Error, notMovedPrefix))
		case m.Error != "":
			misplaced = append(misplaced, shortID(m.Alloc)+": "+m.Error)
		}
		if m.Stopped.IsZero() || m.Running.IsZero() || m.Landed == "" {
			continue
		}
		c.learn(ctx, shape.EstimateKey(srcDC, dcOf(m.Landed), m.Size), m.Running.Sub(m.Stopped))
	}
	reason := doneReason(r, took, misplaced, notMoved)
	if gone := c.purged(r); gone != "" {
		reason += "; " + gone
	}
	reason += note
	if len(misplaced) > 0 {
		c.log.Warn("move done, not all as planned", logKeyRequest, r.ID, "target", r.Target, "reason", reason)
	}
	moves, moved := r.Moves, r.Moved
	c.updateRequest(ctx, r.ID, func(x *state.MigrationRequest) bool {
		if x.State != state.RequestRunning {
			return false
		}
		x.Moves, x.Moved, x.State, x.Finished, x.Reason = moves, moved, state.RequestDone, now, reason
		return true
	})
	if c.cfg.Metrics != nil {
		c.cfg.Metrics.finished.WithLabelValues("done").Inc()
		c.cfg.Metrics.duration.Observe(took.Seconds())
	}
	*ds = append(*ds, state.Decision{Time: now, Kind: "done", Policy: r.Policy, Locality: r.Source, Request: r.ID, Reason: reason})
	if res, ok := view.ReservationFor(r.ID); ok {
		why := fmt.Sprintf("release %s in %s: the move of %s is done (%s left of %s)", res.ID, res.Locality, r.ID,
			c.reservationLeft(res.ID), res.Size)
		if err := c.release(ctx, now, res, why); err != nil {
			c.log.Warn("release failed", logKeyReservation, res.ID, logKeyError, err)
		} else {
			*ds = append(*ds, state.Decision{Time: now, Kind: "release", Policy: res.Policy, Locality: res.Locality, Request: r.ID, Reservation: res.ID, Reason: why})
		}
	}
	// A whole node an operator asked to empty stays out of scheduling, as
	// after `nomad node drain`: it is being emptied for a reason, and work
	// landing back on it would undo the move (or another request's). The
	// operator makes it eligible again; a drain window's nodes come back
	// when the window ends (restoreWindows).
}

// purged says which of the nodes r moves work off (its node, its moves'
// sources) Nomad no longer lists: purged (`nomad node purge`) since r was
// queued, before or while it ran; "" when none.
func (c *Coordinator) purged(r state.MigrationRequest) string {
	var gone []string
	add := func(id, name string) {
		if id == "" || c.view.nodes[id] != nil {
			return
		}
		if name == "" {
			name = shortID(id)
		}
		if !slices.Contains(gone, name) {
			gone = append(gone, name)
		}
	}
	if r.Resource.Kind == state.ResourceNode {
		add(r.Resource.ID, r.Resource.Name)
	}
	for _, m := range r.Moves {
		name := ""
		switch a := c.view.allocs[m.Alloc]; {
		case m.Node == r.Resource.ID:
			name = r.Resource.Name
		case a != nil && a.NodeID == m.Node:
			name = a.NodeName
		}
		add(m.Node, name)
	}
	switch len(gone) {
	case 0:
		return ""
	case 1:
		return "node " + gone[0] + " was purged from Nomad"
	}
	return "nodes " + strings.Join(gone, ", ") + " were purged from Nomad"
}

// landed reports whether a replacement of any of moves ran somewhere.
func landed(moves []state.Move) bool {
	return slices.ContainsFunc(moves, func(m state.Move) bool { return m.Landed != "" })
}

// cancelRunning ends a running request whose work ended under it (its
// job stopped or purged): cancelled, saying why, its reservation released
// and its max_parallel place freed. The state machine cancels only queued
// requests, so it is queued again first, moves as they are, and cancelled
// right after; a leader that stops in between leaves it queued, and its
// next start cancels it for the same reason (endedJobs).
func (c *Coordinator) cancelRunning(ctx context.Context, now time.Time, r state.MigrationRequest, why string, ds *[]state.Decision) {
	moves, moved := r.Moves, r.Moved
	c.updateRequest(ctx, r.ID, func(x *state.MigrationRequest) bool {
		if x.State != state.RequestRunning {
			return false
		}
		x.Moves, x.Moved, x.State, x.Reason = moves, moved, state.RequestPending, why
		return true
	})
	if _, err := c.apply(ctx, state.CancelRequest{ID: r.ID, At: now, Reason: why}); err != nil {
		c.log.Warn("could not cancel a running request whose job ended", logKeyRequest, r.ID, logKeyError, err)
		return
	}
	c.log.Info("running request cancelled", logKeyRequest, r.ID, "reason", why)
	*ds = append(*ds, state.Decision{Time: now, Kind: "cancel", Policy: r.Policy, Locality: r.Source, Request: r.ID, Reason: why})
	if res, ok := c.cfg.State.ReservationFor(r.ID); ok {
		rel := fmt.Sprintf("release %s in %s: %s was cancelled (%s)", res.ID, res.Locality, r.ID, why)
		if err := c.release(ctx, now, res, rel); err != nil {
			c.log.Warn("release failed", logKeyReservation, res.ID, logKeyError, err)
		} else {
			*ds = append(*ds, state.Decision{Time: now, Kind: "release", Policy: res.Policy, Locality: res.Locality, Request: r.ID, Reservation: res.ID, Reason: rel})
		}
	}
}

// reservationLeft is what a reservation still holds, from the state.
func (c *Coordinator) reservationLeft(id string) state.Resources {
	for _, r := range c.cfg.State.Act().Reservations {
		if r.ID == id {
			return r.Total()
		}
	}
	return state.Resources{}
}

// setEligible makes a node eligible again, once per request; since is
// when foreshape took it out (tookAt).
func (c *Coordinator) setEligible(ctx context.Context, now time.Time, node, request string, since time.Time, ds *[]state.Decision) {
	c.setEligibleFor(ctx, now, node, request, request, since, ds)
}

// setEligibleFor makes a node eligible again once per key (a request, or
// a drain window all of whose requests read it), recording the intent as
// owner's: it is kept as long as the queue holds owner. A node an
// operator drained after foreshape took it out at since
// (nodeDrainedSince) is left as it is (keepOperatorsDrain).
func (c *Coordinator) setEligibleFor(ctx context.Context, now time.Time, node, request, owner string, since time.Time, ds *[]state.Decision) {
	c.setEligibleWhy(ctx, now, node, request, owner, since, "", ds)
}

// setEligibleWhy is setEligibleFor whose restore decision, when the node
// is made eligible, goes on with why.
func (c *Coordinator) setEligibleWhy(ctx context.Context, now time.Time, node, request, owner string, since time.Time, why string, ds *[]state.Decision) {
	if n, listed := c.view.nodes[node]; listed && !foreshapesDrain(n.LastDrain) &&
		(n.Drain || n.LastDrain != nil && !since.IsZero() && n.SchedulingEligibility == nomadapi.NodeSchedulingIneligible) {
		// An operator's drain, maybe begun since the take-out: the list's
		// stub carries no node events, which order the two where the
		// clocks cannot (nodeDrainedSince).
		full, _, err := c.nomad.Nodes().Info(node, c.qo(ctx))
		switch {
		case err == nil && nodeDrainedSince(full, since):
			c.keepOperatorsDrain(ctx, now, node, request, owner, ds)
			return
		case err != nil && !isNotFound(err):
			c.log.Warn("could not read a node to give back", "node", node, logKeyRequest, owner, logKeyError, err)
			return // the next pass looks again
		}
	}
	in := state.Intent{ID: intentID(state.IntentNodeEligibility, node, request, -1), Kind: state.IntentNodeEligibility,
		Request: owner, Object: node, Detail: "eligible"}
	if n, listed := c.view.nodes[node]; !listed {
		// Purged while held: if its client registers it again, out of
		// scheduling as it last heard, giveBackAgainAll gives it back.
		in.Before = state.NodeWasPurged
	} else {
		// Purged less than a heartbeat after it, the node comes back
		// out of scheduling, as its client last heard, with a later
		// CreateIndex than this: giveBackAgainAll gives it back.
		in.NodeCreated = n.CreateIndex
	}
	gone, kept := false, false
	err := c.do(ctx, now, in, func(ctx context.Context) error {
		n, _, err := c.nomad.Nodes().Info(node, c.qo(ctx))
		if isNotFound(err) {
			// Purged from Nomad since it was taken out: there is no
			// node to give back. Failed, the give-back would be
			// announced again, and fail, up to maxRedos times.
			gone = true
			return nil
		}
		if err != nil {
			return err
		}
		if nodeDrainedSince(n, since) {
			// An operator's drain begun since the view was read.
			kept = true
			return nil
		}
		if n.DrainStrategy != nil {
			_, err = c.nomad.Nodes().UpdateDrainOpts(node, &nomadapi.DrainOptions{DrainSpec: nil, MarkEligible: true}, c.wq(ctx))
			return err
		}
		if n.SchedulingEligibility == nomadapi.NodeSchedulingEligible {
			return nil
		}
		_, err = c.nomad.Nodes().ToggleEligibility(node, true, c.wq(ctx))
		return err
	})
	switch {
	case errors.Is(err, errAnnounced):
		// Given back (or under way), or refused maxRedos times: then
		// the node stays out of scheduling, and that is said rather
		// than left without a word.
		if last, ok := c.latestIntent(in.ID); ok && last.Outcome == state.OutcomeFailed {
			name := c.decisionName(node)
			c.note(ds, now, "notback/"+in.ID, state.Decision{Kind: "hold", Request: request,
				Reason: fmt.Sprintf("cannot give back node %s: Nomad refused making it eligible %d times, the last: %s; it stays out of scheduling until it is made eligible in Nomad (nomad node eligibility -enable %s)",
					name, maxRedos, last.Error, node)})
		}
	case err != nil:
		c.log.Warn("could not restore a node's eligibility", "node", node, logKeyError, err)
	case gone:
		*ds = append(*ds, state.Decision{Time: now, Kind: "restore", Request: request,
			Reason: fmt.Sprintf("node %s was purged from Nomad: nothing to give back", c.decisionName(node))})
	case kept:
		*ds = append(*ds, operatorsDrainDecision(now, c.decisionName(node), request))
	default:
		*ds = append(*ds, state.Decision{Time: now, Kind: "restore", Request: request, Reason: fmt.Sprintf("node %s eligible again", c.decisionName(node)) + why})
	}
}

// foreshapesDrain reports whether a node's last drain (LastDrain, as
// Nomad reports it) is one foreshape made: its meta names a request
// (drainNode). Nomad keeps a drain's meta until a later drain brings its
// own, and an operator's (`nomad node drain -enable`, the UI) names none.
func foreshapesDrain(last *nomadapi.DrainMetadata) bool {
	return last != nil && last.Meta[MetaRequest] != ""
}

// nodeDrainedSince reports whether a node foreshape took out of
// scheduling at since, read in full from Nomad (draining, its eligibility,
// its LastDrain, its events), is under an operator's drain begun after
// that: a drain that is not foreshape's and still runs, whenever it began
// (a node draining already was never taken out: holdNodes, holdWindows,
// holdJoined and cordon skip it, and foreshape's own drain of one brings
// its meta), or one that began after since and left the node out of
// scheduling (complete, or cancelled keeping it ineligible). A drain an
// operator ended before foreshape took the node out is older than since;
// since is zero when no take-out was seen made.
//
// since is foreshape's clock and LastDrain's start Nomad's: with
// foreshape's clock behind, or the take-out made later in a pass than the
// time it read, an operator's drain begun and called off just before the
// take-out read as begun after it, and the node, out of scheduling by
// foreshape's own cordon, was left out for good; with foreshape's clock
// ahead, a drain begun just after the take-out read as older, and was
// lifted. So Nomad's node events, which carry its raft index, order the
// two where they can: a drain set before the last time the node was
// marked ineligible is older than that take-out (foreshape's, or a cordon
// that cannot be told from it), and one set after every listed one is
// later. Nomad keeps a node's last 10 events: a drain whose event is gone
// while a later cordon's is listed is older too; with neither listed, the
// clocks decide.
func nodeDrainedSince(n *nomadapi.Node, since time.Time) bool {
	if n == nil {
		return false
	}
	last := n.LastDrain
	switch {
	case last != nil && foreshapesDrain(last):
		return false
	case n.DrainStrategy != nil:
		return true
	case last == nil || since.IsZero() || n.SchedulingEligibility != nomadapi.NodeSchedulingIneligible:
		return false
	}
	var set, cordoned uint64 // the last drain set, the last made ineligible
	for _, e := range n.Events {
		switch {
		case e == nil:
		case e.Subsystem == nodeEventDrain && e.Message == nodeEventDrainSet:
			set = max(set, e.CreateIndex)
		case e.Subsystem == nodeEventCluster && e.Message == nodeEventIneligible:
			cordoned = max(cordoned, e.CreateIndex)
		}
	}
	switch {
	case set > 0:
		return set > cordoned
	case cordoned > 0:
		return false
	}
	return last.StartedAt.After(since)
}

// Nomad's node events that nodeDrainedSince orders: a drain's start
// (Node.UpdateDrain of a node not draining) and an eligibility call that
// takes the node out of scheduling.
const (
	nodeEventDrainSet   = "Node drain strategy set"
	nodeEventIneligible = "Node marked as ineligible for scheduling"
)

// tookAt is when foreshape first took node out of scheduling for r (its
// cordon, or its drain, in any attempt; for a drain window's request the
// window's own take-out too), seen made: firstDone of the intents owedBack
// reads. Zero when none was.
func (c *Coordinator) tookAt(r state.MigrationRequest, node string) time.Time {
	ids := append(attemptIntents(node, r), perAttempt(state.IntentDrainNode, node, r)...)
	if r.Origin == "schedule" {
		ids = append(ids, intentID(state.IntentNodeEligibility, node, windowKey(r), 0))
	}
	return c.firstDone(ids...)
}

// keepOperatorsDrain closes the give-back (once per key, as
// setEligibleFor's) of a node foreshape took out of scheduling that an
// operator drained since (nodeDrainedSince). Ending that drain, as the
// give-back did (a drain's end with MarkEligible), or making the node
// eligible once it had ended, lifted an operator's drain at a window's
// end: foreshape gives back only what it took. The node stays as it is,
// draining, or out of scheduling once the drain ended, which is the
// operator's to give back; a hold decision says so, and the intent
// (keptOperatorDrain) leaves foreshape owing the node nothing more.
//
// A cordon an operator makes on a node foreshape holds out (`nomad node
// eligibility -disable`) cannot be told apart: Nomad ignores an
// eligibility a node has already (no change, no node event, no index), so
// the give-back makes such a node eligible (docs/policies.md).
func (c *Coordinator) keepOperatorsDrain(ctx context.Context, now time.Time, node, request, owner string, ds *[]state.Decision) {
	in := state.Intent{ID: intentID(state.IntentNodeEligibility, node, request, -1), Kind: state.IntentNodeEligibility,
		Request: owner, Object: node, Detail: keptOperatorDrain, Before: state.NodeWasDraining}
	err := c.do(ctx, now, in, func(context.Context) error { return nil })
	switch {
	case errors.Is(err, errAnnounced):
	case err != nil:
		c.log.Warn("could not record leaving an operator's drain of a node foreshape took out", "node", node, logKeyRequest, owner, logKeyError, err)
	default:
		*ds = append(*ds, operatorsDrainDecision(now, c.decisionName(node), request))
	}
}

// operatorsDrainDecision says that node, which request (a request or a
// window's key) would give back, stays as an operator's drain left it.
func operatorsDrainDecision(now time.Time, name, request string) state.Decision {
	return state.Decision{Time: now, Kind: "hold", Request: request,
		Reason: fmt.Sprintf("node %s stays as it is, out of scheduling: an operator drained it after foreshape took it out for %s, and foreshape gives back only what it took; the drain, and making the node eligible, are the operator's (nomad node eligibility -enable)",
			name, request)}
}

// restoreWindows gives back the nodes a drain window took out of
// scheduling once the window ended and no other window of the policies
// takes them down (owedBack); a hold decision says which window a node
// waits for.
func (c *Coordinator) restoreWindows(ctx context.Context, now time.Time, view state.ActView, ds *[]state.Decision) {
	// Every request of a window lists all the window's nodes: an
	// allocation's request looks at each node of its window once a pass,
	// not once per request (what it owes depends only on the window); a
	// node's request also reads its own intents and drain, so it always
	// looks.
	seen := map[string]bool{}
	for _, r := range view.Requests {
		if r.Origin != "schedule" {
			continue
		}
		key := windowKey(r)
		for _, node := range append(windowNodes(r), c.joinedNodes(now, r)...) {
			if r.Resource.Kind != state.ResourceNode && seen[key+" "+node] {
				continue
			}
			d := c.owedBack(view, now, r, node)
			if r.Resource.Kind != state.ResourceNode && !r.Deadline.IsZero() && !r.State.Queued() {
				// Due or not, what it owes is the window's: its other
				// allocation requests need not ask again while the window
				// runs (each asks held, which reads every request).
				seen[key+" "+node] = true
			}
			if !d.due {
				if d.window != nil {
					c.sayWindowHold(ds, now, r, key, node, *d.window)
				}
				continue
			}
			seen[key+" "+node] = true
			if c.operatorCancelled(view, r) {
				c.sayCalledOff(ds, now, r)
			}
			switch d.owes {
			case owesDrainEnd:
				c.keepOperators(ctx, now, node, key, key, r, d.before, ds)
			case owesEligible:
				c.setEligibleWhy(ctx, now, node, key, r.ID, c.tookAt(r, node), c.leftNote(d, r, node), ds)
			}
		}
	}
}

// sayCalledOff says, once per window (calledOffSaid: across leaders),
// that the drain window of r, which an operator called off
// (operatorCancelled), gives its nodes back now.
func (c *Coordinator) sayCalledOff(ds *[]state.Decision, now time.Time, r state.MigrationRequest) {
	if c.calledOffSaid(*ds, now, r) {
		return
	}
	c.recent["calledoff/"+windowKey(r)] = now
	until := "its end"
	if end, ok := c.windowEnd(r); ok {
		until = "its end at " + clockOn(now, end)
	}
	*ds = append(*ds, state.Decision{Time: now, Kind: "restore", Policy: r.Policy, Locality: r.Source, Request: r.ID,
		Reason: fmt.Sprintf("drain window %s"+calledOffSays+"an operator cancelled every request of it before any started; foreshape gives back the nodes it took out for it now, not at %s, and queues nothing more of it until then (a node out of scheduling before the window, an operator's, stays out)",
			windowName(r), until)})
}

// windowNodes are the nodes a schedule request's window may have taken
// out of scheduling: its own node, its moves' nodes and every other node
// of the window (Exclude), which includes nodes with nothing to move.
func windowNodes(r state.MigrationRequest) []string {
	var nodes []string
	if r.Resource.Kind == state.ResourceNode {
		nodes = append(nodes, r.Resource.ID)
	}
	for _, m := range r.Moves {
		nodes = append(nodes, m.Node)
	}
	nodes = append(nodes, r.Exclude...)
	var out []string
	for _, n := range nodes {
		if n != "" && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// drained reports whether foreshape drained node for the drain-strategy
// request r (in any attempt): its drain intent is done.
func (c *Coordinator) drained(node string, r state.MigrationRequest) bool {
	if r.Resource.Kind != state.ResourceNode || r.Resource.ID != node || r.Strategy != string(policies.StrategyDrain) {
		return false
	}
	for a := 0; a <= r.Attempts; a++ {
		if in, ok := c.latestIntent(intentID(state.IntentDrainNode, node, r.ID, a)); ok && in.Outcome == state.OutcomeDone {
			return true
		}
	}
	return false
}

// drainedFrom is what node was, for scheduling, when foreshape's drain
// for r first opened (state.Intent.Before of its earliest drain intent):
// "" when no intent recorded it (written before it was recorded: read as
// eligible, as then).
func (c *Coordinator) drainedFrom(node string, r state.MigrationRequest) string {
	for a := 0; a <= r.Attempts; a++ {
		if in, ok := c.cfg.State.Intent(intentID(state.IntentDrainNode, node, r.ID, a)); ok {
			return in.Before
		}
	}
	return ""
}

// The details of the intents that close a window's drain of a node an
// operator had taken out of scheduling before it: the node stays out.
const (
	keptCordon = "kept out: ineligible before foreshape's drain, which ends"
	keptDrain  = "kept out: draining before foreshape's drain, left as it is"
	// keptOperatorDrain closes the give-back of a node an operator drained
	// after foreshape took it out (keepOperatorsDrain).
	keptOperatorDrain = "kept out: drained by an operator after foreshape took it out, left as it is"
)

// keptOut reports whether an eligibility intent's detail is one of those.
func keptOut(detail string) bool {
	return detail == keptCordon || detail == keptDrain || detail == keptOperatorDrain
}

// keepOperators closes a drain window (key; after says what ended) for a
// node foreshape drained (for r) but did not take out of scheduling: it
// was ineligible (an operator's cordon) or draining already when the drain
// began. A failed whole-node request's drain ends the same way. foreshape ends its
// own drain, if it still runs, leaving the node ineligible, or leaves an
// operator's drain as it is; a hold decision says so (none when the node
// is eligible again by then: someone gave it back). A cordon a spread
// made before the drain is foreshape's too, and so is a hold a given-up
// whole-node request or a drain window made and still owes back
// (foreshapeHold): the decision names it, and it gives the node back
// itself once nothing foreshape runs holds it (owedBack). Once per window and
// node, through the intent that would have given the node back.
func (c *Coordinator) keepOperators(ctx context.Context, now time.Time, node, key, after string, r state.MigrationRequest, before string, ds *[]state.Decision) {
	detail := keptCordon
	if before == state.NodeWasDraining {
		detail = keptDrain
	}
	in := state.Intent{ID: intentID(state.IntentNodeEligibility, node, key, -1), Kind: state.IntentNodeEligibility,
		Request: r.ID, Object: node, Detail: detail, Before: before}
	back := false // in scheduling again already (someone made it eligible)
	err := c.do(ctx, now, in, func(ctx context.Context) error {
		n, _, err := c.nomad.Nodes().Info(node, c.qo(ctx))
		if err != nil {
			return err
		}
		back = n.DrainStrategy == nil && n.SchedulingEligibility == nomadapi.NodeSchedulingEligible
		if detail == keptDrain || !ownDrain(n, r.ID) {
			return nil
		}
		_, err = c.nomad.Nodes().UpdateDrainOpts(node, &nomadapi.DrainOptions{DrainSpec: nil, MarkEligible: false}, c.wq(ctx))
		return err
	})
	switch {
	case errors.Is(err, errAnnounced):
	case err == nil && back:
		c.log.Info("a drain ended on a node eligible again already", "node", node, "after", after, logKeyRequest, r.ID)
	case err != nil:
		c.log.Warn("could not end foreshape's drain of a node an operator had cordoned", "node", node, "after", after, logKeyError, err)
	default:
		name := c.decisionName(node)
		why := fmt.Sprintf("node %s stays out of scheduling after %s: it was out of scheduling already (an operator's cordon) when foreshape drained it for %s; foreshape ended only its own drain (make it eligible in Nomad when it is yours to give back)", name, after, r.ID)
		if detail == keptDrain {
			why = fmt.Sprintf("node %s stays as it is after %s: it was draining already (an operator's drain) when foreshape drained it for %s; foreshape neither ends the drain nor makes it eligible", name, after, r.ID)
		} else if s, spread := c.foreshapeHold(c.cfg.State.Act(), now, node, r); spread {
			why = fmt.Sprintf("node %s stays out of scheduling after %s for now: spread %s had cordoned it when foreshape drained it for %s; foreshape ended its own drain, and %s gives the node back once nothing foreshape runs holds it", name, after, s, r.ID, s)
		} else if s != "" {
			why = fmt.Sprintf("node %s stays out of scheduling after %s for now: %s had taken it out when foreshape drained it for %s; foreshape ended its own drain, and %s gives the node back once nothing foreshape runs holds it", name, after, s, r.ID, s)
		}
		*ds = append(*ds, state.Decision{Time: now, Kind: "hold", Policy: r.Policy, Locality: r.Source, Request: r.ID, Reason: why})
	}
}

// ownDrain reports whether n is draining under foreshape's drain for
// request (the drain's meta names it).
func ownDrain(n *nomadapi.Node, request string) bool {
	return n.DrainStrategy != nil && n.LastDrain != nil && n.LastDrain.Meta["foreshape.request"] == request
}

// restoreAbandoned gives back the nodes of whole-node requests that were
// cancelled or failed after foreshape took them out of scheduling: seen
// made (tookOut), not a cordon a later leader only found in effect; or
// drained by foreshape from eligible. A drain of a node an operator had
// cordoned (or was draining) before ends, leaving the operator's choice
// (keepOperators). owedBack says which.
func (c *Coordinator) restoreAbandoned(ctx context.Context, now time.Time, view state.ActView, ds *[]state.Decision) {
	for _, r := range view.Requests {
		if r.Resource.Kind != state.ResourceNode || r.Origin == "schedule" {
			continue
		}
		node := r.Resource.ID
		switch d := c.owedBack(view, now, r, node); {
		case !d.due:
			if d.window != nil {
				c.sayWindowHold(ds, now, r, r.ID, node, *d.window)
			}
		case d.owes == owesDrainEnd:
			c.keepOperators(ctx, now, node, r.ID, r.ID+" was given up", r, d.before, ds)
		case d.owes == owesEligible:
			c.setEligible(ctx, now, node, r.ID, c.tookAt(r, node), ds)
		}
	}
}

// restoreSpreads gives back the nodes a spread took out of scheduling
// (cordon) once it has ended, however it ended, and no other spread off
// the node still runs. A node draining by then (an operator's or a drain's
// now) stays as it is. owedBack says which.
func (c *Coordinator) restoreSpreads(ctx context.Context, now time.Time, view state.ActView, ds *[]state.Decision) {
	for _, r := range view.Requests {
		if !shape.Within(&r) {
			continue
		}
		for _, node := range backNodes(r) {
			switch d := c.owedBack(view, now, r, node); {
			case d.due && d.owes == owesEligible:
				c.setEligible(ctx, now, node, r.ID, c.tookAt(r, node), ds)
			case d.window != nil:
				c.sayWindowHold(ds, now, r, r.ID, node, *d.window)
			}
		}
	}
}

// windowKey names a schedule request's window: "window/policy/schedule/start".
func windowKey(r state.MigrationRequest) string {
	parts := strings.SplitN(r.OriginKey, "/", 5)
	if len(parts) < 4 {
		return "window/" + r.ID
	}
	return "window/" + parts[1] + "/" + parts[2] + "/" + parts[3]
}

// windowEnd finds the end of a schedule request's window.
func (c *Coordinator) windowEnd(r state.MigrationRequest) (time.Time, bool) {
	parts := strings.SplitN(r.OriginKey, "/", 5)
	if len(parts) < 4 {
		return time.Time{}, false
	}
	for _, p := range c.pols {
		if p.Name != parts[1] {
			continue
		}
		for _, s := range p.Schedules {
			if s.Name == parts[2] {
				return r.Deadline.Add(s.Duration), true
			}
		}
	}
	// The policy or schedule is gone: restore now.
	return r.Deadline, true
}

// learn folds a measured duration into an estimate (exponentially weighted,
// 0.3 on the newest).
func (c *Coordinator) learn(ctx context.Context, key string, d time.Duration) {
	if d <= 0 {
		return
	}
	e, _ := c.cfg.State.Estimate(key)
	e.Key = key
	if e.Samples == 0 {
		e.Mean = d
	} else {
		e.Mean = time.Duration(float64(0.7*float64(e.Mean)) + float64(0.3*float64(d))).Round(time.Millisecond)
	}
	e.Samples++
	e.Last = d
	if _, err := c.apply(ctx, state.SetEstimate{Estimate: e}); err != nil {
		c.log.Warn("could not record a learned duration", "key", key, logKeyError, err)
	}
}

// watchLeads learns scale targets' lead times: from a done action to the
// target reporting ready at its new count.
func (c *Coordinator) watchLeads(ctx context.Context, now time.Time) {
	c.smu.Lock()
	watches := make(map[string]leadWatch, len(c.leads))
	for k, v := range c.leads {
		watches[k] = v
	}
	c.smu.Unlock()
	for id, w := range watches {
		var pol *policies.Policy
		var sc *policies.Scale
		for _, p := range c.pols {
			if p.Name == w.pol {
				for i := range p.Scales {
					if p.Scales[i].Name == w.scale {
						pol, sc = p, &p.Scales[i]
					}
				}
			}
		}
		drop := pol == nil || now.Sub(w.at) > time.Hour
		if !drop {
			t, err := c.target(pol, sc)
			if err != nil {
				continue
			}
			st, err := t.Status(ctx)
			if err != nil || !st.CountKnown {
				drop = err == nil
			} else if st.Ready {
				c.learn(ctx, shape.ScaleLeadKey(w.pol, w.scale), max(now.Sub(w.at), time.Second))
				drop = true
			}
		}
		if drop {
			c.smu.Lock()
			delete(c.leads, id)
			c.smu.Unlock()
		}
	}
}

func dcOf(loc string) string {
	l, err := policies.ParseLocality(loc)
	if err != nil || l.Datacenter == "" {
		return "*"
	}
	return l.Datacenter
}
