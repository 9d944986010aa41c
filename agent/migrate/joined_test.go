package migrate

import (
	"slices"
	"strings"
	"testing"
	"time"
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
