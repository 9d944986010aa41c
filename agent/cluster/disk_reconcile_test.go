package cluster_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/cluster"
	"github.com/foreshape/foreshape/agent/cluster/clustertest"
)

// quickReconcile makes the leader check every 50 ms and replace a voter
// after 300 ms. The tests watch for a change that must not happen for a
// second (twenty checks, three promote_afters, two remove_afters) or,
// where no place is open, half a second: a shorter window can only miss a
// failure, never add one, and these tests run alone.
func quickReconcile(_ int, c *cluster.Config) {
	c.ReconcileInterval, c.PromoteAfter = 50*time.Millisecond, 300*time.Millisecond
}

// leaderView returns what whichever of nodes leads now holds of every
// server, by ID; nil while none leads.
func leaderView(nodes []*cluster.Node) map[string]cluster.ServerHealth {
	for _, n := range nodes {
		if !n.IsLeader() {
			continue
		}
		if all := n.Health(); len(all) > 0 {
			v := map[string]cluster.ServerHealth{}
			for _, h := range all {
				v[h.ID] = h
			}
			return v
		}
	}
	return nil
}

// waitView waits until the leader's view satisfies cond.
func waitView(t *testing.T, nodes []*cluster.Node, what string, cond func(v map[string]cluster.ServerHealth) bool) {
	t.Helper()
	clustertest.Eventually(t, what, func() bool {
		v := leaderView(nodes)
		return v != nil && cond(v)
	})
}

// latestView is leaderView with each server's place (in the
// configuration or not, voter or not) as the leader's latest
// configuration has it, committed or not. Health shows the configuration
// its last reconcile round read, and a round that adds a voter waits for
// the change to commit: when the quorum of the new configuration needs
// that voter's acknowledgement and its data_dir fails, for up to 10 s,
// all the while showing it a spare. Read from Health, a failing spare's
// promotion was seen only by a wait after the watch, or not at all when
// the spare wrote again first and the change then committed.
func latestView(nodes []*cluster.Node) map[string]cluster.ServerHealth {
	for _, n := range nodes {
		if !n.IsLeader() {
			continue
		}
		all := n.Health()
		st, err := n.Status()
		if len(all) == 0 || err != nil {
			continue
		}
		v := map[string]cluster.ServerHealth{}
		for _, s := range st.Servers {
			var h cluster.ServerHealth
			if i := slices.IndexFunc(all, func(o cluster.ServerHealth) bool { return o.ID == s.ID }); i >= 0 {
				h = all[i]
			}
			h.Server = s
			v[s.ID] = h
		}
		return v
	}
	return nil
}

// neverView fails the test if, for d, the leader's latest view
// (latestView) ever satisfies cond.
func neverView(t *testing.T, nodes []*cluster.Node, d time.Duration, what string, cond func(v map[string]cluster.ServerHealth) bool) {
	t.Helper()
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if v := latestView(nodes); v != nil && cond(v) {
			t.Fatalf("%s: %s", what, viewString(v))
		}
	}
}

// viewString lists the servers of v by ID; one not in the configuration
// is not listed.
func viewString(v map[string]cluster.ServerHealth) string {
	var b strings.Builder
	for _, id := range slices.Sorted(maps.Keys(v)) {
		h := v[id]
		fmt.Fprintf(&b, " %s: voter %v healthy %v sound %v;", id, h.Voter, h.Healthy, h.Sound())
	}
	return b.String()
}

// unsound reports whether the leader's view has id answering and saying
// its data_dir fails.
func unsound(v map[string]cluster.ServerHealth, id string) bool {
	h, ok := v[id]
	return ok && h.Healthy && !h.Sound()
}

// followerVoter returns a voter of servers that does not lead, other than
// those excluded.
func followerVoter(t *testing.T, servers []*diskServer, voters int, exclude ...*diskServer) *diskServer {
	t.Helper()
	leaderOf(t, nodesOf(servers)...)
	for _, s := range servers[:voters] {
		if !s.node.IsLeader() && !s.gone.Load() && !containsServer(exclude, s) {
			return s
		}
	}
	t.Fatal("no voter that does not lead")
	return nil
}

func containsServer(list []*diskServer, s *diskServer) bool {
	for _, o := range list {
		if o == s {
			return true
		}
	}
	return false
}

