package sim

import (
	"maps"
	"math"
	"sort"
	"time"

	"github.com/hashicorp/nomad/api"
)

// migration is the transfer of one stopping allocation's state (its memory
// size) out of its locality. Concurrent migrations of a locality share its
// bandwidth equally, so each of N concurrent migrations takes about N times
// as long as one alone.
type migration struct {
	old, repl   *alloc
	src, dst    *locality
	sizeMB      float64
	doneMB      float64
	start, end  time.Time
	rate        float64 // MB/s in the current segment
	transferred bool
	settled     bool
	mode        string
	reason      string
}

// stopForMigration stops a for migration; startMigration follows once its
// replacement was placed or not.
func (c *Cluster) stopForMigration(a *alloc, ev *eval) {
	a.desired, a.desiredDesc = desiredStop, "alloc is being migrated"
	a.evalID = ev.id
	if !a.clientTerminal() {
		a.killAt = c.now // its tasks are killed when the migration ends
	}
	c.touchByServer(a)
}

// startMigration starts moving a, stopped for migration, to r, its
// replacement (nil when none fit: the caller queues it), in evaluation ev.
func (c *Cluster) startMigration(a, r *alloc, ev *eval) {
	if a.client == allocPending && a.runningSince.IsZero() && a.mock == nil {
		// Nothing started, nothing to move.
		a.client, a.clientDesc = allocComplete, "alloc was migrated before it started"
		c.touchByClient(a)
		return
	}
	m := &migration{
		old: a, repl: r, src: c.localities[a.node.dc], sizeMB: float64(a.grp.mem),
		start: c.now, mode: a.grp.replacement, reason: ev.triggeredBy,
	}
	if r != nil {
		m.dst = c.localities[r.node.dc]
		if m.mode == BreakBeforeMake {
			r.startAt = time.Time{}
			r.waitFor = a
		}
	}
	a.mig = m
	c.migs = append(c.migs, m)
	c.log.Debug("migration started", logKeyAlloc, a.id, logKeyJob, a.job.id, logKeyNode, a.node.name,
		logKeyLocality, m.src.name, logKeySizeMB, m.sizeMB, logKeyKind, m.mode)
}

// progressMigrations advances every transfer from `from` to `to`. A
// transfer uses its source locality and, when it crosses to another one,
// its target locality too; each locality's bandwidth is shared equally by
// the transfers using it, and a transfer moves at its smallest share. Rates
// are recomputed whenever a transfer finishes, so each ends at its exact
// time.
func (c *Cluster) progressMigrations(from, to time.Time) {
	t := from
	for len(c.migs) > 0 && t.Before(to) {
		for _, l := range c.locOrder {
			l.using = 0
		}
		for _, m := range c.migs {
			m.src.using++
			if m.dst != nil && m.dst != m.src {
				m.dst.using++
			}
		}
		need := math.Inf(1)
		for _, m := range c.migs {
			m.rate = m.src.bandwidth / float64(m.src.using)
			if m.dst != nil && m.dst != m.src {
				m.rate = math.Min(m.rate, m.dst.bandwidth/float64(m.dst.using))
			}
			need = math.Min(need, (m.sizeMB-m.doneMB)/m.rate)
		}
		step := to.Sub(t)
		// Compared in float so a transfer days away cannot overflow a Duration.
		if ns := math.Ceil(need * float64(time.Second)); ns < float64(step) {
			step = time.Duration(ns)
		}
		t = t.Add(step)
		kept := c.migs[:0]
		for _, m := range c.migs {
			m.doneMB += m.rate * step.Seconds()
			if m.sizeMB-m.doneMB <= m.rate*1e-6 { // within a microsecond
				c.finishTransfer(m, t)
				continue
			}
			kept = append(kept, m)
		}
		clear(c.migs[len(kept):])
		c.migs = kept
	}
}

// finishTransfer records a finished transfer; the old allocation stops now
// (break-before-make, which also lets the replacement start) or once its
// replacement runs (make-before-break).
func (c *Cluster) finishTransfer(m *migration, at time.Time) {
	m.transferred, m.doneMB, m.end = true, m.sizeMB, at
	rec := MigrationRecord{
		AllocID: m.old.id, JobID: m.old.job.id, Group: m.old.grp.name,
		SourceNode: m.old.node.name, SourceLocality: m.src.name,
		Start: m.start, End: at, Bytes: int64(m.sizeMB) << 20, Mode: m.mode, Reason: m.reason,
	}
	if m.repl != nil {
		rec.ReplacementID, rec.TargetNode, rec.TargetLocality = m.repl.id, m.repl.node.name, m.dst.name
	}
	c.truth.Migrations = append(c.truth.Migrations, rec)
	c.log.Debug("migration transferred", logKeyAlloc, rec.AllocID, logKeyLocality, rec.SourceLocality, logKeyDuration, rec.Duration())
	c.maybeFinishOld(m, at)
}

