package cluster_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/cluster"
	"github.com/foreshape/foreshape/agent/cluster/clustertest"
	"github.com/foreshape/foreshape/agent/state"
	"github.com/hashicorp/raft"
)

// TestStateReplicatesThroughSnapshotInstall runs the state FSM on three
// nodes. A follower cut off while the leader compacts its log can only catch
// up from a snapshot (raft's InstallSnapshot, then state's Restore); after it
// heals, every node's state is byte-identical.
func TestStateReplicatesThroughSnapshotInstall(t *testing.T) {
	tiers := []state.Tier{{Step: time.Minute, Points: 60}, {Step: time.Hour, Points: 24}}
	fsms := make([]*state.FSM, 3)
	c := clustertest.New(t, 3, func(i int) raft.FSM {
		f, err := state.NewFSM(state.Config{Tiers: tiers})
		if err != nil {
			t.Fatal(err)
		}
		fsms[i] = f
		return f
	}, func(_ int, cfg *cluster.Config) {
		cfg.TrailingLogs = 2
		cfg.SnapshotThreshold = 4
	})

	t0 := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	batch := func(m int) []byte {
		var smp []state.Sample
		for n := range 5 {
			k := state.Key{Locality: fmt.Sprintf("dc1/node-%d", n), Metric: "cpu"}
			smp = append(smp, state.Sample{Key: k, Time: t0.Add(time.Duration(m) * time.Minute), Value: float64(m*10 + n)})
		}
		return state.Encode(state.AppendSamples{Step: time.Minute, Samples: smp})
	}
	c.Apply(batch(0))
	l := c.Leader()
	lagging := (l + 1) % 3
	c.WaitApplied(3, lagging)
	c.Partition(lagging)

	for m := 1; m <= 20; m++ {
		c.Apply(batch(m), lagging)
	}
	c.Apply(state.Encode(state.MarkStale{
		Keys:   []state.Key{{Locality: "dc1/node-3", Metric: "cpu"}},
		Since:  t0.Add(20 * time.Minute),
		Reason: "client stats unreachable",
	}), lagging)
	li := c.Leader(lagging)
	leader := c.Nodes[li]
	if err := leader.Snapshot(); err != nil {
		t.Fatal(err)
	}

	c.Heal(lagging)
	st, _ := leader.Status()
	c.WaitApplied(st.LastIndex)

	// Raft counts an entry applied as it hands it to the FSM, which
	// applies it on its own goroutine: wait until each state has applied
	// the last command the leader's state applied (its Apply returned
	// after it did).
	last := fsms[li].AppliedIndex()
	for _, f := range fsms {
		clustertest.Eventually(t, "each state applied the last command", func() bool { return f.AppliedIndex() >= last })
	}
	want := snapshotOf(t, fsms[0])
	for i, f := range fsms[1:] {
		if got := snapshotOf(t, f); !bytes.Equal(got, want) {
			t.Errorf("node %d state differs from node 0", i+1)
		}
	}
	in, ok := fsms[lagging].Info(state.Key{Locality: "dc1/node-3", Metric: "cpu"})
	if !ok || !in.Stale || !in.LastSample.Equal(t0.Add(20*time.Minute)) {
		t.Errorf("caught-up node: %+v; want stale, last sample at minute 20", in)
	}
	g, err := fsms[lagging].Range(state.Key{Locality: "dc1/node-4", Metric: "cpu"}, time.Minute, t0, t0.Add(21*time.Minute))
	if err != nil || g.Mean[0] != 4 || g.Mean[20] != 204 {
		t.Errorf("caught-up node grid %v, %v; want 4 … 204", g.Mean, err)
	}
}

func snapshotOf(t *testing.T, f *state.FSM) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := f.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
