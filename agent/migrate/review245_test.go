package migrate

import (
	"slices"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/state"
)

// TestGiveBackOfAJoinedNodeWaitsForAWindowForeshapeCancelled: dc1's
// maintenance window (06:30–07:30) queues its requests at 06:10 and takes
// a-1 out; web is stopped at 06:14 and foreshape cancels both requests,
// their work gone. The window still holds a-1 to 07:30 and takes out a
// node that joins dc1 (holdJoined, stillHolds). a-2 joins in the lead
// time and a whole-node request of it takes it out first; an operator
// cancels that request. Its give-back waited for a window whose requests
// are queued or ran, but read none that was cancelled, and the policies'
// window (windowHold) is under way only from 06:30: a-2 went back to
// scheduling at once and out again for the window at the next pass. Now
// the give-back waits for the window's end as it does for a window whose
// requests were not cancelled: a-2 stays out to 07:30, given back once.
func TestGiveBackOfAJoinedNodeWaitsForAWindowForeshapeCancelled(t *testing.T) {
	h := newHarness(t, actScenario, cappedWindowPolicies())
	a1 := h.nodeID("a-1")
	h.passUntil(time.Date(2026, 1, 5, 6, 14, 0, 0, time.UTC), nil)
	if _, _, err := h.client.Jobs().Deregister("web", false, nil); err != nil {
		t.Fatal(err)
	}
	h.passUntil(time.Date(2026, 1, 5, 6, 25, 0, 0, time.UTC), nil)
	for _, x := range h.local.FSM.Act().Requests {
		if x.Origin == "schedule" && (x.State != state.RequestCancelled || x.Reason == OperatorCancel) {
			t.Fatalf("%s %s (%s) at %s; the test needs every request of the window cancelled by foreshape", x.ID, x.State, x.Reason, h.now().Format("15:04"))
		}
	}
	if got := h.eligibility(a1); got != nomadapi.NodeSchedulingIneligible {
		t.Fatalf("a-1 %s at %s; the test needs the window to hold it", got, h.now().Format("15:04"))
	}
	a2, from := h.joinHeldThenGivenBack(t)
	spans := h.outSpans(time.Date(2026, 1, 5, 7, 33, 0, 0, time.UTC), a1, a2)
	if want := []string{from + "–07:30"}; !slices.Equal(spans[a2], want) {
		t.Errorf("a-2 out of scheduling %q; want %q, its give-back held for the window; decisions %q", spans[a2], want, h.decisionsSaying("", "a-2"))
	}
	if got := h.decisionsSaying("", "node a-2 eligible again"); len(got) != 1 {
		t.Errorf("give-backs of a-2 %q; want one", got)
	}
	if want := []string{from + "–07:30"}; !slices.Equal(spans[a1], want) {
		t.Errorf("a-1 out of scheduling %q; want %q", spans[a1], want)
	}
}

