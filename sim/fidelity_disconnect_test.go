package sim_test

import (
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
)

// disconnectScenario is fidelityScenario with a second node in dc1, where
// the replacements of the allocations of a disconnected node go.
const disconnectScenario = `
name    = "fidelity-disconnect"
seed    = 11
start   = "2026-01-05T09:00:00Z"
tick    = "1s"
startup = "1s"

datacenter "dc1" {
  bandwidth = 1000
}

nodes "vm" {
  datacenter = "dc1"
  count      = 2
  cpu        = 4600
  memory     = 24105
  iops       = 1000
  cores      = 2
}
`

// disconnectJob is a service job of one allocation that prefers the
// check's node and may run in dc1 too, with disconnect.lost_after (none
// when zero) and a constant reschedule delay.
func disconnectJob(c *cluster, id string, lostAfter, delay time.Duration) *api.Job {
	j := sleepJob(id, 1, 50, 32, 50)
	if c.node.Datacenter != "dc1" {
		j.Datacenters = []string{c.node.Datacenter, "dc1"}
	}
	j.AddAffinity(api.NewAffinity("${node.unique.id}", "=", c.node.ID, 100))
	tg := j.TaskGroups[0]
	if lostAfter > 0 {
		tg.Disconnect = &api.DisconnectStrategy{LostAfter: new(lostAfter)}
	}
	tg.ReschedulePolicy = &api.ReschedulePolicy{Delay: new(delay), DelayFunction: new("constant"), Unlimited: new(true)}
	return j
}

// runDeployed registers a disconnectJob of one allocation and returns the
// allocation's ID once it runs on the check's node and the job's
// deployment succeeded (an allocation of an active deployment is not
// replaced while unknown).
func (c *cluster) runDeployed(t *testing.T, id string, lostAfter, delay time.Duration) string {
	t.Helper()
	return c.runDeployedJob(t, disconnectJob(c, id, lostAfter, delay))
}

// runDeployedJob is runDeployed of a job of one allocation made by
// disconnectJob and changed by the check.
func (c *cluster) runDeployedJob(t *testing.T, j *api.Job) string {
	t.Helper()
	id := *j.ID
	c.register(t, j)
	as := c.waitAllocs(t, id, "running on the check's node", func(as []*api.AllocationListStub) bool { return count(as, running) == 1 })
	if as[0].NodeID != c.node.ID {
		t.Fatalf("%s: %s placed on %s, not the check's node %s", c.name, id, as[0].NodeName, c.node.Name)
	}
	c.waitJob(t, id, "deployed", func(*api.Job) bool {
		d, _, err := c.client.Jobs().LatestDeployment(id, nil)
		return err == nil && d != nil && d.Status == api.DeploymentStatusSuccessful
	})
	return as[0].ID
}

