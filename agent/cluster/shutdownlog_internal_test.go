package cluster

import (
	"context"
	"errors"
	"fmt"
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
	l := stoppingLogger{hclog.New(&hclog.LoggerOptions{Output: &out, Level: hclog.Info}), context.Background(), p, nil, nil, nil, nil}
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
	l := stoppingLogger{hclog.New(&hclog.LoggerOptions{Output: &out, Level: hclog.Info}), context.Background(), nil, nil, nil, nil, nil}
	l.Error("failed to get log", "index", uint64(305), "error", raft.ErrLogNotFound)
	if !strings.Contains(out.String(), `[ERROR] failed to get log: index=305 error="log not found"`) {
		t.Errorf("logged %q; want the ERROR line", out.String())
	}
}

// TestUnreachablePeerLinesFolded: raft's failures to reach a peer that
// did not say it was leaving are ERROR the first time, then DEBUG, with
// one ERROR line a minute that sums them up, per peer; the peer answering
// heartbeats again ends the run (one INFO line) and its next failure is
// an ERROR again, as is one after a minute without failures.
func TestUnreachablePeerLinesFolded(t *testing.T) {
	now := time.Date(2026, 12, 4, 1, 0, 0, 0, time.UTC)
	u := newUnreachablePeers(func() time.Time { return now })
	var out strings.Builder
	base := hclog.New(&hclog.LoggerOptions{Output: &out, Level: hclog.Info})
	l := stoppingLogger{base, context.Background(), newLeavingPeers(func() time.Time { return now }), u, nil, nil, nil}
	b := raft.Server{ID: "b", Address: "10.0.0.2:7576"}
	c := raft.Server{ID: "c", Address: "10.0.0.3:7576"}
	fail := func(p raft.Server) {
		l.Error("failed to heartbeat to", "peer", p.Address, "backoff time", time.Second, "error", io.EOF)
		l.Error("failed to appendEntries to", "peer", p, "error", io.EOF)
	}
	lines := func(level, msg string) int {
		n := 0
		for _, line := range strings.Split(out.String(), "\n") {
			if strings.Contains(line, "["+level+"]") && strings.Contains(line, msg) {
				n++
			}
		}
		return n
	}

	// b's name is known, c's not; b's heartbeat fails first: its line
	// names b by address.
	u.setKnown(map[string]knownPeer{"10.0.0.2:7576": {id: "b", name: "fs-b"}})
	fail(b)
	if n := lines("ERROR", ""); n != 1 || !strings.Contains(out.String(), "error=EOF name=fs-b then=\"one line a minute while it stays unreachable\"") {
		t.Fatalf("first failures of b: %d ERROR lines, want 1 naming b and saying what follows:\n%s", n, out.String())
	}
	for range 49 { // a second apart: 98 more failures in the minute
		now = now.Add(time.Second)
		fail(b)
	}
	if n := lines("ERROR", ""); n != 1 {
		t.Fatalf("b unreachable for 49 s: %d ERROR lines, want 1:\n%s", n, out.String())
	}
	fail(c)
	if n := lines("ERROR", "10.0.0.3"); n != 1 || strings.Contains(out.String(), "10.0.0.3:7576 backoff time=1s error=EOF name=") {
		t.Errorf("c's first failures: %d ERROR lines, want 1 (c is folded apart from b), without a name:\n%s", n, out.String())
	}
	now = now.Add(11 * time.Second) // a minute after b's first line
	fail(b)
	if n := lines("ERROR", "server still unreachable"); n != 1 {
		t.Fatalf("b a minute away: %d summaries, want 1:\n%s", n, out.String())
	}
	if !strings.Contains(out.String(), "server still unreachable: server=b name=fs-b address=10.0.0.2:7576 unreachable_for=1m0s failures=100") {
		t.Errorf("b's summary, want its ID, address, time away and the 100 failures after the first:\n%s", out.String())
	}
	for range 30 {
		now = now.Add(2 * time.Second)
		fail(b)
	}
	if n := lines("ERROR", "server still unreachable"); n != 2 || !strings.Contains(out.String(), "unreachable_for=2m0s failures=60") {
		t.Errorf("b two minutes away: %d summaries, want 2, the second of 60 failures:\n%s", n, out.String())
	}

	s := u.back("b")
	if s == nil || s.folded != 161 || s.away != 2*time.Minute || s.name != "fs-b" {
		t.Fatalf("b back: %+v, want fs-b's 161 failures folded over 2m0s", s)
	}
	out.Reset()
	fail(b)
	if n := lines("ERROR", ""); n != 1 {
		t.Errorf("b failing again after it was back: %d ERROR lines, want 1", n)
	}
	// c has not failed for over a minute: its run has ended.
	fail(c)
	if n := lines("ERROR", "10.0.0.3"); n != 1 {
		t.Errorf("c failing again after 2 min without a failure: %d ERROR lines, want 1", n)
	}
	if u.back("d") != nil {
		t.Error("a peer that never failed came back with a run")
	}

	// A peer that said it is leaving is quiet altogether, folded or not.
	out.Reset()
	l.leaving.mark("b", string(b.Address))
	now = now.Add(time.Minute)
	fail(b)
	if n := lines("ERROR", ""); n != 0 {
		t.Errorf("b leaving: %d ERROR lines, want 0", n)
	}
	// Other ERROR lines are untouched.
	for range 3 {
		l.Error("failed to commit logs", "error", errors.New("disk"))
	}
	if n := lines("ERROR", "failed to commit logs"); n != 3 {
		t.Errorf("%d of 3 other ERROR lines kept", n)
	}
}