// TestOperatorsDrainAndTheTakeOutUnderClockSkew: the maintenance window
// (06:30–07:30) takes a-1 out of scheduling from 06:10 by foreshape's
// clock, which runs 30 s behind Nomad's, or 30 s ahead.
//
// Behind: at 06:10:05 by Nomad's clock an operator drains a-1 and calls
// the drain off five seconds later, making a-1 eligible; at 06:10:30 by
// Nomad's (06:10:00 by foreshape's) the window takes a-1 out. The
// give-back compared the drain's start, by Nomad's clock, with the
// take-out, by foreshape's: 06:10:05 is after 06:10:00, so the older
// drain read as one begun while the window held a-1, and a-1, out of
// scheduling by foreshape's own cordon, was left out for good: a node
// lost to scheduling. Ahead: the window takes a-1 out at 06:09:30 by
// Nomad's clock, and 15 s later an operator drains it (forced, so it
// completes): its start read as before the take-out (06:10:00 by
// foreshape's), and the window's end made a-1 eligible, lifting the
// operator's drain. Now the order of the node's own events in Nomad
// (their raft indexes) decides where Nomad still lists them: a-1 is given
// back at 07:30 behind, and left out of scheduling ahead.
func TestOperatorsDrainAndTheTakeOutUnderClockSkew(t *testing.T) {
	for _, tc := range []struct {
		name string
		skew time.Duration // foreshape's clock behind Nomad's
	}{
		{"foreshape behind", 30 * time.Second},
		{"foreshape ahead", -30 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, actScenario, windowPolicies(""))
			a1 := h.nodeID("a-1")
			// pass runs a pass at foreshape's clock.
			pass := func() {
				t.Helper()
				now := h.now().Add(-tc.skew)
				fc := h.flatForecasts(30)
				for i := range fc {
					for k := range fc[i].Times {
						fc[i].Times[k] = fc[i].Times[k].Add(-tc.skew)
					}
				}
				if _, err := h.c.RunOnce(h.ctx, now, h.pols, fc); err != nil {
					t.Fatal(err)
				}
				if err := h.c.Follow(h.ctx, now); err != nil {
					t.Fatal(err)
				}
			}
			drain := func(deadline time.Duration) {
				t.Helper()
				if _, err := h.client.Nodes().UpdateDrainOpts(a1, &nomadapi.DrainOptions{
					DrainSpec: &nomadapi.DrainSpec{Deadline: deadline}, Meta: map[string]string{"message": "disk check"}}, nil); err != nil {
					t.Fatal(err)
				}
			}
			var drained time.Time // the operator's drain, by Nomad's clock
			for h.now().Add(-tc.skew).Before(time.Date(2026, 1, 5, 7, 35, 0, 0, time.UTC)) {
				if tc.skew > 0 && drained.IsZero() && !h.now().Before(time.Date(2026, 1, 5, 6, 10, 0, 0, time.UTC)) {
					if h.eligibility(a1) != nomadapi.NodeSchedulingEligible {
						t.Fatalf("a-1 out at %s by Nomad's clock, before the window's lead time by foreshape's", h.now().Format("15:04:05"))
					}
					h.step(time.Date(2026, 1, 5, 6, 10, 5, 0, time.UTC).Sub(h.now()))
					drained = h.now()
					drain(time.Hour)
					h.step(5 * time.Second)
					if _, err := h.client.Nodes().UpdateDrainOpts(a1, &nomadapi.DrainOptions{DrainSpec: nil, MarkEligible: true}, nil); err != nil {
						t.Fatal(err)
					}
					h.step(20 * time.Second)
				}
				pass()
				if h.now().Add(-tc.skew).Format("15:04") == "07:00" && h.eligibility(a1) != nomadapi.NodeSchedulingIneligible {
					t.Fatalf("a-1 in scheduling at 07:00 by foreshape's clock, in its window; the test needs it out")
				}
				if tc.skew < 0 && drained.IsZero() && h.eligibility(a1) != nomadapi.NodeSchedulingEligible {
					// Taken out at this pass.
					h.step(15 * time.Second)
					drained = h.now()
					drain(-time.Second)
					h.step(45 * time.Second)
					continue
				}
				h.step(time.Minute)
			}
			n, _, err := h.client.Nodes().Info(a1, nil)
			if err != nil {
				t.Fatal(err)
			}
			if n.LastDrain == nil || !n.LastDrain.StartedAt.Equal(drained.Truncate(time.Second)) || n.DrainStrategy != nil {
				t.Fatalf("a-1's last drain %+v, drain %+v; the test needs the operator's of %s, ended", n.LastDrain, n.DrainStrategy, drained.Format("15:04:05"))
			}
			kept := h.decisionsSaying("", "an operator drained it after foreshape took it out")
			back := h.decisionsSaying("", "node a-1 eligible again")
			if tc.skew > 0 {
				if n.SchedulingEligibility != nomadapi.NodeSchedulingEligible || len(back) != 1 || len(kept) != 0 {
					t.Errorf("a-1 %s at 07:35 by foreshape's clock, give-backs %q, kept %q; want it given back once at the window's end: the operator's drain was older than the take-out",
						n.SchedulingEligibility, back, kept)
				}
				return
			}
			if n.SchedulingEligibility != nomadapi.NodeSchedulingIneligible || len(back) != 0 || len(kept) != 1 {
				t.Errorf("a-1 %s at 07:35 by foreshape's clock, give-backs %q, kept %q; want it left out of scheduling, as the operator's drain (begun after the take-out) left it, said once",
					n.SchedulingEligibility, back, kept)
			}
		})
	}
}