// TestFidelityNodeDisconnected: a node whose heartbeat stops while it
// holds allocations whose group sets disconnect.lost_after goes
// "disconnected", not down. Measured on a real Nomad 2.0 dev agent with a
// second client stopped (SIGSTOP) and continued: the node event "Node
// heartbeat missed"; each such allocation unknown ("alloc is unknown since
// its node is disconnected"), still desired to run, its FollowupEvalID an
// "alloc-reschedule" evaluation pending until its reschedule delay, with a
// "max-disconnect-timeout" one pending until lost_after ("created for
// delayed disconnect timeout"), both following the node-update evaluation,
// which names the reschedule as its next; an allocation without the block
// lost as on a node gone down. At its delay an unknown allocation gets a replacement (with a reschedule
// event) and stays unknown and desired to run, naming it as its
// NextAllocation. A stop of an unknown allocation marks it to migrate
// (DesiredTransition.Migrate) and places nothing. Once lost_after passes
// the allocation is lost and stopped while the node stays disconnected
// for the others. When the client comes back the node is ready with no
// "reregistered" event; the original not stopped runs again, still naming
// its replacement (its follow-up cleared, the reschedule evaluation
// cancelled: "allocs reconnected"), which stops ("alloc not needed due to
// disconnected client reconnect"); the one stopped while unknown stops ("alloc not
// needed due to job update") and its replacement stays.
func TestFidelityNodeDisconnected(t *testing.T) {
	forEachNomadIn(t, disconnectScenario, nil, func(t *testing.T, c *cluster) {
		takeDown, bringUp := c.nodeDownUp(t)
		keep, stop, short, plain := c.jobID("disckeep"), c.jobID("discstop"), c.jobID("discshort"), c.jobID("discplain")
		jobs := map[string]time.Duration{keep: 10 * time.Minute, stop: 10 * time.Minute, short: 30 * time.Second, plain: 0}
		orig, reschedOf := map[string]string{}, map[string]string{}
		for _, id := range []string{keep, stop, short, plain} {
			// The stopped one is replaced later, so that the stop
			// comes before its replacement.
			delay := 5 * time.Second
			if id == stop {
				delay = 45 * time.Second
			}
			orig[id] = c.runDeployed(t, id, jobs[id], delay)
		}

		takeDown()
		n := c.waitNode(t, "disconnected", func(n *api.Node) bool { return n.Status == api.NodeStatusDisconnected })
		at := c.nodeEventAt(t, n, "Node heartbeat missed")
		for _, id := range []string{keep, stop, short} {
			a := c.waitAlloc(t, orig[id], id+"'s allocation unknown", func(a *api.Allocation) bool {
				return a.ClientStatus == api.AllocClientStatusUnknown
			})
			if a.DesiredStatus != api.AllocDesiredStatusRun || a.ClientDescription != "alloc is unknown since its node is disconnected" || a.ModifyIndex <= at {
				t.Errorf("%s: %s's allocation on the disconnected node: %s / %s (%q) at %d; want run / unknown (alloc is unknown since its node is disconnected) above %d",
					c.name, id, a.DesiredStatus, a.ClientStatus, a.ClientDescription, a.ModifyIndex, at)
			}
			evals, _, err := c.client.Jobs().Evaluations(id, nil)
			if err != nil {
				t.Fatal(err)
			}
			var resched, timeout *api.Evaluation
			for _, e := range evals {
				switch e.TriggeredBy {
				case "alloc-reschedule":
					resched = e
				case "max-disconnect-timeout":
					timeout = e
				}
			}
			if resched == nil || timeout == nil {
				t.Fatalf("%s: %s's evaluations have no alloc-reschedule or no max-disconnect-timeout: %d evaluations", c.name, id, len(evals))
			}
			reschedOf[id] = resched.ID
			if a.FollowupEvalID != resched.ID || resched.StatusDescription != "created for delayed rescheduling" || resched.Status != api.EvalStatusPending {
				t.Errorf("%s: %s's follow-up %q; its reschedule %s %s (%q); want the reschedule, pending, created for delayed rescheduling",
					c.name, id, a.FollowupEvalID, resched.ID, resched.Status, resched.StatusDescription)
			}
			if timeout.StatusDescription != "created for delayed disconnect timeout" || timeout.Status != api.EvalStatusPending ||
				timeout.PreviousEval != resched.PreviousEval || (c.sim == nil && timeout.WaitUntil.Before(time.Now().Add(jobs[id]/2))) {
				t.Errorf("%s: %s's time-out %s (%q), previous %q, until %s; want pending (created for delayed disconnect timeout), after the reschedule's previous %q, lost_after %s on",
					c.name, id, timeout.Status, timeout.StatusDescription, timeout.PreviousEval, timeout.WaitUntil, resched.PreviousEval, jobs[id])
			}
			ne, _, err := c.client.Evaluations().Info(resched.PreviousEval, nil)
			if err != nil {
				t.Fatal(err)
			}
			if ne.TriggeredBy != "node-update" || ne.NodeID != c.node.ID || ne.NextEval != resched.ID {
				t.Errorf("%s: %s's reschedule follows %s of node %s (next %q); want the node-update evaluation of the node, naming the reschedule",
					c.name, id, ne.TriggeredBy, ne.NodeID, ne.NextEval)
			}
		}
		lost := c.waitAlloc(t, orig[plain], plain+"'s allocation lost", func(a *api.Allocation) bool { return a.ClientStatus == api.AllocClientStatusLost })
		if lost.DesiredStatus != api.AllocDesiredStatusStop || lost.DesiredDescription != "alloc is lost since its node is down" {
			t.Errorf("%s: the allocation without disconnect: %s (%q); want stop (alloc is lost since its node is down)", c.name, lost.DesiredStatus, lost.DesiredDescription)
		}

		// A stop marks the unknown allocation to migrate, and places
		// nothing until its reschedule delay has passed.
		a, _, err := c.client.Allocations().Info(orig[stop], nil)
		if err != nil {
			t.Fatal(err)
		}
		if a.NextAllocation == "" {
			if _, err := c.client.Allocations().Stop(a, nil); err != nil {
				t.Fatalf("%s: stop the unknown allocation: %v", c.name, err)
			}
			a = c.waitAlloc(t, orig[stop], "marked to migrate", func(a *api.Allocation) bool { return a.DesiredTransition.ShouldMigrate() })
			if a.DesiredStatus != api.AllocDesiredStatusRun || a.ClientStatus != api.AllocClientStatusUnknown {
				t.Errorf("%s: the unknown allocation stopped: %s / %s; want run / unknown", c.name, a.DesiredStatus, a.ClientStatus)
			}
		} else {
			t.Logf("%s: %s was replaced before the stop: stopped after", c.name, stop)
			if _, err := c.client.Allocations().Stop(a, nil); err != nil {
				t.Fatalf("%s: stop the unknown allocation: %v", c.name, err)
			}
		}

		repl := map[string]string{}
		for _, id := range []string{keep, stop, short} {
			a := c.waitAlloc(t, orig[id], id+"'s allocation replaced", func(a *api.Allocation) bool { return a.NextAllocation != "" })
			if a.ClientStatus == api.AllocClientStatusUnknown && a.DesiredStatus != api.AllocDesiredStatusRun {
				t.Errorf("%s: %s's unknown allocation replaced: desired %s; want run", c.name, id, a.DesiredStatus)
			}
			r := c.waitAlloc(t, a.NextAllocation, id+"'s replacement running", func(a *api.Allocation) bool { return a.ClientStatus == api.AllocClientStatusRunning })
			if r.NodeID == c.node.ID || r.PreviousAllocation != orig[id] || r.RescheduleTracker == nil || len(r.RescheduleTracker.Events) != 1 ||
				r.RescheduleTracker.Events[0].PrevAllocID != orig[id] {
				t.Errorf("%s: %s's replacement on %s, previous %q, tracker %+v; want another node, the original, one reschedule event of it",
					c.name, id, r.NodeName, r.PreviousAllocation, r.RescheduleTracker)
			}
			repl[id] = r.ID
		}
		a = c.waitAlloc(t, orig[short], short+"'s allocation lost after lost_after", func(a *api.Allocation) bool { return a.ClientStatus == api.AllocClientStatusLost })
		if a.DesiredStatus != api.AllocDesiredStatusStop || a.DesiredDescription != "alloc is lost since its node is down" {
			t.Errorf("%s: the allocation past lost_after: %s (%q); want stop (alloc is lost since its node is down)", c.name, a.DesiredStatus, a.DesiredDescription)
		}
		if n, _, err := c.client.Nodes().Info(c.node.ID, nil); err != nil || n.Status != api.NodeStatusDisconnected {
			t.Errorf("%s: the node once one allocation timed out and two wait: %v %v; want still disconnected", c.name, n.Status, err)
		}

		bringUp()
		up := c.waitNode(t, "ready", func(n *api.Node) bool { return n.Status == api.NodeStatusReady })
		for _, e := range up.Events {
			if e.Message == "Node reregistered by heartbeat" && e.CreateIndex > at {
				t.Errorf("%s: a %q event at %d after the disconnect; want none", c.name, e.Message, e.CreateIndex)
			}
		}
		a = c.waitAlloc(t, orig[keep], "the original running again", func(a *api.Allocation) bool { return a.ClientStatus == api.AllocClientStatusRunning })
		if a.DesiredStatus != api.AllocDesiredStatusRun || a.NextAllocation != repl[keep] || a.FollowupEvalID != "" {
			t.Errorf("%s: the original back: %s, next %q, follow-up %q; want run, still naming its replacement %s, no follow-up",
				c.name, a.DesiredStatus, a.NextAllocation, a.FollowupEvalID, repl[keep])
		}
		if e := c.waitEval(t, reschedOf[keep], "cancelled", func(e *api.Evaluation) bool { return e.Status == api.EvalStatusCancelled }); e.StatusDescription != "allocs reconnected" {
			t.Errorf("%s: the original's reschedule once the node is back: %q; want canceled (allocs reconnected)", c.name, e.StatusDescription)
		}
		c.waitAlloc(t, repl[keep], "the replacement stopped", func(a *api.Allocation) bool {
			return a.DesiredStatus == api.AllocDesiredStatusStop && a.DesiredDescription == "alloc not needed due to disconnected client reconnect" &&
				a.ClientStatus == api.AllocClientStatusComplete
		})
		c.waitAlloc(t, orig[stop], "the stopped original stopped", func(a *api.Allocation) bool {
			return a.DesiredStatus == api.AllocDesiredStatusStop && a.DesiredDescription == "alloc not needed due to job update" &&
				a.ClientStatus == api.AllocClientStatusComplete
		})
		if r, _, err := c.client.Allocations().Info(repl[stop], nil); err != nil || r.DesiredStatus != api.AllocDesiredStatusRun || r.ClientStatus != api.AllocClientStatusRunning {
			t.Errorf("%s: the replacement of the stopped original: %v; want it running on", c.name, err)
		}
		c.waitAlloc(t, orig[short], "the timed-out original reported complete", func(a *api.Allocation) bool {
			return a.ClientStatus == api.AllocClientStatusComplete && a.DesiredStatus == api.AllocDesiredStatusStop
		})
	})
}