// maybeFinishOld completes the old allocation of a transferred migration
// when its replacement mode allows.
func (c *Cluster) maybeFinishOld(m *migration, at time.Time) {
	a := m.old
	if !m.transferred || a.clientTerminal() || a.node.purged {
		return
	}
	if m.mode == MakeBeforeBreak && m.repl != nil && m.repl.client == allocPending {
		return
	}
	if a.mock != nil && !c.mockKill(a) {
		return // its start blocks: killed when it ends (lifecycle)
	}
	a.client, a.clientDesc = allocComplete, "All tasks have completed"
	a.stopAt = at
	c.touchByClient(a)
	if r := m.repl; r != nil && r.waitFor == a {
		r.waitFor = nil
		r.startAt = at.Add(c.sc.Startup)
		c.arm(r, r.startAt)
	}
}

// settle marks migrations whose replacement has been healthy for the
// group's migrate.min_healthy_time (or which have no replacement and are
// done) as no longer in flight.
func (c *Cluster) settled(m *migration) bool {
	if m.settled {
		return true
	}
	if !m.old.clientTerminal() {
		return false
	}
	r := m.repl
	if r == nil && m.old.next != "" {
		r = c.allocByID[m.old.next] // placed later, once capacity freed
	}
	if r == nil {
		// The replacement is still queued: Nomad counts it as unhealthy,
		// so the drain waits, unless the job no longer wants it.
		if m.old.job.stopped || m.old.job.purged {
			m.settled = true
		}
		return m.settled
	}
	if r.clientTerminal() {
		m.settled = true
		return true
	}
	mh := 10 * time.Second
	if m.old.grp.migrate.MinHealthyTime != nil {
		mh = *m.old.grp.migrate.MinHealthyTime
	}
	if r.client == allocRunning && !c.now.Before(r.runningSince.Add(mh)) {
		m.settled = true
	}
	return m.settled
}

// inflight counts the group's migrations that are not settled, across the
// group's versions.
func (c *Cluster) inflight(j *job, g *group) int {
	k := 0
	for _, a := range j.allocs {
		if a.grp.name == g.name && a.mig != nil && !c.settled(a.mig) {
			k++
		}
	}
	return k
}

// drainHealthy is what Nomad's drainer counts as healthy in a job's group
// (handleTaskGroup): its allocations, of any version, not terminal, with
// health set (healthy or unhealthy) and not marked to migrate. An
// allocation without health (running for less than its min_healthy_time,
// or placed into a deployment that does not track its group) holds a drain
// back until its deadline.
func (c *Cluster) drainHealthy(j *job, group string) int {
	k := 0
	for _, a := range j.allocs {
		if a.grp.name == group && !a.terminal() && a.healthy != nil && !a.migrate {
			k++
		}
	}
	return k
}

// groupCount is the count of the job's current version of g's group.
func (c *Cluster) groupCount(j *job, g *group) int {
	for _, x := range j.groups {
		if x.name == g.name {
			return x.count
		}
	}
	return g.count
}

