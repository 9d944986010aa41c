package shape

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// opsPolicy, of dc3, drains all of dc1 from 08:30 for an hour, queueing
// its moves into dc2 two hours ahead: its window overlaps that of rack-a
// (08:00–09:00, dc1's own policy, queued half an hour ahead), whose nodes
// it holds.
const opsPolicy = `
shaping "ops" {
  locality {
    datacenter = "dc3"
  }
  migrate {
    strategy  = "reschedule"
    lead_time = "2h"
    targets   = ["dc2"]
  }
  schedule "dc1-all" {
    cron       = "30 8 * * *"
    duration   = "1h"
    action     = "drain"
    localities = ["dc1"]
  }
}
`

// queuedBy lists a plan's submissions as "allocation>policy/schedule@deadline".
func queuedBy(p Plan) []string {
	var out []string
	for _, s := range p.Submit {
		r := s.Request
		sched := strings.SplitN(r.OriginKey, "/", 4)[2]
		out = append(out, r.Resource.ID+">"+r.Policy+"/"+sched+"@"+r.Deadline.Format("15:04"))
	}
	slices.Sort(out)
	return out
}

// TestDrainsOfSharedNodesQueueEachAllocationOnce: two policies' drains of
// shared nodes (rack a of dc1 by dc1's rack-a, all of dc1 by ops's
// dc1-all) in windows that overlap queue each allocation once: in one
// pass the first policy in order takes rack a's (web-0, web-1) and ops
// the rest of dc1's; a pass once they are queued queues nothing more.
// cache-0 may run only in dc1, so neither queues it.
func TestDrainsOfSharedNodesQueueEachAllocationOnce(t *testing.T) {
	f := baseFixture(t, "reschedule")
	f.pols = append(f.pols, parsePolicies(t, opsPolicy)...)
	f.now = at(100 * time.Minute) // 07:40: both in their lead time
	plan := Run(f.input())
	want := []string{"web-0>dc1/rack-a@08:00", "web-1>dc1/rack-a@08:00", "web-2>ops/dc1-all@08:30", "web-3>ops/dc1-all@08:30"}
	if got := queuedBy(plan); !slices.Equal(got, want) {
		t.Fatalf("queued %v; want %v", got, want)
	}
	for _, s := range plan.Submit {
		f.queued(s.Request)
	}
	f.now = at(105 * time.Minute)
	if got := queuedBy(Run(f.input())); len(got) != 0 {
		t.Errorf("queued again %v", got)
	}
}

// TestDrainOfSharedNodesQueuedByAnotherIsDueByItsWindow: the drain whose
// lead time opens first queues the shared nodes' allocations, for its own
// window's start, and the other drain queues nothing for them (taken):
// ops's dc1-all (lead 2h) queues all four web allocations at 06:40 for
// 08:30, and dc1's rack-b (web-2, web-3), with a lead of an hour, finds
// them taken at 07:00, though its window opens at 08:00. The queue reads a request as due by the earliest drain window in its
// lead time that takes down a node it moves work off: with dc2 forecast
// over its line (and holding no room for moves), web-2 and web-3 move at
// 07:30 as due by 08:00, and web-0 and web-1, due by 08:30, wait. Before,
// all four waited for 08:30's turn, and rack b's work could still be on
// it at 08:00.
func TestDrainOfSharedNodesQueuedByAnotherIsDueByItsWindow(t *testing.T) {
	f := baseFixture(t, "reschedule")
	f.pols = append(f.pols, parsePolicies(t, opsPolicy)...)
	f.pols[0].Schedules[0].Name = "rack-b"
	f.pols[0].Schedules[0].Nodes = "dc1-b-*" // web-2 and web-3, queued after web-0 and web-1
	f.pols[0].Migrate.LeadTime = time.Hour
	f.now = at(40 * time.Minute) // 06:40: only ops's lead has begun
	plan := Run(f.input())
	want := []string{"web-0>ops/dc1-all@08:30", "web-1>ops/dc1-all@08:30", "web-2>ops/dc1-all@08:30", "web-3>ops/dc1-all@08:30"}
	if got := queuedBy(plan); !slices.Equal(got, want) {
		t.Fatalf("queued %v; want %v", got, want)
	}
	for _, s := range plan.Submit {
		f.queued(s.Request)
	}
	f.setFrom("dc2", "cpu", 0, 90)        // over dc2's 80% line: a move waits unless due
	f.pols[1].Reserve = f.pols[0].Reserve // none: a move does not wait for room held
	f.now = at(90 * time.Minute)          // 07:30: rack b's lead began at 07:00
	plan = Run(f.input())
	var holds []string
	for _, s := range plan.Submit {
		if r := s.Request; WindowHold(&r) {
			holds = append(holds, r.OriginKey+" "+strings.Join(r.Exclude, ","))
		}
	}
	plan.Submit = slices.DeleteFunc(plan.Submit, func(s Submission) bool { return WindowHold(&s.Request) })
	if got := queuedBy(plan); len(got) != 0 {
		t.Errorf("queued %v; want nothing: every allocation of rack b is queued already", got)
	}
	// Rack b's window has no request of its own: it queues one that moves
	// nothing, whose start takes its nodes out of scheduling from its
	// lead time, whenever ops's moves of their work start.
	if want := "schedule/dc1/rack-b/" + strconv.FormatInt(at(120*time.Minute).Unix(), 10) + "/hold/dc1 "; len(holds) != 1 || !strings.HasPrefix(holds[0], want) {
		t.Errorf("hold requests %q; want one, %s…", holds, want)
	}
	var started []string
	for _, s := range plan.Start {
		for _, r := range f.st.Requests {
			if r.ID == s.Request {
				started = append(started, r.Resource.ID)
			}
		}
	}
	slices.Sort(started)
	if !slices.Equal(started, []string{"web-2", "web-3"}) {
		t.Errorf("started %v; want web-2 and web-3, due by rack-b's 08:00", started)
	}
	if testing.Verbose() {
		for _, d := range plan.Decisions {
			t.Logf("%s %s %s: %s", d.Kind, d.Policy, d.Request, d.Reason)
		}
	}
	for _, r := range f.st.Requests {
		if r.Deadline != at(150*time.Minute) {
			t.Errorf("request %s: its deadline in the state became %s", r.ID, r.Deadline.Format("15:04"))
		}
	}
}