// TestSpareWithFailingDataDirNotPromoted: in a cluster of three voters
// and two spares, a voter gone longer than promote_after is replaced only
// by a spare that can write to its data_dir (ServerHealth.Sound). While
// both spares' log appends fail (ENOSPC), neither is promoted: the leader
// waits; once one can write again it is promoted and the other, still
// failing, is not; once that one can write too, it is promoted in turn
// when another voter goes. Before, the first spare in the configuration
// was promoted, failing or not: a voter that cannot store entries counts
// in the quorum without acknowledging any. The watches read the leader's
// latest configuration (latestView), where such a promotion shows as
// soon as the leader appends it; Health showed it only after the round
// that made it gave up waiting for it to commit, 10 s later, at the next
// wait.
func TestSpareWithFailingDataDirNotPromoted(t *testing.T) {
	servers := diskCluster(t, 5, 3, quickReconcile)
	nodes := nodesOf(servers)
	applyToLeader(t, nodes, []byte("a"))
	first, second := servers[3], servers[4]
	first.logs.set(syscall.ENOSPC)
	second.logs.set(syscall.ENOSPC)
	applyToLeader(t, nodes, []byte("b"))
	waitView(t, nodes, "the leader's view of both spares failing", func(v map[string]cluster.ServerHealth) bool {
		return unsound(v, "disk3") && unsound(v, "disk4")
	})

	gone := followerVoter(t, servers, 3)
	gone.crash(t)
	st, _ := gone.node.Status()
	waitView(t, nodes, "the leader to see a voter silent", func(v map[string]cluster.ServerHealth) bool {
		return !v[st.ID].Healthy
	})
	neverView(t, nodes, time.Second, "a spare whose data_dir fails was promoted", func(v map[string]cluster.ServerHealth) bool {
		return v["disk3"].Voter || v["disk4"].Voter
	})

	second.logs.set(0)
	waitView(t, nodes, "the spare that can write again to be promoted", func(v map[string]cluster.ServerHealth) bool {
		if v["disk3"].Voter {
			t.Fatalf("the spare whose data_dir fails was promoted: %s", viewString(v))
		}
		return v["disk4"].Voter
	})
	waitView(t, nodes, "the silent voter to be demoted", func(v map[string]cluster.ServerHealth) bool {
		return !v[st.ID].Voter
	})
	neverView(t, nodes, 500*time.Millisecond, "the spare whose data_dir fails was promoted", func(v map[string]cluster.ServerHealth) bool {
		return v["disk3"].Voter
	})

	first.logs.set(0)
	waitView(t, nodes, "the first spare to write again", func(v map[string]cluster.ServerHealth) bool {
		return v["disk3"].Sound()
	})
	other := followerVoter(t, servers, 3)
	other.crash(t)
	waitView(t, nodes, "the spare that can write again to replace the second voter gone", func(v map[string]cluster.ServerHealth) bool {
		return v["disk3"].Voter
	})
	applyToLeader(t, nodes, []byte("c"))
	waitValues(t, first.fsm, []string{"a", "b", "c"})
}

// TestVoterWithFailingDataDirKeptThenSwapped: a voter whose log appends
// fail still answers the leader, so it is not removed after
// remove_after, nor demoted while no spare can write; once a spare that
// can write has caught up and the voter has failed for promote_after,
// the spare is promoted and the failing voter demoted (it stays in the
// configuration, a spare, and writes again once its disk does). Before,
// the failing voter kept its vote with a sound spare beside it: the
// quorum counted a voter that acknowledged nothing. The watch reads the
// leader's latest configuration (latestView): with spares promoted
// whether sound or not, the failing spare's promotion could not commit,
// Health went on showing it a spare, and once it wrote again the change
// committed and the swap this test waits for followed: the test passed.
func TestVoterWithFailingDataDirKeptThenSwapped(t *testing.T) {
	servers := diskCluster(t, 4, 3, func(i int, c *cluster.Config) {
		quickReconcile(i, c)
		c.RemoveAfter = 500 * time.Millisecond
	})
	nodes := nodesOf(servers)
	applyToLeader(t, nodes, []byte("a"))
	failing, spare := followerVoter(t, servers, 3), servers[3]
	st, _ := failing.node.Status()
	id := st.ID
	failing.logs.set(syscall.ENOSPC)
	spare.logs.set(syscall.ENOSPC)
	applyToLeader(t, nodes, []byte("b"))
	waitView(t, nodes, "the leader's view of the voter and the spare failing", func(v map[string]cluster.ServerHealth) bool {
		return unsound(v, id) && unsound(v, "disk3")
	})
	neverView(t, nodes, time.Second, "the voter whose data_dir fails was removed or demoted, or the failing spare promoted", func(v map[string]cluster.ServerHealth) bool {
		h, ok := v[id]
		return !ok || !h.Voter || v["disk3"].Voter
	})

	spare.logs.set(0)
	waitView(t, nodes, "the spare that can write to take the failing voter's place", func(v map[string]cluster.ServerHealth) bool {
		h, ok := v[id]
		if !ok {
			t.Fatalf("the voter whose data_dir fails was removed: %s", viewString(v))
		}
		return v["disk3"].Voter && !h.Voter
	})
	applyToLeader(t, nodes, []byte("c"))
	failing.logs.set(0)
	waitView(t, nodes, "the demoted server to write again, a spare", func(v map[string]cluster.ServerHealth) bool {
		h, ok := v[id]
		return ok && h.Sound() && !h.Voter
	})
	waitValues(t, failing.fsm, []string{"a", "b", "c"})
}
