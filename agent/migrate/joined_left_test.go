package migrate

import (
	"slices"
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"
)

// TestJoinedNodeThatLeavesIsGivenBack: dc1's maintenance window
// (06:30–07:30) is under way when a-2 joins dc1 at 06:39 and goes out of
// scheduling as a late joiner (holdJoined). At 06:50 its client is
// restarted in dc2: a-2 is no longer one of the window's nodes. It stayed
// out of scheduling until 07:30 all the same, lost to dc2's scheduling for
// a window that no longer takes it down; now it is given back at the next
// pass, with a restore decision saying why. What else holds its node
// keeps today's rules:
//   - a-1, which the window took out at its lead time as one of the nodes
//     its requests listed, stays out until 07:30 though it moves to dc2
//     too;
//   - a late joiner an operator drained after foreshape took it out is
//     left as the drain leaves it, as at the window's end;
//   - a late joiner an operator cordoned before foreshape saw it was
//     never foreshape's, and stays out.
func TestJoinedNodeThatLeavesIsGivenBack(t *testing.T) {
	at := func(hh, mm int) time.Time { return time.Date(2026, 1, 5, hh, mm, 0, 0, time.UTC) }
	for _, tc := range []struct {
		name string
		// before runs on the joined node as the test has it joined,
		// before the first pass that sees it; taken says whether
		// foreshape takes it out then.
		before func(h *harness, node string)
		// after runs on it once foreshape took it out (when taken).
		after func(h *harness, node string)
		// listed moves a-1 to dc2 as well.
		listed bool
		// back: the joined node is given back as it leaves.
		back, taken bool
	}{
		{name: "joined node", back: true, taken: true},
		{name: "with a listed node", back: true, taken: true, listed: true},
		{name: "drained by an operator", taken: true, after: func(h *harness, node string) {
			if _, err := h.client.Nodes().UpdateDrainOpts(node, &nomadapi.DrainOptions{
				DrainSpec: &nomadapi.DrainSpec{Deadline: time.Hour}, Meta: map[string]string{"message": "operator"}}, nil); err != nil {
				h.t.Fatal(err)
			}
		}},
		{name: "cordoned by an operator", before: func(h *harness, node string) {
			if _, err := h.client.Nodes().ToggleEligibility(node, false, nil); err != nil {
				h.t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, actScenario, windowPolicies(""))
			a1 := h.nodeID("a-1")
			h.passUntil(at(6, 39), nil)
			ids, err := h.sim.AddNodes("a", 1)
			if err != nil || len(ids) != 1 {
				t.Fatalf("add a node to dc1: %v %v", ids, err)
			}
			a2 := ids[0]
			h.step(20 * time.Second)
			if tc.before != nil {
				tc.before(h, a2)
			}
			h.passUntil(at(6, 45), nil)
			joined := h.decisionsSaying("", "joined the window's localities")
			if tc.taken != (len(joined) == 1) {
				t.Fatalf("decisions taking a-2 out as it joined %q; the test needs taken %v", joined, tc.taken)
			}
			if got := h.eligibility(a2); got != nomadapi.NodeSchedulingIneligible {
				t.Fatalf("a-2 %s at 06:45; the test needs it out of scheduling", got)
			}
			if tc.after != nil {
				tc.after(h, a2)
			}
			h.passUntil(at(6, 49), nil)
			if err := h.sim.RelocateNode(a2, "dc2", "default", "web"); err != nil {
				t.Fatal(err)
			}
			if tc.listed {
				if err := h.sim.RelocateNode(a1, "dc2", "default", "web"); err != nil {
					t.Fatal(err)
				}
			}
			moved := h.now().Format("15:04")
			back := map[string]string{}
			h.passUntil(at(7, 33), func() {
				for _, n := range []string{a1, a2} {
					if back[n] == "" && h.eligibility(n) == nomadapi.NodeSchedulingEligible {
						back[n] = h.now().Format("15:04")
					}
				}
			})
			if back[a1] != "07:30" {
				t.Errorf("a-1 back in scheduling at %q; want 07:30, the window's end", back[a1])
			}
			restored := h.decisionsSaying("", "node a-2 eligible again")
			if !tc.back {
				if back[a2] != "" {
					t.Errorf("a-2 back in scheduling at %s; want it left out; decisions %q", back[a2], h.decisionsSaying("", "a-2"))
				}
				if len(restored) != 0 {
					t.Errorf("restore decisions of a-2 %q; want none", restored)
				}
				return
			}
			if back[a2] != moved {
				t.Errorf("a-2, out of dc1 at %s, back in scheduling at %q; want at the pass that first sees it out; decisions %q", moved, back[a2], h.decisionsSaying("", "a-2"))
			}
			if len(restored) != 1 || !strings.Contains(restored[0], "has left them (now dc2/default/web)") {
				t.Errorf("restore decisions of a-2 %q; want one saying it left the window's localities", restored)
			}
			if slices.ContainsFunc(restored, func(s string) bool { return strings.Contains(s, "a-1") }) {
				t.Errorf("a-1 named in %q", restored)
			}
		})
	}
}
