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

// TestLeavingPeerLines: raft's failures to reach a peer are ERROR, unless
// the peer said it was leaving: then DEBUG until it answers heartbeats
// again or leaveQuiet has passed. Other lines keep their level.
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
		l.Error("failed to appendEntries to", "peer", raft.Server{ID: "c", Address: "10.0.0.3:7576"}, "error", io.EOF)
		l.Error("failed to commit logs", "error", errors.New("disk"))
	}
	errorLines := func() int { return strings.Count(out.String(), "[ERROR]") }
	lines()
	if errorLines() != 5 {
		t.Fatalf("no peer leaving: %d ERROR lines, want 5:\n%s", errorLines(), out.String())
	}
	p.mark("b", "10.0.0.2:7576")
	lines()
	if errorLines() != 2 || strings.Contains(out.String(), "10.0.0.2") {
		t.Errorf("b leaving: %d ERROR lines, want c's and the commit's:\n%s", errorLines(), out.String())
	}
	now = now.Add(leaveQuiet)
	lines()
	if errorLines() != 5 {
		t.Errorf("b away for leaveQuiet: %d ERROR lines, want 5", errorLines())
	}
	p.mark("b", "10.0.0.2:7576")
	p.back("b")
	lines()
	if errorLines() != 5 {
		t.Errorf("b back: %d ERROR lines, want 5", errorLines())
	}
}
