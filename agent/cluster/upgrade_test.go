package cluster_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/cluster"
	"github.com/foreshape/foreshape/agent/cluster/clustertest"
	"github.com/foreshape/foreshape/agent/state"
	"github.com/hashicorp/raft"
)

// Mixed-version clusters: an "older" server is the real state FSM built by
// state.NewOlderFSM, which decodes the command types and snapshot sections
// it is told as unknown, exactly as a build without them does.

func submitCmd(id string) []byte {
	return state.Encode(state.SubmitRequest{Request: state.MigrationRequest{
		Resource: state.Resource{Kind: state.ResourceAllocation, ID: id},
		Source:   "dc1", Target: "dc2", Origin: "operator", Priority: 50, Created: time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC),
	}})
}

// mixedCluster starts two current servers and adds an older one (older) as
// a third voter, so that it starts as a follower; it returns the cluster,
// the current servers' FSMs and the older server's index. tweak, when not
// nil, adjusts each server's configuration (isOlder for the added one).
func mixedCluster(t *testing.T, older *state.FSM, tweak func(isOlder bool, c *cluster.Config)) (*clustertest.Cluster, []*state.FSM, int) {
	t.Helper()
	fsms := make([]*state.FSM, 2)
	conf := func(isOlder bool, cfg *cluster.Config) {
		cfg.Voters = 3
		if tweak != nil {
			tweak(isOlder, cfg)
		}
	}
	c := clustertest.New(t, 2, func(i int) raft.FSM {
		f, err := state.NewFSM(state.Config{})
		if err != nil {
			t.Fatal(err)
		}
		fsms[i] = f
		return f
	}, func(_ int, cfg *cluster.Config) { conf(false, cfg) })
	o := c.AddNode(older, func(cfg *cluster.Config) { conf(true, cfg) })
	// The leader of the moment adds it: under load leadership can move
	// during the change. A try on a new leader writes the configuration
	// entry again (with the server already in it, if the last try's entry
	// committed), so added is the entry of the try that succeeded.
	var added uint64
	onLeader(t, c, fmt.Sprintf("add node%d", o), func(ctx context.Context, n *cluster.Node) error {
		added = n.LastIndex() + 1 // the configuration entry that adds it
		return n.AddVoter(ctx, fmt.Sprintf("node%d", o), c.Address(o))
	})
	c.WaitApplied(added)
	// Raft counts an entry applied once it hands it to the state machine,
	// which applies it on its own goroutine: wait for the machines too, so
	// that what a test reads of them first is the joined cluster's state.
	// They see the configuration entry, not the empty one the leader
	// writes after it (AddVoter), so they are waited for up to the first.
	c.Eventually(fmt.Sprintf("every state machine applied index %d", added), func() bool {
		return older.AppliedIndex() >= added && fsms[0].AppliedIndex() >= added && fsms[1].AppliedIndex() >= added
	})
	return c, fsms, o
}

// leaderTerms counts the terms node i publishes (RunLeaderLoop: where
// leader work starts).
func leaderTerms(t *testing.T, n *cluster.Node) *atomic.Int64 {
	var terms atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go n.RunLeaderLoop(ctx, func(lctx context.Context) {
		terms.Add(1)
		<-lctx.Done()
	})
	return &terms
}

// checkHalted checks that the older server says, everywhere an operator
// looks, that it stopped and must be upgraded.
func checkHalted(t *testing.T, c *clustertest.Cluster, o int, what string) {
	t.Helper()
	n := c.Nodes[o]
	st, err := n.Status()
	if err != nil || !strings.Contains(st.Halted, what) || !strings.Contains(st.Halted, "older than the cluster's log") {
		t.Errorf("older server's status: halted %q (%v); want it naming %s and that it is older than the cluster's log", st.Halted, err, what)
	}
	if err := n.Ready(context.Background()); !errors.Is(err, cluster.ErrNotReady) || !strings.Contains(err.Error(), "upgrade it") {
		t.Errorf("older server's Ready: %v; want not ready, saying to upgrade it", err)
	}
	if info := n.Info(); !strings.Contains(info.Halted, what) {
		t.Errorf("older server's info: halted %q; want it naming %s", info.Halted, what)
	}
	// Whoever leads now: a leader read once can step down under load, and
	// its health view then stops changing.
	c.Eventually("the leader's health check to carry the halt", func() bool {
		for _, h := range c.Nodes[c.Leader(o)].Health() {
			if h.ID == fmt.Sprintf("node%d", o) && h.Info != nil && strings.Contains(h.Info.Halted, what) {
				return true
			}
		}
		return false
	})
}

