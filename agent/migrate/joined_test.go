package migrate

import (
	"slices"
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"
)

// TestNodeJoiningAWindowIsTakenOut: dc1's maintenance window (06:30–07:30)
// moved a-1's work out by 06:20 and took a-1 out of scheduling; at 06:40 a
// second node, a-2, joins dc1. Every request of the window listed the
// nodes dc1 had as the requests were made, and the window took out only
// those: a-2 stayed in scheduling through the window, and Nomad could
// place work on a node the window takes down. Now a node that joins a
// window's locality while the window is under way goes out of scheduling
// at the next pass, with a hold decision, and is given back at the
// window's end, with a-1.
func TestNodeJoiningAWindowIsTakenOut(t *testing.T) {
	h := newHarness(t, actScenario, windowPolicies(""))
	a1 := h.nodeID("a-1")
	h.passUntil(time.Date(2026, 1, 5, 6, 39, 0, 0, time.UTC), nil)
	var ran []string
	for _, x := range h.local.FSM.Act().Requests {
		if x.Origin == "schedule" && !x.Started.IsZero() {
			ran = append(ran, x.ID)
		}
	}
	if len(ran) == 0 {
		t.Fatal("no request of the window ran by 06:39; the test needs them run")
	}
	ids, err := h.sim.AddNodes("a", 1)
	if err != nil || len(ids) != 1 {
		t.Fatalf("add a node to dc1: %v %v", ids, err)
	}
	a2 := ids[0]
	h.step(30 * time.Second)
	spans := h.outSpans(time.Date(2026, 1, 5, 7, 33, 0, 0, time.UTC), a1, a2)
	if want := []string{"06:40–07:30"}; !slices.Equal(spans[a1], want) {
		t.Errorf("a-1 out of scheduling %q; want %q (from the first pass read)", spans[a1], want)
	}
	if len(spans[a2]) != 1 || !strings.HasPrefix(spans[a2][0], "06:4") || !strings.HasSuffix(spans[a2][0], "–07:30") {
		t.Errorf("a-2, joined at 06:40, out of scheduling %q; want from the next pass to 07:30", spans[a2])
	}
	var holds []string
	for _, d := range h.local.FSM.Decisions() {
		if d.Kind == "hold" && strings.Contains(d.Reason, "node a-2 ") {
			holds = append(holds, d.Time.Format("15:04")+" "+d.Reason)
		}
	}
	if len(holds) != 1 {
		t.Errorf("hold decisions naming a-2 %q; want one", holds)
	}
	t.Logf("holds %q", holds)
}

// TestJoinedNodePurgedIsHeldAgainAndGivenBackAgain: a-2 joins dc1 at
// 06:39, in the maintenance window (06:30–07:30), and goes out of
// scheduling for it (holdJoined); then it is purged and its client
// registers it again. The purge re-hold (holdAgainAll) and re-give-back
// (giveBackAgainAll) read only the nodes the window's requests list, so
// a-2 was neither:
//   - purged within a heartbeat of its take-out, it came back eligible
//     and stayed in scheduling through the window; now it is taken out
//     again, with a hold decision, and given back at 07:30;
//   - purged within a heartbeat after its give-back at 07:30, it came
//     back out of scheduling, as its client last heard, for good; now it
//     is given back again, with a restore decision. (Purged while held,
//     it is given back once it is listed again, as before.)
func TestJoinedNodePurgedIsHeldAgainAndGivenBackAgain(t *testing.T) {
	scenario := actScenario + "\nreregister = \"2m\"\n"
	join := func(h *harness) string {
		h.t.Helper()
		h.passUntil(time.Date(2026, 1, 5, 6, 39, 0, 0, time.UTC), nil)
		ids, err := h.sim.AddNodes("a", 1)
		if err != nil || len(ids) != 1 {
			h.t.Fatalf("add a node to dc1: %v %v", ids, err)
		}
		a2 := ids[0]
		for range 3 {
			h.quarterPass()
			if h.eligibility(a2) == nomadapi.NodeSchedulingIneligible {
				return a2
			}
		}
		h.t.Fatalf("a-2 %s at %s, joined at 06:39; the test needs it taken out", h.eligibility(a2), h.now().Format(time.TimeOnly))
		return ""
	}
	t.Run("held again", func(t *testing.T) {
		h := newHarness(t, scenario, windowPolicies(""))
		a2 := join(h)
		h.purgeNode(a2)
		h.registeredAgain(a2, "a-2")
		if got := h.eligibility(a2); got != nomadapi.NodeSchedulingEligible {
			t.Fatalf("a-2 registered again %s; the test needs it back eligible", got)
		}
		back := h.now().Format("15:04")
		spans := h.outSpans(time.Date(2026, 1, 5, 7, 33, 0, 0, time.UTC), a2)[a2]
		if want := []string{back + "–07:30"}; !slices.Equal(spans, want) {
			t.Errorf("a-2, registered again at %s, out of scheduling %q; want %q", back, spans, want)
		}
		if got := h.decisionsSaying("", "a-2 was purged from Nomad and its client registered it again"); len(got) != 1 {
			t.Errorf("decisions on holding a-2 again %q; want one", got)
		}
	})
	t.Run("given back again", func(t *testing.T) {
		h := newHarness(t, scenario, windowPolicies(""))
		a2 := join(h)
		h.passUntil(time.Date(2026, 1, 5, 7, 29, 0, 0, time.UTC), nil)
		// A pass at a time, purged as soon as a pass gave it back.
		for n := 0; ; n++ {
			h.run(h.flatForecasts(30))
			if err := h.c.Follow(h.ctx, h.now()); err != nil {
				t.Fatal(err)
			}
			if h.eligibility(a2) == nomadapi.NodeSchedulingEligible {
				break
			}
			if n > 20 {
				t.Fatal("a-2 not given back within five minutes of the window's end")
			}
			h.step(15 * time.Second)
		}
		h.purgeNode(a2)
		h.registeredAgain(a2, "a-2")
		if got := h.eligibility(a2); got != nomadapi.NodeSchedulingIneligible {
			t.Fatalf("a-2 registered again %s; the test needs it out, as its client last heard", got)
		}
		h.passUntil(h.now().Add(3*time.Minute), nil)
		if got := h.eligibility(a2); got != nomadapi.NodeSchedulingEligible {
			t.Errorf("a-2 %s after the window, registered again out of scheduling; want it given back; decisions %q", got, h.decisionsSaying("", "a-2"))
		}
		if got := h.decisionsSaying("", "a-2 eligible again: it was purged"); len(got) != 1 {
			t.Errorf("decisions on giving a-2 back again %q; want one", got)
		}
	})
}
