package migrate

import (
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"
)

// TestAsRegistered: a node Nomad registered again is as its client
// registered it while its events, which Nomad keeps for every change of
// eligibility and drain, show none since the registration; a modify index
// that moved (a client's fingerprint or status update) says nothing.
// Events that no longer reach back to the registration (Nomad keeps 10)
// leave the node alone.
func TestAsRegistered(t *testing.T) {
	ev := func(sub, msg string) *nomadapi.NodeEvent { return &nomadapi.NodeEvent{Subsystem: sub, Message: msg} }
	registered := ev("Cluster", "Node registered")
	for _, tc := range []struct {
		name   string
		node   nomadapi.Node
		create uint64
		want   bool
	}{
		{"as registered", nomadapi.Node{CreateIndex: 40, ModifyIndex: 40, Events: []*nomadapi.NodeEvent{registered}}, 40, true},
		{"modified by its client", nomadapi.Node{CreateIndex: 40, ModifyIndex: 47,
			Events: []*nomadapi.NodeEvent{registered, ev("Driver", "Driver docker is detected")}}, 40, true},
		{"taken out and given back", nomadapi.Node{CreateIndex: 40, ModifyIndex: 52, Events: []*nomadapi.NodeEvent{registered,
			ev("Cluster", "Node marked as ineligible for scheduling"), ev("Cluster", "Node marked as eligible for scheduling")}}, 40, false},
		{"drained and given back", nomadapi.Node{CreateIndex: 40, ModifyIndex: 60, Events: []*nomadapi.NodeEvent{registered,
			ev("Drain", "Node drain strategy set"), ev("Drain", "Node drain disabled")}}, 40, false},
		{"the scheduler's plan rejections", nomadapi.Node{CreateIndex: 40, ModifyIndex: 60, Events: []*nomadapi.NodeEvent{registered,
			ev("Cluster", "Node marked as ineligible for scheduling due to multiple plan rejections, refer to …"),
			ev("Cluster", "Node marked as eligible for scheduling")}}, 40, false},
		{"events past the registration dropped", nomadapi.Node{CreateIndex: 40, ModifyIndex: 90,
			Events: []*nomadapi.NodeEvent{ev("Driver", "Driver docker is detected")}}, 40, false},
		{"no events", nomadapi.Node{CreateIndex: 40, ModifyIndex: 40}, 40, false},
		{"registered once more", nomadapi.Node{CreateIndex: 45, ModifyIndex: 45, Events: []*nomadapi.NodeEvent{registered}}, 40, false},
		{"ineligible", nomadapi.Node{CreateIndex: 40, ModifyIndex: 40, SchedulingEligibility: "ineligible",
			Events: []*nomadapi.NodeEvent{registered}}, 40, false},
		{"draining", nomadapi.Node{CreateIndex: 40, ModifyIndex: 40, DrainStrategy: &nomadapi.DrainStrategy{},
			Events: []*nomadapi.NodeEvent{registered}}, 40, false},
	} {
		n := tc.node
		if n.SchedulingEligibility == "" {
			n.SchedulingEligibility = nomadapi.NodeSchedulingEligible
		}
		if got := asRegistered(&n, tc.create, nomadapi.NodeSchedulingEligible); got != tc.want {
			t.Errorf("%s: asRegistered = %v, want %v", tc.name, got, tc.want)
		}
	}
	if asRegistered(nil, 40, nomadapi.NodeSchedulingEligible) {
		t.Error("a node not read: asRegistered = true")
	}
}

// TestTouchedIsForgottenAfterAnHour: a node found touched since its
// registration is not read again for the same hold within touchedFor;
// after that the memo forgets it (one read finds it so again), so the
// memo does not grow for the process's life (before: kept for good).
func TestTouchedIsForgottenAfterAnHour(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	c := &Coordinator{touched: map[string]time.Time{"old@7": t0, "new@9": t0.Add(30 * time.Minute)}}
	if !c.touchedAgain(t0.Add(time.Hour), "old@7") || !c.touchedAgain(t0.Add(time.Hour), "new@9") {
		t.Fatal("a node found touched an hour ago or less is forgotten")
	}
	if c.touchedAgain(t0.Add(time.Hour+time.Second), "old@7") {
		t.Error("a node found touched over an hour ago is still remembered")
	}
	if !c.touchedAgain(t0.Add(time.Hour+time.Second), "new@9") {
		t.Error("a node found touched half an hour ago is forgotten")
	}
	if _, ok := c.touched["old@7"]; ok || len(c.touched) != 1 {
		t.Errorf("memo %v; want only new@9", c.touched)
	}
}
