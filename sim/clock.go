package sim

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/nomad/api"
)

// ErrClockRunning is returned by Step and RunUntil while Run owns the clock.
var ErrClockRunning = errors.New("sim: the clock is tied to wall time")

// Step advances virtual time by d as fast as possible, in scenario ticks
// (the last one shortened when d is not a multiple of the tick).
func (c *Cluster) Step(d time.Duration) error {
	c.mu.Lock()
	defer c.unlock()
	if c.running {
		return ErrClockRunning
	}
	if d < 0 {
		return fmt.Errorf("sim: step: negative duration %v", d)
	}
	c.advance(c.now.Add(d))
	return nil
}

// RunUntil advances virtual time to t as fast as possible.
func (c *Cluster) RunUntil(t time.Time) error {
	c.mu.Lock()
	defer c.unlock()
	if c.running {
		return ErrClockRunning
	}
	c.advance(t)
	return nil
}

// RunScenario runs the scenario's whole duration as fast as possible.
func (c *Cluster) RunScenario() error {
	if c.sc.Duration <= 0 {
		return fmt.Errorf("sim: scenario %q has no duration", c.sc.Name)
	}
	return c.RunUntil(c.sc.Start.Add(c.sc.Duration))
}

// Run ties virtual time to wall time: every wall second advances the clock
// by speed seconds, in whole ticks, until ctx ends. It returns nil when ctx
// is cancelled.
func (c *Cluster) Run(ctx context.Context, speed float64) error {
	if speed <= 0 {
		return fmt.Errorf("sim: run: speed must be positive, got %v", speed)
	}
	wall := c.opts.Wall
	if wall == nil {
		wall = time.Now
	}
	c.mu.Lock()
	if c.running {
		c.mu.Unlock()
		return fmt.Errorf("sim: run: already running")
	}
	c.running = true
	base := c.now
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.running = false
		c.mu.Unlock()
	}()
	interval := time.Duration(float64(c.sc.Tick) / speed)
	interval = min(max(interval, 20*time.Millisecond), time.Second)
	w0 := wall()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		target := base.Add(time.Duration(float64(wall().Sub(w0)) * speed))
		// One tick per hold of the lock: a clock that has fallen behind
		// (a busy machine, a high speed) catches up tick by tick, and the
		// API's callers and blocking queries are answered between ticks
		// rather than waiting for the whole catch-up; a cancel stops it at
		// the next tick.
		for ctx.Err() == nil {
			c.mu.Lock()
			moved := c.tickToward(target)
			c.unlock()
			if !moved {
				break
			}
		}
	}
}

// Running reports whether Run owns the clock.
func (c *Cluster) Running() bool {
	c.mu.Lock()
	defer c.unlock()
	return c.running
}

// advance runs ticks until to, the last one shortened to end there.
func (c *Cluster) advance(to time.Time) {
	for c.now.Before(to) {
		next := c.now.Add(c.sc.Tick)
		if next.After(to) {
			next = to
		}
		c.tick(next)
	}
}

// tickToward runs the next whole tick if it ends at or before to, and
// reports whether it did.
func (c *Cluster) tickToward(to time.Time) bool {
	next := c.now.Add(c.sc.Tick)
	if next.After(to) {
		return false
	}
	c.tick(next)
	return true
}

// tick moves the model from c.now to t, in a fixed order: transfers, events,
// allocation lifecycle, drains, deployments, health outside them, follow-up evaluations that
// are due, reconciliation, blocked evaluations, then load and ground truth.
func (c *Cluster) tick(t time.Time) {
	from := c.now
	c.progressMigrations(from, t)
	c.now = t
	c.bootNodes()
	c.heartbeats()
	c.disconnectedBeats()
	c.reregisterNodes()
	c.fireEvents()
	c.lifecycle()
	c.runDrains()
	c.runDeployments()
	c.runMigrateHealth()
	c.runFollowups()
	c.reconcileDirty()
	c.retryBlocked()
	c.computeLoad(t.Sub(from))
	c.flushMinutes(false)
	c.gc()
}

// fireEvents applies the scenario events that are due.
func (c *Cluster) fireEvents() {
	for c.nextEvent < len(c.sc.Events) {
		e := c.sc.Events[c.nextEvent]
		if c.now.Before(c.sc.Start.Add(e.At)) {
			return
		}
		c.nextEvent++
		c.applyEvent(e)
	}
}

