package cluster_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/foreshape/foreshape/agent/cluster"
	"github.com/foreshape/foreshape/agent/cluster/clustertest"
	"github.com/hashicorp/raft"
)

// TestSnapshotSendLogsNoError: at the default snapshot settings (a
// snapshot every 256 entries, 256 kept after it), a server that joins a
// cluster whose log was compacted, and a follower back from a clean stop
// during which the leader wrote and compacted more than that, are sent
// the leader's snapshot; no server logs an ERROR for it. Raft's leader
// logged "failed to get log: index=N error=\"log not found\"" at ERROR
// before each snapshot it sent (and before each retry while the follower
// was away).
func TestSnapshotSendLogsNoError(t *testing.T) {
	s := threeRestartable(t)
	nodes, l := s.nodes, leaderOf(t, s.nodes...)
	entries := func(prefix string) [][]byte {
		var cmds [][]byte
		for i := range 300 {
			cmds = append(cmds, []byte(fmt.Sprintf("%s%d", prefix, i)))
		}
		return cmds
	}
	write := func() {
		l = applyAll(t, nodes, entries("v"))
		if err := l.Snapshot(); err != nil {
			t.Fatal(err)
		}
	}
	noErrors := func(what string) {
		t.Helper()
		for i := range s.logs {
			if errs := errorsSince(s.logs[i].String(), 0); len(errs) > 0 {
				t.Errorf("%s: log %d (s0-s3, then the follower back) holds %d ERROR lines:\n%s", what, i, len(errs), strings.Join(errs, "\n"))
			}
		}
	}
	installed := func(i int) func() bool {
		return func() bool { return strings.Contains(s.logs[i].String(), "Installed remote snapshot") }
	}

	// A new server joins after the leader compacted the log's start away.
	write()
	nodes = append(nodes, s.start("s3", ""))
	clustertest.Eventually(t, "the new server to install the leader's snapshot", installed(3))
	noErrors("a new server joining")
	if t.Failed() {
		return
	}

	// A follower stops cleanly; the leader writes and compacts past it.
	f := 0
	for nodes[f] == l {
		f++
	}
	st, err := nodes[f].Status()
	if err != nil {
		t.Fatal(err)
	}
	if err := nodes[f].Close(); err != nil {
		t.Fatal(err)
	}
	rest := append(append([]*cluster.Node{}, nodes[:f]...), nodes[f+1:]...)
	l = leaderOf(t, rest...)
	l = applyAll(t, rest, entries("w"))
	if err := l.Snapshot(); err != nil {
		t.Fatal(err)
	}
	nodes[f] = s.start(fmt.Sprintf("s%d", f), st.Address) // its log is the last
	clustertest.Eventually(t, "the follower back to install the leader's snapshot", installed(len(s.logs)-1))
	applyToLeader(t, nodes, []byte("after"))
	noErrors("a follower back from a clean stop")
}

// failingLogs is a log store whose reads of index 1 fail once fail is set,
// as a damaged disk's would.
type failingLogs struct {
	raft.LogStore
	fail *atomic.Bool
}

func (s failingLogs) GetLog(index uint64, l *raft.Log) error {
	if index == 1 && s.fail.Load() {
		return errors.New("read raft.db: input/output error")
	}
	return s.LogStore.GetLog(index, l)
}

// TestLogReadFailureLogsError: a leader that cannot read an entry a
// follower needs for another reason than its compaction (the store fails)
// still logs raft's "failed to get log" at ERROR: replication to that
// follower stops there, no snapshot follows.
//
// Only the leader's store fails: a follower that had not yet applied
// index 1 when the reads began to fail would read it in raft's
// processLogs, which panics on any error.
func TestLogReadFailureLogsError(t *testing.T) {
	reg := &registry{}
	root := t.TempDir()
	var (
		nodes []*cluster.Node
		logs  []*logBuffer
		fails []*atomic.Bool
	)
	for i := range 4 {
		name := fmt.Sprintf("s%d", i)
		buf := &logBuffer{}
		fail := &atomic.Bool{}
		n, _ := tcpServerLog(t, filepath.Join(root, name), reg, func(c *cluster.Config) {
			c.LogStore = failingLogs{raft.NewInmemStore(), fail}
		}, teeLogger(t, name, buf))
		nodes, logs, fails = append(nodes, n), append(logs, buf), append(fails, fail)
		if i == 2 {
			l := leaderOf(t, nodes...)
			clustertest.Eventually(t, "three voters", func() bool { return len(suffrage(t, l)) == 3 })
			l = applyToLeader(t, nodes, []byte("v"))
			for j, n := range nodes {
				if n == l {
					fails[j].Store(true) // the fourth server needs index 1
				}
			}
		}
	}
	clustertest.Eventually(t, `the leader's "failed to get log" at ERROR`, func() bool {
		for _, b := range logs {
			for _, line := range errorsSince(b.String(), 0) {
				if strings.Contains(line, `failed to get log: index=1 error="read raft.db: input/output error"`) {
					return true
				}
			}
		}
		return false
	})
}
