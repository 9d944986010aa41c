package cluster

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/internal/syncbuf"
)

// TestRecoveredTwiceTellsBothOldClusters: a cluster recovered twice (A as
// B, then B as C) tells a server of A and a server of B, each with its own
// recovery; a hello of another cluster it was never recovered from, or
// meant for another server, is refused without one. A recovery learned
// again is kept once.
func TestRecoveredTwiceTellsBothOldClusters(t *testing.T) {
	n := memNode(t, &gateFSM{}, &syncbuf.Buffer{}, nil)
	at := time.Date(2026, 12, 6, 13, 0, 0, 0, time.UTC)
	ab := Recovery{Old: "A", New: "B", At: at, Servers: []string{"n1 at 10.0.0.1:7576"}}
	bc := Recovery{Old: "B", New: "C", At: at.Add(time.Hour), Servers: []string{"n1 at 10.0.0.1:7576"}}
	if err := n.addRecoveries([]Recovery{ab}, "test"); err != nil {
		t.Fatal(err)
	}
	if err := n.addRecoveries([]Recovery{bc, ab}, "test"); err != nil {
		t.Fatal(err)
	}
	if got := n.Recoveries(); len(got) != 2 || got[0].Old != "B" || got[1].Old != "A" {
		t.Errorf("recoveries %+v; want B's then A's", got)
	}
	if err := n.setClusterID("C", "test"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		hello raftHello
		want  string // the old cluster the answer names; "" for none
	}{
		{raftHello{ClusterID: "A", From: "a1", To: "n1"}, "A"},
		{raftHello{ClusterID: "B", From: "b1", To: "n1"}, "B"},
		{raftHello{ClusterID: "B", From: "b1"}, "B"},
		{raftHello{ClusterID: "D", From: "d1", To: "n1"}, ""},
		{raftHello{ClusterID: "A", From: "a1", To: "n9"}, ""},
		{raftHello{ClusterID: "C", From: "c1", To: "n1"}, "-"},
	} {
		err := n.admitRaft(tc.hello)
		var rr *recoveredRefusal
		switch {
		case tc.want == "-":
			if err != nil {
				t.Errorf("hello %+v: %v; want it admitted", tc.hello, err)
			}
		case tc.want == "":
			if err == nil || errors.As(err, &rr) {
				t.Errorf("hello %+v: %v; want a refusal without a recovery", tc.hello, err)
			}
		case !errors.As(err, &rr) || rr.rec.Old != tc.want || !strings.Contains(err.Error(), "move its data_dir aside"):
			t.Errorf("hello %+v: %v; want a refusal with the recovery of %s", tc.hello, err, tc.want)
		}
	}
}

// TestOnlyItsOwnClusterSupersedesAServer: a Recovery naming another
// cluster as the old one, or none, changes nothing; one naming this
// server's own cluster supersedes it, after which it refuses every Raft
// hello, its old peers' with that Recovery.
func TestOnlyItsOwnClusterSupersedesAServer(t *testing.T) {
	n := memNode(t, &gateFSM{}, &syncbuf.Buffer{}, nil)
	if err := n.setClusterID("X", "test"); err != nil {
		t.Fatal(err)
	}
	for _, r := range []Recovery{{Old: "A", New: "B"}, {Old: "", New: "B"}, {Old: "X", New: ""}, {Old: "X", New: "X"}} {
		n.heardRecovered(r, "10.0.0.2:7576")
		if err := n.Superseded(); err != nil {
			t.Fatalf("superseded by %+v: %v", r, err)
		}
	}
	if err := n.admitRaft(raftHello{ClusterID: "X", From: "x2", To: "n1"}); err != nil {
		t.Fatalf("a peer's hello refused before the server was superseded: %v", err)
	}
	xy := Recovery{Old: "X", New: "Y", At: time.Date(2026, 12, 6, 13, 0, 0, 0, time.UTC), Servers: []string{"y1 at 10.0.0.2:7576"}}
	n.heardRecovered(xy, "10.0.0.2:7576")
	var se *SupersededError
	if err := n.Superseded(); !errors.As(err, &se) || se.Recovery.New != "Y" || se.From != "10.0.0.2:7576" || !errors.Is(err, ErrSuperseded) {
		t.Fatalf("superseded: %v; want by Y, told by 10.0.0.2:7576", err)
	}
	var rr *recoveredRefusal
	if err := n.admitRaft(raftHello{ClusterID: "X", From: "x2", To: "n1"}); !errors.As(err, &rr) || rr.rec.New != "Y" {
		t.Errorf("an old peer's hello: %v; want it refused with the recovery as Y", err)
	}
	if err := n.admitRaft(raftHello{ClusterID: "Z", From: "z1", To: "n1"}); err == nil || errors.As(err, &rr) {
		t.Errorf("another cluster's hello: %v; want it refused without a recovery", err)
	}
}