func (c *Cluster) applyEvent(e EventSpec) {
	detail := ""
	switch e.Kind {
	case EventDrain:
		k := 0
		for _, n := range c.nodes {
			if e.matchNode(n) && n.drain == nil && n.status == api.NodeStatusReady {
				if _, err := c.setDrain(n.id, &api.DrainSpec{Deadline: e.Deadline}, false, map[string]string{"message": "scenario event " + e.Name}); err == nil {
					k++
				}
			}
		}
		detail = fmt.Sprintf("drained %d nodes, deadline %v", k, e.Deadline)
	case EventSurge:
		c.surges = append(c.surges, activeSurge{ev: e, until: c.now.Add(e.Duration)})
		detail = fmt.Sprintf("demand ×%.2f for %v", e.Factor, e.Duration)
	case EventNodeDown, EventNodeUp:
		k := 0
		for _, n := range c.nodes {
			if e.matchNode(n) {
				c.setNodeStatus(n, e.Kind == EventNodeDown)
				k++
			}
		}
		detail = fmt.Sprintf("%d nodes", k)
	case EventAddNodes:
		ids, err := c.addNodes(e.Nodes, e.Count)
		if err != nil {
			detail = "refused: " + err.Error()
		} else {
			detail = fmt.Sprintf("%d nodes like %s, ready in %v", len(ids), e.Nodes, c.sc.NodeBoot)
		}
	case EventScale:
		cnt := int64(e.Count)
		if _, _, err := c.scale(e.Job, &api.ScalingRequest{Count: &cnt, Target: map[string]string{"Job": e.Job, "Group": e.Group}, Message: "scenario event " + e.Name}, false); err != nil {
			detail = "refused: " + err.Error()
		} else {
			detail = fmt.Sprintf("count %d", e.Count)
		}
	}
	c.log.Info("scenario event", logKeyEvent, e.Name, logKeyKind, e.Kind, logKeyDetail, detail)
	c.truth.Events = append(c.truth.Events, EventRecord{Time: c.now, Name: e.Name, Kind: e.Kind, Detail: detail})
}

// timer is a moment at which an allocation may change state on its own.
type timer struct {
	at  time.Time
	seq uint64
	a   *alloc
}

// timers is a min-heap of timers ordered by time, then by arming order.
type timers []timer

func (h timers) Len() int { return len(h) }
func (h timers) Less(i, k int) bool {
	if !h[i].at.Equal(h[k].at) {
		return h[i].at.Before(h[k].at)
	}
	return h[i].seq < h[k].seq
}
func (h timers) Swap(i, k int) { h[i], h[k] = h[k], h[i] }
func (h *timers) Push(x any)   { *h = append(*h, x.(timer)) }
func (h *timers) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = timer{}
	*h = old[:len(old)-1]
	return t
}

// arm schedules a look at a at time at. Stale timers are harmless: the
// state is checked again when they fire.
func (c *Cluster) arm(a *alloc, at time.Time) {
	c.timerSeq++
	heap.Push(&c.timers, timer{at: at, seq: c.timerSeq, a: a})
}

// lifecycle moves allocations through pending → running → complete at
// the times their timers say, so a tick costs nothing for allocations
// that are simply running.
func (c *Cluster) lifecycle() {
	for len(c.timers) > 0 && !c.timers[0].at.After(c.now) {
		a := heap.Pop(&c.timers).(timer).a
		if a.clientTerminal() || a.node.purged || a.client == allocUnknown {
			// A purged node's client reports nothing more; a
			// disconnected one reports when it comes back.
			continue
		}
		if a.node.status == api.NodeStatusDown && a.job.typ == api.JobTypeSysbatch {
			// Nomad takes no sysbatch allocation on a node down as
			// lost: its client reports it when it is back (setNodeStatus).
			continue
		}
		switch {
		case a.client == allocPending && a.desired == desiredRun && a.waitFor == nil &&
			!a.startAt.IsZero() && !c.now.Before(a.startAt):
			if a.mock != nil && !c.mockStarts(a) {
				break
			}
			a.client, a.clientDesc = allocRunning, "Tasks are running"
			a.runningSince = a.startAt
			if a.mock != nil {
				a.runningSince = c.now
			} else if runsOnce(a.job) && a.grp.runFor > 0 {
				a.finishAt = a.runningSince.Add(a.grp.runFor)
				c.arm(a, a.finishAt)
			}
			c.touchByClient(a)
			// Make-before-break: the old allocation may stop now.
			if p := c.allocByID[a.prev]; p != nil && p.mig != nil && p.mig.repl == a && p.mig.transferred {
				at := p.mig.end
				if a.runningSince.After(at) {
					at = a.runningSince
				}
				c.maybeFinishOld(p.mig, at)
			}
		case a.client == allocRunning && a.desired == desiredRun && !a.finishAt.IsZero() && !c.now.Before(a.finishAt) && a.mock != nil:
			c.mockExits(a)
		case a.client == allocRunning && a.desired == desiredRun && !a.finishAt.IsZero() && !c.now.Before(a.finishAt):
			a.client, a.clientDesc, a.stopAt = allocComplete, "All tasks have completed", c.now
			c.touchByClient(a)
			c.markDirty(a.job, triggerQueued)
		case a.desired != desiredRun && a.mig == nil && !a.stopAt.IsZero() && !c.now.Before(a.stopAt):
			if a.mock != nil && !c.mockKill(a) {
				break // its start blocks: killed when it ends
			}
			a.client, a.clientDesc = allocComplete, "All tasks have completed"
			c.touchByClient(a)
			c.markDirty(a.job, triggerAllocStop)
		case a.desired != desiredRun && a.mig != nil && a.mock != nil && a.mock.killing:
			// A migrated mock_driver task whose start blocked: its
			// block has ended (mockKill).
			c.maybeFinishOld(a.mig, c.now)
		}
	}
}

