package cluster_test

import (
	"encoding/json"
	"strings"
	"syscall"
	"testing"

	"github.com/foreshape/foreshape/agent/cluster"
	"github.com/foreshape/foreshape/agent/cluster/clustertest"
)

// healthOf returns the health that whichever of nodes leads now holds of
// the server id, and whether one leads with a view of it.
func healthOf(nodes []*cluster.Node, id string) (cluster.ServerHealth, []cluster.ServerHealth, bool) {
	for _, n := range nodes {
		if !n.IsLeader() {
			continue
		}
		all := n.Health()
		for _, h := range all {
			if h.ID == id {
				return h, all, true
			}
		}
	}
	return cluster.ServerHealth{}, nil, false
}

// TestLeaderSeesAFollowersFailingDataDir: in a cluster of three, a
// follower whose log appends fail (ENOSPC, as on a full disk) says so in
// its answers to the leader's health checks, so the leader's view names it
// and the reason (the file, the disk is full, it takes no new entries) and
// calls it not sound, while it still answers (Healthy: the reconcile loop
// does not count it gone) and the other servers stay sound; once it can
// write again and takes the entries it rejected, the leader's view clears.
// Before, only the follower itself said so: the leader's list-peers showed
// it healthy.
func TestLeaderSeesAFollowersFailingDataDir(t *testing.T) {
	servers := diskServers(t, 3)
	nodes := nodesOf(servers)
	applyToLeader(t, nodes, []byte("a"))
	var full *diskServer
	for _, s := range servers {
		if !s.node.IsLeader() {
			full = s
			break
		}
	}
	st, err := full.node.Status()
	if err != nil {
		t.Fatal(err)
	}
	id := st.ID

	full.logs.set(syscall.ENOSPC)
	applyToLeader(t, nodes, []byte("b"))
	var seen cluster.ServerHealth
	clustertest.Eventually(t, "the leader's view of the follower's failing data_dir", func() bool {
		h, all, ok := healthOf(nodes, id)
		if !ok || h.Info == nil || h.Info.DataDirError == "" {
			return false
		}
		seen = h
		for _, o := range all {
			if o.ID != id && !o.Sound() {
				// A check it missed under load; the next one counts.
				t.Logf("the leader holds %s, whose disk works, not sound: %+v", o.ID, o)
				return false
			}
		}
		return true
	})
	if why := seen.Info.DataDirError; !strings.Contains(why, "the Raft log store") || !strings.Contains(why, "the disk is full") ||
		!strings.Contains(why, "no space left on device") || !strings.Contains(why, "takes no new entries") {
		t.Errorf("the leader's view of %s's data_dir: %q; want the file, the cause and what it stops", id, why)
	}
	if !seen.Healthy || seen.Sound() {
		t.Errorf("the leader's view of %s: healthy %v, sound %v; want it answering and not sound", id, seen.Healthy, seen.Sound())
	}

	// The leader sends the rejected entries again, backing off up to
	// about 10 s: the follower takes them and the view clears.
	full.logs.set(0)
	clustertest.Eventually(t, "the leader's view of the follower writing again", func() bool {
		h, _, ok := healthOf(nodes, id)
		return ok && h.Info != nil && h.Info.DataDirError == "" && h.Sound()
	})
	waitValues(t, full.fsm, []string{"a", "b"})
}

// TestOlderServersAnswerIsSound: a server of a release from before
// ServerInfo.DataDirError answers without the field, which reads as a
// data_dir that works; and a server that can write leaves the field out,
// so a leader of such a release reads the answer it always did.
func TestOlderServersAnswerIsSound(t *testing.T) {
	var info cluster.ServerInfo
	older := `{"id":"id-2","name":"fs-2","raft_address":"10.0.0.12:7576","version":"0.4.0","voter":true,"state":"Follower","has_state":true,"state_protocol":1}`
	if err := json.Unmarshal([]byte(older), &info); err != nil {
		t.Fatal(err)
	}
	if h := (cluster.ServerHealth{Healthy: true, Info: &info}); info.DataDirError != "" || !h.Sound() {
		t.Errorf("an older server's answer: data_dir_error %q, sound %v; want none, sound", info.DataDirError, h.Sound())
	}
	if h := (cluster.ServerHealth{Healthy: false, Info: &info}); h.Sound() {
		t.Error("a server that did not answer the last check is sound")
	}
	b, err := json.Marshal(cluster.ServerInfo{ID: "id-2"})
	if err != nil || strings.Contains(string(b), "data_dir_error") {
		t.Errorf("the answer of a server that can write: %s (%v); want no data_dir_error", b, err)
	}
	info.DataDirError = "this server cannot write /data/raft.db in its data_dir since …"
	if h := (cluster.ServerHealth{Healthy: true, Info: &info}); h.Sound() {
		t.Error("a server that says its data_dir fails is sound")
	}
}
