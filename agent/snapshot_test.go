package agent

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/foreshape/foreshape/config"
)

// TestRaftSnapshotSettings: a server given server.raft_snapshot_threshold
// = 8, raft_snapshot_interval = 1s and raft_trailing_logs = 2 snapshots
// within seconds of its first cycles (the defaults, 256 entries checked
// every 2 to 4 minutes, would take none in this test's time), compacts its
// log down to the trailing entries, and, started again on its data dir,
// restores its state from the snapshot: every series it had is there
// again, though the log no longer holds the entries that made them.
func TestRaftSnapshotSettings(t *testing.T) {
	t.Parallel()
	d := startTestSim(t, 600)
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Name = "server-snap"
	cfg.DataDir = dir
	cfg.Server.RaftPort = freePort(t)
	cfg.HTTP.Address = "127.0.0.1:0"
	cfg.Nomad.Address = d.URL
	cfg.Server.RaftSnapshotThreshold = 8
	cfg.Server.RaftSnapshotInterval = time.Second
	cfg.Server.RaftTrailingLogs = 2
	if diags := cfg.Validate(); diags.HasErrors() {
		t.Fatal(diags.Error())
	}

	run := func(log hclog.Logger) (*Agent, func()) {
		a, err := New(cfg, Options{Logger: log, Policies: devPolicies(t), Clock: d, Version: "test", CycleInterval: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		var once sync.Once
		stop := func() {
			once.Do(func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("Run: %v", err)
				}
				a.Close()
			})
		}
		t.Cleanup(stop)
		return a, stop
	}

	a, stop := run(testLogger(t).Named("first"))
	snaps, err := raft.NewFileSnapshotStore(dir, 2, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var snap raft.SnapshotMeta
	eventually(t, 30*time.Second, "a snapshot on disk", func() bool {
		metas, err := snaps.List()
		if err != nil || len(metas) == 0 || a.fsm.Len() == 0 {
			return false
		}
		snap = *metas[0]
		return true
	})
	stop()
	keys := a.fsm.Keys()
	t.Logf("snapshot %s at index %d; %d series when stopped at index %d", snap.ID, snap.Index, len(keys), a.fsm.AppliedIndex())

	// The log was compacted: the entries up to the snapshot, less the
	// trailing two, are gone from raft.db, so the state can only come
	// back from the snapshot.
	store, err := raftboltdb.NewBoltStore(filepath.Join(dir, "raft.db"))
	if err != nil {
		t.Fatal(err)
	}
	first, err := store.FirstIndex()
	store.Close()
	if err != nil {
		t.Fatal(err)
	}
	if first <= 1 {
		t.Errorf("raft.db starts at entry %d after a snapshot at %d: want the log compacted", first, snap.Index)
	}
	t.Logf("raft.db starts at entry %d", first)

	var logs syncBuffer
	b, _ := run(hclog.New(&hclog.LoggerOptions{Name: "second", Level: hclog.Info, Output: io.MultiWriter(&logs, testWriter{t})}))
	eventually(t, 30*time.Second, "the restart restores the snapshot", func() bool {
		return logs.count("restored from snapshot") > 0 && b.fsm.AppliedIndex() >= snap.Index
	})
	have := map[string]bool{}
	for _, k := range b.fsm.Keys() {
		have[k.String()] = true
	}
	var missing []string
	for _, k := range keys {
		if !have[k.String()] {
			missing = append(missing, k.String())
		}
	}
	if len(missing) > 0 {
		t.Errorf("after the restart %d of %d series are missing: %s", len(missing), len(keys), strings.Join(missing, ", "))
	}
}
