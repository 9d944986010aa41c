package state

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// raftServer is a one-server Raft cluster over stores that outlive it, so
// that a test can stop it and start another build's state machine on the
// same log and snapshots, as an upgraded server starts on its data_dir.
type raftServer struct {
	logs  *raft.InmemStore
	snaps *raft.InmemSnapshotStore
	raft  *raft.Raft
	trans raft.LoopbackTransport
}

func newRaftServer(t *testing.T) *raftServer {
	t.Helper()
	s := &raftServer{logs: raft.NewInmemStore(), snaps: raft.NewInmemSnapshotStore()}
	_, s.trans = raft.NewInmemTransport("s1")
	if err := raft.BootstrapCluster(s.config(t), s.logs, s.logs, s.snaps, s.trans,
		raft.Configuration{Servers: []raft.Server{{ID: "s1", Address: "s1"}}}); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *raftServer) config(t *testing.T) *raft.Config {
	c := raft.DefaultConfig()
	c.LocalID = "s1"
	c.HeartbeatTimeout, c.ElectionTimeout, c.LeaderLeaseTimeout, c.CommitTimeout = 50*time.Millisecond, 50*time.Millisecond, 50*time.Millisecond, 5*time.Millisecond
	c.SnapshotThreshold, c.SnapshotInterval, c.TrailingLogs = 1<<30, time.Hour, 1<<20
	c.Logger = hclog.New(&hclog.LoggerOptions{Name: "raft", Output: testLog{t}})
	return c
}

// testLog writes log lines to the test's log, shown only on failure.
type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// start runs Raft with fsm on the stores and waits until it leads and has
// applied its log.
func (s *raftServer) start(t *testing.T, fsm raft.FSM) {
	t.Helper()
	r, err := raft.NewRaft(s.config(t), fsm, s.logs, s.logs, s.snaps, s.trans)
	if err != nil {
		t.Fatal(err)
	}
	s.raft = r
	t.Cleanup(func() { r.Shutdown().Error() })
	for deadline := time.Now().Add(5 * time.Second); r.State() != raft.Leader; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no leader")
		}
	}
	if err := r.Barrier(5 * time.Second).Error(); err != nil {
		t.Fatal(err)
	}
}

func (s *raftServer) stop(t *testing.T) {
	t.Helper()
	if err := s.raft.Shutdown().Error(); err != nil {
		t.Fatal(err)
	}
}

// apply applies c and returns its index.
func (s *raftServer) apply(t *testing.T, c Command) uint64 {
	t.Helper()
	f := s.raft.Apply(Encode(c), 5*time.Second)
	if err := f.Error(); err != nil {
		t.Fatal(err)
	}
	return f.Index()
}

// TestHaltedStateIsNotSnapshotted: a halted state machine refuses to be
// snapshotted. Raft labels a snapshot with the last entry it handed the
// state machine, so a snapshot of a halted one would claim the entries
// since the halt while holding none of them; the server, upgraded as the
// halt asks, would restore it on start and replay only what follows,
// losing those entries for good. Without a snapshot it replays them all.
func TestHaltedStateIsNotSnapshotted(t *testing.T) {
	s := newRaftServer(t)
	old, err := NewOlderFSM(Config{Tiers: smallTiers}, Older{Types: []CommandType{TypeSubmitRequest}})
	if err != nil {
		t.Fatal(err)
	}
	s.start(t, old)
	s.apply(t, InitCluster{ID: "c-1"})
	if err := s.raft.Snapshot().Error(); err != nil {
		t.Fatalf("snapshot before the halt: %v", err)
	}
	submit := s.apply(t, SubmitRequest{Request: request("a1")}) // the older build halts here
	s.apply(t, SetQueuePaused{Paused: true, At: at(0), By: "operator"})
	if old.Halted() == nil {
		t.Fatal("the older build did not halt at the submission")
	}
	// Raft keeps only the message of the FSM's error.
	halt := fmt.Sprintf("stopped applying the log at index %d", submit)
	if err := s.raft.Snapshot().Error(); err == nil || !strings.Contains(err.Error(), halt) {
		t.Errorf("snapshot of the halted state machine: %v; want it refused, saying %q", err, halt)
	}
	s.stop(t)

	// Upgraded, the server starts on the same log and snapshots.
	upgraded := newFSM(t, smallTiers)
	s.start(t, upgraded)
	if upgraded.Halted() != nil || len(upgraded.Act().Requests) != 1 || !upgraded.QueuePaused() || upgraded.ClusterID() != "c-1" {
		t.Errorf("upgraded server: halted %v, %d requests, paused %v, cluster %q; want every entry applied",
			upgraded.Halted(), len(upgraded.Act().Requests), upgraded.QueuePaused(), upgraded.ClusterID())
	}
}
