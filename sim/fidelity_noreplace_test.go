package sim_test

import (
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
)

// TestFidelityNodeDisconnectedUnreplaced: allocations whose group sets
// disconnect { replace = false } on a node that stops heartbeating. They
// turn unknown as any with lost_after (TestFidelityNodeDisconnected), but
// Nomad creates no alloc-reschedule evaluation for them (their follow-up
// is the pending max-disconnect-timeout) and places no replacement while
// the node is disconnected, also for one stopped (its stop marks it to
// migrate). Past lost_after an allocation is lost, stopped and replaced as
// any. When the client comes back, the one not stopped runs on, never
// replaced, its follow-up cleared and its max-disconnect-timeout
// evaluation cancelled ("allocs reconnected"), and the stopped one is
// migrated ("alloc is being migrated"): it stops and a replacement runs,
// its follow-up still the max-disconnect-timeout, pending. Measured on a real
// Nomad 2.0.6-dev with a second client stopped (SIGSTOP) and continued.
func TestFidelityNodeDisconnectedUnreplaced(t *testing.T) {
	forEachNomadIn(t, disconnectScenario, nil, func(t *testing.T, c *cluster) {
		takeDown, bringUp := c.nodeDownUp(t)
		keep, stop, short := c.jobID("noreplkeep"), c.jobID("noreplstop"), c.jobID("noreplshort")
		lostAfter := map[string]time.Duration{keep: 10 * time.Minute, stop: 10 * time.Minute, short: 60 * time.Second}
		orig, followup := map[string]string{}, map[string]string{}
		for _, id := range []string{keep, stop, short} {
			j := disconnectJob(c, id, lostAfter[id], 5*time.Second)
			j.TaskGroups[0].Disconnect.Replace = new(false)
			orig[id] = c.runDeployedJob(t, j)
		}

		takeDown()
		c.waitNode(t, "disconnected", func(n *api.Node) bool { return n.Status == api.NodeStatusDisconnected })
		for _, id := range []string{keep, stop, short} {
			a := c.waitAlloc(t, orig[id], id+"'s allocation unknown", func(a *api.Allocation) bool {
				return a.ClientStatus == api.AllocClientStatusUnknown
			})
			if a.DesiredStatus != api.AllocDesiredStatusRun || a.ClientDescription != "alloc is unknown since its node is disconnected" {
				t.Errorf("%s: %s's allocation on the disconnected node: %s / %s (%q); want run / unknown", c.name, id, a.DesiredStatus, a.ClientStatus, a.ClientDescription)
			}
			c.logAlloc(t, "unknown", a)
			followup[id] = a.FollowupEvalID
			evals, _, err := c.client.Jobs().Evaluations(id, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range evals {
				if e.ID == a.FollowupEvalID && (e.TriggeredBy != "max-disconnect-timeout" || e.Status != api.EvalStatusPending) {
					t.Errorf("%s: %s's follow-up %s %s; want its pending max-disconnect-timeout (no alloc-reschedule)", c.name, id, e.TriggeredBy, e.Status)
				}
			}
		}
		a, _, err := c.client.Allocations().Info(orig[stop], nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.client.Allocations().Stop(a, nil); err != nil {
			t.Fatalf("%s: stop the unknown allocation: %v", c.name, err)
		}
		a = c.waitAlloc(t, orig[stop], "marked to migrate", func(a *api.Allocation) bool { return a.DesiredTransition.ShouldMigrate() })
		if a.DesiredStatus != api.AllocDesiredStatusRun || a.ClientStatus != api.AllocClientStatusUnknown {
			t.Errorf("%s: the unknown allocation stopped: %s / %s; want run / unknown", c.name, a.DesiredStatus, a.ClientStatus)
		}

		// Past its lost_after (a minute, twelve reschedule delays) the
		// short one is lost and replaced; by then nothing replaced the
		// others.
		a = c.waitAlloc(t, orig[short], "lost after lost_after", func(a *api.Allocation) bool { return a.ClientStatus == api.AllocClientStatusLost })
		c.logAlloc(t, "lost", a)
		if a.DesiredStatus != api.AllocDesiredStatusStop || a.DesiredDescription != "alloc is lost since its node is down" {
			t.Errorf("%s: the allocation past lost_after: %s (%q); want stop (alloc is lost since its node is down)", c.name, a.DesiredStatus, a.DesiredDescription)
		}
		a = c.waitAlloc(t, orig[short], "replaced", func(a *api.Allocation) bool { return a.NextAllocation != "" })
		c.waitAlloc(t, a.NextAllocation, "the replacement running", func(a *api.Allocation) bool { return a.ClientStatus == api.AllocClientStatusRunning })
		for _, id := range []string{keep, stop} {
			as, _, err := c.client.Jobs().Allocations(id, true, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(as) != 1 {
				t.Errorf("%s: %s's allocations a minute into the disconnect: %s; want the unknown original alone", c.name, id, describe(as))
			}
			evals, _, err := c.client.Jobs().Evaluations(id, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range evals {
				t.Logf("%s: %s: evaluation %s %s %q", c.name, id, e.TriggeredBy, e.Status, e.StatusDescription)
				if e.TriggeredBy == "alloc-reschedule" {
					t.Errorf("%s: %s has an alloc-reschedule evaluation (%s); want none", c.name, id, e.Status)
				}
			}
		}

		bringUp()
		c.waitNode(t, "ready", func(n *api.Node) bool { return n.Status == api.NodeStatusReady })
		a = c.waitAlloc(t, orig[stop], "the stopped original migrated", func(a *api.Allocation) bool {
			return a.DesiredStatus == api.AllocDesiredStatusStop && a.NextAllocation != ""
		})
		c.logAlloc(t, "migrated", a)
		if a.DesiredDescription != "alloc is being migrated" {
			t.Errorf("%s: the migrated original: %q; want \"alloc is being migrated\"", c.name, a.DesiredDescription)
		}
		r := c.waitAlloc(t, a.NextAllocation, "its replacement running", func(a *api.Allocation) bool { return a.ClientStatus == api.AllocClientStatusRunning })
		c.logAlloc(t, "its replacement", r)
		if r.PreviousAllocation != orig[stop] {
			t.Errorf("%s: the replacement's previous %q; want the original", c.name, r.PreviousAllocation)
		}
		a = c.waitAlloc(t, orig[keep], "running again", func(a *api.Allocation) bool { return a.ClientStatus == api.AllocClientStatusRunning })
		c.logAlloc(t, "back", a)
		if a.DesiredStatus != api.AllocDesiredStatusRun || a.NextAllocation != "" || a.FollowupEvalID != "" {
			t.Errorf("%s: the original not stopped, back: %s, next %q, follow-up %q; want run, never replaced, no follow-up",
				c.name, a.DesiredStatus, a.NextAllocation, a.FollowupEvalID)
		}
		e := c.waitEval(t, followup[keep], "cancelled", func(e *api.Evaluation) bool { return e.Status != api.EvalStatusPending })
		if e.Status != api.EvalStatusCancelled || e.StatusDescription != "allocs reconnected" {
			t.Errorf("%s: the max-disconnect-timeout of the one back: %s (%q); want canceled (allocs reconnected)", c.name, e.Status, e.StatusDescription)
		}
		a, _, err = c.client.Allocations().Info(orig[stop], nil)
		if err != nil {
			t.Fatal(err)
		}
		if e, _, err := c.client.Evaluations().Info(followup[stop], nil); err != nil || a.FollowupEvalID != followup[stop] || e.Status != api.EvalStatusPending {
			t.Errorf("%s: the migrated one's follow-up %q (was %q): %v; want still its max-disconnect-timeout, pending", c.name, a.FollowupEvalID, followup[stop], err)
		}
	})
}

// logAlloc logs what a check saw of an allocation.
func (c *cluster) logAlloc(t *testing.T, what string, a *api.Allocation) {
	t.Helper()
	t.Logf("%s: %s %s on %s: %s / %s (%q / %q), next %q, follow-up %q, migrate %v", c.name, what, a.ID[:8], a.NodeName, a.DesiredStatus, a.ClientStatus,
		a.DesiredDescription, a.ClientDescription, a.NextAllocation, a.FollowupEvalID, a.DesiredTransition.ShouldMigrate())
}

// TestFidelityNodeDisconnectedMidDeployment: an allocation of its job's
// active deployment (running, not yet healthy: min_healthy_time 5m) on a
// node that stops heartbeating turns unknown with no alloc-reschedule
// evaluation: its follow-up is the pending max-disconnect-timeout, as for
// a group with replace = false (TestFidelityNodeDisconnectedUnreplaced),
// and nothing replaces it; when the client comes back it runs on, never
// replaced.
func TestFidelityNodeDisconnectedMidDeployment(t *testing.T) {
	forEachNomadIn(t, disconnectScenario, nil, func(t *testing.T, c *cluster) {
		takeDown, bringUp := c.nodeDownUp(t)
		id := c.jobID("discdeploy")
		j := disconnectJob(c, id, 10*time.Minute, 5*time.Second)
		j.Update = &api.UpdateStrategy{MaxParallel: new(1), MinHealthyTime: new(5 * time.Minute),
			HealthyDeadline: new(8 * time.Minute), ProgressDeadline: new(10 * time.Minute)}
		c.register(t, j)
		as := c.waitAllocs(t, id, "running on the check's node", func(as []*api.AllocationListStub) bool { return count(as, running) == 1 })
		orig := as[0].ID
		if as[0].NodeID != c.node.ID {
			t.Fatalf("%s: %s placed on %s, not the check's node %s", c.name, id, as[0].NodeName, c.node.Name)
		}
		if d, _, err := c.client.Jobs().LatestDeployment(id, nil); err != nil || d == nil || d.Status != api.DeploymentStatusRunning {
			t.Fatalf("%s: %s's deployment: %v; want running", c.name, id, err)
		}

		takeDown()
		c.waitNode(t, "disconnected", func(n *api.Node) bool { return n.Status == api.NodeStatusDisconnected })
		a := c.waitAlloc(t, orig, "unknown", func(a *api.Allocation) bool { return a.ClientStatus == api.AllocClientStatusUnknown })
		c.logAlloc(t, "unknown", a)
		e, _, err := c.client.Evaluations().Info(a.FollowupEvalID, nil)
		if err != nil {
			t.Fatalf("%s: the unknown allocation's follow-up %q: %v", c.name, a.FollowupEvalID, err)
		}
		if e.TriggeredBy != "max-disconnect-timeout" || e.Status != api.EvalStatusPending {
			t.Errorf("%s: the unknown allocation's follow-up %s %s; want its pending max-disconnect-timeout (no reschedule during the deployment)",
				c.name, e.TriggeredBy, e.Status)
		}
		evals, _, err := c.client.Jobs().Evaluations(id, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evals {
			if e.TriggeredBy == "alloc-reschedule" {
				t.Errorf("%s: an alloc-reschedule evaluation (%s) during the deployment; want none", c.name, e.Status)
			}
		}

		bringUp()
		c.waitNode(t, "ready", func(n *api.Node) bool { return n.Status == api.NodeStatusReady })
		a = c.waitAlloc(t, orig, "running again", func(a *api.Allocation) bool { return a.ClientStatus == api.AllocClientStatusRunning })
		if a.DesiredStatus != api.AllocDesiredStatusRun || a.NextAllocation != "" {
			t.Errorf("%s: the original back: %s, next %q; want run, never replaced", c.name, a.DesiredStatus, a.NextAllocation)
		}
		if as, _, err := c.client.Jobs().Allocations(id, true, nil); err != nil || len(as) != 1 {
			t.Errorf("%s: %s's allocations once the node is back: %v %v; want the original alone", c.name, id, describe(as), err)
		}
	})
}