// neverLeads moves leadership around the current servers (partitioning
// the leader, then healing it) until raft has elected the older server at
// least once, or rounds are spent, and checks that it never published a
// term: it hands leadership over instead, and a current server leads.
func neverLeads(t *testing.T, c *clustertest.Cluster, o int, terms *atomic.Int64, rounds int) {
	t.Helper()
	var electedOlder atomic.Bool
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			if c.Nodes[o].IsLeader() {
				electedOlder.Store(true)
			}
		}
	}()
	// leads waits until a server other than skip publishes a term and
	// fails at once if the older one does.
	leads := func(skip int) int {
		found := -1
		c.Eventually("a leader", func() bool {
			for i, n := range c.Nodes {
				if _, ok := n.LeaderContext(); ok && i != skip {
					found = i
					return true
				}
			}
			return false
		})
		if found == o || terms.Load() != 0 {
			t.Fatalf("the older server published a leadership term (%d)", terms.Load())
		}
		return found
	}
	for r := 0; r < rounds && !electedOlder.Load(); r++ {
		l := leads(-1)
		c.Partition(l)
		leads(l)
		c.Heal(l)
	}
	leads(-1)
	close(stop)
	<-done
	t.Logf("raft elected the older server at least once: %v; it never led", electedOlder.Load())
}

// TestOlderServerStopsAtAnUnknownCommand: an older server that meets a
// command type its build does not know stops applying the log there and
// says so (status, Ready, its info and so the leader's health view), and
// never leads on its state. Before, it applied the entries after it as if
// it were not there: its queue silently lacked the request the cluster's
// held, and in 5 of 8 runs it won the next election and published its
// term on that state (notes/chaos.md).
func TestOlderServerStopsAtAnUnknownCommand(t *testing.T) {
	t.Parallel()
	older, _ := state.NewOlderFSM(state.Config{}, state.Older{Types: []state.CommandType{state.TypeSubmitRequest}})
	c, fsms, o := mixedCluster(t, older, nil)
	terms := leaderTerms(t, c.Nodes[o])
	before := older.AppliedIndex()
	res := c.Apply(submitCmd("a1"), o)
	r, ok := res.(state.Result)
	if !ok || r.ID != "mr-1" {
		t.Fatalf("submit: %#v; want mr-1", res)
	}
	c.Eventually("the older server to halt", func() bool { return older.Halted() != nil })
	var h *state.HaltError
	if !errors.As(older.Halted(), &h) || h.Index != r.Index || h.Applied != before || !strings.Contains(h.What, "submit_request") {
		t.Errorf("halt %+v; want at index %d (submit_request), state as of %d", h, r.Index, before)
	}
	// Entries after it are not applied: the state stays the cluster's as
	// of the last entry it could apply.
	c.Apply(state.Encode(state.SetQueuePaused{Paused: true, By: "operator", At: time.Date(2026, 12, 2, 0, 1, 0, 0, time.UTC)}), o)
	l := c.Leader(o)
	c.WaitApplied(fsms[l].AppliedIndex())
	if older.AppliedIndex() != before || older.Act().Paused || len(fsms[l].Act().Requests) != 1 || !fsms[l].Act().Paused {
		t.Errorf("older applied %d (paused %v); want %d, not paused, while the leader has 1 request and is paused", older.AppliedIndex(), older.Act().Paused, before)
	}
	checkHalted(t, c, o, "submit_request")
	neverLeads(t, c, o, terms, 8)
}

