package sim_test

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
)

// mockDisconnectScenario is disconnectScenario with the mock driver on
// its nodes.
var mockDisconnectScenario = strings.Replace(disconnectScenario, "  cores      = 2\n",
	"  cores      = 2\n  drivers    = [\"docker\", \"exec\", \"raw_exec\", \"mock_driver\"]\n", 1)

// TestFidelityMockDisconnected: mock_driver allocations on a node whose
// heartbeat stops. The servers leave a lost or unknown allocation's task
// states as its client last reported them: a running task still running,
// a pending one pending. A running allocation whose group sets
// disconnect.lost_after turns unknown; a pending one (its task waiting to
// restart) is lost at once and replaced, whatever its group's disconnect
// block, as Nomad's reconciler takes a disconnected node's pending
// allocations. When the client is back it reports the unknown one
// running, its task with a Reconnected event ("Client reconnected"), and
// kills those the servers stopped meanwhile: one stopped while unknown
// and one lost while running get Killing, Terminated and Killed, the one
// lost while waiting to restart Killing (its restart timer may fire
// first: a client stopped with SIGSTOP fires it on its return), all
// complete. Measured on Nomad 2.0.6-dev with a client stopped (SIGSTOP)
// for 87 s and continued. The simulator turned the pending allocation
// unknown, showed lost tasks dead, added no event on the client's return
// and dropped a task's timers while its node was disconnected.
func TestFidelityMockDisconnected(t *testing.T) {
	forEachNomadIn(t, mockDisconnectScenario, nil, func(t *testing.T, c *cluster) {
		takeDown, bringUp := c.nodeDownUp(t)
		if d := c.node.Drivers["mock_driver"]; d == nil || !d.Healthy {
			t.Skipf("%s: the node NOMAD_DOWN_NODE names does not run mock_driver", c.name)
		}
		// job is a mock_driver job of one allocation that prefers the
		// check's node, may run in dc1 too, and is not rescheduled
		// within the check.
		job := func(what string, lostAfter time.Duration, config map[string]any) string {
			id := c.jobID("mockdisc-" + what)
			j := mockJob(id, config)
			if c.node.Datacenter != "dc1" {
				j.Datacenters = []string{c.node.Datacenter, "dc1"}
			}
			j.AddAffinity(api.NewAffinity("${node.unique.id}", "=", c.node.ID, 100))
			tg := j.TaskGroups[0]
			if lostAfter > 0 {
				tg.Disconnect = &api.DisconnectStrategy{LostAfter: new(lostAfter)}
			}
			tg.ReschedulePolicy = &api.ReschedulePolicy{Delay: new(time.Hour), DelayFunction: new("constant"), Unlimited: new(true)}
			tg.RestartPolicy = &api.RestartPolicy{Attempts: new(100), Interval: new(time.Hour), Delay: new(5 * time.Second), Mode: new(api.RestartPolicyModeDelay)}
			c.register(t, j)
			return id
		}
		long := map[string]any{"run_for": "1h"}
		unknown, stopped, lost := job("unknown", 10*time.Minute, long), job("stopped", 10*time.Minute, long), job("lost", 0, long)
		pending := job("pending", 10*time.Minute, map[string]any{"start_error": "not yet", "start_error_recoverable": true})
		orig := map[string]*api.Allocation{}
		for _, id := range []string{unknown, stopped, lost} {
			orig[id] = c.firstAlloc(t, id, "running", func(a *api.Allocation) bool { return a.ClientStatus == api.AllocClientStatusRunning })
		}
		orig[pending] = c.firstAlloc(t, pending, "waiting to restart", func(a *api.Allocation) bool { return oneTask(a).Restarts >= 1 })
		for id, a := range orig {
			if a.NodeID != c.node.ID {
				t.Fatalf("%s: %s placed on %s, not the check's node %s", c.name, id, a.NodeName, c.node.Name)
			}
		}

		takeDown()
		c.waitNode(t, "disconnected", func(n *api.Node) bool { return n.Status == api.NodeStatusDisconnected })
		a := c.waitAlloc(t, orig[unknown].ID, "unknown", func(a *api.Allocation) bool { return a.ClientStatus == api.AllocClientStatusUnknown })
		if ts := oneTask(a); ts.State != "running" || !ts.FinishedAt.IsZero() || !sameEvents(taskEvents(a), taskEvents(orig[unknown])...) {
			t.Errorf("%s: the unknown allocation's task: %s, finished %v, events %q; want as its client last reported it: running, %q",
				c.name, ts.State, ts.FinishedAt, taskEvents(a), taskEvents(orig[unknown]))
		}
		a = c.waitAlloc(t, orig[lost].ID, "lost", func(a *api.Allocation) bool { return a.ClientStatus == api.AllocClientStatusLost })
		if ts := oneTask(a); ts.State != "running" || !ts.FinishedAt.IsZero() {
			t.Errorf("%s: the running allocation lost: its task %s, finished %v; want running, as its client last reported it", c.name, ts.State, ts.FinishedAt)
		}
		a = c.waitAlloc(t, orig[pending].ID, "lost and replaced", func(a *api.Allocation) bool {
			return a.ClientStatus != api.AllocClientStatusPending && a.NextAllocation != ""
		})
		if ts := oneTask(a); a.ClientStatus != api.AllocClientStatusLost || a.DesiredStatus != api.AllocDesiredStatusStop ||
			a.DesiredDescription != "alloc is lost since its node is down" || ts.State != "pending" || ts.Failed {
			t.Errorf("%s: the pending allocation on the disconnected node: %s (%q) / %s, its task %s failed %v; want stop (alloc is lost since its node is down) / lost, replaced, its task pending",
				c.name, a.DesiredStatus, a.DesiredDescription, a.ClientStatus, ts.State, ts.Failed)
		}
		if n, _, err := c.client.Nodes().Info(c.node.ID, nil); err != nil || n.Status != api.NodeStatusDisconnected {
			t.Errorf("%s: the node once the pending allocation was replaced: %v %v; want still disconnected", c.name, n.Status, err)
		}
		if _, _, err := c.client.Jobs().Deregister(stopped, false, nil); err != nil {
			t.Fatal(err)
		}
		c.waitAlloc(t, orig[stopped].ID, "stopped while unknown", func(a *api.Allocation) bool {
			return a.DesiredStatus == api.AllocDesiredStatusStop && a.ClientStatus == api.AllocClientStatusUnknown
		})

		bringUp()
		c.waitNode(t, "ready", func(n *api.Node) bool { return n.Status == api.NodeStatusReady })
		a = c.waitAlloc(t, orig[unknown].ID, "running again", func(a *api.Allocation) bool { return a.ClientStatus == api.AllocClientStatusRunning })
		a = c.waitAlloc(t, a.ID, "told of the reconnect", func(a *api.Allocation) bool { return len(taskEvents(a)) > len(taskEvents(orig[unknown])) })
		if want := append(taskEvents(orig[unknown]), "Reconnected: Client reconnected"); !sameEvents(taskEvents(a), want...) || oneTask(a).State != "running" {
			t.Errorf("%s: the unknown allocation back: task %s, events %q; want running, %q", c.name, oneTask(a).State, taskEvents(a), want)
		}
		killedAll := []string{"Killing: Sent interrupt. Waiting 5s before force killing", "Terminated: Exit Code: 0", "Killed: Task successfully killed"}
		for _, tc := range []struct {
			what, id, desc string
			want           []string
		}{
			{"the allocation stopped while unknown", stopped, "alloc not needed due to job update", killedAll},
			{"the running allocation lost", lost, "alloc is lost since its node is down", killedAll},
			{"the pending allocation lost", pending, "alloc is lost since its node is down", killedAll[:1]},
		} {
			a := c.waitAlloc(t, orig[tc.id].ID, tc.what+" complete", func(a *api.Allocation) bool { return a.ClientStatus == api.AllocClientStatusComplete })
			ev, ts := taskEvents(a), oneTask(a)
			if a.DesiredDescription != tc.desc || a.ClientDescription != "All tasks have completed" || ts.State != "dead" || ts.Failed ||
				len(ev) < len(tc.want) || !sameEvents(ev[len(ev)-len(tc.want):], tc.want...) {
				t.Errorf("%s: %s once its client is back: %q / %q, task %s failed %v, events %q; want %q / All tasks have completed, dead, not failed, ending %q",
					c.name, tc.what, a.DesiredDescription, a.ClientDescription, ts.State, ts.Failed, ev, tc.desc, tc.want)
			}
		}
	})
}
