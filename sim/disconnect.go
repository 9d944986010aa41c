package sim

import (
	"slices"
	"sort"
	"time"

	"github.com/hashicorp/nomad/api"
)

// Disconnected nodes, as a real Nomad 2.0 dev agent with a second client
// showed them (TestFidelityNodeDisconnected; the client stopped with
// SIGSTOP and continued). A node whose heartbeat stops while it holds an
// allocation whose group sets disconnect.lost_after (not yet past it) goes
// "disconnected" instead of down. Each such allocation turns unknown
// ("alloc is unknown since its node is disconnected", still desired to
// run), unless pending (TestFidelityMockDisconnected); the others on it
// are lost as on a node that goes down. The
// node-update evaluation of each job creates a "max-disconnect-timeout"
// follow-up at lost_after and, when the allocation may be replaced (the
// group's disconnect.replace, its reschedule policy, and not of an active
// deployment), an "alloc-reschedule" follow-up at its reschedule delay,
// which places a replacement and leaves the original unknown and desired to
// run, its NextAllocation naming the replacement. A stop of an unknown
// allocation only marks it to migrate: nothing is placed for it before its
// reschedule time. While the node stays disconnected, each missed heartbeat
// adds a node event; once lost_after has passed, the timeout marks the
// allocations lost and stopped, and the next missed heartbeat takes the
// node down. When its client comes back the node is ready again (through
// initializing) with no "reregistered" event; an original marked to migrate
// (or stopped) stops and its replacement stays, and otherwise the original
// runs again (still naming its replacement) and the replacement stops
// ("alloc not needed due to disconnected client reconnect"), unless the
// group's disconnect.reconcile is keep_replacement (the original stops
// then, "alloc not needed due to job update"). An original never
// replaced and marked to migrate is migrated then.

// missedBeat is how often a disconnected node misses its heartbeat again:
// the real dev agent added a "Node heartbeat missed" event every 18 to 28 s.
const missedBeat = 20 * time.Second

const (
	triggerMaxDisconnect = "max-disconnect-timeout"
	triggerReconnect     = "reconnect"

	descUnknown    = "alloc is unknown since its node is disconnected"
	descLost       = "alloc is lost since its node is down"
	descReconnect  = "alloc not needed due to disconnected client reconnect"
	descDisconnect = "created for delayed disconnect timeout"
)

// canDisconnect is Nomad's disconnectState: n, whose heartbeat stopped,
// goes disconnected rather than down while an allocation on it is desired
// to run, not finished, and of a group with disconnect.lost_after (of any
// job type: a system job's too, TestFidelitySystemJobDisconnect), and has
// not been unknown for longer than that.
func (c *Cluster) canDisconnect(n *node) bool {
	for _, a := range n.allocs {
		if a.grp.lostAfter <= 0 || a.desired != desiredRun || a.clientTerminal() {
			continue
		}
		if a.client != allocUnknown || c.now.Before(a.unknownAt.Add(a.grp.lostAfter)) {
			return true
		}
	}
	return false
}