// TestOlderServerRefusesANewerSnapshot: an older server cut off while the
// leader compacts its log can only catch up from a snapshot with a section
// its build does not know ("queue"): it refuses it as written by a newer
// server (not as damaged), keeps its state, says so, and never leads.
// Raft's leader retries the install with its backoff (up to about 41 s
// apart) while the server stays in the configuration.
func TestOlderServerRefusesANewerSnapshot(t *testing.T) {
	t.Parallel()
	older, _ := state.NewOlderFSM(state.Config{}, state.Older{Sections: []string{"queue"}})
	compact := func(_ bool, cfg *cluster.Config) { cfg.TrailingLogs = 2; cfg.SnapshotThreshold = 1 << 20 }
	c, _, o := mixedCluster(t, older, compact)
	terms := leaderTerms(t, c.Nodes[o])
	before := older.AppliedIndex()
	c.Partition(o)
	for k := range 3 {
		c.Apply(submitCmd(fmt.Sprintf("a%d", k)), o)
	}
	l := c.Leader(o)
	if err := c.Nodes[l].Snapshot(); err != nil {
		t.Fatal(err)
	}
	c.Apply(submitCmd("b"), o)
	c.Heal(o)
	c.Eventually("the older server to refuse the snapshot", func() bool { return older.Halted() != nil })
	if err := older.Halted(); !errors.Is(err, state.ErrUnknownSection) || errors.Is(err, state.ErrCorruptSnapshot) {
		t.Errorf("halt %v; want ErrUnknownSection, not a corrupt snapshot", err)
	}
	if older.AppliedIndex() != before || len(older.Act().Requests) != 0 {
		t.Errorf("older state: applied %d, %d requests; want its own (%d, none)", older.AppliedIndex(), len(older.Act().Requests), before)
	}
	checkHalted(t, c, o, `section "queue"`)
	neverLeads(t, c, o, terms, 8)
}

// TestNewProtocolWaitsForEveryServer: a command of a later state protocol
// (here SetQueuePaused, declared protocol 2 by the test's
// CommandProtocol) is refused while a server of the configuration
// advertises protocol 1, with an error naming it; commands of protocol 1
// go on. Once that server is replaced by one that speaks 2, the leader's
// next health check lets it through.
func TestNewProtocolWaitsForEveryServer(t *testing.T) {
	t.Parallel()
	pause := state.Encode(state.SetQueuePaused{Paused: true, By: "operator", At: time.Date(2026, 12, 2, 0, 1, 0, 0, time.UTC)})
	protocolOf := func(cmd []byte) (int, error) {
		p, err := state.CommandProtocol(cmd)
		if err == nil && state.CommandType(cmd[1]) == state.TypeSetQueuePaused {
			p = 2
		}
		return p, err
	}
	speaks := func(p int) func(cfg *cluster.Config) {
		return func(cfg *cluster.Config) { cfg.Voters, cfg.StateProtocol, cfg.CommandProtocol = 3, p, protocolOf }
	}
	older, _ := state.NewFSM(state.Config{})
	c, fsms, o1 := mixedCluster(t, older, func(isOlder bool, cfg *cluster.Config) {
		if isOlder {
			speaks(1)(cfg)
		} else {
			speaks(2)(cfg)
		}
	})
	// Whichever server leads refuses it once it has heard from every
	// server (until then it names one as not having answered), the
	// protocol 1 server too (it names itself). Leadership can move under
	// load: a node that no longer leads refused the command before it
	// reached the log, and the leader of the moment is asked instead. Any
	// other answer is the command's (nil: it went to the log).
	var refused error
	onLeader(t, c, "the protocol 2 command with a protocol 1 server", func(ctx context.Context, n *cluster.Node) error {
		for {
			if _, ok := n.LeaderContext(); !ok {
				return cluster.ErrNotLeader
			}
			heard := 0
			for _, h := range n.Health() {
				if h.Info != nil {
					heard++
				}
			}
			if heard == 3 {
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(10 * time.Millisecond):
			}
		}
		actx, acancel := context.WithTimeout(context.Background(), clustertest.Timeout)
		defer acancel()
		_, err := n.Apply(actx, pause)
		if errors.Is(err, cluster.ErrNotLeader) {
			return err
		}
		refused = err
		return nil
	})
	if !errors.Is(refused, cluster.ErrProtocol) || !strings.Contains(refused.Error(), fmt.Sprintf("server node%d at node%d speaks protocol 1", o1, o1)) {
		t.Fatalf("protocol 2 command with a protocol 1 server: %v; want ErrProtocol naming node%d", refused, o1)
	}
	if fsms[0].Act().Paused || fsms[1].Act().Paused || older.Act().Paused {
		t.Error("the refused command was applied")
	}
	c.Apply(submitCmd("a1")) // a protocol 1 command goes on
	// The server is replaced by an upgraded one. Each step asks the leader
	// of the moment: under load leadership may move between them (the
	// test kept applying on a leader that had stepped down). If the
	// protocol 1 server leads, it removes itself and steps down.
	onLeader(t, c, "remove the protocol 1 server", func(ctx context.Context, n *cluster.Node) error {
		return n.RemoveServer(ctx, fmt.Sprintf("node%d", o1))
	})
	c.Stop(o1)
	newer, _ := state.NewFSM(state.Config{})
	o2 := c.AddNode(newer, speaks(2))
	onLeader(t, c, "add the protocol 2 server", func(ctx context.Context, n *cluster.Node) error {
		return n.AddVoter(ctx, fmt.Sprintf("node%d", o2), c.Address(o2))
	}, o1)
	c.Eventually("the protocol 2 command once every server speaks it", func() bool {
		actx, acancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer acancel()
		_, err := c.Nodes[c.Leader(o1)].Apply(actx, pause)
		return err == nil
	})
	c.Eventually("every server to apply it", func() bool { return newer.Act().Paused && fsms[0].Act().Paused && fsms[1].Act().Paused })
}

