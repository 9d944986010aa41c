package sim_test

import (
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
)

// TestFidelityReconnectKeeps: which of an original and its replacement
// runs on when the original's node comes back, by the group's
// disconnect.reconcile. Each job's allocation, on the check's node, turns
// unknown when the node stops heartbeating (lost_after 10 minutes) and is
// replaced at its reschedule delay (5 s); once every replacement runs the
// node comes back. keep_original keeps the original and stops the
// replacement ("alloc not needed due to disconnected client reconnect");
// keep_replacement stops the original ("alloc not needed due to job
// update", where the simulator said the reconnect's words); best_score and longest_running
// kept the original on a real Nomad 2.0.6-dev (the original's node scored
// no worse, and the original has run the longest), as the simulator does.
func TestFidelityReconnectKeeps(t *testing.T) {
	forEachNomadIn(t, disconnectScenario, nil, func(t *testing.T, c *cluster) {
		takeDown, bringUp := c.nodeDownUp(t)
		opts := []api.ReconcileOption{api.ReconcileOptionKeepOriginal, api.ReconcileOptionKeepReplacement,
			api.ReconcileOptionBestScore, api.ReconcileOptionLongestRunning}
		wantOriginal := map[api.ReconcileOption]bool{api.ReconcileOptionKeepOriginal: true, api.ReconcileOptionBestScore: true,
			api.ReconcileOptionLongestRunning: true}
		ids, orig := map[api.ReconcileOption]string{}, map[api.ReconcileOption]string{}
		for i, o := range opts {
			id := c.jobID("reconcile" + string(rune('a'+i)))
			j := disconnectJob(c, id, 10*time.Minute, 5*time.Second)
			j.TaskGroups[0].Disconnect.Reconcile = new(o)
			ids[o], orig[o] = id, c.runDeployedJob(t, j)
		}

		takeDown()
		c.waitNode(t, "disconnected", func(n *api.Node) bool { return n.Status == api.NodeStatusDisconnected })
		repl := map[api.ReconcileOption]string{}
		for _, o := range opts {
			a := c.waitAlloc(t, orig[o], string(o)+": replaced", func(a *api.Allocation) bool { return a.NextAllocation != "" })
			c.waitAlloc(t, a.NextAllocation, string(o)+": the replacement running", func(a *api.Allocation) bool {
				return a.ClientStatus == api.AllocClientStatusRunning
			})
			repl[o] = a.NextAllocation
		}

		bringUp()
		c.waitNode(t, "ready", func(n *api.Node) bool { return n.Status == api.NodeStatusReady })
		for _, o := range opts {
			kept, gone := orig[o], repl[o]
			if !wantOriginal[o] {
				kept, gone = gone, kept
			}
			g := c.waitAlloc(t, gone, string(o)+": the one not kept stopped", func(a *api.Allocation) bool {
				return a.DesiredStatus == api.AllocDesiredStatusStop
			})
			c.logAlloc(t, string(o)+": not kept", g)
			k, _, err := c.client.Allocations().Info(kept, nil)
			if err != nil {
				t.Fatal(err)
			}
			c.logAlloc(t, string(o)+": kept", k)
			if k.DesiredStatus != api.AllocDesiredStatusRun {
				t.Errorf("%s: %s: the one to keep (%s) is %s (%q); want run", c.name, o, map[bool]string{true: "original", false: "replacement"}[wantOriginal[o]],
					k.DesiredStatus, k.DesiredDescription)
			}
			want := "alloc not needed due to disconnected client reconnect"
			if !wantOriginal[o] {
				want = "alloc not needed due to job update"
			}
			if g.DesiredDescription != want {
				t.Errorf("%s: %s: the one stopped: %q; want %q", c.name, o, g.DesiredDescription, want)
			}
		}
	})
}