// disconnectAllocs is the plan of the node-update evaluation ev of job j
// for n, which just went disconnected: its allocations of j there turn
// unknown where their group allows it and are lost otherwise, with the
// follow-up evaluations that time them out and replace them. A system
// job's allocation turns unknown with no follow-up: nothing replaces it,
// it runs again when the client is back, and it is lost when the node
// goes down past lost_after (TestFidelitySystemJobDisconnect).
func (c *Cluster) disconnectAllocs(j *job, n *node, ev *eval) {
	var unknown, lost []*alloc
	for _, a := range append([]*alloc(nil), n.allocs...) {
		if a.job != j || a.clientTerminal() {
			continue
		}
		if a.grp.lostAfter > 0 && a.desired == desiredRun && (a.client != allocPending || j.typ == api.JobTypeSystem) {
			// A pending one is lost and replaced at once, as Nomad's
			// reconciler takes a disconnected node's pending
			// allocations (TestFidelityMockDisconnected: a mock_driver
			// task waiting to restart). Not a system job's: its
			// reconciler has no such rule (not measured).
			a.client, a.clientDesc, a.unknownAt = allocUnknown, descUnknown, c.now
			if j.typ == api.JobTypeSystem {
				c.touchByServer(a)
				continue
			}
			unknown = append(unknown, a)
			continue
		}
		c.loseAlloc(a, n)
		lost = append(lost, a)
	}
	c.waitStopAfter(j, ev, lost)
	if len(unknown) == 0 {
		return
	}
	// The time-out evaluations first, then the reschedules, each batched
	// as Nomad batches follow-ups (within 5 s of the batch's first).
	timeouts := batchFollowups(unknown, func(a *alloc) time.Time { return a.unknownAt.Add(a.grp.lostAfter) })
	for _, b := range timeouts {
		fe := c.pendingFollowup(j, ev, triggerMaxDisconnect, descDisconnect, b.at)
		for _, a := range b.allocs {
			a.followup = fe
		}
	}
	var replace []*alloc
	for _, a := range unknown {
		if c.replaceable(a) {
			replace = append(replace, a)
		}
	}
	// An allocation's FollowupEvalID names its reschedule where it has
	// one, its time-out otherwise.
	for _, b := range batchFollowups(replace, func(a *alloc) time.Time { return a.unknownAt.Add(nextDelay(a)) }) {
		fe := c.pendingFollowup(j, ev, triggerReschedule, "created for delayed rescheduling", b.at)
		for _, a := range b.allocs {
			a.followup = fe
		}
	}
	for _, a := range unknown {
		c.touchByServer(a)
	}
}

// loseAlloc marks a, on n, lost, as the plan of a node that went down does
// (the client's description stays as the client last reported it).
func (c *Cluster) loseAlloc(a *alloc, n *node) {
	if a.desired == desiredRun {
		a.desired, a.desiredDesc = desiredStop, descLost
	}
	a.client, a.lostNow = allocLost, true
	if a.grp.stopAfter > 0 {
		a.stopWaitUntil = c.now.Add(a.grp.stopWait)
	}
	c.touchByServer(a)
	n.lost = append(n.lost, a)
}

// waitStopAfter is the part of the plan of ev for the allocations it found
// lost (lost) whose group sets
// disconnect.stop_on_client_after (Nomad's delayByStopAfter): each gets a
// pending alloc-failure follow-up at the time it is replaced (batched as
// Nomad batches follow-ups), and ev places nothing for their groups. The
// follow-up's reconciliation finds them stopped, not lost, and places
// their replacements afresh, naming no previous allocation.
func (c *Cluster) waitStopAfter(j *job, ev *eval, lost []*alloc) {
	var wait []*alloc
	for _, a := range lost {
		if !a.stopWaitUntil.IsZero() && c.now.Before(a.stopWaitUntil) {
			wait = append(wait, a)
		}
	}
	for i, b := range batchFollowups(wait, func(a *alloc) time.Time { return a.stopWaitUntil }) {
		desc := ""
		if i == 0 {
			desc = "created for delayed rescheduling"
		}
		fe := c.pendingFollowup(j, ev, triggerAllocFail, desc, b.at)
		for _, a := range b.allocs {
			a.followup = fe
			c.touchByServer(a)
			if ev.stopWaits == nil {
				ev.stopWaits = map[string]bool{}
			}
			ev.stopWaits[a.grp.name] = true
		}
	}
}

type followupBatchOf struct {
	at     time.Time
	allocs []*alloc
}