// TestFidelityNodeDisconnectedThenDown: a disconnected node whose every
// allocation that could wait has passed its disconnect.lost_after goes down
// at its next missed heartbeat (the real Nomad: lost 120 s after the
// disconnect with lost_after = "2m", down 4 s later, a "Node heartbeat
// missed" event at each). The allocation is lost and stopped ("alloc is
// lost since its node is down") and replaced; when the client comes back
// the node is "reregistered by heartbeat", as from any down, and the
// client reports the allocation complete.
func TestFidelityNodeDisconnectedThenDown(t *testing.T) {
	forEachNomadIn(t, disconnectScenario, nil, func(t *testing.T, c *cluster) {
		takeDown, bringUp := c.nodeDownUp(t)
		id := c.jobID("discdown")
		orig := c.runDeployed(t, id, 30*time.Second, 5*time.Second)

		takeDown()
		c.waitNode(t, "disconnected", func(n *api.Node) bool { return n.Status == api.NodeStatusDisconnected })
		a := c.waitAlloc(t, orig, "lost after lost_after", func(a *api.Allocation) bool { return a.ClientStatus == api.AllocClientStatusLost })
		if a.DesiredStatus != api.AllocDesiredStatusStop || a.DesiredDescription != "alloc is lost since its node is down" || a.NextAllocation == "" {
			t.Errorf("%s: the allocation past lost_after: %s (%q), next %q; want stop (alloc is lost since its node is down), replaced",
				c.name, a.DesiredStatus, a.DesiredDescription, a.NextAllocation)
		}
		down := c.waitNode(t, "down", func(n *api.Node) bool { return n.Status == api.NodeStatusDown })
		c.nodeEventAt(t, down, "Node heartbeat missed")

		bringUp()
		up := c.waitNode(t, "ready", func(n *api.Node) bool { return n.Status == api.NodeStatusReady })
		c.nodeEventAt(t, up, "Node reregistered by heartbeat")
		c.waitAlloc(t, orig, "reported complete by its client", func(a *api.Allocation) bool {
			return a.ClientStatus == api.AllocClientStatusComplete && a.DesiredStatus == api.AllocDesiredStatusStop
		})
	})
}