// TestNodeDrainedSinceReadsEventsFirst: whether a node foreshape took out
// at 06:10 (by its clock) is under an operator's drain begun after that
// reads the node's events, ordered by their raft indexes, before the
// clocks: Nomad keeps a node's last 10 events.
func TestNodeDrainedSinceReadsEventsFirst(t *testing.T) {
	since := time.Date(2026, 1, 5, 6, 10, 0, 0, time.UTC)
	before, after := since.Add(-time.Minute), since.Add(time.Minute)
	ev := func(subsystem, message string, index uint64) *nomadapi.NodeEvent {
		return &nomadapi.NodeEvent{Subsystem: subsystem, Message: message, CreateIndex: index}
	}
	cordon := ev(nodeEventCluster, nodeEventIneligible, 20)
	set := func(index uint64) *nomadapi.NodeEvent { return ev(nodeEventDrain, nodeEventDrainSet, index) }
	for _, tc := range []struct {
		name     string
		draining bool
		eligible bool
		meta     map[string]string
		started  time.Time
		unseen   bool // no take-out seen made: since is zero
		events   []*nomadapi.NodeEvent
		want     bool
	}{
		{name: "set after the cordon", started: before, events: []*nomadapi.NodeEvent{cordon, set(30)}, want: true},
		{name: "set before the cordon", started: after, events: []*nomadapi.NodeEvent{set(10), cordon}},
		{name: "set listed, cordon gone", started: before, events: []*nomadapi.NodeEvent{set(30)}, want: true},
		{name: "set gone, cordon listed", started: after, events: []*nomadapi.NodeEvent{cordon}},
		{name: "neither listed, started after", started: after, want: true},
		{name: "neither listed, started before", started: before},
		{name: "foreshape's drain", started: after, meta: map[string]string{MetaRequest: "mr-1"}, events: []*nomadapi.NodeEvent{cordon, set(30)}},
		{name: "an operator's drain running", draining: true, started: before, events: []*nomadapi.NodeEvent{set(10), cordon}, want: true},
		{name: "eligible again", eligible: true, started: after, events: []*nomadapi.NodeEvent{cordon, set(30)}},
		{name: "no take-out seen", started: after, unseen: true, events: []*nomadapi.NodeEvent{cordon, set(30)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := &nomadapi.Node{SchedulingEligibility: nomadapi.NodeSchedulingIneligible, Events: tc.events,
				LastDrain: &nomadapi.DrainMetadata{StartedAt: tc.started, Meta: tc.meta}}
			if tc.eligible {
				n.SchedulingEligibility = nomadapi.NodeSchedulingEligible
			}
			if tc.draining {
				n.DrainStrategy = &nomadapi.DrainStrategy{}
			}
			s := since
			if tc.unseen {
				s = time.Time{}
			}
			if got := nodeDrainedSince(n, s); got != tc.want {
				t.Errorf("nodeDrainedSince = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestJoinedNodeOfACancelledWindowHoldingOnlyAJoinedNode: an operator
// cordons a-1 before dc1's maintenance window (06:30–07:30) queues its
// requests at 06:10, so the window takes none of its listed nodes out.
// a-2 joins dc1 at 06:12 and the window takes it out (holdJoined); web is
// stopped at 06:14 and foreshape cancels the window's requests. The
// window still holds a-2 until 07:30, but a node that joined after that
// (a-3, 06:27) stayed in scheduling: stillHolds read only the nodes the
// window's requests list. Now a node the window took out as a late
// joiner counts too: a-3 goes out at once, and both go back at 07:30.
func TestJoinedNodeOfACancelledWindowHoldingOnlyAJoinedNode(t *testing.T) {
	h := newHarness(t, actScenario, cappedWindowPolicies())
	a1 := h.nodeID("a-1")
	if _, err := h.client.Nodes().ToggleEligibility(a1, false, nil); err != nil {
		t.Fatal(err)
	}
	add := func() string {
		t.Helper()
		ids, err := h.sim.AddNodes("a", 1)
		if err != nil || len(ids) != 1 {
			t.Fatalf("add a node to dc1: %v %v", ids, err)
		}
		return ids[0]
	}
	h.passUntil(time.Date(2026, 1, 5, 6, 11, 0, 0, time.UTC), nil)
	a2 := add()
	h.passUntil(time.Date(2026, 1, 5, 6, 14, 0, 0, time.UTC), nil)
	if got := h.eligibility(a2); got != nomadapi.NodeSchedulingIneligible {
		t.Fatalf("a-2 %s at 06:14; the test needs the window to have taken it out; decisions %q", got, h.decisionsSaying("", "a-2"))
	}
	if _, _, err := h.client.Jobs().Deregister("web", false, nil); err != nil {
		t.Fatal(err)
	}
	h.passUntil(time.Date(2026, 1, 5, 6, 26, 0, 0, time.UTC), nil)
	for _, x := range h.local.FSM.Act().Requests {
		if x.Origin == "schedule" && (x.State != state.RequestCancelled || x.Reason == OperatorCancel) {
			t.Fatalf("%s %s (%s) at 06:26; the test needs every request of the window cancelled by foreshape", x.ID, x.State, x.Reason)
		}
	}
	a3 := add()
	spans := h.outSpans(time.Date(2026, 1, 5, 7, 33, 0, 0, time.UTC), a2, a3)
	if want := []string{"06:27–07:30"}; !slices.Equal(spans[a2], want) {
		t.Errorf("a-2 out of scheduling %q; want %q", spans[a2], want)
	}
	if want := []string{"06:27–07:30"}; !slices.Equal(spans[a3], want) {
		t.Errorf("a-3, joined at 06:27, out of scheduling %q; want %q; decisions %q", spans[a3], want, h.decisionsSaying("", "a-3"))
	}
	if got := h.eligibility(a1); got != nomadapi.NodeSchedulingIneligible {
		t.Errorf("a-1, the operator's cordon, %s at 07:33; want it left out", got)
	}
}

// TestJoinedNodeOfTwoOverlappingWindows: dc1's maintenance window
// (06:30–07:30) and dc2's web-maint (07:00–08:00) both take dc1's web
// nodes down. a-2 joins dc1 at 06:40, after maintenance's requests were
// made: maintenance takes it out (holdJoined), and at its end web-maint
// still runs, so a-2 stays out until 08:00 and is given back once.
func TestJoinedNodeOfTwoOverlappingWindows(t *testing.T) {
	h := newHarness(t, actScenario, sharedWindowPolicies())
	h.passUntil(time.Date(2026, 1, 5, 6, 39, 0, 0, time.UTC), nil)
	ids, err := h.sim.AddNodes("a", 1)
	if err != nil || len(ids) != 1 {
		t.Fatalf("add a node to dc1: %v %v", ids, err)
	}
	a2 := ids[0]
	spans := h.outSpans(time.Date(2026, 1, 5, 8, 3, 0, 0, time.UTC), a2)
	if want := []string{"06:40–08:00"}; !slices.Equal(spans[a2], want) {
		t.Errorf("a-2 out of scheduling %q; want %q; decisions %q", spans[a2], want, h.decisionsSaying("", "a-2"))
	}
	if got := h.decisionsSaying("", "node a-2 eligible again"); len(got) != 1 {
		t.Errorf("give-backs of a-2 %q; want one", got)
	}
}
