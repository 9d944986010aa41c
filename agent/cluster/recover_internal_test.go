package cluster

import (
	"testing"

	"github.com/hashicorp/raft"
)

// TestRecoveredClusterIDIsTheFilesServers: every server given the same
// servers takes the same recovered cluster ID, in whatever order its file
// lists them; other servers, or another suffrage, give another.
func TestRecoveredClusterIDIsTheFilesServers(t *testing.T) {
	a := raft.Server{Suffrage: raft.Voter, ID: "a", Address: "10.0.0.11:7576"}
	b := raft.Server{Suffrage: raft.Voter, ID: "b", Address: "10.0.0.12:7576"}
	id := recoveredClusterID(raft.Configuration{Servers: []raft.Server{a, b}})
	if got := recoveredClusterID(raft.Configuration{Servers: []raft.Server{b, a}}); got != id {
		t.Errorf("ids %s and %s for the same servers in two orders; want one", id, got)
	}
	if !nodeIDRE.MatchString(id) {
		t.Errorf("id %q is not shaped as a cluster id", id)
	}
	b.Suffrage = raft.Nonvoter
	for _, other := range []raft.Configuration{{Servers: []raft.Server{a}}, {Servers: []raft.Server{a, b}}} {
		if got := recoveredClusterID(other); got == id {
			t.Errorf("configuration %v has the id %s too; want another", other, id)
		}
	}
}
