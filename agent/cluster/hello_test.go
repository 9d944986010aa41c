package cluster_test

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/cluster"
	"github.com/foreshape/foreshape/agent/cluster/clustertest"
	"github.com/foreshape/foreshape/internal/testpki"
)

// TestTakenAddressRefusesTheOldCluster: a server stopped without being
// removed stays in its cluster's configuration, and its leader keeps
// dialing its address. When a server of another cluster takes that
// address, it refuses the leader's Raft connections (their hello names the
// server that had the address): its state stays its own cluster's, and
// both sides' logs say why, at WARN and ERROR (though the stopped server
// had told its peers it was leaving, which quiets their failures to reach
// it). Without the hello, the old cluster's leader replaced the new
// server's log with its own (seen when one test's server took the port
// another test's had just freed).
func TestTakenAddressRefusesTheOldCluster(t *testing.T) {
	t.Parallel()
	for _, closer := range []bool{false, true} {
		t.Run(map[bool]string{false: "at once", true: "after a closer"}[closer], func(t *testing.T) {
			t.Parallel()
			takenAddress(t, closer)
		})
	}
}

// takenAddress is TestTakenAddressRefusesTheOldCluster; with closer, the
// address first closes every connection at once (as a proxy whose backend
// is down does, or a server stopping mid-hello): the old leader must not
// take that for a server of an earlier release and drop the hello (the
// review of the hello found that it did, and the new server then took the
// old cluster's log).
func takenAddress(t *testing.T, closer bool) {
	reg := &registry{}
	root := t.TempDir()
	var nodes []*cluster.Node
	logs := make([]*logBuffer, 3)
	for i := range 3 {
		logs[i] = &logBuffer{}
		name := fmt.Sprintf("a%d", i)
		n, _ := tcpServerLog(t, filepath.Join(root, name), reg, nil, teeLogger(t, name, logs[i]))
		nodes = append(nodes, n)
	}
	l := applyToLeader(t, nodes, []byte("a1"))
	li := slices.Index(nodes, l)
	gone := (li + 1) % 3
	st, err := nodes[gone].Status()
	if err != nil {
		t.Fatal(err)
	}
	if err := cluster.Crash(nodes[gone]); err != nil {
		t.Fatal(err)
	}
	if err := nodes[gone].Close(); err != nil {
		t.Fatal(err)
	}
	live := slices.Delete(slices.Clone(nodes), gone, gone+1)
	if closer {
		ln, err := net.Listen("tcp", st.Address)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		clustertest.Eventually(t, "the old leader meeting a hello closed unanswered", func() bool {
			return strings.Contains(logs[li].String(), "the server closed the connection at the hello without answering, and no foreshape server answered there")
		})
		ln.Close()
	}

	// A one-server cluster on the killed server's address.
	bLogs := &logBuffer{}
	b, bFSM := tcpServerLog(t, filepath.Join(root, "b"), &registry{}, func(c *cluster.Config) {
		c.BindAddr, c.BootstrapExpect = st.Address, 1
	}, teeLogger(t, "b", bLogs))
	waitLeading(t, b)
	apply(t, b, []byte("b1"))
	for i, l := range logs {
		if strings.Contains(l.String(), "dialing it without the hello") {
			t.Errorf("a%d dropped the hello:\n%s", i, l.String())
		}
	}
	clustertest.Eventually(t, "the new server refusing the old cluster's Raft connection", func() bool {
		return strings.Contains(bLogs.String(), "refused a Raft connection: it is meant for another cluster or server")
	})
	applyToLeader(t, live, []byte("a2"))
	clustertest.Eventually(t, "the old cluster's leader logging the refusal at ERROR", func() bool {
		for _, i := range []int{li, 3 - li - gone} {
			for line := range strings.Lines(logs[i].String()) {
				if strings.Contains(line, "[ERROR]") && strings.Contains(line, "refused the Raft connection: server "+b.Info().ID+" answers at this address, not server "+st.ID) {
					return true
				}
			}
		}
		return false
	})
	// The old cluster's leader retries at once, then backs off; the
	// refusal holds.
	time.Sleep(time.Second)
	if got := bFSM.Values(); !slices.Equal(got, []string{"b1"}) {
		t.Errorf("the new server's state %v; want its own [b1]", got)
	}
	bst, err := b.Status()
	if err != nil || len(bst.Servers) != 1 || bst.Servers[0].ID != b.Info().ID || !b.IsLeader() {
		t.Errorf("the new server's status %+v (%v), leading %v; want itself alone, leading", bst, err, b.IsLeader())
	}
	ctx, cancel := context.WithTimeout(context.Background(), clustertest.Timeout)
	defer cancel()
	if _, err := b.Apply(ctx, []byte("b2")); err != nil {
		t.Errorf("the new server's own cluster: apply: %v", err)
	}
}