// TestUnreachableByAddressEndsByID: a run of heartbeat failures, whose
// lines name the peer by address alone, ends when the peer (by ID) answers
// heartbeats again, once the leader's configuration tells its ID.
func TestUnreachableByAddressEndsByID(t *testing.T) {
	now := time.Date(2026, 12, 4, 1, 0, 0, 0, time.UTC)
	u := newUnreachablePeers(func() time.Time { return now })
	for _, known := range []bool{false, true} {
		if known {
			u.setKnown(map[string]knownPeer{"10.0.0.2:7576": {id: "b"}})
		}
		first, _, _ := u.fold("10.0.0.2:7576", "", "")
		u.fold("10.0.0.2:7576", "", "")
		s := u.back("b")
		switch {
		case !known && s != nil:
			t.Errorf("b's ID unknown: back found a run %+v", s)
		case known && (!first || s == nil || s.folded != 1 || s.addr != "10.0.0.2:7576"):
			t.Errorf("b's ID known: first %v, back %+v, want its run of one folded failure at its address", first, s)
		}
		now = now.Add(foldEvery) // the unknown run ends unreported
	}
}

// TestRefusalLoggedWhenItsReasonChanges: a peer unreachable for a while
// whose address then answers with a refusal (another server took it) is
// logged at ERROR once more, with the refusal's reason, and once again
// only when the reason changes; the refusals in between are folded.
func TestRefusalLoggedWhenItsReasonChanges(t *testing.T) {
	now := time.Date(2026, 12, 4, 1, 0, 0, 0, time.UTC)
	u := newUnreachablePeers(func() time.Time { return now })
	var out strings.Builder
	l := stoppingLogger{hclog.New(&hclog.LoggerOptions{Output: &out, Level: hclog.Info}), context.Background(),
		newLeavingPeers(func() time.Time { return now }), u, nil, nil, nil}
	b := raft.Server{ID: "b", Address: "10.0.0.2:7576"}
	fail := func(err error) {
		now = now.Add(time.Second)
		l.Error("failed to appendEntries to", "peer", b, "error", err)
	}
	errorLines := func() int { return strings.Count(out.String(), "[ERROR]") }
	fail(io.EOF)
	fail(io.EOF)
	taken := &RaftRefusedError{Address: "10.0.0.2:7576", Reason: "this address is server x's, not server b's"}
	for range 3 {
		fail(fmt.Errorf("wrapped: %w", taken))
	}
	if n := errorLines(); n != 2 || !strings.Contains(out.String(), "this address is server x's, not server b's") {
		t.Fatalf("%d ERROR lines, want 2 (the first failure, then the first refusal, with its reason):\n%s", n, out.String())
	}
	fail(&RaftRefusedError{Address: "10.0.0.2:7576", Reason: "another cluster"})
	fail(io.EOF)
	if n := errorLines(); n != 3 || !strings.Contains(out.String(), "another cluster") {
		t.Errorf("%d ERROR lines, want 3 (a refusal for another reason logged, a plain failure folded):\n%s", n, out.String())
	}
}
