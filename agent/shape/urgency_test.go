package shape

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/state"
)

// wavePolicy is a second source, dc3, whose moves go to dc2.
const wavePolicy = `
shaping "dc3" {
  locality {
    datacenter = "dc3"
  }
  migrate {
    max_parallel = 2
    lead_time    = "30m"
    targets      = ["dc2"]
  }
}
`

// waveFixture is a migration wave: n requests of 256 MiB search
// allocations (33 s each), from dc1 (and from dc3, two nodes of its own,
// for the requests from[i] names), one arriving every 15 s before now, each
// due its own time: first after now, the rest every 15 s after it. dc2 has
// room for all of them; reservations are off.
func waveFixture(t *testing.T, n int, first time.Duration, from func(i int) string) *fixture {
	f := baseFixture(t, "reschedule")
	f.pols = append(f.pols, parsePolicies(t, wavePolicy)...)
	f.pols[1].Reserve.Enabled = false
	for i := 1; i <= 2; i++ {
		f.nodes = append(f.nodes, Node{ID: fmt.Sprintf("id-dc3-%d", i), Name: fmt.Sprintf("dc3-%d", i), Datacenter: "dc3", NodePool: "default",
			NodeClass: "web", CPU: 4000, MemoryMB: 8192, Ready: true, Eligible: true})
	}
	f.jobs = append(f.jobs, Job{ID: "search", Namespace: "default", Type: "service", Priority: 50, Datacenters: []string{"dc1", "dc2", "dc3"},
		Groups: map[string]Group{"s": {Count: n}}})
	f.fcs = append(f.fcs, flat("dc3", "cpu", 40, 80), flat("dc3", "memory", 30, 80))
	for i := range n {
		src := from(i)
		node := fmt.Sprintf("id-dc1-b-%d", i%2+1)
		if src == "dc3" {
			node = fmt.Sprintf("id-dc3-%d", i%2+1)
		}
		a := Alloc{ID: fmt.Sprintf("search-%d", i), Name: fmt.Sprintf("search.s[%d]", i), Namespace: "default", Job: "search", Group: "s",
			Node: node, Size: state.Resources{CPU: 100, MemoryMB: 256}, Live: true, Running: true}
		f.allocs = append(f.allocs, a)
		r := f.allocRequest(a.ID)
		r.Source, r.Policy, r.Origin = src, src, "migration"
		r.Created = f.now.Add(-time.Duration(n-i) * 15 * time.Second)
		r.Deadline = f.now.Add(first + time.Duration(i)*15*time.Second)
		f.queued(r)
	}
	return f
}

func fromDC1(int) string { return "dc1" }

// TestWaveJudgedAsABacklog: forty requests out of dc1, due from 25 to
// 34:45 minutes from now, each its own deadline. Alone each has time (33 s
// of work, a pass, a slack of 7.5 minutes: under 9 minutes); together, two
// at a time, a pass a minute per round, the last one needs 38.5 minutes:
// all are urgent, and the pass starts max_parallel of them instead of one.
func TestWaveJudgedAsABacklog(t *testing.T) {
	tests := []struct {
		name  string
		n     int
		first time.Duration
		from  func(int) string
		want  []string
		wait  string // mr-2's reason when it waits
	}{
		{name: "a backlog due soon is urgent", n: 40, first: 25 * time.Minute, from: fromDC1, want: []string{"mr-1", "mr-2"}},
		{name: "a short wave has time: one a pass", n: 4, first: 25 * time.Minute, from: fromDC1, want: []string{"mr-1"},
			wait: "one new transfer a pass through dc1"},
		{name: "a backlog due later has time", n: 40, first: 45 * time.Minute, from: fromDC1, want: []string{"mr-1"},
			wait: "one new transfer a pass through dc1"},
		// Twenty from each of dc1 and dc3: neither source's share is
		// urgent, the forty through dc2 together are.
		{name: "judged at the target too", n: 40, first: 25 * time.Minute, from: func(i int) string {
			if i%2 == 1 {
				return "dc3"
			}
			return "dc1"
		}, want: []string{"mr-1", "mr-2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := waveFixture(t, tt.n, tt.first, tt.from)
			plan := Run(f.input())
			if got := startIDs(plan); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("started %v; want %v", got, tt.want)
			}
			if tt.wait != "" {
				if rs, ok := rescoreOf(plan, "mr-2"); !ok || !strings.Contains(rs.Reason, tt.wait) {
					t.Errorf("mr-2: %+v", rs)
				}
			}
			for _, s := range plan.Start {
				if strings.Contains(s.Reason, "cannot all meet") {
					t.Errorf("%s: %s", s.Request, s.Reason)
				}
			}
		})
	}
}

// TestUrgentBacklogMovesDespiteTheForecast: with dc2 forecast congested,
// a wave whose backlog turns urgent moves anyway, max_parallel at a time;
// one whose backlog has time waits.
func TestUrgentBacklogMovesDespiteTheForecast(t *testing.T) {
	for _, tt := range []struct {
		first time.Duration
		want  []string
	}{{25 * time.Minute, []string{"mr-1", "mr-2"}}, {50 * time.Minute, nil}} {
		f := waveFixture(t, 40, tt.first, fromDC1)
		f.setFrom("dc2", "cpu", 0, 79.5)
		plan := Run(f.input())
		if got := startIDs(plan); !reflect.DeepEqual(got, tt.want) {
			t.Fatalf("first due in %s: started %v; want %v", tt.first, got, tt.want)
		}
		if len(tt.want) > 0 && !strings.Contains(plan.Start[0].Reason, "window near: moving despite the forecast") {
			t.Errorf("reason %q", plan.Start[0].Reason)
		}
	}
}