// TestHelloRollingUpgrade: servers of this release and one of a release
// before the Raft hello (which dials without one and closes a hello
// unanswered) replicate to each other both ways, over TLS: the new ones
// dial it without the hello and say so.
func TestHelloRollingUpgrade(t *testing.T) {
	t.Parallel()
	ca := testpki.NewCA(t, "foreshape")
	reg := &registry{}
	root := t.TempDir()
	var nodes []*cluster.Node
	var fsms []*listFSM
	logs := make([]*logBuffer, 3)
	for i := range 3 {
		logs[i] = &logBuffer{}
		name := fmt.Sprintf("s%d", i)
		n, f := tcpServerLog(t, filepath.Join(root, name), reg, func(c *cluster.Config) {
			c.TLS = &cluster.TLS{Certificate: ca.Issue(t, name).TLSCertificate(t), CAs: ca.Pool()}
			if i == 2 {
				cluster.OlderTransport(c)
			}
		}, teeLogger(t, name, logs[i]))
		nodes, fsms = append(nodes, n), append(fsms, f)
	}
	older := nodes[2]
	has := func(f *listFSM, v string) bool { return slices.Contains(f.Values(), v) }
	if leaderOf(t, nodes...) == older {
		if err := cluster.TransferLeadership(older, "", ""); err != nil {
			t.Fatalf("hand leadership to a current server: %v", err)
		}
	}
	l := applyToLeader(t, nodes[:2], []byte("from a current leader"))
	clustertest.Eventually(t, "the older server applying the current leader's entry", func() bool { return has(fsms[2], "from a current leader") })
	if li := slices.Index(nodes, l); !strings.Contains(logs[li].String(), "dialing it without the hello for a while") {
		t.Errorf("the current leader did not say it dials the older server without the hello:\n%s", logs[li].String())
	}

	// The older server leads; the current ones take its connections.
	clustertest.Eventually(t, "the older server leading", func() bool {
		if older.IsLeader() {
			return true
		}
		if cur := leaderOf(t, nodes...); cur != older {
			_ = cluster.TransferLeadership(cur, older.Info().ID, older.Info().RaftAddress)
		}
		return older.IsLeader()
	})
	waitLeading(t, older)
	apply(t, older, []byte("from the older leader"))
	clustertest.Eventually(t, "the current servers applying the older leader's entry", func() bool {
		return has(fsms[0], "from the older leader") && has(fsms[1], "from the older leader")
	})
}

// TestReplacedServerAtTheSameAddressJoins: a server that comes back at its
// address with a new identity (its data_dir lost) is refused the leader's
// Raft connections meant for the server it replaces, joins as itself, and
// the leader then replicates to it: the join removes the old server.
func TestReplacedServerAtTheSameAddressJoins(t *testing.T) {
	t.Parallel()
	reg := &registry{}
	root := t.TempDir()
	var nodes []*cluster.Node
	for i := range 3 {
		n, _ := tcpServer(t, filepath.Join(root, fmt.Sprintf("s%d", i)), reg, nil)
		nodes = append(nodes, n)
	}
	l := applyToLeader(t, nodes, []byte("before"))
	gone := (slices.Index(nodes, l) + 1) % 3
	old := nodes[gone].Info()
	if err := cluster.Crash(nodes[gone]); err != nil {
		t.Fatal(err)
	}
	if err := nodes[gone].Close(); err != nil {
		t.Fatal(err)
	}
	n, fsm := tcpServer(t, filepath.Join(root, "new"), reg, func(c *cluster.Config) { c.BindAddr = old.RaftAddress })
	if n.Info().ID == old.ID {
		t.Fatal("the new server has the old one's ID")
	}
	nodes[gone] = n
	clustertest.Eventually(t, "the new server in the configuration, the old one out", func() bool {
		s := suffrage(t, leaderOf(t, nodes...))
		_, hasNew := s[n.Info().ID]
		_, hasOld := s[old.ID]
		return hasNew && !hasOld && len(s) == 3
	})
	applyToLeader(t, nodes, []byte("after"))
	clustertest.Eventually(t, "the new server applying the entries before and after", func() bool {
		return slices.Equal(fsm.Values(), []string{"before", "after"})
	})
}
