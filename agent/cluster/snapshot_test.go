package cluster_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/cluster"
	"github.com/foreshape/foreshape/agent/cluster/clustertest"
	"github.com/foreshape/foreshape/agent/state"
)

// TestSnapshotsUnderLoad runs three servers over loopback TCP with the
// state FSM, snapshotting every 32 entries, while a writer commits sample
// batches and queue submissions without pause: a follower stopped for a
// hundred and fifty entries restarts on its data dir and catches up from the
// leader's snapshot plus the log after it, while the writes go on; in the
// end all three hold byte-identical state.
func TestSnapshotsUnderLoad(t *testing.T) {
	reg := &registry{}
	root := t.TempDir()
	var mu sync.Mutex // guards fsms and nodes, which a restart replaces
	fsms := make([]*state.FSM, 3)
	nodes := make([]*cluster.Node, 3)
	current := func() ([]*state.FSM, []*cluster.Node) {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(fsms), slices.Clone(nodes)
	}
	start := func(i int) {
		dir := filepath.Join(root, fmt.Sprintf("s%d", i))
		id, err := cluster.LoadOrCreateNodeID(dir)
		if err != nil {
			t.Fatal(err)
		}
		fsm, _ := state.NewFSM(state.Config{Profiles: state.DefaultProfiles()})
		n, err := cluster.New(cluster.Config{
			NodeID: id, BindAddr: "127.0.0.1:0", DataDir: dir, BootstrapExpect: 3, Discover: reg.discover,
			RetryInterval: 50 * time.Millisecond, ReconcileInterval: 50 * time.Millisecond, RemoveAfter: -1,
			HeartbeatTimeout: 100 * time.Millisecond, ElectionTimeout: 100 * time.Millisecond,
			LeaderLeaseTimeout: 100 * time.Millisecond, CommitTimeout: 5 * time.Millisecond,
			SnapshotThreshold: 32, SnapshotInterval: 50 * time.Millisecond, TrailingLogs: 16,
		}, fsm, clustertest.Logger(t).Named(fmt.Sprintf("s%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		st, _ := n.Status()
		reg.add(st.Address)
		mu.Lock()
		fsms[i], nodes[i] = fsm, n
		mu.Unlock()
	}
	for i := range 3 {
		start(i)
	}
	leader := func() int { return leaderIndex(t, nodes) }
	l := leader()

	// The writer: one sample batch of 200 series a minute of data time,
	// and a queue submission every tenth entry.
	var (
		written atomic.Int64
		stop    = make(chan struct{})
		wg      sync.WaitGroup
	)
	t0 := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			var cmd state.Command
			if i%10 == 9 {
				cmd = state.SubmitRequest{Request: state.MigrationRequest{
					Resource: state.Resource{Kind: state.ResourceAllocation, ID: fmt.Sprintf("alloc-%d", i)},
					Source:   "dc1", Target: "dc2", Origin: "operator", Priority: 50, Created: t0,
				}}
			} else {
				b := state.AppendSamples{Step: time.Minute}
				for k := range 200 {
					b.Samples = append(b.Samples, state.Sample{Key: state.Key{Locality: fmt.Sprintf("node/n%03d", k), Metric: "cpu"},
						Time: t0.Add(time.Duration(i) * time.Minute), Value: float64((i + k) % 100)})
				}
				cmd = b
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, ns := current()
			for _, n := range ns {
				if _, ok := n.LeaderContext(); ok {
					if _, err := n.Apply(ctx, state.Encode(cmd)); err == nil {
						written.Add(1)
					}
					break
				}
			}
			cancel()
		}
	}()

	// A follower goes away for 150 entries: with a snapshot every 32 and
	// 16 kept after it, the leader's log no longer holds where the
	// follower stopped, so it catches up from a snapshot. (It was away
	// for 300 and the test ran alone for 7 to 13 s, about 50 entries a
	// second.)
	f := (l + 1) % 3
	clustertest.Eventually(t, "some writes", func() bool { return written.Load() > 50 })
	nodes[f].Close()
	before := written.Load()
	clustertest.Eventually(t, "150 entries while the follower is away", func() bool { return written.Load() > before+150 })
	snaps, _ := filepath.Glob(filepath.Join(root, fmt.Sprintf("s%d", l), "snapshots", "*"))
	if len(snaps) == 0 {
		t.Errorf("the leader took no snapshot under load")
	}
	start(f)
	clustertest.Eventually(t, "the restarted follower to catch up while writes go on", func() bool {
		return fsms[f].AppliedIndex()+64 >= fsms[l].AppliedIndex() && written.Load() > before+250
	})
	close(stop)
	wg.Wait()
	// A write that failed because leadership moved (or its context ended)
	// may still be committed by the next leader, after the writer stopped.
	// One more write that succeeds fences them: once a leader has applied
	// it, every entry before it in that leader's log is applied there, and
	// no entry outside that log can commit any more.
	fence := state.AppendSamples{Step: time.Minute, Samples: []state.Sample{
		{Key: state.Key{Locality: "node/n000", Metric: "cpu"}, Time: t0.Add(-time.Minute), Value: 1}}}
	lead, last := -1, uint64(0)
	clustertest.Eventually(t, "a last write through the current leader", func() bool {
		for i, n := range nodes {
			if _, ok := n.LeaderContext(); !ok {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, err := n.Apply(ctx, state.Encode(fence)); err != nil {
				return false
			}
			lead, last = i, fsms[i].AppliedIndex()
			return true
		}
		return false
	})
	clustertest.Eventually(t, "every server to apply the last entry", func() bool {
		for _, fsm := range fsms {
			if fsm.AppliedIndex() < last {
				return false
			}
		}
		return true
	})
	var want bytes.Buffer
	if err := fsms[lead].WriteSnapshot(&want); err != nil {
		t.Fatal(err)
	}
	for i, fsm := range fsms {
		var got bytes.Buffer
		if err := fsm.WriteSnapshot(&got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Errorf("server %d's state differs from the leader's (server %d: %d vs %d bytes)", i, lead, got.Len(), want.Len())
		}
	}
	if len(fsms[f].Act().Requests) == 0 || fsms[f].Len() != 200 {
		t.Errorf("the restarted follower holds %d series and %d requests", fsms[f].Len(), len(fsms[f].Act().Requests))
	}
	id, _ := os.ReadFile(filepath.Join(root, fmt.Sprintf("s%d", f), "node-id"))
	t.Logf("%d entries written; the follower (%s) caught up from a snapshot and the log while writes went on",
		written.Load(), bytes.TrimSpace(id))
}