// batchFollowups groups allocations by the time at gives them, those within
// followupBatch of a batch's first sharing it, in time order.
func batchFollowups(as []*alloc, at func(*alloc) time.Time) []followupBatchOf {
	as = append([]*alloc(nil), as...)
	sort.SliceStable(as, func(i, k int) bool { return at(as[i]).Before(at(as[k])) })
	var out []followupBatchOf
	for _, a := range as {
		t := at(a)
		if len(out) == 0 || t.Sub(out[len(out)-1].at) >= followupBatch {
			out = append(out, followupBatchOf{at: t})
		}
		out[len(out)-1].allocs = append(out[len(out)-1].allocs, a)
	}
	return out
}

// pendingFollowup creates a follow-up evaluation of j, pending until at,
// following ev, which names it as its next.
func (c *Cluster) pendingFollowup(j *job, ev *eval, trigger, desc string, at time.Time) *eval {
	idx := c.bump(TableEvals)
	fe := &eval{
		id: newID(c.rng), priority: ev.priority, typ: j.typ, triggeredBy: trigger,
		jobID: j.id, jobModIdx: j.jobModIdx, status: api.EvalStatusPending, statusDesc: desc,
		prevEval: ev.id, waitUntil: at, created: c.now, modified: c.now, createIdx: idx, modifyIdx: idx,
	}
	ev.nextEval, ev.modifyIdx = fe.id, idx
	c.evals = append(c.evals, fe)
	c.evalByID[fe.id] = fe
	c.followups = append(c.followups, fe)
	return fe
}

// replaceable reports whether Nomad replaces a, an unknown allocation,
// once its reschedule delay has passed: its group allows replacing it,
// its reschedule policy allows another attempt, it has no replacement yet,
// and it is not of the job's active deployment (which the real Nomad left
// unreplaced until the node came back).
func (c *Cluster) replaceable(a *alloc) bool {
	if a.grp.noReplace || a.next != "" || a.desired != desiredRun {
		return false
	}
	if l := latestDeployment(a.job); l != nil && l.id == a.deployID && l.active() && !a.reschedule {
		return false
	}
	return rescheduleEligibleAt(a, a.unknownAt)
}

// markDisconnected brings the unknown allocations of g up to date at the
// start of a reconciliation: those past lost_after are lost and stopped,
// and those whose reschedule delay has passed are due a replacement
// (replaceDue), which the reconciler places as for a lost allocation.
func (c *Cluster) markDisconnected(j *job, g *group) {
	for _, a := range j.allocs {
		if a.grp.name != g.name || a.client != allocUnknown {
			continue
		}
		a.replaceDue = false
		if a.desired == desiredRun && !c.now.Before(a.unknownAt.Add(a.grp.lostAfter)) {
			a.desired, a.desiredDesc, a.replaceDue = desiredStop, descLost, false
			a.client, a.lostNow = allocLost, true
			c.touchByServer(a)
			a.node.lost = append(a.node.lost, a)
			continue
		}
		a.replaceDue = c.replaceable(a) && a.unknownAt.Add(nextDelay(a)).Sub(c.now) <= rescheduleWindow
	}
}

// disconnectedBeats has each disconnected node miss its heartbeat again
// every missedBeat: an event while it may stay disconnected, and down once
// none of its allocations may (their lost_after passed, or none left).
func (c *Cluster) disconnectedBeats() {
	for _, n := range c.nodes {
		if n.status != api.NodeStatusDisconnected || c.now.Sub(n.missedAt) < missedBeat {
			continue
		}
		n.missedAt = c.now
		if c.canDisconnect(n) {
			n.modifyIdx = c.bump(TableNodes)
			n.addEvent(c.now, nodeEventSubsystemCluster, nodeEventHeartbeatMissed, n.modifyIdx)
			continue
		}
		c.nodeGoes(n, api.NodeStatusDown)
	}
}

