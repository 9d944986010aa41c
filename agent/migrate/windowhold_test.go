package migrate

import (
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/state"
)

// sharedWindowPolicies are windowPolicies (dc1's maintenance, a drain of
// dc1 from 06:30 to 07:30 queued 20 minutes ahead) with a second drain
// window in policy dc2 of dc1/*/web, which holds dc1's one node, a-1,
// from 07:00 to 08:00 (queued 15 minutes ahead, dc2's reserve.lead_time):
// two policies draining shared nodes in windows that overlap, the later
// one ending last. The policies load (preflight warns of it).
func sharedWindowPolicies() string {
	return strings.Replace(windowPolicies(""), `shaping "dc2" {
  locality {
    datacenter = "dc2"
  }
`, `shaping "dc2" {
  locality {
    datacenter = "dc2"
  }
  schedule "web-maint" {
    cron       = "0 7 * * *"
    duration   = "1h"
    action     = "drain"
    localities = ["dc1/*/web"]
  }
`, 1)
}

// TestWindowOfAnotherPolicyHoldsSharedNodes: dc1's maintenance window
// moves a-1's allocations out and takes a-1 out of scheduling; dc2's
// web-maint window, which takes a-1 down from 07:00 to 08:00, queues no
// request (the planner moves each allocation once: by the time its lead
// time opens a-1's allocations are moved, or queued by dc1's window). When
// dc1's window ended at 07:30 its give-back read only other requests'
// windows and made a-1 eligible while web-maint ran until 08:00: Nomad
// could place work on a node going down. Now a-1 stays out of scheduling
// until 08:00, a hold decision names web-maint and its end, and a-1 is
// given back once, after 08:00.
func TestWindowOfAnotherPolicyHoldsSharedNodes(t *testing.T) {
	h := newHarness(t, actScenario, sharedWindowPolicies())
	node := h.nodeID("a-")
	r := h.windowRequest(func(x state.MigrationRequest) bool {
		return strings.HasPrefix(x.OriginKey, "schedule/dc1/maintenance/")
	})
	start, end := r.Deadline, h.windowEnd(r)
	later := time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)
	if !start.Equal(time.Date(2026, 1, 5, 6, 30, 0, 0, time.UTC)) || !end.Before(later) {
		t.Fatalf("dc1's window %s to %s; the test wants it from 06:30, ending before 08:00", start, end)
	}
	var backAt []time.Time
	h.passUntil(later.Add(3*time.Minute), func() {
		if h.eligibility(node) == nomadapi.NodeSchedulingEligible && !h.now().Before(start) && len(backAt) < 5 {
			backAt = append(backAt, h.now())
		}
	})
	for _, x := range h.local.FSM.Act().Requests {
		if strings.HasPrefix(x.OriginKey, "schedule/dc2/web-maint/") {
			t.Fatalf("web-maint queued request %s (%s); the test needs a window without requests", x.ID, x.OriginKey)
		}
	}
	if len(backAt) == 0 || backAt[0].Before(later) {
		t.Errorf("a-1 eligible at %v; want out of scheduling from 06:30 until web-maint's end at 08:00, then eligible (dc1's window ended at %s)",
			backAt, end.Format("15:04"))
	}
	var restores, holds []string
	for _, d := range h.local.FSM.Decisions() {
		switch {
		case d.Kind == "restore" && strings.Contains(d.Reason, "node a-1 "):
			restores = append(restores, d.Time.Format("15:04:05")+" "+d.Reason)
			if d.Time.Before(later) {
				t.Errorf("a-1 given back at %s, before web-maint's end at 08:00: %s", d.Time.Format("15:04:05"), d.Reason)
			}
		case d.Kind == "hold" && strings.Contains(d.Reason, "node a-1 stays out of scheduling: drain window dc2/web-maint holds it until 08:00 UTC"):
			holds = append(holds, d.Time.Format("15:04:05")+" "+d.Reason)
		}
	}
	if len(restores) != 1 {
		t.Errorf("a-1 given back %d times, want once: %q", len(restores), restores)
	}
	if len(holds) != 1 {
		t.Errorf("%d hold decisions naming web-maint for a-1, want one at dc1's window's end: %q", len(holds), holds)
	}
	t.Logf("restores %q, holds %q", restores, holds)
}

// TestSpreadEndWaitsForAWindowWithoutRequests: a spread cordoned c-1, an
// empty node of dc1, and ends while policy dc2's c-maint window, a drain
// of dc1's nodes c-* from 06:00 to 07:00, runs: c-1 holds nothing to
// move, so the window queued no request. The spread's give-back waits
// for the window's end (before: it came at once, in the middle of the
// window), a hold decision names the window, and c-1 is given back once,
// by the spread, after 07:00.
func TestSpreadEndWaitsForAWindowWithoutRequests(t *testing.T) {
	scenario := strings.Replace(actScenario+cacheJob, `nodes "b" {`, `nodes "c" {
  datacenter = "dc1"
  count      = 0
  node_class = "web"
  cpu        = 4000
  memory     = 8192
  iops       = 1000
}

nodes "b" {`, 1)
	pols := strings.Replace(actPolicies, `shaping "dc2" {
  locality {
    datacenter = "dc2"
  }
`, `shaping "dc2" {
  locality {
    datacenter = "dc2"
  }
  schedule "c-maint" {
    cron       = "0 6 * * *"
    duration   = "1h"
    action     = "drain"
    localities = ["dc1"]
    nodes      = "c-*"
  }
`, 1)
	h := newHarness(t, scenario, pols)
	if _, err := h.sim.AddNodes("c", 1); err != nil {
		t.Fatal(err)
	}
	h.step(30 * time.Second)
	node := h.nodeID("c-")
	s := h.runningSpread(node, true)
	h.passUntil(h.now().Add(5*time.Minute), nil)
	h.endSpread(s)
	end := time.Date(2026, 1, 5, 7, 0, 0, 0, time.UTC)
	var backAt []time.Time
	h.passUntil(end.Add(3*time.Minute), func() {
		if h.eligibility(node) == nomadapi.NodeSchedulingEligible && len(backAt) < 5 {
			backAt = append(backAt, h.now())
		}
	})
	for _, x := range h.local.FSM.Act().Requests {
		if x.Origin == "schedule" {
			t.Fatalf("c-maint queued request %s (%s); the test needs a window without requests", x.ID, x.OriginKey)
		}
	}
	if len(backAt) == 0 || backAt[0].Before(end) {
		t.Errorf("c-1 eligible at %v after spread %s ended; want out of scheduling until c-maint's end at 07:00, then eligible", backAt, s.ID)
	}
	var restores, holds []string
	for _, d := range h.local.FSM.Decisions() {
		switch {
		case d.Kind == "restore" && strings.Contains(d.Reason, "node c-1 "):
			restores = append(restores, d.Time.Format("15:04:05")+" "+d.Request+" "+d.Reason)
		case d.Kind == "hold" && d.Request == s.ID && strings.Contains(d.Reason, "node c-1 stays out of scheduling: drain window dc2/c-maint holds it until 07:00 UTC"):
			holds = append(holds, d.Time.Format("15:04:05")+" "+d.Reason)
		}
	}
	if len(restores) != 1 || !strings.Contains(restores[0], " "+s.ID+" ") {
		t.Errorf("c-1 given back %q; want once, by spread %s", restores, s.ID)
	}
	if len(holds) != 1 {
		t.Errorf("%d hold decisions naming c-maint for c-1, want one: %q", len(holds), holds)
	}
	t.Logf("restores %q, holds %q", restores, holds)
}