// runDrains advances every draining node: it marks allocations for
// migration no faster than each group's migrate.max_parallel allows, stops
// system allocations last and completes the drain when nothing is left
// (not when the last of a node's sysbatch allocations ends: drainHeld); at
// the deadline it forces the rest and completes the drain whatever still
// runs.
func (c *Cluster) runDrains() {
	for _, n := range c.nodes {
		if n.drain == nil {
			continue
		}
		// A negative deadline forces the drain now, with no force deadline
		// (Nomad leaves it empty: TestFidelityForceDrain).
		forced := n.drain.Deadline < 0 || (!n.drain.ForceDeadline.IsZero() && !c.now.Before(n.drain.ForceDeadline))
		var todo, again []*alloc
		remaining, sysbatch := 0, 0
		for _, a := range n.allocs {
			if a.desired != desiredRun || a.clientTerminal() || a.job.typ == api.JobTypeSystem {
				continue
			}
			remaining++
			if a.job.typ == api.JobTypeSysbatch {
				sysbatch++
			}
			if a.migrate {
				if forced {
					// Marked again at the deadline, with its job's
					// evaluation (one unknown on a disconnected node
					// still waits: measured).
					again = append(again, a)
				}
				continue
			}
			if runsOnce(a.job) && !forced {
				continue
			}
			todo = append(todo, a)
		}
		sort.Slice(todo, func(i, k int) bool { return todo[i].createIdx < todo[k].createIdx })
		budget := map[string]int{} // job/group → migrations it may still start
		touched := map[*job]bool{}
		var order []*job
		for _, a := range again {
			c.touchByServer(a)
			if !touched[a.job] {
				touched[a.job] = true
				order = append(order, a.job)
			}
		}
		for _, a := range todo {
			if !forced {
				key := a.job.id + "/" + a.grp.name
				b, ok := budget[key]
				if !ok {
					mp := 1
					if a.grp.migrate.MaxParallel != nil {
						mp = *a.grp.migrate.MaxParallel
					}
					b = c.drainHealthy(a.job, a.grp.name) - (c.groupCount(a.job, a.grp) - mp)
				}
				if b <= 0 {
					budget[key] = 0
					continue
				}
				budget[key] = b - 1
			}
			a.migrate = true
			c.touchByServer(a)
			if !touched[a.job] {
				touched[a.job] = true
				order = append(order, a.job)
			}
		}
		// Nomad's drainer evaluates each job it marks allocations of,
		// naming no node (drainer.go's drainAllocs).
		for _, j := range order {
			ev := c.newEval(j, triggerNodeDrain, "")
			c.reconcile(j, ev)
		}
		if remaining > 0 && remaining == sysbatch {
			n.drainHeld = true
		}
		if (remaining > 0 || n.drainHeld) && !forced {
			continue
		}
		// Only system allocations (or nothing) are left: the drainer
		// drains them as the others, one node-drain evaluation per job.
		sysLeft := 0
		sysEvals := map[*job]*eval{}
		for _, a := range append([]*alloc(nil), n.allocs...) {
			if a.job.typ != api.JobTypeSystem || a.clientTerminal() {
				continue
			}
			if n.drain.IgnoreSystemJobs {
				continue
			}
			sysLeft++
			if a.desired == desiredRun {
				ev := sysEvals[a.job]
				if ev == nil {
					ev = c.newEval(a.job, triggerNodeDrain, "")
					sysEvals[a.job] = ev
				}
				c.stopAlloc(a, ev, "alloc is being drained")
			}
		}
		pendingMig := false
		for _, a := range n.allocs {
			if a.mig != nil && !a.clientTerminal() {
				pendingMig = true
			}
		}
		switch {
		case forced:
			// At its deadline (a forced drain's at once) Nomad's drainer
			// marks what is left and completes the drain whatever still
			// runs (handleDeadlinedNodes), its event saying so: an
			// allocation left unknown on a disconnected node, which
			// nothing stops before its client is back, holds it no
			// longer (TestFidelityDrainDisconnectedNode).
			c.finishDrain(n, api.DrainStatusComplete)
			n.events[len(n.events)-1].Details = map[string]string{"deadline_reached": "true"}
		case sysLeft == 0 && !pendingMig:
			c.finishDrain(n, api.DrainStatusComplete)
		}
	}
}

func (c *Cluster) finishDrain(n *node, status api.DrainStatus) {
	n.drain, n.drainHeld = nil, false
	if n.lastDrain != nil {
		n.lastDrain.Status = status
		n.lastDrain.UpdatedAt = c.now.Truncate(time.Second)
	}
	n.modifyIdx = c.bump(TableNodes)
	if status == api.DrainStatusComplete {
		n.addEvent(c.now, nodeEventSubsystemDrain, nodeEventDrainComplete, n.modifyIdx)
	}
	c.log.Info("drain finished", logKeyNode, n.name, logKeyStatus, string(status))
}

