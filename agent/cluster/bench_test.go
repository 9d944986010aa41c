package cluster_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/cluster"
	"github.com/foreshape/foreshape/agent/state"
	"github.com/hashicorp/go-hclog"
)

// BenchmarkApplySampleBatch10k commits one 10,000-sample batch (one sample
// per node of a 10,000-node cluster) through a single in-memory Raft node
// into the state FSM: encoding, the log, the FSM, and the reply.
func BenchmarkApplySampleBatch10k(b *testing.B) {
	fsm, _ := state.NewFSM(state.Config{})
	node, err := cluster.New(cluster.Config{
		NodeID: "bench", InMemory: true, Bootstrap: true,
		HeartbeatTimeout: 50 * time.Millisecond, ElectionTimeout: 50 * time.Millisecond, LeaderLeaseTimeout: 50 * time.Millisecond,
		SnapshotThreshold: 1 << 30, SnapshotInterval: time.Hour,
	}, fsm, hclog.NewNullLogger())
	if err != nil {
		b.Fatal(err)
	}
	defer node.Close()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if _, ok := node.LeaderContext(); ok {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("no leadership")
		}
		time.Sleep(10 * time.Millisecond)
	}
	keys := make([]state.Key, 10000)
	for i := range keys {
		keys[i] = state.Key{Locality: fmt.Sprintf("dc1/node-%05d", i), Metric: "cpu"}
	}
	t0 := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	smp := make([]state.Sample, len(keys))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j, k := range keys {
			smp[j] = state.Sample{Key: k, Time: t0.Add(time.Duration(i) * time.Minute), Value: float64(j % 100)}
		}
		res, err := node.Apply(context.Background(), state.Encode(state.AppendSamples{Step: time.Minute, Samples: smp}))
		if err != nil || res.(state.Result).Applied != len(keys) {
			b.Fatalf("apply: %v, %v", res, err)
		}
	}
}
