package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"
	"github.com/hashicorp/raft"

	"github.com/foreshape/foreshape/agent/cluster"
	"github.com/foreshape/foreshape/agent/cluster/clustertest"
	"github.com/foreshape/foreshape/sim"
)

func TestVerifyLeader(t *testing.T) {
	c := clustertest.New(t, 3, func(int) raft.FSM { return &listFSM{} }, nil)
	old := c.Leader()
	lctx, ok := c.Nodes[old].LeaderContext()
	if !ok {
		t.Fatal("no leader context")
	}
	if err := c.Nodes[old].VerifyLeader(lctx); err != nil {
		t.Fatalf("VerifyLeader on the leader: %v", err)
	}
	// A context derived from the term's context carries the term.
	derived, cancel := context.WithTimeout(lctx, clustertest.Timeout)
	defer cancel()
	if err := c.Nodes[old].VerifyLeader(derived); err != nil {
		t.Errorf("VerifyLeader with a derived context: %v", err)
	}
	if err := c.Nodes[old].VerifyLeader(context.Background()); !errors.Is(err, cluster.ErrNoTerm) {
		t.Errorf("VerifyLeader without a term: %v; want ErrNoTerm", err)
	}
	follower := (old + 1) % 3
	if err := c.Nodes[follower].VerifyLeader(lctx); !errors.Is(err, cluster.ErrNotLeader) {
		t.Errorf("VerifyLeader on a follower with the leader's context: %v; want ErrNotLeader", err)
	}

	// Cut the leader off: once the others have elected a new leader it
	// fails, whether or not its own raft has noticed (the check needs a
	// quorum's answer).
	c.Partition(old)
	next := c.Leader(old)
	if err := c.Nodes[old].VerifyLeader(lctx); !errors.Is(err, cluster.ErrNotLeader) && !errors.Is(err, context.Canceled) {
		t.Errorf("VerifyLeader on a partitioned leader: %v; want ErrNotLeader", err)
	}
	c.Heal(old)
	// Leadership may come back to the old node, but never to the old term.
	c.Partition(next)
	again := c.Leader(next)
	if err := c.Nodes[again].VerifyLeader(lctx); err == nil {
		t.Errorf("node%d passed VerifyLeader with the context of a term that ended", again)
	}
	if ctx, ok := c.Nodes[again].LeaderContext(); !ok || c.Nodes[again].VerifyLeader(ctx) != nil {
		t.Errorf("the new leader node%d fails VerifyLeader with its own term's context", again)
	}
}

// guardedWriter is leader work as the act half does it: before every
// mutating Nomad call it confirms it still leads, then writes through the
// real nomad/api client. Node i toggles the eligibility of the simulated
// Nomad node target[i], so the simulator's request log says who wrote.
type guardedWriter struct {
	client *nomadapi.Client
	target []string

	mu       sync.Mutex
	verified map[int][]time.Time // per node: when each passing VerifyLeader began
}

func (w *guardedWriter) run(lctx context.Context, i int, n *cluster.Node) {
	for lctx.Err() == nil {
		began := time.Now()
		if err := n.VerifyLeader(lctx); err != nil {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		w.mu.Lock()
		w.verified[i] = append(w.verified[i], began)
		w.mu.Unlock()
		q := (&nomadapi.WriteOptions{}).WithContext(lctx)
		if _, err := w.client.Nodes().ToggleEligibility(w.target[i], true, q); err != nil && lctx.Err() == nil {
			panic(fmt.Sprintf("node%d: eligibility write: %v", i, err))
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestPartitionedLeaderMakesNoNomadWrites partitions the leader of a
// three-server in-memory cluster away from the other two while every
// server runs guarded leader work against the simulated Nomad: the
// minority leader makes no Nomad write once cut off, and none after the
// new leader's first.
func TestPartitionedLeaderMakesNoNomadWrites(t *testing.T) {
	sc, err := sim.New(sim.DefaultScenario(), sim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sc.Handler())
	defer srv.Close()
	client, err := nomadapi.NewClient(&nomadapi.Config{Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	nodes, _, err := client.Nodes().List(nil)
	if err != nil || len(nodes) < 3 {
		t.Fatalf("simulated nodes: %d, %v", len(nodes), err)
	}
	w := &guardedWriter{client: client, verified: map[int][]time.Time{}}
	for i := range 3 {
		w.target = append(w.target, nodes[i].ID)
	}
	writer := func(path string) int {
		for i, id := range w.target {
			if strings.Contains(path, "/v1/node/"+id+"/") {
				return i
			}
		}
		return -1
	}

	c := clustertest.New(t, 3, func(int) raft.FSM { return &listFSM{} }, nil)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i, n := range c.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.RunLeaderLoop(ctx, func(lctx context.Context) { w.run(lctx, i, n) })
		}()
	}
	defer func() { cancel(); wg.Wait() }()

	old := c.Leader()
	c.Eventually("the leader's first writes", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return len(w.verified[old]) >= 5
	})
	c.Partition(old)
	next := c.Leader(old)
	electedAt := time.Now()
	// Under load the two connected nodes may pass leadership between them
	// again (a delayed heartbeat): writes by either are the new leaders'.
	c.Eventually("the new leaders' writes", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		n := 0
		for i, v := range w.verified {
			if i != old {
				n += len(v)
			}
		}
		return n >= 20
	})
	// Keep the old leader cut off a while longer: it must stay silent.
	time.Sleep(200 * time.Millisecond)
	cancel()
	wg.Wait()

	w.mu.Lock()
	for _, began := range w.verified[old] {
		if began.After(electedAt) {
			t.Errorf("node%d passed VerifyLeader %v after node%d was elected", old, began.Sub(electedAt), next)
		}
	}
	w.mu.Unlock()
	var order []int
	for _, r := range sc.Truth().Requests {
		if i := writer(r.Path); i >= 0 {
			order = append(order, i)
		}
	}
	firstNew := -1
	for k, i := range order {
		if i != old && firstNew < 0 {
			firstNew = k
		}
		if firstNew >= 0 && i == old {
			t.Errorf("request %d: node%d wrote to Nomad after node%d, a leader elected after it was cut off, had written", k, old, order[firstNew])
		}
	}
	if firstNew < 0 {
		t.Fatalf("the new leader made no write (log %v)", order)
	}
	t.Logf("%d writes by the old leader before the partition, %d by the leaders after it (node%d first)", firstNew, len(order)-firstNew, next)
}