// setDrain starts, updates or cancels a node drain, as PUT
// /v1/node/:id/drain does. As Nomad's state store, an update of a running
// drain keeps its start, and LastDrain keeps its meta unless the call
// brings some (a cancel too); LastDrain's times are whole seconds; a cancel
// of a node that is not draining leaves LastDrain as it was
// (TestFidelityDrainMeta).
func (c *Cluster) setDrain(nodeID string, spec *api.DrainSpec, markEligible bool, meta map[string]string) (*nodeUpdateResponse, error) {
	n, err := c.apiNode(nodeID)
	if err != nil {
		return nil, err
	}
	if n == nil {
		return nil, rpcError("node not found")
	}
	if spec == nil {
		had := n.drain != nil
		if had {
			c.finishDrain(n, api.DrainStatusCanceled)
			if len(meta) > 0 && n.lastDrain != nil {
				n.lastDrain.Meta = maps.Clone(meta)
			}
		}
		turned := markEligible && !n.eligible
		if markEligible {
			n.eligible = true
			c.capFreed = true
		}
		// As Node.UpdateDrain: the removal applies (its index moves) even
		// when the node had no drain, but sets an event only when it had one.
		n.modifyIdx = c.bump(TableNodes)
		if had {
			n.addEvent(c.now, nodeEventSubsystemDrain, nodeEventDrainDisabled, n.modifyIdx)
		}
		resp := &nodeUpdateResponse{NodeModifyIndex: n.modifyIdx, Index: n.modifyIdx}
		if turned {
			c.evaluateEligible(n, resp)
		}
		return resp, nil
	}
	ds := &api.DrainStrategy{DrainSpec: *spec, StartedAt: c.now}
	if n.drain != nil {
		ds.StartedAt = n.drain.StartedAt
	}
	if spec.Deadline > 0 {
		ds.ForceDeadline = c.now.Add(spec.Deadline)
	}
	now := c.now.Truncate(time.Second)
	if n.drain == nil || n.lastDrain == nil {
		n.lastDrain = &api.DrainMetadata{StartedAt: now}
	}
	n.lastDrain.UpdatedAt, n.lastDrain.Status = now, api.DrainStatusDraining
	if len(meta) > 0 {
		n.lastDrain.Meta = maps.Clone(meta)
	}
	msg := nodeEventDrainSet
	if n.drain != nil {
		msg = nodeEventDrainUpdated
	}
	if n.drain == nil || n.drain.Deadline != ds.Deadline || n.drain.IgnoreSystemJobs != ds.IgnoreSystemJobs || !n.drain.ForceDeadline.Equal(ds.ForceDeadline) {
		// Nomad's drainer checks a drain whose strategy changed
		// (DrainStrategy.Equal): the same spec again, with no deadline,
		// is no change.
		n.drainHeld = false
	}
	n.drain = ds
	n.eligible = false
	n.modifyIdx = c.bump(TableNodes)
	n.addEvent(c.now, nodeEventSubsystemDrain, msg, n.modifyIdx)
	resp := &nodeUpdateResponse{NodeModifyIndex: n.modifyIdx, Index: n.modifyIdx}
	// Nomad's drainer evaluates the drained jobs after the answer: their
	// evaluations are not in it.
	c.runDrains()
	return resp, nil
}

// nodeUpdateResponse is Nomad's answer to a node's eligibility or drain
// update: the index it wrote at (0 for an eligibility left as it was;
// NodeModifyIndex too, but only a drain's answer sets it), and the
// evaluations of the node made when it turned eligible.
type nodeUpdateResponse struct {
	EvalCreateIndex uint64
	EvalIDs         []string
	Index           uint64
	NodeModifyIndex uint64
}

// evaluateEligible evaluates, as Nomad's server does for a node that
// turns eligible, each job it evaluates for n (createNodeEvals), naming
// the evaluations in resp.
func (c *Cluster) evaluateEligible(n *node, resp *nodeUpdateResponse) {
	resp.EvalIDs, resp.EvalCreateIndex = c.createNodeEvals(n, n.modifyIdx)
}

// setEligibility toggles a node's scheduling eligibility.
func (c *Cluster) setEligibility(nodeID, elig string) (*nodeUpdateResponse, error) {
	if elig != api.NodeSchedulingEligible && elig != api.NodeSchedulingIneligible {
		return nil, rpcError("invalid scheduling eligibility %q", elig)
	}
	n, err := c.apiNode(nodeID)
	if err != nil {
		return nil, err
	}
	if n == nil {
		return nil, rpcError("node not found")
	}
	if elig == api.NodeSchedulingEligible && n.drain != nil {
		return nil, rpcError("can not set node's scheduling eligibility to eligible while it is draining")
	}
	// As Node.UpdateEligibility: setting the eligibility the node already
	// has is a no-op, no event and no index change.
	if n.eligibility() == elig {
		return &nodeUpdateResponse{}, nil
	}
	msg := nodeEventIneligible
	if elig == api.NodeSchedulingEligible {
		n.eligible = true
		c.capFreed = true
		msg = nodeEventEligible
	} else {
		n.eligible = false
	}
	n.modifyIdx = c.bump(TableNodes)
	n.addEvent(c.now, nodeEventSubsystemCluster, msg, n.modifyIdx)
	resp := &nodeUpdateResponse{Index: n.modifyIdx}
	if n.eligible {
		c.evaluateEligible(n, resp)
	}
	return resp, nil
}