// TestRecoveredTwiceSendsAnOldServerToTheClusterNow: a cluster recovered
// twice (A as B, then B as C) tells a returning server of A the recovery
// of A, and that B is C now: the refusal, and the server's supersession
// once told, say to move its data_dir aside and join cluster C, which its
// peers run, not B, which no server runs any more. The server passes that
// on to its old peers; a server of B is sent to C as before; the
// recoveries a server keeps are kept without it.
func TestRecoveredTwiceSendsAnOldServerToTheClusterNow(t *testing.T) {
	n := memNode(t, &gateFSM{}, &syncbuf.Buffer{}, nil)
	at := time.Date(2026, 12, 6, 13, 0, 0, 0, time.UTC)
	ab := Recovery{Old: "A", New: "B", At: at, Servers: []string{"n1 at 10.0.0.1:7576"}}
	bc := Recovery{Old: "B", New: "C", At: at.Add(time.Hour), Servers: []string{"n1 at 10.0.0.1:7576"}}
	if err := n.addRecoveries([]Recovery{bc, ab.toldBy("C")}, "test"); err != nil {
		t.Fatal(err)
	}
	if err := n.setClusterID("C", "test"); err != nil {
		t.Fatal(err)
	}
	for _, r := range n.Recoveries() {
		if r.Current != "" {
			t.Errorf("kept %+v; want it kept without the cluster it is now", r)
		}
	}
	refusal := func(from, cluster string) *recoveredRefusal {
		t.Helper()
		var rr *recoveredRefusal
		if err := n.admitRaft(raftHello{ClusterID: cluster, From: from, To: "n1"}); !errors.As(err, &rr) {
			t.Fatalf("a hello of %s: %v; want a refusal with a recovery", cluster, err)
		}
		return rr
	}
	for _, tc := range []struct {
		from, cluster, current string
	}{{"a1", "A", "C"}, {"b1", "B", ""}} {
		rr := refusal(tc.from, tc.cluster)
		if rr.rec.Old != tc.cluster || rr.rec.Current != tc.current || rr.rec.joins() != "C" {
			t.Errorf("a hello of %s: refused with %+v; want its recovery, current %q", tc.cluster, rr.rec, tc.current)
		}
		msg := rr.Error()
		if !strings.Contains(msg, "stop server "+tc.from+", move its data_dir aside and start it again: it joins cluster C as a new server") ||
			!strings.Contains(msg, "server n1 of cluster C") || strings.Contains(msg, "joins cluster B") {
			t.Errorf("a hello of %s: refused with %q; want it sent to cluster C, n1's", tc.cluster, msg)
		}
	}

	// A server of A told so: its status and its refusals of its old peers
	// send them to C too.
	old := memNode(t, &gateFSM{}, &syncbuf.Buffer{}, func(c *Config) { c.NodeID = "a1" })
	if err := old.setClusterID("A", "test"); err != nil {
		t.Fatal(err)
	}
	old.heardRecovered(refusal("a1", "A").rec, "10.0.0.1:7576")
	err := old.Superseded()
	if err == nil || !strings.Contains(err.Error(), "it is cluster C now") || !strings.Contains(err.Error(), "it joins cluster C as a new server") {
		t.Errorf("a1 superseded: %v; want it sent to cluster C", err)
	}
	var rr *recoveredRefusal
	if err := old.admitRaft(raftHello{ClusterID: "A", From: "a2", To: "a1"}); !errors.As(err, &rr) || rr.rec.joins() != "C" {
		t.Errorf("a1 refusing its old peer a2: %v; want the recovery, joining C", err)
	}

	// Told through OpInfo (a join), the answering server's cluster stands
	// in for the refusal's.
	for _, tc := range []struct{ by, current string }{{"C", "C"}, {"B", ""}, {"", ""}, {"A", ""}} {
		if got := ab.toldBy(tc.by); got.Current != tc.current {
			t.Errorf("A's recovery told by a server of %q: current %q; want %q", tc.by, got.Current, tc.current)
		}
	}
}
