package cluster_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
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

// BenchmarkReplicatedQueueOps submits migration requests to the queue of a
// three-server cluster over loopback TCP (raft-boltdb on disk, the state
// FSM), each committed by a quorum before it returns; cancel half of them,
// so that each operation is a submission or a cancellation. serial waits
// for each operation before the next; concurrent keeps 16 in flight, as
// API clients and the leader's loops do, which Raft batches.
func BenchmarkReplicatedQueueOps(b *testing.B) {
	for _, inflight := range []int{1, 16} {
		name := "serial"
		if inflight > 1 {
			name = fmt.Sprintf("concurrent=%d", inflight)
		}
		b.Run(name, func(b *testing.B) { benchQueueOps(b, inflight) })
	}
}

func benchQueueOps(b *testing.B, inflight int) {
	reg := &benchRegistry{}
	root := b.TempDir()
	var nodes []*cluster.Node
	for i := range 3 {
		dir := filepath.Join(root, fmt.Sprintf("s%d", i))
		id, err := cluster.LoadOrCreateNodeID(dir)
		if err != nil {
			b.Fatal(err)
		}
		fsm, _ := state.NewFSM(state.Config{})
		n, err := cluster.New(cluster.Config{
			NodeID: id, BindAddr: "127.0.0.1:0", DataDir: dir, BootstrapExpect: 3, Discover: reg.discover,
			RetryInterval: 50 * time.Millisecond, HeartbeatTimeout: 200 * time.Millisecond,
			ElectionTimeout: 200 * time.Millisecond, LeaderLeaseTimeout: 200 * time.Millisecond,
		}, fsm, hclog.NewNullLogger())
		if err != nil {
			b.Fatal(err)
		}
		defer n.Close()
		st, _ := n.Status()
		reg.add(st.Address)
		nodes = append(nodes, n)
	}
	var leader *cluster.Node
	for deadline := time.Now().Add(30 * time.Second); leader == nil; time.Sleep(20 * time.Millisecond) {
		for _, n := range nodes {
			if _, ok := n.LeaderContext(); ok {
				leader = n
			}
		}
		if time.Now().After(deadline) {
			b.Fatal("no leader")
		}
	}
	t0 := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	op := func(i int) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if i%2 == 1 {
			_, err := leader.Apply(ctx, state.Encode(state.CancelRequest{ID: fmt.Sprintf("mr-%d", i/2+1), At: t0, Reason: "bench"}))
			return err
		}
		r := state.MigrationRequest{
			Resource: state.Resource{Kind: state.ResourceAllocation, ID: fmt.Sprintf("alloc-%08d", i)},
			Source:   "dc1/web", Target: "dc2/web", Strategy: "drain-first", Origin: "operator", Priority: 50, Created: t0,
		}
		_, err := leader.Apply(ctx, state.Encode(state.SubmitRequest{Request: r}))
		return err
	}
	b.ResetTimer()
	start := time.Now()
	if inflight == 1 {
		for i := 0; i < b.N; i++ {
			if err := op(i); err != nil {
				b.Fatal(err)
			}
		}
	} else {
		// The submissions, then their cancellations, inflight at a time.
		phase := func(first int) {
			next := make(chan int)
			errc := make(chan error, inflight)
			var wg sync.WaitGroup
			for range inflight {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range next {
						if err := op(i); err != nil {
							select {
							case errc <- err:
							default:
							}
						}
					}
				}()
			}
			for i := first; i < b.N; i += 2 {
				next <- i
			}
			close(next)
			wg.Wait()
			select {
			case err := <-errc:
				b.Fatal(err)
			default:
			}
		}
		phase(0)
		phase(1)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ops/s")
}

type benchRegistry struct {
	mu    sync.Mutex
	addrs []string
}

func (r *benchRegistry) add(a string) { r.mu.Lock(); r.addrs = append(r.addrs, a); r.mu.Unlock() }

func (r *benchRegistry) discover(context.Context) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.addrs...), nil
}
