package sim

import (
	"net/http"
	"path"
	"time"

	"github.com/hashicorp/nomad/api"
)

// nodeUpdateReply is the server's whole NodeUpdateResponse (the RPC's
// reply, shared with a client's registration and heartbeats), as Nomad
// answers PUT /v1/node/:id/purge (Node.Deregister fills the evaluations,
// the node's modify index and the query meta's Index; nomad/api reads it
// as api.NodePurgeResponse) and PUT /v1/node/:id/evaluate (evaluateNode).
type nodeUpdateReply struct {
	HeartbeatTTL          time.Duration
	EvalIDs               []string
	EvalCreateIndex       uint64
	NodeModifyIndex       uint64
	Features              uint64
	LeaderRPCAddr         string
	NumNodes              int32
	Servers               []nodeServerInfo
	SchedulingEligibility string
	SignedIdentity        *string
	Index                 uint64
	LastContact           time.Duration
	KnownLeader           bool
	NextToken             string
}

// nodeServerInfo is a server as a NodeUpdateResponse lists it.
type nodeServerInfo struct {
	RPCAdvertiseAddr string
	RPCMajorVersion  int32
	RPCMinorVersion  int32
	Datacenter       string
}

// purgeNode answers PUT /v1/node/:id/purge as Nomad's Node.Deregister
// does: the node is deleted from the state store, and the answer's index
// (X-Nomad-Index, NodeModifyIndex) is the deletion's, below the
// evaluations' (EvalCreateIndex).
func (c *Cluster) purgeNode(w http.ResponseWriter, r *http.Request) {
	c.writeAt(w, func() (any, uint64, error) {
		out, err := c.purge(r.PathValue("id"))
		if err != nil {
			return nil, 0, err
		}
		return out, out.Index, nil
	})
}

// purge deletes a node as Nomad's Node.Deregister does (`nomad node
// purge`): the node leaves the node table, so it is no longer listed and
// reading it answers 404 "node not found" (its drain, if any, ends with
// it); an unknown ID is refused, 500 "node not found". Its allocations
// stay in the state store, listed under its ID until collected. Nomad
// then evaluates, triggered by node-update, every job with an allocation
// on it that is not finished on both sides (a service job's, a batch
// job's not finished on its client) and every system job, never a
// sysbatch job, whose allocation there is left as it was; its scheduler
// takes a node that no longer exists as lost: an allocation desired to
// run is stopped ("alloc is lost since its node is down"), its client
// status lost (its client description as it was), and replaced elsewhere. One the servers had already stopped
// (a migration's old allocation, a stop in progress) is left as its
// client last reported it, as no client reports for it again. A node
// whose client still runs (not down) registers again at the client's next
// heartbeat, as a real Nomad's client does (reregisterNodes); that client
// then reports on the allocations it still holds.
// c.mu must be held.
func (c *Cluster) purge(id string) (*nodeUpdateReply, error) {
	n, err := c.apiNode(id)
	if err != nil {
		return nil, err
	}
	if n == nil {
		return nil, rpcError("node not found")
	}
	idx := c.bump(TableNodes)
	n.purged = true
	for i, x := range c.nodes {
		if x == n {
			c.nodes = append(c.nodes[:i], c.nodes[i+1:]...)
			break
		}
	}
	delete(c.nodeByID, n.id)
	delete(c.nodeByName, n.name)
	if c.purgedNodes == nil {
		c.purgedNodes = map[string]*node{}
	}
	c.purgedNodes[n.id] = n
	if c.sc.Reregister >= 0 && n.status != api.NodeStatusDown {
		n.backAt = n.nextBeat
		if n.backAt.Before(c.now) {
			n.backAt = c.now.Add(c.sc.Reregister)
		}
		c.returning = append(c.returning, n)
	}
	c.log.Info("node purged", logKeyNode, n.name)
	out := &nodeUpdateReply{NodeModifyIndex: idx, Index: idx}

	jobs := c.nodeEvalJobs(n)
	// The evaluations are created first; Nomad's scheduler then marks
	// the allocations lost.
	evals := c.newNodeEvals(jobs, n, idx)
	for _, ev := range evals {
		out.EvalIDs = append(out.EvalIDs, ev.id)
		out.EvalCreateIndex = ev.createIdx
	}
	lost := map[*job][]*alloc{}
	for _, a := range append([]*alloc(nil), n.allocs...) {
		if a.mig != nil && !a.mig.transferred {
			c.dropTransfer(a.mig)
		}
		if a.desired != desiredRun || a.clientTerminal() || a.job.typ == api.JobTypeSysbatch {
			// A sysbatch job is not evaluated (nodeEvalJobs): its
			// allocation stays as it was, and its client, registered
			// again, runs it on (TestFidelityNodePurge).
			continue
		}
		// Nomad's plan sets the client status, not its description.
		c.loseAlloc(a, n)
		lost[a.job] = append(lost[a.job], a)
	}
	for i, j := range jobs {
		c.waitStopAfter(j, evals[i], lost[j])
		c.reconcile(j, evals[i])
	}
	return out, nil
}