// markDirty queues a job for reconciliation at the end of the tick, with
// the trigger its evaluation will carry (the first reason wins).
func (c *Cluster) markDirty(j *job, trigger string) {
	if _, ok := c.dirty[j]; !ok {
		c.dirty[j] = trigger
	}
}

// reconcileDirty re-evaluates jobs whose allocations changed on their own
// (batch work finished, allocations preempted, rolling updates advancing).
// An evaluation is recorded only when something changes, or when an
// allocation failed that Nomad may reschedule (Nomad's client update
// creates one then).
func (c *Cluster) reconcileDirty() {
	if len(c.dirty) == 0 {
		return
	}
	order := make([]*job, 0, len(c.dirty))
	for j := range c.dirty {
		order = append(order, j)
	}
	sortJobs(order)
	triggers := make([]string, len(order))
	for i, j := range order {
		triggers[i] = c.dirty[j]
	}
	clear(c.dirty)
	for i, j := range order {
		must := c.failEval[j]
		delete(c.failEval, j)
		switch {
		case j.purged:
		case must:
			// Nomad evaluates the job of a failed allocation it may
			// reschedule even when the evaluation changes nothing.
			c.reconcile(j, c.newEval(j, triggers[i], ""))
		default:
			c.reconcileAs(j, triggers[i])
		}
	}
}

// gcThreshold is how long finished allocations and evaluations are kept, as
// Nomad's eval_gc_threshold keeps them.
const gcThreshold = time.Hour

// runsOnce reports whether j's allocations run to completion: a batch or
// sysbatch job's.
func runsOnce(j *job) bool {
	return j.typ == api.JobTypeBatch || j.typ == api.JobTypeSysbatch
}

// gc forgets allocations and evaluations that finished more than
// gcThreshold ago, every few virtual minutes. Batch and sysbatch jobs keep
// their allocations (their completion is counted from them, and a
// sysbatch job runs once on a node) until purged.
func (c *Cluster) gc() {
	if c.now.Sub(c.lastGC) < 5*time.Minute {
		return
	}
	c.lastGC = c.now
	cutoff := c.now.Add(-gcThreshold)
	old := func(a *alloc) bool {
		return a.clientTerminal() && !runsOnce(a.job) && a.modified.Before(cutoff) &&
			(a.mig == nil || c.settled(a.mig))
	}
	removed := false
	for _, j := range c.sortedJobs() {
		kept := j.allocs[:0]
		for _, a := range j.allocs {
			if old(a) {
				delete(c.allocByID, a.id)
				removed = true
				continue
			}
			kept = append(kept, a)
		}
		clear(j.allocs[len(kept):])
		j.allocs = kept
	}
	if removed {
		prune := func(n *node) {
			kept := n.history[:0]
			for _, a := range n.history {
				if c.allocByID[a.id] == a {
					kept = append(kept, a)
				}
			}
			clear(n.history[len(kept):])
			n.history = kept
		}
		for _, n := range c.nodes {
			prune(n)
		}
		for id, n := range c.purgedNodes {
			if prune(n); len(n.history) == 0 {
				delete(c.purgedNodes, id)
			}
		}
		c.bump(TableAllocs)
	}
	for _, j := range c.sortedJobs() {
		// Finished deployments go too, except each job's latest.
		kept := j.deploys[:0]
		for i, d := range j.deploys {
			if i < len(j.deploys)-1 && !d.active() && d.started.Before(cutoff) {
				delete(c.deployByID, d.id)
				continue
			}
			kept = append(kept, d)
		}
		if len(kept) != len(j.deploys) {
			clear(j.deploys[len(kept):])
			j.deploys = kept
			c.bump(TableDeployments)
		}
	}
	keptEvals := c.evals[:0]
	for _, e := range c.evals {
		if e.status != api.EvalStatusBlocked && e.status != api.EvalStatusPending && e.modified.Before(cutoff) {
			delete(c.evalByID, e.id)
			continue
		}
		keptEvals = append(keptEvals, e)
	}
	if len(keptEvals) != len(c.evals) {
		clear(c.evals[len(keptEvals):])
		c.evals = keptEvals
		c.bump(TableEvals)
	}
}
