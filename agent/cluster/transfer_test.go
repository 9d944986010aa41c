package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/cluster"
	"github.com/foreshape/foreshape/agent/cluster/clustertest"
	"github.com/foreshape/foreshape/internal/syncbuf"
	"github.com/hashicorp/go-hclog"
)

// logBuffer keeps what a logger wrote, for tests that check what a server
// said.
type logBuffer = syncbuf.Buffer

// teeLogger logs to the test and to buf.
func teeLogger(t *testing.T, name string, buf *logBuffer) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name: name, Level: hclog.Debug,
		Output: io.MultiWriter(buf, testLogWriter{clustertest.Logger(t)}),
	})
}

// testLogWriter passes lines on to a test logger's writer.
type testLogWriter struct{ l hclog.Logger }

func (w testLogWriter) Write(p []byte) (int, error) {
	return w.l.StandardWriter(&hclog.StandardLoggerOptions{ForceLevel: hclog.Info}).Write(p)
}

// slowToElect makes a server that would wait ten minutes without hearing
// from a leader before it stood for election: only a leadership transfer
// makes it lead within a test's wait.
func slowToElect(c *cluster.Config) {
	c.HeartbeatTimeout, c.ElectionTimeout, c.LeaderLeaseTimeout = 10*time.Minute, 10*time.Minute, 10*time.Minute
}

// threeWithLeader starts three TCP servers in root: the first bootstraps
// alone (with lead's timeouts, when given) and the other two, which would
// never stand for election within a test's wait, join it and are promoted
// to voters. It returns once the first leads three voters and has applied n
// values.
func threeWithLeader(t *testing.T, root string, lead func(*cluster.Config), logs []*logBuffer, n int) ([]*cluster.Node, []*listFSM, []string) {
	t.Helper()
	reg := &registry{}
	var nodes []*cluster.Node
	var fsms []*listFSM
	for i := range 3 {
		tweak := func(c *cluster.Config) {
			c.BootstrapExpect, c.Voters = 0, 3
			if i > 0 {
				slowToElect(c)
				return
			}
			c.Bootstrap, c.Discover = true, nil
			if lead != nil {
				lead(c)
			}
		}
		dir := filepath.Join(root, fmt.Sprintf("s%d", i))
		nd, f := tcpServerLog(t, dir, reg, tweak, teeLogger(t, fmt.Sprintf("s%d", i), logs[i]))
		nodes, fsms = append(nodes, nd), append(fsms, f)
		if i == 0 {
			waitLeading(t, nd)
		}
	}
	waitLeading(t, nodes[0])
	clustertest.Eventually(t, "three voters", func() bool {
		s := suffrage(t, nodes[0])
		return len(s) == 3 && s[nodeID(t, nodes[1])] == "voter" && s[nodeID(t, nodes[2])] == "voter"
	})
	var want []string
	for i := range n {
		v := fmt.Sprintf("v%d", i)
		apply(t, nodes[0], []byte(v))
		want = append(want, v)
	}
	return nodes, fsms, want
}

// TestCleanShutdownHandsLeadershipOver: a leader that stops cleanly hands
// leadership to another voter first. The other two servers here would not
// stand for election for ten minutes, so a new leader within the test's
// wait can only come from the hand-over; it has every entry the old leader
// committed, and takes new ones.
func TestCleanShutdownHandsLeadershipOver(t *testing.T) {
	t.Parallel()
	logs := []*logBuffer{{}, {}, {}}
	nodes, fsms, want := threeWithLeader(t, t.TempDir(), nil, logs, 5)
	if err := nodes[0].Close(); err != nil {
		t.Fatalf("close the leader: %v", err)
	}
	l := leaderOf(t, nodes[1], nodes[2])
	other := nodes[1]
	if l == nodes[1] {
		other = nodes[2]
	}
	clustertest.Eventually(t, "the other follower to know the new leader", func() bool {
		_, id := other.LeaderAddress()
		return id == nodeID(t, l)
	})
	apply(t, l, []byte("after"))
	want = append(want, "after")
	for i, f := range fsms[1:] {
		clustertest.Eventually(t, fmt.Sprintf("s%d to apply every entry once", i+1), func() bool {
			return slices.Equal(f.Values(), want)
		})
	}
	if s := logs[0].String(); !strings.Contains(s, "handed leadership over") {
		t.Errorf("the old leader's log does not say it handed leadership over:\n%s", s)
	}
}