// nodeEvalJobs are the jobs Nomad's server evaluates for node n when it
// goes or turns eligible (Node.createNodeEvals): each job with an
// allocation on n that is not done (a service allocation until both the
// server and the client have stopped it, a batch one until its client
// has; never a system or sysbatch allocation), then each system job not
// stopped that may run on n (jobRunsIn), each once.
func (c *Cluster) nodeEvalJobs(n *node) []*job {
	seen := map[*job]bool{}
	var jobs []*job
	for _, a := range n.history {
		j := a.job
		if seen[j] || j.purged {
			continue
		}
		switch {
		case j.typ == api.JobTypeService && a.desired != desiredRun && a.clientTerminal():
			continue
		case j.typ == api.JobTypeBatch && a.clientTerminal():
			continue
		case j.typ != api.JobTypeService && j.typ != api.JobTypeBatch:
			continue // system: below; sysbatch: never
		}
		seen[j] = true
		jobs = append(jobs, j)
	}
	for _, j := range c.sortedJobs() {
		if j.typ == api.JobTypeSystem && !j.stopped && !seen[j] && jobRunsIn(j, n) {
			seen[j] = true
			jobs = append(jobs, j)
		}
	}
	return jobs
}

// jobRunsIn reports whether system job j may run on n by its node pool and
// datacenters, as Nomad picks the system jobs it evaluates when a node
// goes (and as its node reconciler keeps a system or sysbatch job's
// allocations on a node).
func jobRunsIn(j *job, n *node) bool {
	if p := jobPool(j); p != "all" && p != n.pool {
		return false
	}
	for _, dc := range j.spec.Datacenters {
		if ok, _ := path.Match(dc, n.dc); ok {
			return true
		}
	}
	return false
}

// reregisterNodes registers again the purged nodes whose client still
// runs, once their time has come, as a Nomad client does when its
// heartbeat finds its node unknown (TestFidelityNodePurge): the same ID
// and name, a new create index (its modify index the same), ready, with
// the eligibility its client heard at its last heartbeat (Nomad's answer
// carries the node's; a drain's node is ineligible), so eligible only
// when it was, or was made ineligible less than a heartbeat before the
// purge; without a drain or a last drain. Its old allocations stay listed
// under it, and its client, which still ran them, stops them and reports
// them complete ("All tasks have completed"): those the purge stopped as
// lost (their desired status and description stay the purge's; a real
// client reported them within 1.5 s of the registration,
// TestFidelityNodePurge), and those the servers had stopped before (a
// stop in progress, a migration's old allocation), which a purged node's
// client otherwise never reports.
// Its jobs are evaluated as for any node that turns ready.
func (c *Cluster) reregisterNodes() {
	kept := c.returning[:0]
	for _, n := range c.returning {
		if c.now.Before(n.backAt) {
			kept = append(kept, n)
			continue
		}
		if c.nodeByID[n.id] != nil || c.nodeByName[n.name] != nil {
			continue // taken by a node registered since
		}
		n.purged, n.backAt = false, time.Time{}
		n.status, n.statusAt, n.eligible = api.NodeStatusReady, c.now, n.heard
		n.drain, n.lastDrain, n.faultDown = nil, nil, false
		idx := c.bump(TableNodes)
		n.createIdx, n.modifyIdx = idx, idx
		n.events = nil
		n.addEvent(c.now, nodeEventSubsystemCluster, nodeEventRegistered, 0)
		delete(c.purgedNodes, n.id)
		c.nodes = append(c.nodes, n)
		c.nodeByID[n.id] = n
		c.nodeByName[n.name] = n
		c.capFreed = true
		if c.sc.Reregister > 0 {
			n.nextBeat = c.now.Add(c.sc.Reregister)
		}
		c.log.Info("purged node registered again", logKeyNode, n.name, logKeyEligible, n.eligibility())
		// Node.Register evaluates a node new to the servers that comes
		// ready as one that turns ready, before its client reports: a job
		// whose allocation the servers had stopped and its client still
		// ran is evaluated, and each system job of its datacenter and
		// pool, all at one index (TestFidelityNodeRegisteredAgain).
		c.createNodeEvals(n, idx)
		c.clientReportsLost(n)
	}
	clear(c.returning[len(kept):])
	c.returning = kept
}

// clientReportsLost has n's client, heard again (its node back up, or
// registered again after a purge), stop what it still ran and report it:
// what the servers took as lost, and what they had stopped before (a
// stop in progress, a migration's old allocation). Nomad's client stops
// them and reports them complete (TestFidelityNodeDownAndUp,
// TestFidelityNodeRegisteredAgain).
func (c *Cluster) clientReportsLost(n *node) {
	for _, a := range n.lost {
		if a.client == allocLost && c.allocByID[a.id] == a {
			if a.mock != nil {
				c.mockKillNow(a)
			}
			a.killAt = c.now
			a.client, a.clientDesc, a.stopAt = allocComplete, "All tasks have completed", c.now
			c.touchByClient(a)
		}
	}
	n.lost = nil
	for _, a := range append([]*alloc(nil), n.allocs...) {
		if a.desired == desiredRun || a.clientTerminal() {
			continue
		}
		if a.mock != nil {
			c.mockKillNow(a)
		}
		a.killAt = c.now
		a.client, a.clientDesc, a.stopAt = allocComplete, "All tasks have completed", c.now
		c.touchByClient(a)
		c.markDirty(a.job, triggerAllocStop)
	}
}

// heartbeats has each node's client that is due heartbeat: the servers'
// answer carries the node's scheduling eligibility, which the client
// keeps and registers its node with again if the node was purged.
func (c *Cluster) heartbeats() {
	if c.sc.Reregister <= 0 {
		return
	}
	for _, n := range c.nodes {
		if !n.nextBeat.IsZero() && !c.now.Before(n.nextBeat) {
			n.heard = n.eligible
			n.nextBeat = c.now.Add(c.sc.Reregister)
		}
	}
}
