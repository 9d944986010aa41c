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