// TestRollingUpgrade is the rolling upgrade of docs/clustering.md on
// three servers over loopback TCP with their state in data dirs: each
// server in turn (a follower, then the leader, then the last) is stopped
// cleanly and started again on its data dir and address as the next
// release, which speaks state protocol 2 (here: SetQueuePaused is a
// protocol 2 command), and the next step waits until it is ready (Ready,
// what /v1/ready answers), as the servers job's update block does. Writes
// go on between steps. Until the last server runs the new release the
// leader refuses the protocol 2 command, naming the servers still on
// protocol 1; after it, the command applies everywhere and every server
// holds the same state. No server halts.
func TestRollingUpgrade(t *testing.T) {
	t.Parallel()
	reg := &registry{}
	root := t.TempDir()
	// The old release has no SetQueuePaused command: its leader cannot
	// write one (the command protocol answers it as unknown).
	protocolOf := func(p int) func([]byte) (int, error) {
		return func(cmd []byte) (int, error) {
			q, err := state.CommandProtocol(cmd)
			if err == nil && state.CommandType(cmd[1]) == state.TypeSetQueuePaused {
				if p < 2 {
					return 0, fmt.Errorf("%w %d", state.ErrUnknownCommand, cmd[1])
				}
				q = 2
			}
			return q, err
		}
	}
	nodes := make([]*cluster.Node, 3)
	fsms := make([]*state.FSM, 3)
	addrs := make([]string, 3)
	start := func(i, protocol int) {
		dir := filepath.Join(root, fmt.Sprintf("s%d", i))
		id, err := cluster.LoadOrCreateNodeID(dir)
		if err != nil {
			t.Fatal(err)
		}
		fsm, _ := state.NewFSM(state.Config{})
		bind := addrs[i]
		if bind == "" {
			bind = "127.0.0.1:0"
		}
		cfg := fastTCP(id, fmt.Sprintf("s%d", i), bind, dir, reg)
		cfg.BootstrapExpect, cfg.StateProtocol, cfg.CommandProtocol = 3, protocol, protocolOf(protocol)
		n, err := cluster.New(cfg, fsm, clustertest.Logger(t).Named(fmt.Sprintf("s%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		st, _ := n.Status()
		if addrs[i] == "" {
			addrs[i] = st.Address
			reg.add(st.Address)
		}
		nodes[i], fsms[i] = n, fsm
	}
	for i := range 3 {
		start(i, 1)
	}
	leader := func() int { return leaderIndex(t, nodes) }
	apply := func(cmd []byte) error {
		var err error
		clustertest.Eventually(t, "an apply through the leader", func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err = nodes[leader()].Apply(ctx, cmd)
			return !errors.Is(err, cluster.ErrNotLeader) && !errors.Is(err, cluster.ErrLeadershipLost)
		})
		return err
	}
	pause := state.Encode(state.SetQueuePaused{Paused: true, By: "operator", At: time.Date(2026, 12, 2, 0, 1, 0, 0, time.UTC)})
	ready := func(i int) time.Duration {
		began := time.Now()
		clustertest.Eventually(t, fmt.Sprintf("s%d ready", i), func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			return nodes[i].Ready(ctx) == nil
		})
		return time.Since(began)
	}
	for i := range 3 {
		ready(i)
	}
	// A follower, the leader, the other follower. The leader hands over
	// to the follower of lower ID when both are healthy and hold every
	// entry (Close), so the first one upgraded is the follower of lower
	// ID: it then leads, as a rule, while the last server still runs the
	// old release.
	l := leader()
	a, b := (l+1)%3, (l+2)%3
	if ida, idb := nodes[a].Info().ID, nodes[b].Info().ID; idb < ida {
		a, b = b, a
	}
	order := []int{a, l, b}
	submitted, refused := 0, 0
	for step, i := range order {
		for range 5 {
			if err := apply(submitCmd(fmt.Sprintf("a%d", submitted))); err != nil {
				t.Fatalf("submit before step %d: %v", step, err)
			}
			submitted++
		}
		wasLeader := nodes[i].IsLeader()
		if wasLeader && step > 0 {
			// The leader's health view carries the upgraded server.
			up := nodes[order[0]].Info().ID
			clustertest.Eventually(t, "the leader to hear from the upgraded server, which holds every entry", func() bool {
				if st, _ := nodes[i].Status(); nodes[order[0]].Info().LastIndex < st.LastIndex {
					return false
				}
				for _, h := range nodes[i].Health() {
					if h.ID == up && h.Healthy && h.Info != nil && h.Info.StateProtocol == 2 {
						return true
					}
				}
				return false
			})
		}
		began := time.Now()
		if err := nodes[i].Close(); err != nil {
			t.Fatalf("stop s%d: %v", i, err)
		}
		start(i, 2)
		took := ready(i)
		t.Logf("step %d: s%d (leader before: %v) upgraded; ready %s after its start, %s after its stop",
			step+1, i, wasLeader, took.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
		if step < 2 {
			// A leader on the old release has no such command; one on the
			// new release refuses it while a server speaks protocol 1.
			cur := leader()
			newLeader := slices.Contains(order[:step+1], cur)
			if newLeader {
				// A leader elected a moment ago refuses the command too,
				// but as not having heard from the others yet: wait for
				// its health checks to have heard every server.
				clustertest.Eventually(t, "the new leader to hear from every server", func() bool {
					heard := 0
					for _, h := range nodes[cur].Health() {
						if h.Info != nil {
							heard++
						}
					}
					return heard == 3
				})
			}
			err := apply(pause)
			switch {
			case newLeader && (!errors.Is(err, cluster.ErrProtocol) || !strings.Contains(err.Error(), "speaks protocol 1")):
				t.Errorf("protocol 2 command through an upgraded leader with %d servers upgraded: %v; want ErrProtocol naming a protocol 1 server", step+1, err)
			case !newLeader && !errors.Is(err, state.ErrUnknownCommand):
				t.Errorf("protocol 2 command through a leader on the old release: %v; want ErrUnknownCommand", err)
			case newLeader:
				refused++
			}
			continue
		}
		// The leader's next health check hears the last server's protocol.
		clustertest.Eventually(t, "the protocol 2 command once every server runs the new release", func() bool {
			return apply(pause) == nil
		})
	}
	t.Logf("the protocol 2 command was refused by an upgraded leader %d times before the last server was upgraded", refused)
	l = leader()
	last := fsms[l].AppliedIndex()
	clustertest.Eventually(t, "every server to apply the last entry", func() bool {
		for _, f := range fsms {
			if f.AppliedIndex() < last {
				return false
			}
		}
		return true
	})
	want := snapshotOf(t, fsms[l])
	for i, f := range fsms {
		if err := f.Halted(); err != nil {
			t.Errorf("s%d halted: %v", i, err)
		}
		if got := snapshotOf(t, f); !bytes.Equal(got, want) {
			t.Errorf("s%d's state differs from the leader's", i)
		}
		if a := f.Act(); !a.Paused || len(a.Requests) != submitted {
			t.Errorf("s%d: paused %v, %d requests; want paused, %d", i, a.Paused, len(a.Requests), submitted)
		}
	}
}
