package cluster

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// TestLeavingPeerLines: raft's failures to reach a peer are ERROR (and the
// leader's "failed to contact" WARN), sending it a snapshot among them,
// unless the peer said it was leaving:
// then DEBUG until it answers heartbeats again or leaveQuiet has passed.
// Other lines keep their level.
func TestLeavingPeerLines(t *testing.T) {
	now := time.Date(2026, 12, 2, 17, 0, 0, 0, time.UTC)
	p := newLeavingPeers(func() time.Time { return now })
	var out strings.Builder
	l := stoppingLogger{hclog.New(&hclog.LoggerOptions{Output: &out, Level: hclog.Info}), context.Background(), p}
	peer := raft.Server{ID: "b", Address: "10.0.0.2:7576"}
	lines := func() {
		out.Reset()
		l.Error("failed to appendEntries to", "peer", peer, "error", io.EOF)
		l.Error("failed to heartbeat to", "peer", peer.Address, "backoff time", time.Second, "error", io.EOF)
		l.Error("failed to make requestVote RPC", "target", peer, "error", io.EOF, "term", 3)
		l.Error("failed to send snapshot to", "peer", peer, "error", io.EOF)
		l.Error("failed to install snapshot", "peer", peer.ID, "id", "2-24-1796280888743", "error", io.EOF)
		l.Error("failed to appendEntries to", "peer", raft.Server{ID: "c", Address: "10.0.0.3:7576"}, "error", io.EOF)
		l.Error("failed to install snapshot", "error", io.EOF) // a follower's own
		l.Error("failed to commit logs", "error", errors.New("disk"))
		l.Warn("failed to contact", "server-id", peer.ID, "time", time.Second)
		l.Warn("failed to contact", "server-id", raft.ServerID("c"), "time", time.Second)
		l.Warn("failed to contact quorum of nodes, stepping down")
	}
	errorLines := func() int { return strings.Count(out.String(), "[ERROR]") }
	warnLines := func() int { return strings.Count(out.String(), "[WARN]") }
	lines()
	if errorLines() != 8 || warnLines() != 3 {
		t.Fatalf("no peer leaving: %d ERROR and %d WARN lines, want 8 and 3:\n%s", errorLines(), warnLines(), out.String())
	}
	p.mark("b", "10.0.0.2:7576")
	lines()
	if errorLines() != 3 || warnLines() != 2 || strings.Contains(out.String(), "10.0.0.2") || strings.Contains(out.String(), "server-id=b") {
		t.Errorf("b leaving: %d ERROR and %d WARN lines, want c's, the commit's, the follower's own install and the quorum's:\n%s", errorLines(), warnLines(), out.String())
	}
	now = now.Add(leaveQuiet)
	lines()
	if errorLines() != 8 || warnLines() != 3 {
		t.Errorf("b away for leaveQuiet: %d ERROR and %d WARN lines, want 8 and 3", errorLines(), warnLines())
	}
	p.mark("b", "10.0.0.2:7576")
	p.back("b")
	lines()
	if errorLines() != 8 || warnLines() != 3 {
		t.Errorf("b back: %d ERROR and %d WARN lines, want 8 and 3", errorLines(), warnLines())
	}
}

// TestLogNotFoundOutsideReplication: raft's "failed to get log" with
// raft.ErrLogNotFound keeps its ERROR level when raft's replication did
// not log it: raft logs the same line, then panics, when an entry it must
// apply or read at start is missing (TestSnapshotSendLogsNoError checks
// the replication's line is DEBUG).
func TestLogNotFoundOutsideReplication(t *testing.T) {
	var out strings.Builder
	l := stoppingLogger{hclog.New(&hclog.LoggerOptions{Output: &out, Level: hclog.Info}), context.Background(), nil}
	l.Error("failed to get log", "index", uint64(305), "error", raft.ErrLogNotFound)
	if !strings.Contains(out.String(), `[ERROR] failed to get log: index=305 error="log not found"`) {
		t.Errorf("logged %q; want the ERROR line", out.String())
	}
}