// TestCleanShutdownWithNoOneToTakeOver: a leader whose other voters are
// gone (no quorum) cannot hand leadership over; it says so and still stops.
func TestCleanShutdownWithNoOneToTakeOver(t *testing.T) {
	t.Parallel()
	logs := []*logBuffer{{}, {}, {}}
	// The leader keeps its lease for 3 s after losing its followers: long
	// enough to be asked to stop while it still leads.
	lease := func(c *cluster.Config) {
		c.HeartbeatTimeout, c.ElectionTimeout, c.LeaderLeaseTimeout = 3*time.Second, 3*time.Second, 3*time.Second
	}
	nodes, _, _ := threeWithLeader(t, t.TempDir(), lease, logs, 1)
	nodes[1].Close()
	nodes[2].Close()
	if !nodes[0].IsLeader() {
		t.Skip("the leader stepped down before it was stopped (a loaded machine): nothing to hand over")
	}
	closed := make(chan error, 1)
	go func() { closed <- nodes[0].Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("close: %v", err)
		}
	case <-time.After(clustertest.Timeout):
		t.Fatal("a leader with no one to hand over to did not stop")
	}
	if s := logs[0].String(); !strings.Contains(s, "stopping without handing leadership over") {
		t.Errorf("the leader's log does not say why it stopped without handing over:\n%s", s)
	}
}

// TestReady: a server is ready once it knows a leader, is a member, and
// has applied what the leader had committed; until then Ready says why.
// A follower whose state machine is held up at one entry stays not ready
// ("catching up") while the leader commits on, and is ready once it
// applies them.
func TestReady(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	alone, _ := tcpServer(t, t.TempDir(), &registry{}, func(c *cluster.Config) {
		c.Discover, c.RetryJoin = nil, []string{closedAddr(t)}
	})
	clustertest.Eventually(t, "a join error", func() bool { return alone.JoinError() != nil })
	if err := alone.Ready(ctx); !errors.Is(err, cluster.ErrNotReady) || !strings.Contains(err.Error(), "no leader known") {
		t.Errorf("a server that found no cluster: Ready() = %v; want not ready, no leader known", err)
	}

	logs := []*logBuffer{{}, {}, {}}
	nodes, fsms, _ := threeWithLeader(t, t.TempDir(), nil, logs, 3)
	if err := nodes[0].Ready(ctx); err != nil {
		t.Errorf("the leader: Ready() = %v", err)
	}
	clustertest.Eventually(t, "the followers ready", func() bool {
		return nodes[1].Ready(ctx) == nil && nodes[2].Ready(ctx) == nil
	})

	block := make(chan struct{})
	fsms[1].block = block
	apply(t, nodes[0], []byte("block"))
	for i := range 3 {
		apply(t, nodes[0], []byte(fmt.Sprintf("w%d", i)))
	}
	start := time.Now()
	err := nodes[1].Ready(ctx)
	if !errors.Is(err, cluster.ErrNotReady) || !strings.Contains(err.Error(), "catching up with the leader") {
		t.Errorf("a follower held up behind the leader: Ready() = %v; want not ready, catching up", err)
	}
	// It says so within ReadyWait (a readiness check gives up later; the
	// bound here is loose for a loaded machine), not after the caller's
	// context, which has no deadline.
	if took := time.Since(start); took > 3*cluster.ReadyWait {
		t.Errorf("Ready took %v to say it is catching up; ReadyWait is %v", took, cluster.ReadyWait)
	}
	t.Logf("held up: %v", err)
	close(block)
	clustertest.Eventually(t, "the held-up follower ready", func() bool { return nodes[1].Ready(ctx) == nil })
}