// setNodeStatus takes a node down (its heartbeat missed: its allocations
// are lost and replaced elsewhere), or disconnected when its allocations
// may wait for it (see disconnect.go), or brings it back (its heartbeat
// again, or a node that finished initializing), as Nomad's
// Node.UpdateStatus does (TestFidelityNodeDownAndUp): the status at one
// index, with a node event when it goes down or comes back from down, then
// a node-update evaluation of each job Nomad evaluates for the node
// (createNodeEvals), all at the next index, naming the status's index.
func (c *Cluster) setNodeStatus(n *node, down bool) {
	if down {
		if n.status == api.NodeStatusDown || n.status == api.NodeStatusDisconnected {
			return // a disconnected node goes down by its missed heartbeats
		}
		want := api.NodeStatusDown
		if c.canDisconnect(n) {
			want = api.NodeStatusDisconnected
		}
		c.nodeGoes(n, want)
		return
	}
	switch n.status {
	case api.NodeStatusReady:
		return
	case api.NodeStatusDisconnected:
		c.reconnect(n)
		return
	}
	was := n.status
	n.status, n.statusAt = api.NodeStatusReady, c.now
	n.modifyIdx = c.bump(TableNodes)
	c.log.Info("node status", logKeyNode, n.name, logKeyStatus, n.status)
	if was == api.NodeStatusDown {
		n.addEvent(c.now, nodeEventSubsystemCluster, nodeEventReregistered, n.modifyIdx)
	}
	c.capFreed = true
	// Its jobs are evaluated at its new modify index, and system
	// jobs come back on it; then its client, heard again, stops
	// what the servers took as lost and reports it complete.
	c.createNodeEvals(n, n.modifyIdx)
	c.clientReportsLost(n)
	for _, a := range n.allocs {
		if a.job.typ == api.JobTypeSysbatch && !a.clientTerminal() {
			c.arm(a, c.now) // what its client held back while down
		}
	}
}

// nodeGoes has n's heartbeat missed: it turns status (down or
// disconnected) with the event, and each job Nomad evaluates for it gets a
// node-update evaluation whose plan marks its allocations there lost (the
// desired status and its description; the client's description stays as
// the client last reported it), or unknown on a disconnected node where
// their group allows it. A job Nomad does not evaluate for the node keeps
// its allocations there as they were (in Nomad a sysbatch job's still
// runs; here a stopped system job's allocation still stopping).
func (c *Cluster) nodeGoes(n *node, status string) {
	n.status, n.statusAt, n.missedAt = status, c.now, c.now
	n.modifyIdx = c.bump(TableNodes)
	c.log.Info("node status", logKeyNode, n.name, logKeyStatus, status)
	n.addEvent(c.now, nodeEventSubsystemCluster, nodeEventHeartbeatMissed, n.modifyIdx)
	for _, a := range n.allocs {
		if a.mig != nil && !a.mig.transferred && !a.clientTerminal() {
			c.dropTransfer(a.mig)
		}
	}
	jobs := c.nodeEvalJobs(n)
	evals := c.newNodeEvals(jobs, n, n.modifyIdx)
	for i, j := range jobs {
		if status == api.NodeStatusDisconnected {
			c.disconnectAllocs(j, n, evals[i])
		} else {
			var lost []*alloc
			for _, a := range append([]*alloc(nil), n.allocs...) {
				if a.job == j && !a.clientTerminal() {
					c.loseAlloc(a, n)
					lost = append(lost, a)
				}
			}
			c.waitStopAfter(j, evals[i], lost)
		}
		c.reconcile(j, evals[i])
	}
}

// dropTransfer removes an unfinished transfer (its source went away); a
// waiting replacement starts at once.
func (c *Cluster) dropTransfer(m *migration) {
	for i, x := range c.migs {
		if x == m {
			c.migs = append(c.migs[:i], c.migs[i+1:]...)
			break
		}
	}
	m.transferred, m.settled = true, true
	if r := m.repl; r != nil && r.waitFor == m.old {
		r.waitFor = nil
		r.startAt = c.now.Add(c.sc.Startup)
		c.arm(r, r.startAt)
	}
}

func (c *Cluster) sortedJobs() []*job {
	out := make([]*job, 0, len(c.jobs))
	for _, j := range c.jobs {
		out = append(out, j)
	}
	sort.Slice(out, func(i, k int) bool { return out[i].id < out[k].id })
	return out
}
