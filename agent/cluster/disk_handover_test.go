package cluster_test

import (
	"strings"
	"syscall"
	"testing"

	"github.com/foreshape/foreshape/agent/cluster"
)

// TestHandOverPrefersASoundVoter: a leader that stops cleanly hands
// leadership to a voter that can write to its data_dir rather than to
// one whose writes fail (here its snapshots: it holds every entry, so
// nothing else passes it over), though that one comes first by ID.
// Before, the first voter by ID that answered took over.
func TestHandOverPrefersASoundVoter(t *testing.T) {
	servers := diskCluster(t, 3, 3, quickReconcile)
	nodes := nodesOf(servers)
	applyToLeader(t, nodes, []byte("a"))
	var leader *diskServer
	var followers []*diskServer
	for _, s := range servers {
		if s.node.IsLeader() {
			leader = s
		} else {
			followers = append(followers, s)
		}
	}
	if leader == nil || len(followers) != 2 {
		t.Skip("leadership moved under load before the test began")
	}
	// followers are in ID order: the one that fails comes first.
	failing, sound := followers[0], followers[1]
	failingID, soundID := statusID(t, failing), statusID(t, sound)
	failing.snaps.fail.Store(syscall.ENOSPC)
	if err := failing.node.Snapshot(); err == nil {
		t.Fatal("a snapshot on a full disk succeeded")
	}
	waitView(t, nodes, "the leader's view of the follower failing", func(v map[string]cluster.ServerHealth) bool {
		return unsound(v, failingID) && v[soundID].Sound()
	})
	if !leader.node.IsLeader() {
		t.Skip("leadership moved under load before the leader was stopped")
	}
	mark := len(leader.log.String())
	if err := leader.node.Close(); err != nil {
		t.Fatal(err)
	}
	logged := leader.log.String()[mark:]
	if !strings.Contains(logged, "handed leadership over") || !strings.Contains(logged, "to="+soundID) || strings.Contains(logged, "to="+failingID) {
		t.Fatalf("the leader did not hand over to %s, which can write, alone:\n%s", soundID, logged)
	}
	rest := []*cluster.Node{failing.node, sound.node}
	if l := leaderOf(t, rest...); l != sound.node {
		t.Errorf("after the hand-over %s leads; want %s", statusID(t, &diskServer{node: l}), soundID)
	}
	failing.snaps.fail.Store(syscall.Errno(0))
	applyToLeader(t, rest, []byte("b"))
}

func statusID(t *testing.T, s *diskServer) string {
	t.Helper()
	st, err := s.node.Status()
	if err != nil {
		t.Fatal(err)
	}
	return st.ID
}
