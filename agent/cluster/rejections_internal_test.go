package cluster

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/internal/syncbuf"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// TestRepeatedRejectionsFolded: the leader's "appendEntries rejected"
// lines for a follower that rejects the same entries again and again (its
// disk full: it cannot store them) are one WARN line, then one every 10
// minutes saying it still rejects them, where raft logged each retry,
// backing off to one every 10 s, for as long as the follower's disk
// stayed full. A follower catching up, whose index goes down at each
// rejection, keeps each line.
func TestRepeatedRejectionsFolded(t *testing.T) {
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	var out syncbuf.Buffer
	l := stoppingLogger{Logger: hclog.New(&hclog.LoggerOptions{Output: &out, Level: hclog.Info}), stopping: context.Background(),
		rejected: newRejectedPeers(func() time.Time { return now })}
	full := raft.Server{Suffrage: raft.Voter, ID: "full", Address: "10.0.0.3:7576"}
	behind := raft.Server{Suffrage: raft.Voter, ID: "behind", Address: "10.0.0.2:7576"}
	reject := func(p raft.Server, next uint64) {
		l.Warn(rejectedMsg, "peer", p, "next", next)
	}
	// Catching up: each line kept.
	for next := uint64(9); next >= 5; next-- {
		reject(behind, next)
	}
	if n := strings.Count(out.String(), "[WARN]  "+rejectedMsg); n != 5 {
		t.Fatalf("a follower catching up: %d lines; want 5:\n%s", n, out.String())
	}
	mark := len(out.String())
	// Stuck for 25 minutes, a retry every 10 s.
	reject(full, 41)
	for range 150 {
		now = now.Add(10 * time.Second)
		reject(full, 41)
	}
	got := out.String()[mark:]
	if n := strings.Count(got, "[WARN]  "+rejectedMsg); n != 1 {
		t.Fatalf("a follower stuck: %d rejection lines; want the first:\n%s", n, got)
	}
	if n := strings.Count(got, "[WARN]  a server keeps rejecting the entries sent to it"); n != 2 ||
		!strings.Contains(got, "rejected=60") || !strings.Contains(got, "since=2026-12-06T10:00:00Z") {
		t.Fatalf("a follower stuck for 25 minutes: want two lines saying it still rejects, 60 rejections each:\n%s", got)
	}
	mark = len(out.String())
	// Its disk has room again: the next index moves on, and a later
	// rejection is logged.
	reject(full, 57)
	if !strings.Contains(out.String()[mark:], "[WARN]  "+rejectedMsg) {
		t.Fatalf("a new rejection after the run was not logged:\n%s", out.String()[mark:])
	}
}