// reconnect brings n's client back after it was disconnected: the node
// turns initializing, its client reports its allocations (a "reconnect"
// evaluation of each job whose allocations it had as unknown), and the
// node is ready again, each status change evaluating the node's jobs.
func (c *Cluster) reconnect(n *node) {
	n.status, n.statusAt = api.NodeStatusInit, c.now
	n.modifyIdx = c.bump(TableNodes)
	c.createNodeEvals(n, n.modifyIdx)
	c.clientReportsLost(n)
	var jobs []*job
	evals := map[*job]*eval{}
	var back []*alloc
	var followups []*eval
	for _, a := range append([]*alloc(nil), n.allocs...) {
		if a.client != allocUnknown {
			continue
		}
		back = append(back, a)
		ev := evals[a.job]
		if ev == nil {
			ev = c.newEval(a.job, triggerReconnect, "")
			evals[a.job] = ev
			jobs = append(jobs, a.job)
		}
		repl := c.allocByID[a.next]
		if a.desired != desiredRun || (repl != nil && (a.migrate || a.grp.keepReplacement)) {
			// Stopped, or replaced for good: its client stops it. One
			// marked to migrate, or whose group keeps the replacement,
			// is stopped as not needed for a job update (both measured:
			// TestFidelityNodeDisconnected, TestFidelityReconnectKeeps).
			if a.desired == desiredRun {
				a.desired, a.desiredDesc, a.evalID = desiredStop, "alloc not needed due to job update", ev.id
			}
			if a.mock != nil {
				c.mockKillNow(a)
			}
			a.killAt = c.now
			a.client, a.clientDesc, a.stopAt = allocComplete, "All tasks have completed", c.now
			c.touchByServer(a)
			c.clientReported(a)
			continue
		}
		if !a.migrate && a.followup != nil {
			// Reported running again: its follow-up is cleared with
			// the report. Not one marked to migrate, which Nomad's
			// reconnect moves: its follow-up stays, pending (measured).
			if !slices.Contains(followups, a.followup) {
				followups = append(followups, a.followup)
			}
			a.followup = nil
		}
		a.client, a.clientDesc = allocRunning, "Tasks are running"
		if a.runningSince.IsZero() {
			a.runningSince = c.now
		}
		if a.mock != nil {
			c.mockReconnected(a)
		} else {
			a.note(&api.TaskEvent{Type: api.TaskClientReconnected, Time: c.now.UnixNano(), DisplayMessage: "Client reconnected", Details: map[string]string{}})
		}
		c.touchByClient(a)
		if repl != nil && !repl.terminal() {
			c.stopAlloc(repl, ev, descReconnect)
		}
	}
	c.cancelFollowupsForReconnect(followups, back)
	for _, j := range jobs {
		c.reconcile(j, evals[j])
	}
	n.status, n.statusAt = api.NodeStatusReady, c.now
	n.modifyIdx = c.bump(TableNodes)
	c.capFreed = true
	c.createNodeEvals(n, n.modifyIdx)
	c.log.Info("node status", logKeyNode, n.name, logKeyStatus, n.status)
}

// cancelFollowupsForReconnect is what Nomad's state store does when the
// client of a disconnected node reports an unknown allocation running
// again (those of back, their follow-ups cleared): each follow-up
// evaluation (a reschedule, or the max-disconnect-timeout where Nomad
// places no replacement) is cancelled, "allocs reconnected", whatever its
// status, unless another allocation of its job not reported now and not
// terminal still names it (TestFidelityNodeDisconnected,
// TestFidelityNodeDisconnectedUnreplaced).
func (c *Cluster) cancelFollowupsForReconnect(followups []*eval, back []*alloc) {
	for _, e := range followups {
		shared := false
		if j := c.jobs[e.jobID]; j != nil {
			shared = slices.ContainsFunc(j.allocs, func(o *alloc) bool { return o.followup == e && !o.terminal() && !slices.Contains(back, o) })
		}
		if shared {
			continue
		}
		e.status, e.statusDesc = api.EvalStatusCancelled, "allocs reconnected"
		e.modifyIdx, e.modified = c.bump(TableEvals), c.now
		c.followups = slices.DeleteFunc(c.followups, func(f *eval) bool { return f == e })
	}
}