// TestRunningWorkCountsAhead: with dc1 at max_parallel 3, eight requests
// due from 15 minutes on have time alone (under 12 minutes: three rounds a
// minute apart, 1.5 minutes of work three at a time, the 7.5-minute
// slack), and the pass starts one; behind a move running within dc1 with
// 30 minutes of transfer left (10 of its three places' time) they are
// urgent, and start into the two places left.
func TestRunningWorkCountsAhead(t *testing.T) {
	for _, running := range []bool{false, true} {
		f := waveFixture(t, 8, 15*time.Minute, fromDC1)
		f.pols[0].Migrate.MaxParallel = 3
		want := []string{"mr-1"}
		if running {
			r := f.allocRequest("cache-0")
			r.Target = "dc1"
			r.Moves[0].Size.MemoryMB = 180 * 1024
			r.State, r.Started = state.RequestRunning, f.now.Add(-time.Minute)
			f.queued(r)
			want = []string{"mr-1", "mr-2"}
		}
		plan := Run(f.input())
		if got := startIDs(plan); !reflect.DeepEqual(got, want) {
			t.Errorf("running %v: started %v; want %v", running, got, want)
		}
	}
}

// TestLocalityThatCannotMeetItsDeadlines: forty requests all due in five
// minutes need eleven minutes of transfers two at a time: from the
// twentieth on (19 × 33 s ahead, two at a time: 5m13.5s) they start late.
// The plan says dc1 (and dc2) cannot meet them all, on the moves it starts
// and on those it holds.
func TestLocalityThatCannotMeetItsDeadlines(t *testing.T) {
	f := waveFixture(t, 40, 5*time.Minute, fromDC1)
	for i := range f.st.Requests {
		f.st.Requests[i].Deadline = f.now.Add(5 * time.Minute)
	}
	plan := Run(f.input())
	if got := startIDs(plan); !reflect.DeepEqual(got, []string{"mr-1", "mr-2"}) {
		t.Fatalf("started %v", got)
	}
	want := "dc1: 40 requests cannot all meet their deadlines at max_parallel 2: 21 would start late, the first mr-20 (due 06:05:00, its turn 06:05:13 at the earliest)"
	if !strings.Contains(plan.Start[0].Reason, want) {
		t.Errorf("start reason %q; want it to say %q", plan.Start[0].Reason, want)
	}
	if rs, ok := rescoreOf(plan, "mr-40"); !ok || !strings.HasPrefix(rs.Reason, "max_parallel") || !strings.Contains(rs.Reason, want) {
		t.Errorf("mr-40: %+v", rs)
	}
}

// TestPressedRequestIsNotPlannedPastItsDeadline: dc2 is forecast
// congested for an hour, with room after. A request due in five minutes
// presses; it must not be planned for 07:00 (and its reservation for
// 06:45), past its deadline: its reservation is placed now, and once its
// placeholder runs it moves despite the forecast. Due in three hours, it
// is planned for when dc2 has room.
func TestPressedRequestIsNotPlannedPastItsDeadline(t *testing.T) {
	for _, tt := range []struct {
		due     time.Duration
		reserve bool
		reason  string
	}{
		{due: 5 * time.Minute, reserve: true, reason: "reserving: placeholder for 1000 MHz / 1024 MiB in dc2 from 06:00"},
		{due: 3 * time.Hour, reason: "in line: planned start 07:00"},
	} {
		f := baseFixture(t, "reschedule")
		f.setFrom("dc2", "cpu", 0, 79.5)
		f.setFrom("dc2", "cpu", time.Hour, 50)
		r := f.allocRequest("web-0")
		r.Deadline = at(tt.due)
		f.queued(r)
		plan := Run(f.input())
		if len(plan.Start) != 0 || (len(plan.Reserve) == 1) != tt.reserve {
			t.Fatalf("due in %s: started %v, reserved %+v; decisions %+v", tt.due, startIDs(plan), plan.Reserve, plan.Decisions)
		}
		if rs, ok := rescoreOf(plan, "mr-1"); !ok || !strings.Contains(rs.Reason, tt.reason) {
			t.Errorf("due in %s: mr-1 %+v", tt.due, rs)
		}
		if !tt.reserve {
			continue
		}
		// Its placeholder runs: it moves.
		res := plan.Reserve[0]
		f.st.Requests[0].State = state.RequestReserving
		f.st.Reservations = []state.Reservation{{ID: "rs-1", Request: "mr-1", Policy: "dc2", Locality: "dc2", Job: "foreshape-reserve-rs-1",
			State: state.ReservationHeld, Placed: f.now, Expires: res.Expires, Chunks: res.Chunks}}
		f.allocs = append(f.allocs, Alloc{ID: "ph-1", Job: "foreshape-reserve-rs-1", Namespace: "default", Node: "id-dc2-1",
			Size: state.Resources{CPU: 1000, MemoryMB: 1024}, Live: true, Running: true})
		f.now = f.now.Add(time.Minute)
		plan = Run(f.input())
		if got := startIDs(plan); !reflect.DeepEqual(got, []string{"mr-1"}) || !strings.Contains(plan.Start[0].Reason, "window near: moving despite the forecast") {
			t.Errorf("next pass: started %v; decisions %+v", got, plan.Decisions)
		}
	}
}
