package cluster_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/foreshape/foreshape/agent/cluster"
	"github.com/foreshape/foreshape/agent/state"
)

// BenchmarkBackup saves and restores the backup of a large state: 2,000
// series (a 500-node cluster's cpu, memory, and two more metrics) with a
// day of 1-minute samples each, on a single server with its Raft data on
// disk (raft-boltdb and file snapshots). Each iteration saves a backup
// (raft snapshot to disk, then the archive to memory) and restores it
// (ReadBackup, then RestoreBackup). It reports the state's and the
// archive's sizes, and the save's and the restore's times.
func BenchmarkBackup(b *testing.B) {
	fsm, _ := state.NewFSM(state.Config{})
	node, err := cluster.New(cluster.Config{
		NodeID: "bench", BindAddr: "127.0.0.1:0", DataDir: b.TempDir(), Bootstrap: true,
		HeartbeatTimeout: 50 * time.Millisecond, ElectionTimeout: 50 * time.Millisecond, LeaderLeaseTimeout: 50 * time.Millisecond,
		SnapshotThreshold: 1 << 30, SnapshotInterval: time.Hour,
	}, fsm, hclog.NewNullLogger())
	if err != nil {
		b.Fatal(err)
	}
	defer node.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, ok := node.LeaderContext(); ok {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("no leadership")
		}
	}
	keys := make([]state.Key, 2000)
	for i := range keys {
		keys[i] = state.Key{Locality: fmt.Sprintf("dc1/node-%03d", i/4), Metric: []string{"cpu", "memory", "iops", "net"}[i%4]}
	}
	t0 := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	smp := make([]state.Sample, len(keys))
	for m := range 1440 {
		for j, k := range keys {
			smp[j] = state.Sample{Key: k, Time: t0.Add(time.Duration(m) * time.Minute), Value: float64((j*7+m)%1000) / 10}
		}
		if _, err := node.Apply(context.Background(), state.Encode(state.AppendSamples{Step: time.Minute, Samples: smp})); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	var save, restore time.Duration
	var archiveBytes, stateBytes int
	b.ResetTimer()
	for range b.N {
		var archive, st bytes.Buffer
		start := time.Now()
		if _, err := node.SaveBackup(ctx, &archive, backupInfo); err != nil {
			b.Fatal(err)
		}
		save += time.Since(start)
		start = time.Now()
		meta, err := cluster.ReadBackup(bytes.NewReader(archive.Bytes()), &st)
		if err != nil {
			b.Fatal(err)
		}
		if err := node.RestoreBackup(ctx, meta, bytes.NewReader(st.Bytes())); err != nil {
			b.Fatal(err)
		}
		restore += time.Since(start)
		archiveBytes, stateBytes = archive.Len(), st.Len()
	}
	b.ReportMetric(float64(stateBytes), "state_bytes")
	b.ReportMetric(float64(archiveBytes), "archive_bytes")
	b.ReportMetric(save.Seconds()/float64(b.N)*1000, "save_ms")
	b.ReportMetric(restore.Seconds()/float64(b.N)*1000, "restore_ms")
}
