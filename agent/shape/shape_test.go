package shape

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/cronexpr"

	"github.com/foreshape/foreshape/agent/state"
)

func TestDrainScheduleCreatesRequests(t *testing.T) {
	tests := []struct {
		name     string
		strategy string
		now      time.Duration
		apply    func(f *fixture)
		// want lists the resources queued, as "kind/id>target".
		want []string
	}{
		{name: "before lead time", strategy: "drain", now: 89 * time.Minute},
		{name: "drain: one per node of the glob", strategy: "drain", now: 90 * time.Minute,
			want: []string{"node/id-dc1-a-1>dc2", "node/id-dc1-a-2>dc2"}},
		{name: "reschedule: one per movable allocation", strategy: "reschedule", now: 100 * time.Minute,
			// cache may not run in dc2 (its datacenters), so only web moves.
			want: []string{"allocation/web-0>dc2", "allocation/web-1>dc2"}},
		{name: "window open already", strategy: "drain", now: 130 * time.Minute,
			want: []string{"node/id-dc1-a-1>dc2", "node/id-dc1-a-2>dc2"}},
		{name: "window over", strategy: "drain", now: 3 * time.Hour},
		{name: "placeholders and system jobs stay", strategy: "reschedule", now: 90 * time.Minute, apply: func(f *fixture) {
			f.jobs = append(f.jobs, Job{ID: "agent", Namespace: "default", Type: "system", Priority: 80})
			f.allocs = append(f.allocs,
				Alloc{ID: "sys-0", Job: "agent", Group: "a", Namespace: "default", Node: "id-dc1-a-1", Size: state.Resources{CPU: 100, MemoryMB: 128}, Live: true, Running: true},
				Alloc{ID: "ph-0", Job: state.PlaceholderPrefix + "rs-9", Group: "g", Namespace: "default", Node: "id-dc1-a-2", Size: state.Resources{CPU: 100, MemoryMB: 128}, Live: true, Running: true})
		}, want: []string{"allocation/web-0>dc2", "allocation/web-1>dc2"}},
		{name: "already created for this window", strategy: "drain", now: 95 * time.Minute, apply: func(f *fixture) {
			f.st.Requests = []state.MigrationRequest{{ID: "mr-1", State: state.RequestDone,
				OriginKey: "schedule/dc1/rack-a/" + itoa(at(2*time.Hour).Unix()) + "/node/id-dc1-a-1"}}
		}, want: []string{"node/id-dc1-a-2>dc2"}},
		{name: "allocation queued by the operator", strategy: "reschedule", now: 95 * time.Minute, apply: func(f *fixture) {
			f.queued(f.allocRequest("web-1"))
		}, want: []string{"allocation/web-0>dc2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := baseFixture(t, tt.strategy)
			f.now = at(tt.now)
			if tt.apply != nil {
				tt.apply(f)
			}
			plan := Run(f.input())
			var got []string
			for _, s := range plan.Submit {
				r := s.Request
				got = append(got, r.Resource.Key()+">"+r.Target)
				if r.Origin != "schedule" || !r.Deadline.Equal(at(2*time.Hour)) || r.Source != "dc1" || r.Policy != "dc1" || r.Estimated <= 0 {
					t.Errorf("request %+v", r)
				}
				if !strings.Contains(r.Reason, `drain "rack-a"`) {
					t.Errorf("reason %q does not name the schedule", r.Reason)
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("queued %v; want %v", got, tt.want)
			}
			if len(decisionsOf(plan, KindSubmit)) != len(tt.want) {
				t.Errorf("%d submit decisions for %d requests", len(decisionsOf(plan, KindSubmit)), len(tt.want))
			}
		})
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestDrainWithoutAllowedTarget(t *testing.T) {
	f := baseFixture(t, "reschedule")
	f.now = at(95 * time.Minute)
	f.jobs[0].Datacenters = []string{"dc1"} // web may no longer run in dc2
	plan := Run(f.input())
	// Only the window's request that moves nothing, which takes its nodes
	// out of scheduling from its lead time all the same.
	if len(plan.Submit) != 1 || !WindowHold(&plan.Submit[0].Request) {
		t.Fatalf("queued %+v; want only the window's hold request: no target may take its work", plan.Submit)
	}
	want := "hold the 2 nodes of dc1 matching dc1-a-* out of scheduling for window rack-a 08:00–09:00: no request could be made for 3 allocations (dc2 is forbidden by the jobs' constraints)"
	if got := plan.Submit[0].Request.Reason; got != want {
		t.Errorf("hold request's reason %q; want %q", got, want)
	}
	waits := decisionsOf(plan, KindWait)
	if len(waits) == 0 || !strings.Contains(waits[0].Reason, "dc2 is forbidden by the jobs' constraints") {
		t.Errorf("decisions %+v", plan.Decisions)
	}
}

func TestPreAllocation(t *testing.T) {
	tests := []struct {
		name      string
		apply     func(f *fixture)
		wantState state.RequestState
		// wantReserve is the reserved total, zero for none.
		wantReserve state.Resources
		wantStart   bool
		wantScale   bool
		// reason must contain these.
		reason []string
	}{
		{name: "fits: reserve the moved sizes", wantState: state.RequestReserving, wantReserve: state.Resources{CPU: 1500, MemoryMB: 3072},
			reason: []string{"reserving"}},
		{name: "target congested: reserve and wait", apply: func(f *fixture) { f.setFrom("dc2", "cpu", time.Minute, 79) },
			wantState: state.RequestReserving, wantScale: true, wantReserve: state.Resources{CPU: 1500, MemoryMB: 3072},
			reason: []string{"target congested", "p90 cpu demand 79%", "+ incoming 9%", "80% line in dc2 at 06:01", "scaling \"workers\" up by 1"}},
		{name: "congestion after the move: reserve and scale", apply: func(f *fixture) { f.setFrom("dc2", "cpu", 20*time.Minute, 79) },
			wantState: state.RequestReserving, wantReserve: state.Resources{CPU: 1500, MemoryMB: 3072}, wantScale: true},
		// The moved work lands now and stays: capacity for a crossing
		// hours later is needed now, as Nomad will not move placed work
		// onto nodes added then.
		{name: "congestion long after the move: reserve and scale now", apply: func(f *fixture) { f.setFrom("dc2", "cpu", 3*time.Hour, 99) },
			wantState: state.RequestReserving, wantReserve: state.Resources{CPU: 1500, MemoryMB: 3072}, wantScale: true},
		{name: "reservation does not pack: wait and scale", apply: func(f *fixture) {
			for i := range f.nodes {
				if f.nodes[i].Datacenter == "dc2" {
					f.allocs = append(f.allocs, Alloc{ID: "filler-" + f.nodes[i].Name, Job: "filler", Group: "f", Namespace: "default",
						Node: f.nodes[i].ID, Size: state.Resources{CPU: 3600, MemoryMB: 7000}, Live: true, Running: true})
				}
			}
		}, wantState: state.RequestWaiting, wantScale: true, reason: []string{"reservation does not fit", "free capacity (1600 MHz / 4768 MiB on 4 eligible nodes)"}},
		{name: "placeholder running: start with hand-over", apply: func(f *fixture) {
			f.st.Requests[0].State = state.RequestReserving
			f.st.Reservations = []state.Reservation{{ID: "rs-1", Request: "mr-1", Policy: "dc2", Locality: "dc2", Job: "foreshape-reserve-rs-1",
				State: state.ReservationHeld, Placed: at(-time.Minute), Expires: at(time.Hour),
				Chunks: []state.Chunk{{Size: state.Resources{CPU: 1000, MemoryMB: 1024}, Count: 1}, {Size: state.Resources{CPU: 500, MemoryMB: 2048}, Count: 1}}}}
			f.allocs = append(f.allocs,
				Alloc{ID: "ph-1", Job: "foreshape-reserve-rs-1", Namespace: "default", Node: "id-dc2-1", Size: state.Resources{CPU: 1000, MemoryMB: 1024}, Live: true, Running: true},
				Alloc{ID: "ph-2", Job: "foreshape-reserve-rs-1", Namespace: "default", Node: "id-dc2-2", Size: state.Resources{CPU: 500, MemoryMB: 2048}, Live: true, Running: true})
		}, wantStart: true, reason: []string{"hand over rs-1"}},
		{name: "placeholder still placing: keep reserving", apply: func(f *fixture) {
			f.st.Requests[0].State = state.RequestReserving
			f.st.Reservations = []state.Reservation{{ID: "rs-1", Request: "mr-1", Policy: "dc2", Locality: "dc2", Job: "foreshape-reserve-rs-1",
				State: state.ReservationHeld, Placed: at(-30 * time.Second), Expires: at(time.Hour),
				Chunks: []state.Chunk{{Size: state.Resources{CPU: 1000, MemoryMB: 1024}, Count: 1}, {Size: state.Resources{CPU: 500, MemoryMB: 2048}, Count: 1}}}}
		}, wantState: state.RequestReserving, reason: []string{"placeholder placing", "0 of 2"}},
		{name: "placeholder unplaced past the grace: wait and scale", apply: func(f *fixture) {
			f.st.Requests[0].State = state.RequestReserving
			f.st.Reservations = []state.Reservation{latePlaceholder()}
		}, wantState: state.RequestReserving, wantScale: true, reason: []string{"reservation does not fit", "0 of 2 placeholder allocations run in dc2", "scaling \"workers\" up by"}},
		{name: "placeholder no node can take: wait, no scale", apply: func(f *fixture) {
			f.st.Requests[0].State = state.RequestReserving
			f.st.Reservations = []state.Reservation{latePlaceholder()}
			f.unplaceable = map[string]string{"rs-1": "no node of dc2 can run placeholder foreshape-reserve-rs-1 (missing drivers: 4)"}
		}, wantState: state.RequestReserving, reason: []string{"placeholder cannot be placed: rs-1 placed 3m0s ago and 0 of 2 placeholder allocations run in dc2",
			"(missing drivers: 4)", "not scaled for: nodes added to dc2 would not take it either",
			"does not move without its room: it waits until Nomad places the placeholder (once a node can take it) or it is cancelled"}},
		{name: "placeholder no node can take, deadline pressing: move without it", apply: func(f *fixture) {
			f.st.Requests[0].State = state.RequestReserving
			f.st.Requests[0].Deadline = at(time.Minute)
			f.st.Reservations = []state.Reservation{latePlaceholder()}
			f.unplaceable = map[string]string{"rs-1": "no node of dc2 can run placeholder foreshape-reserve-rs-1 (missing drivers: 4)"}
		}, wantStart: true, reason: []string{"window near: moving without waiting for the placeholder: placeholder cannot be placed", "or until its deadline 06:01 presses, when it moves without it"}},
		{name: "reserve.priority too close to the job's", apply: func(f *fixture) {
			f.pols[1].Reserve.Priority = 45
		}, wantStart: true},
		{name: "no reservation in a target without reserve: start", apply: func(f *fixture) {
			f.pols[1].Reserve.Enabled = false
		}, wantStart: true},
		{name: "reservation caps reached", apply: func(f *fixture) {
			f.pols[1].Reserve.MaxCPU = 1000
		}, wantState: state.RequestWaiting, reason: []string{"reservation caps", "over its reserve.max_cpu 1000"}},
		{name: "target congested without reservations: wait", apply: func(f *fixture) {
			f.pols[1].Reserve.Enabled = false
			f.setFrom("dc2", "cpu", time.Minute, 79)
		}, wantState: state.RequestWaiting, wantScale: true, reason: []string{"target congested", "80% line in dc2 at 06:01"}},
		{name: "congested for a while: planned start when it fits", apply: func(f *fixture) {
			f.pols[1].Reserve.Enabled = false
			f.setFrom("dc2", "cpu", time.Minute, 79)
			f.setFrom("dc2", "cpu", 40*time.Minute, 50)
		}, wantState: state.RequestWaiting, reason: []string{"target congested", "planned start 06:40 when it fits"}},
		{name: "paused", apply: func(f *fixture) {
			f.pols[1].Reserve.Enabled = false
			f.st.Paused = true
		}, wantState: state.RequestWaiting, reason: []string{"queue paused"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := nodeRequestFixture(t)
			if tt.apply != nil {
				tt.apply(f)
			}
			plan := Run(f.input())
			var reserved state.Resources
			for _, rs := range plan.Reserve {
				for _, c := range rs.Chunks {
					reserved = reserved.Add(state.Resources{CPU: c.Size.CPU * int64(c.Count), MemoryMB: c.Size.MemoryMB * int64(c.Count)})
				}
				if rs.Locality != "dc2" || rs.Priority != 10 || !rs.From.Equal(f.now) || !rs.Expires.Equal(f.now.Add(2*time.Hour)) || rs.Until.After(rs.Expires) {
					t.Errorf("reserve %+v", rs)
				}
				if len(rs.Chunks) != 2 {
					t.Errorf("chunks %+v; want one per allocation size", rs.Chunks)
				}
			}
			if reserved != tt.wantReserve {
				t.Errorf("reserved %v; want %v", reserved, tt.wantReserve)
			}
			if got := len(plan.Start) == 1; got != tt.wantStart {
				t.Errorf("started %v; want %v (decisions %+v)", plan.Start, tt.wantStart, plan.Decisions)
			}
			if got := len(plan.Scale) > 0; got != tt.wantScale {
				t.Errorf("scale %+v; want one: %v", plan.Scale, tt.wantScale)
			}
			reason := ""
			if tt.wantState != "" {
				rs, ok := rescoreOf(plan, "mr-1")
				if !ok || rs.State != tt.wantState {
					t.Fatalf("rescore %+v; want state %s", rs, tt.wantState)
				}
				reason = rs.Reason
			}
			if tt.wantStart {
				reason = plan.Start[0].Reason
			}
			for _, want := range tt.reason {
				if !strings.Contains(reason, want) {
					t.Errorf("reason %q lacks %q", reason, want)
				}
			}
		})
	}
}

// latePlaceholder is mr-1's reservation rs-1 in dc2, held three minutes
// (past PlaceholderGrace) with none of its placeholder allocations placed.
func latePlaceholder() state.Reservation {
	return state.Reservation{ID: "rs-1", Request: "mr-1", Policy: "dc2", Locality: "dc2", Job: "foreshape-reserve-rs-1",
		State: state.ReservationHeld, Placed: at(-3 * time.Minute), Expires: at(time.Hour), Unplaced: 2,
		Size:   state.Resources{CPU: 1500, MemoryMB: 3072},
		Chunks: []state.Chunk{{Size: state.Resources{CPU: 1000, MemoryMB: 1024}, Count: 1}, {Size: state.Resources{CPU: 500, MemoryMB: 2048}, Count: 1}}}
}

// TestUnplaceableReservationHoldsNoRoom: dc2's nodes have room for one
// request's chunks each. mr-1's placeholder, unplaced past
// PlaceholderGrace, holds room for its chunks until Nomad places them, so
// mr-2's reservation does not pack and dc2 is scaled for it; when no node
// can take mr-1's placeholder (Input.Unplaceable), it holds none: mr-2
// reserves, and nothing scales.
func TestUnplaceableReservationHoldsNoRoom(t *testing.T) {
	for _, unplaceable := range []bool{false, true} {
		t.Run(fmt.Sprintf("unplaceable=%v", unplaceable), func(t *testing.T) {
			f := baseFixture(t, "reschedule")
			// Each dc2 node keeps room for one 1000 MHz / 1024 MiB chunk.
			for i := range f.nodes {
				if f.nodes[i].Datacenter == "dc2" && f.nodes[i].Name != "dc2-1" {
					f.allocs = append(f.allocs, Alloc{ID: "filler-" + f.nodes[i].Name, Job: "filler", Group: "f", Namespace: "default",
						Node: f.nodes[i].ID, Size: state.Resources{CPU: 4000, MemoryMB: 8192}, Live: true, Running: true})
				}
			}
			f.allocs = append(f.allocs, Alloc{ID: "filler-dc2-1", Job: "filler", Group: "f", Namespace: "default",
				Node: "id-dc2-1", Size: state.Resources{CPU: 2800, MemoryMB: 6000}, Live: true, Running: true})
			f.jobs = append(f.jobs, Job{ID: "filler", Namespace: "default", Type: "service", Priority: 50, Datacenters: []string{"dc2"}})
			r1 := f.allocRequest("web-0")
			r1.State = state.RequestReserving
			f.queued(r1)
			f.queued(f.allocRequest("web-1"))
			f.st.Reservations = []state.Reservation{{ID: "rs-1", Request: "mr-1", Policy: "dc2", Locality: "dc2", Job: "foreshape-reserve-rs-1",
				State: state.ReservationHeld, Placed: at(-3 * time.Minute), Expires: at(time.Hour), Unplaced: 1,
				Size: state.Resources{CPU: 1000, MemoryMB: 1024}, Chunks: []state.Chunk{{Size: state.Resources{CPU: 1000, MemoryMB: 1024}, Count: 1}}}}
			if unplaceable {
				f.unplaceable = map[string]string{"rs-1": "no node of dc2 can run placeholder foreshape-reserve-rs-1 (missing drivers: 4)"}
			}
			plan := Run(f.input())
			reserved := slices.ContainsFunc(plan.Reserve, func(rs Reserve) bool { return rs.Request == "mr-2" })
			if reserved != unplaceable {
				t.Errorf("mr-2 reserved: %v; want %v (reserve %+v, decisions %+v)", reserved, unplaceable, plan.Reserve, plan.Decisions)
			}
			if scaled := len(plan.Scale) > 0; scaled == unplaceable {
				t.Errorf("scale %+v; want one: %v (decisions %+v)", plan.Scale, !unplaceable, plan.Decisions)
			}
		})
	}
}

func TestPriorityGapIsRecorded(t *testing.T) {
	f := baseFixture(t, "reschedule")
	f.pols[1].Reserve.Priority = 55
	f.queued(f.allocRequest("web-0"))
	plan := Run(f.input())
	rs := decisionsOf(plan, KindReserve)
	if len(plan.Reserve) != 0 || len(rs) != 1 || !strings.Contains(rs[0].Reason, "reserve.priority 55 of policy dc2 is not at least 10 below job web's priority 60") {
		t.Errorf("reserve %+v decisions %+v", plan.Reserve, rs)
	}
}

func TestMaxParallelAndScoreOrder(t *testing.T) {
	f := baseFixture(t, "reschedule")
	f.pols[1].Reserve.Enabled = false
	f.jobs = append(f.jobs, Job{ID: "db", Namespace: "default", Type: "service", Priority: 90, Datacenters: []string{"dc1", "dc2"},
		Groups: map[string]Group{"db": {Meta: map[string]string{"foreshape_critical": "true"}}}})
	f.allocs = append(f.allocs, Alloc{ID: "db-0", Name: "db.db[0]", Namespace: "default", Job: "db", Group: "db", Node: "id-dc1-b-1",
		Size: state.Resources{CPU: 1000, MemoryMB: 1024}, Live: true, Running: true})
	// Queued oldest first: web-0, web-1, db-0, web-2. The critical db moves
	// first, then the oldest web ones; max_parallel 2 holds the rest. All
	// are due, so more than one may start through dc1 in one pass.
	for _, a := range []string{"web-0", "web-1", "db-0", "web-2"} {
		r := f.allocRequest(a)
		r.Created = f.now.Add(-time.Duration(4-len(f.st.Requests)) * time.Minute)
		r.Deadline = at(time.Minute)
		f.queued(r)
	}
	plan := Run(f.input())
	if got, want := startIDs(plan), []string{"mr-3", "mr-1"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("started %v; want %v", got, want)
	}
	for _, id := range []string{"mr-2", "mr-4"} {
		rs, ok := rescoreOf(plan, id)
		if !ok || rs.State != state.RequestWaiting || !strings.Contains(rs.Reason, "max_parallel: 2 moves run in dc1 (mr-3, mr-1)") {
			t.Errorf("%s: %+v", id, rs)
		}
	}
	// The scores order the queue: the critical one highest.
	scores := map[string]float64{}
	for _, rs := range plan.Rescore {
		scores[rs.ID] = rs.Score
	}
	if !(scores["mr-3"] > scores["mr-1"] && scores["mr-1"] > scores["mr-2"] && scores["mr-2"] > scores["mr-4"]) {
		t.Errorf("scores %v", scores)
	}
	// A global cap of one starts only the first.
	f.limits.MaxParallel = 1
	if got := startIDs(Run(f.input())); !reflect.DeepEqual(got, []string{"mr-3"}) {
		t.Errorf("with a global cap of 1 started %v", got)
	}
	// Running moves count against the caps.
	f.limits.MaxParallel = 0
	f.st.Requests[2].State, f.st.Requests[2].Started = state.RequestRunning, f.now
	if got := startIDs(Run(f.input())); !reflect.DeepEqual(got, []string{"mr-1"}) {
		t.Errorf("with mr-3 running started %v", got)
	}
}

func TestOneNewTransferAPassThroughALocality(t *testing.T) {
	tests := []struct {
		name     string
		deadline time.Duration // 0: none
		want     []string
		reason   string
	}{
		{name: "not due: one a pass", want: []string{"mr-1"}, reason: "one new transfer a pass through dc1: mr-1 started in this pass"},
		{name: "due: max_parallel at once", deadline: time.Minute, want: []string{"mr-1", "mr-2"}},
		{name: "far deadline: one a pass", deadline: 3 * time.Hour, want: []string{"mr-1"}, reason: "one new transfer a pass through dc1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := baseFixture(t, "reschedule")
			f.pols[1].Reserve.Enabled = false
			for i, a := range []string{"web-0", "web-1"} {
				r := f.allocRequest(a)
				r.Created = f.now.Add(-time.Duration(2-i) * time.Minute)
				if tt.deadline > 0 {
					r.Deadline = at(tt.deadline)
				}
				f.queued(r)
			}
			plan := Run(f.input())
			if got := startIDs(plan); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("started %v; want %v", got, tt.want)
			}
			if tt.reason == "" {
				return
			}
			rs, ok := rescoreOf(plan, "mr-2")
			if !ok || rs.State != state.RequestWaiting || !strings.Contains(rs.Reason, tt.reason) {
				t.Errorf("mr-2: %+v", rs)
			}
			// The next pass, with mr-1 running, starts mr-2.
			f.st.Requests[0].State, f.st.Requests[0].Started = state.RequestRunning, f.now
			if got := startIDs(Run(f.input())); !reflect.DeepEqual(got, []string{"mr-2"}) {
				t.Errorf("next pass started %v", got)
			}
		})
	}
}

// TestNoMoveStartsIntoCongestionFromItsPlaceInLine queues three moves to
// a target congested for the next 40 minutes: the first ones in line are
// planned for when it fits (06:40), the later ones after them, where it
// fits too. None of them starts now: a move starting now lands in the
// target now, whatever its place in line.
func TestNoMoveStartsIntoCongestionFromItsPlaceInLine(t *testing.T) {
	f := baseFixture(t, "reschedule")
	f.pols[1].Reserve.Enabled = false
	f.setFrom("dc2", "cpu", 0, 79)
	f.setFrom("dc2", "cpu", 40*time.Minute, 50)
	for _, a := range []string{"web-0", "web-1", "web-2"} {
		f.queued(f.allocRequest(a))
	}
	plan := Run(f.input())
	if len(plan.Start) != 0 {
		t.Fatalf("started %v into a target congested now; decisions %+v", startIDs(plan), plan.Decisions)
	}
	for _, id := range []string{"mr-1", "mr-2", "mr-3"} {
		rs, ok := rescoreOf(plan, id)
		if !ok || rs.State != state.RequestWaiting || !strings.Contains(rs.Reason, "target congested") {
			t.Errorf("%s: %+v", id, rs)
		}
	}
	// Once it fits, the first in line starts (one new transfer a pass).
	f.setFrom("dc2", "cpu", 0, 50)
	if got := startIDs(Run(f.input())); !reflect.DeepEqual(got, []string{"mr-1"}) {
		t.Errorf("with room now started %v; want mr-1", got)
	}
}

// TestShortMoveBeforeTheForecastsFirstPoint plans a pass shortly before
// its forecast's first point (forecasts start at the next step), for a
// move shorter than the gap: the target congested there holds it, as the
// demand at the move's time is the nearest point ahead.
func TestShortMoveBeforeTheForecastsFirstPoint(t *testing.T) {
	f := baseFixture(t, "reschedule")
	f.pols[1].Reserve.Enabled = false
	f.pols[1].Scales = nil // no capacity to wait for
	f.setFrom("dc2", "cpu", 0, 79)
	f.queued(f.allocRequest("web-0"))
	f.now = f.now.Add(-55 * time.Second)
	plan := Run(f.input())
	if len(plan.Start) != 0 {
		t.Fatalf("started %v into a congested target; decisions %+v", startIDs(plan), plan.Decisions)
	}
	if rs, ok := rescoreOf(plan, "mr-1"); !ok || !strings.Contains(rs.Reason, "target congested") {
		t.Errorf("mr-1: %+v", rs)
	}
}

func TestDeadlineOverridesCongestion(t *testing.T) {
	f := baseFixture(t, "reschedule")
	f.pols[1].Reserve.Enabled = false
	f.setFrom("dc2", "cpu", 0, 79)
	r := f.allocRequest("web-0")
	r.Deadline = at(time.Minute)
	r.Origin = "schedule"
	f.queued(r)
	plan := Run(f.input())
	if len(plan.Start) != 1 || !strings.Contains(plan.Start[0].Reason, "window near: moving despite the forecast") {
		t.Errorf("starts %+v decisions %+v", plan.Start, plan.Decisions)
	}
	// Far from its deadline it waits.
	f.st.Requests[0].Deadline = at(2 * time.Hour)
	if plan := Run(f.input()); len(plan.Start) != 0 {
		t.Errorf("started %v an hour before its deadline into a congested target", startIDs(plan))
	}
}

func TestScaleTimingAndCooldown(t *testing.T) {
	base := func(t *testing.T) *fixture {
		f := baseFixture(t, "reschedule")
		f.queued(f.allocRequest("web-0"))
		return f
	}
	t.Run("due only within lead time plus reserve lead", func(t *testing.T) {
		f := base(t)
		f.setFrom("dc2", "cpu", 2*time.Hour, 90) // the move's window reaches 2h only if it waits
		f.st.Requests[0].NotBefore = at(110 * time.Minute)
		plan := Run(f.input())
		// The move lands at 07:50 (the crossing follows at 08:00); lead
		// 5m + 15m: due at 07:30, not yet at 06:00.
		if len(plan.Scale) != 0 {
			t.Fatalf("scaled at 06:00 for a move at 07:50: %+v", plan.Scale)
		}
		rs, _ := rescoreOf(plan, "mr-1")
		if !strings.Contains(rs.Reason, `scale "workers" due at 07:30`) {
			t.Errorf("reason %q", rs.Reason)
		}
		f.now = at(100 * time.Minute)
		plan = Run(f.input())
		if len(plan.Scale) != 1 || plan.Scale[0].Amount != 1 || plan.Scale[0].Plugin != "nomad-job" || !plan.Scale[0].NeededBy.Equal(at(110*time.Minute)) {
			t.Errorf("at 07:40: %+v", plan.Scale)
		}
	})
	t.Run("observed lead time", func(t *testing.T) {
		f := base(t)
		f.setFrom("dc2", "cpu", 2*time.Hour, 90)
		f.st.Requests[0].NotBefore = at(110 * time.Minute)
		f.st.Estimates = map[string]state.Estimate{ScaleLeadKey("dc2", "workers"): {Mean: 2 * time.Hour, Samples: 2}}
		if plan := Run(f.input()); len(plan.Scale) != 1 {
			t.Errorf("a 2h lead did not scale 2h ahead: %+v", plan.Decisions)
		}
	})
	t.Run("cooldown", func(t *testing.T) {
		f := base(t)
		f.setFrom("dc2", "cpu", 0, 79)
		f.st.Cooldowns = map[string]time.Time{state.CooldownKey("dc2", "workers"): at(-5 * time.Minute)}
		plan := Run(f.input())
		if len(plan.Scale) != 0 {
			t.Fatalf("scaled inside the cooldown: %+v", plan.Scale)
		}
		rs, _ := rescoreOf(plan, "mr-1")
		if !strings.Contains(rs.Reason, `scale "workers" cools down until 06:05`) {
			t.Errorf("reason %q", rs.Reason)
		}
		f.now = at(5 * time.Minute)
		if plan := Run(f.input()); len(plan.Scale) != 1 {
			t.Errorf("no scale once the cooldown is over")
		}
	})
	t.Run("cooldown from when a retried scale took effect", func(t *testing.T) {
		// Decided at 05:46, refused during a deployment and retried by the
		// target, the scale took effect at 05:54: the 10m cooldown runs to
		// 06:04, not to 05:56. The state the planner reads is what the
		// replicated state makes of the recorded action.
		l, err := state.NewLocal(state.Config{})
		if err != nil {
			t.Fatal(err)
		}
		a := state.ScaleAction{Policy: "dc2", Scale: "workers", Plugin: "nomad-job", Locality: "dc2", Direction: "up", Amount: 1, At: at(-14 * time.Minute)}
		r, err := l.Apply(context.Background(), state.RecordScaleAction{Action: a})
		if err != nil {
			t.Fatal(err)
		}
		a.ID, a.Outcome, a.Attempts, a.Finished, a.TookEffect = r.ID, state.OutcomeDone, 2, at(-6*time.Minute), at(-6*time.Minute)
		if _, err := l.Apply(context.Background(), state.RecordScaleAction{Action: a}); err != nil {
			t.Fatal(err)
		}
		f := base(t)
		f.setFrom("dc2", "cpu", 0, 79)
		view := l.FSM.Act()
		f.st.Cooldowns, f.st.ScaleActions = view.Cooldowns, view.ScaleActions
		plan := Run(f.input())
		if len(plan.Scale) != 0 {
			t.Fatalf("scaled 6m after the scale took effect, inside its 10m cooldown: %+v", plan.Scale)
		}
		rs, _ := rescoreOf(plan, "mr-1")
		if !strings.Contains(rs.Reason, `scale "workers" cools down until 06:04`) {
			t.Errorf("reason %q", rs.Reason)
		}
		f.now = at(4 * time.Minute)
		if plan := Run(f.input()); len(plan.Scale) != 1 {
			t.Errorf("no scale once the cooldown from the effect is over")
		}
	})
	t.Run("an action its target still works on holds its block", func(t *testing.T) {
		// Decided at 05:40; its nomad-job target has waited for a
		// deployment since: its 10m cooldown from the decision is over,
		// but the call is still open.
		f := base(t)
		f.setFrom("dc2", "cpu", 0, 79)
		f.st.ScaleActions = []state.ScaleAction{{ID: "sa-1", Policy: "dc2", Scale: "workers", At: at(-20 * time.Minute)}}
		f.st.Cooldowns = map[string]time.Time{state.CooldownKey("dc2", "workers"): at(-20 * time.Minute)}
		f.st.OpenIntents = []state.Intent{{ID: "scale_target/dc2/workers/sa-1#0", Kind: state.IntentScaleTarget, Object: "dc2/workers",
			Opened: at(-20 * time.Minute)}}
		plan := Run(f.input())
		if len(plan.Scale) != 0 {
			t.Fatalf("scaled while the target still works on sa-1: %+v", plan.Scale)
		}
		rs, _ := rescoreOf(plan, "mr-1")
		if !strings.Contains(rs.Reason, `scale "workers" is in flight since 05:40: its target has not answered`) {
			t.Errorf("reason %q", rs.Reason)
		}
		f.st.OpenIntents = nil // it answered
		if plan := Run(f.input()); len(plan.Scale) != 1 {
			t.Errorf("no scale once the call is closed and the cooldown over")
		}
	})
	t.Run("a failed action backs off a quarter of the cooldown", func(t *testing.T) {
		f := base(t)
		f.setFrom("dc2", "cpu", 0, 79)
		f.st.ScaleActions = []state.ScaleAction{{ID: "sa-1", Policy: "dc2", Scale: "workers", At: at(-time.Minute),
			Outcome: state.OutcomeFailed, Error: "cloud at its limit"}}
		plan := Run(f.input())
		if len(plan.Scale) != 0 {
			t.Fatalf("scaled a minute after a failure: %+v", plan.Scale)
		}
		rs, _ := rescoreOf(plan, "mr-1")
		if !strings.Contains(rs.Reason, `scale "workers" failed at 05:59 (cloud at its limit); next try at 06:01`) {
			t.Errorf("reason %q", rs.Reason)
		}
		f.now = at(2 * time.Minute)
		if plan := Run(f.input()); len(plan.Scale) != 1 {
			t.Errorf("no retry after the backoff")
		}
	})
	t.Run("the back-off runs from the failure, not the decision", func(t *testing.T) {
		// Decided 10m ago, failed a minute ago (a webhook's retries, a
		// deployment waited out): the back-off had passed by the time
		// the target answered, and the block acted again at once.
		f := base(t)
		f.setFrom("dc2", "cpu", 0, 79)
		f.st.ScaleActions = []state.ScaleAction{{ID: "sa-1", Policy: "dc2", Scale: "workers", At: at(-10 * time.Minute),
			Finished: at(-time.Minute), Outcome: state.OutcomeFailed, Error: "no answer"}}
		plan := Run(f.input())
		if len(plan.Scale) != 0 {
			t.Fatalf("scaled a minute after a failure: %+v", plan.Scale)
		}
		rs, _ := rescoreOf(plan, "mr-1")
		if !strings.Contains(rs.Reason, `scale "workers" failed at 05:59 (no answer); next try at 06:01`) {
			t.Errorf("reason %q", rs.Reason)
		}
		f.now = at(2 * time.Minute)
		if plan := Run(f.input()); len(plan.Scale) != 1 {
			t.Errorf("no retry after the backoff")
		}
	})
	t.Run("amount in nodes of the locality", func(t *testing.T) {
		f := base(t)
		// 95% at 4×4000 MHz: need 79%-line… shortfall (95+6−80)% of 16000 = 3360 MHz → one 4000 MHz node.
		f.setFrom("dc2", "cpu", 0, 95)
		if plan := Run(f.input()); len(plan.Scale) != 1 || plan.Scale[0].Amount != 1 {
			t.Errorf("%+v", plan.Scale)
		}
		f.setFrom("dc2", "cpu", 0, 150)
		if plan := Run(f.input()); len(plan.Scale) != 1 || plan.Scale[0].Amount != 4 {
			t.Errorf("%+v", plan.Scale)
		}
	})
}

func TestHotspotWithoutRequestScales(t *testing.T) {
	f := baseFixture(t, "reschedule")
	f.setFrom("dc2", "memory", 10*time.Minute, 85)
	plan := Run(f.input())
	if len(plan.Scale) != 1 || plan.Scale[0].Policy != "dc2" || plan.Scale[0].Request != "" {
		t.Fatalf("scale %+v", plan.Scale)
	}
	if !strings.Contains(plan.Scale[0].Reason, "hotspot: p90 memory 85% crosses the 80% line in dc2 at 06:10") {
		t.Errorf("reason %q", plan.Scale[0].Reason)
	}
	// A request moving work out of dc2 relieves it.
	f.queued(state.MigrationRequest{Resource: state.Resource{Kind: state.ResourceAllocation, ID: "x"}, Source: "dc2", Target: "dc1",
		Moves: []state.Move{{Alloc: "x", Job: "web", Group: "frontend", Size: state.Resources{CPU: 1, MemoryMB: 1}}}})
	for _, s := range Run(f.input()).Scale {
		if strings.HasPrefix(s.Reason, "hotspot") {
			t.Errorf("scaled a relieved hotspot: %+v", s)
		}
	}
}

// A forecast in percent repeats shares of the capacity its history was
// measured against: after dc2 scaled out from 4 to 6 nodes, yesterday's
// 85% of 32768 MiB (27853 MiB) is 57% of the 49152 MiB it has now. A
// hotspot is read on the absolute demand over the capacity now, so it does
// not scale again for shares of the old capacity; without the demand it
// reads the percentages as they are. A move's check keeps reading them.
func TestDemandOverTheCapacityNow(t *testing.T) {
	scaledOut := func(t *testing.T) *fixture {
		f := baseFixture(t, "reschedule")
		for i := 5; i <= 6; i++ {
			f.nodes = append(f.nodes, Node{ID: fmt.Sprintf("id-dc2-%d", i), Name: fmt.Sprintf("dc2-%d", i), Datacenter: "dc2", NodePool: "default",
				NodeClass: "web", CPU: 4000, MemoryMB: 8192, Ready: true, Eligible: true})
		}
		f.setFrom("dc2", "memory", 10*time.Minute, 85)
		return f
	}
	withDemand := func(f *fixture, mib float64) {
		for i := range f.fcs {
			if f.fcs[i].Locality == "dc2" {
				f.fcs[i].Demand = make([]float64, len(f.fcs[i].Planning))
				for k, v := range f.fcs[i].Planning {
					f.fcs[i].Demand[k] = v / 100 * 4 * 4000 // CPU: shares of the old 4 nodes
					if f.fcs[i].Metric == "memory" {
						f.fcs[i].Demand[k] = v / 100 * mib
					}
				}
			}
		}
	}
	t.Run("percent only", func(t *testing.T) {
		f := scaledOut(t)
		if plan := Run(f.input()); len(plan.Scale) != 1 {
			t.Fatalf("no scale on 85%% memory: %+v", plan.Decisions)
		}
	})
	t.Run("demand over the 6 nodes now", func(t *testing.T) {
		f := scaledOut(t)
		withDemand(f, 4*8192)
		in := f.input()
		plan := Run(in)
		if len(plan.Scale) != 0 {
			t.Fatalf("scaled for 85%% of the old capacity, 57%% of the capacity now: %+v", plan.Scale)
		}
		if in.Forecasts[3].Planning[20] != 85 {
			t.Errorf("the input's forecast changed: %v", in.Forecasts[3].Planning[20])
		}
	})
	t.Run("a move's check reads the percent", func(t *testing.T) {
		f := scaledOut(t)
		withDemand(f, 4*8192)
		f.queued(f.allocRequest("web-0"))
		plan := Run(f.input())
		rs, _ := rescoreOf(plan, "mr-1")
		if !strings.Contains(rs.Reason, "p90 memory demand 85%") {
			t.Errorf("reason %q", rs.Reason)
		}
	})
	t.Run("demand over the line of the capacity now", func(t *testing.T) {
		f := scaledOut(t)
		withDemand(f, 6*8192)
		plan := Run(f.input())
		if len(plan.Scale) != 1 || !strings.Contains(plan.Scale[0].Reason, "hotspot: p90 memory 85% crosses the 80% line in dc2 at 06:10") {
			t.Fatalf("scale %+v", plan.Scale)
		}
	})
}

func TestReleases(t *testing.T) {
	f := baseFixture(t, "reschedule")
	f.st.Requests = []state.MigrationRequest{{ID: "mr-1", State: state.RequestDone}, {ID: "mr-2", State: state.RequestReserving,
		Source: "dc1", Target: "dc2", Created: f.now}, {ID: "mr-3", State: state.RequestRunning, Source: "dc1", Target: "dc2",
		Created: f.now, Started: at(-30 * time.Minute)}}
	f.st.Reservations = []state.Reservation{
		{ID: "rs-1", Request: "mr-1", Policy: "dc2", Locality: "dc2", State: state.ReservationHeld, Expires: at(time.Hour)},
		// reserve.ttl is a hard end from placement: a reservation whose
		// move still runs goes too.
		{ID: "rs-5", Request: "mr-3", Policy: "dc2", Locality: "dc2", State: state.ReservationHeld, Placed: at(-time.Hour), Expires: at(0)},
		{ID: "rs-2", Request: "mr-2", Policy: "dc2", Locality: "dc2", State: state.ReservationHeld, Placed: at(-2 * time.Hour), Expires: at(0)},
		{ID: "rs-3", Request: "mr-9", Policy: "dc2", Locality: "dc2", State: state.ReservationHeld, Expires: at(time.Hour)},
		{ID: "rs-4", Request: "mr-1", Policy: "dc2", Locality: "dc2", State: state.ReservationReleased},
	}
	plan := Run(f.input())
	got := map[string]string{}
	for _, r := range plan.Release {
		got[r.Reservation] = r.Reason
	}
	want := map[string]string{"rs-1": "request mr-1 is done", "rs-2": "expired at 06:00", "rs-3": "request mr-9 is gone", "rs-5": "expired at 06:00"}
	if len(got) != len(want) {
		t.Errorf("released %v", got)
	}
	for id, w := range want {
		if !strings.Contains(got[id], w) {
			t.Errorf("%s: %q; want %q", id, got[id], w)
		}
	}
}

func TestScheduleRequestCancelledAfterItsWindow(t *testing.T) {
	f := baseFixture(t, "drain")
	f.now = at(3*time.Hour + time.Minute)
	f.queued(state.MigrationRequest{Resource: state.Resource{Kind: state.ResourceNode, ID: "id-dc1-a-1"}, Source: "dc1", Target: "dc2",
		Policy: "dc1", Origin: "schedule", Deadline: at(2 * time.Hour),
		OriginKey: "schedule/dc1/rack-a/" + itoa(at(2*time.Hour).Unix()) + "/node/id-dc1-a-1"})
	plan := Run(f.input())
	if len(plan.Cancel) != 1 || !strings.Contains(plan.Cancel[0].Reason, `the window of "rack-a" ended at 09:00`) || len(plan.Start) != 0 {
		t.Errorf("cancel %+v start %+v", plan.Cancel, plan.Start)
	}
}

// A window request queued before a reload took its schedule, or its
// policy, out of the policies, or changed its cron so that the window's
// start is no longer one it fires at, is cancelled saying so: its window
// no longer comes. It was planned as any request, moved its work and held
// its node out until the window's start.
func TestScheduleRequestCancelledWhenItsScheduleIsGone(t *testing.T) {
	for _, tc := range []struct {
		name  string
		tweak func(f *fixture)
		why   string
	}{
		{"schedule", func(f *fixture) { f.pols[0].Schedules = nil }, `schedule "rack-a" is no longer in policy "dc1"`},
		{"policy", func(f *fixture) { f.pols = f.pols[1:] }, `policy "dc1", whose drain schedule queued it, is no longer loaded`},
		{"cron", func(f *fixture) { recron(f, "0 9 * * *") },
			`schedule "rack-a" of policy "dc1" no longer opens a window at 2026-01-05T08:00:00Z (its cron is now "0 9 * * *")`},
		{"cron that still fires then", func(f *fixture) { recron(f, "0 8,20 * * *") }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := baseFixture(t, "drain")
			f.now = at(time.Hour + 50*time.Minute)
			f.queued(state.MigrationRequest{Resource: state.Resource{Kind: state.ResourceNode, ID: "id-dc1-a-1"}, Source: "dc1", Target: "dc2",
				Policy: "dc1", Origin: "schedule", Deadline: at(2 * time.Hour),
				OriginKey: "schedule/dc1/rack-a/" + itoa(at(2*time.Hour).Unix()) + "/node/id-dc1-a-1"})
			tc.tweak(f)
			plan := Run(f.input())
			if tc.why == "" {
				if len(plan.Cancel) != 0 {
					t.Errorf("cancel %+v; want its window kept", plan.Cancel)
				}
				return
			}
			if len(plan.Cancel) != 1 || plan.Cancel[0].Reason != ReloadCancel+": "+tc.why || plan.Cancel[0].DryRun || len(plan.Start) != 0 || len(plan.Reserve) != 0 {
				t.Errorf("cancel %+v start %+v reserve %+v; want it cancelled: %s", plan.Cancel, plan.Start, plan.Reserve, tc.why)
			}
		})
	}
}

// recron gives the fixture's drain schedule another cron, as a reload
// that moved the maintenance does.
func recron(f *fixture, cron string) {
	s := &f.pols[0].Schedules[0]
	s.Cron, s.Expr = cron, cronexpr.MustParse(cron)
}

// A window request whose first attempt ran (its node drained, its
// allocations stopped) and failed, queued again for its retry when the
// window ends, is cancelled saying so: not that its move never started.
// Seen on Nomad with a drain window over the node of one of foreshape's
// own servers: the drain stopped the server, which had nowhere else to
// go, so the move never settled; the cancel said the move could not
// start.
func TestScheduleRetryCancelledAfterItsWindow(t *testing.T) {
	f := baseFixture(t, "drain")
	f.now = at(3*time.Hour + time.Minute)
	failed := "attempt 1 of 3 failed, retrying: not settled 10m1s after its start (timeout 10m0s): waiting for 834d32ee (no replacement yet)"
	f.queued(state.MigrationRequest{Resource: state.Resource{Kind: state.ResourceNode, ID: "id-dc1-a-1"}, Source: "dc1", Target: "dc2",
		Policy: "dc1", Origin: "schedule", Deadline: at(2 * time.Hour), Attempts: 1, Reason: failed,
		OriginKey: "schedule/dc1/rack-a/" + itoa(at(2*time.Hour).Unix()) + "/node/id-dc1-a-1"})
	plan := Run(f.input())
	if len(plan.Cancel) != 1 || len(plan.Start) != 0 {
		t.Fatalf("cancel %+v start %+v", plan.Cancel, plan.Start)
	}
	why := plan.Cancel[0].Reason
	if strings.Contains(why, "before the move could start") || !strings.Contains(why, `the window of "rack-a" ended at 09:00 before attempt 2 could start`) ||
		!strings.Contains(why, failed) {
		t.Errorf("cancel reason %q; want the window's end before attempt 2, and why attempt 1 failed", why)
	}
}

func TestRebalance(t *testing.T) {
	f := baseFixture(t, "reschedule")
	f.pols[0].Migrate.Rebalance = true
	f.pols[0].Schedules = nil
	// dc1 (16000 MHz) at 87% p90 from 06:30: 7% over the line = 1120 MHz:
	// the largest allocations first: one 1000 MHz web is not enough, two
	// are.
	f.setFrom("dc1", "cpu", 30*time.Minute, 87)
	plan := Run(f.input())
	if len(plan.Submit) != 2 {
		t.Fatalf("submitted %d; want the 2 largest allocations (decisions %+v)", len(plan.Submit), plan.Decisions)
	}
	for _, s := range plan.Submit {
		r := s.Request
		if r.Origin != "planner" || r.Target != "dc2" || r.Moved.CPU != 1000 || !strings.Contains(r.Reason, "rebalance: p90 cpu 87% crosses the 80% line at 06:30") {
			t.Errorf("request %+v", r)
		}
	}
	// Once queued, no more requests while they relieve the locality.
	for _, s := range plan.Submit {
		f.queued(s.Request)
	}
	if plan := Run(f.input()); len(plan.Submit) != 0 {
		t.Errorf("rebalanced again: %+v", plan.Submit)
	}
	// A target without room refuses.
	f.st.Requests = nil
	f.setFrom("dc2", "cpu", 0, 79)
	plan = Run(f.input())
	if len(plan.Submit) != 0 || len(decisionsOf(plan, KindWait)) == 0 || !strings.Contains(decisionsOf(plan, KindWait)[0].Reason, "dc2 has no room") {
		t.Errorf("submit %+v decisions %+v", plan.Submit, plan.Decisions)
	}
}

func TestDryRun(t *testing.T) {
	for _, mode := range []string{"agent", "policy"} {
		t.Run(mode, func(t *testing.T) {
			f := baseFixture(t, "drain")
			f.now = at(95 * time.Minute)
			f.setFrom("dc2", "memory", 0, 90)
			if mode == "agent" {
				f.forecastOnly = true
			} else {
				f.pols[0].ForecastOnly = true
				f.pols[1].ForecastOnly = true
			}
			r := f.allocRequest("web-2")
			f.queued(r)
			plan := Run(f.input())
			if len(plan.Submit) == 0 || len(plan.Scale) == 0 || len(plan.Decisions) == 0 {
				t.Fatalf("dry run planned nothing: %+v", plan)
			}
			for _, d := range plan.Decisions {
				if !d.DryRun {
					t.Errorf("decision not marked dry: %+v", d)
				}
			}
			for _, s := range plan.Scale {
				if !s.DryRun {
					t.Errorf("scale not dry: %+v", s)
				}
			}
			for _, s := range plan.Submit {
				if !s.DryRun {
					t.Errorf("submit not dry: %+v", s)
				}
			}
		})
	}
}

func TestRunIsPureAndDeterministic(t *testing.T) {
	f := baseFixture(t, "reschedule")
	f.now = at(95 * time.Minute)
	for _, a := range []string{"web-2", "web-3"} {
		f.queued(f.allocRequest(a))
	}
	in := f.input()
	before := slices.Clone(in.State.Requests)
	a, b := Run(in), Run(in)
	if !reflect.DeepEqual(a, b) {
		t.Error("two runs over one input differ")
	}
	if !reflect.DeepEqual(before, in.State.Requests) {
		t.Error("Run changed its input")
	}
}

func TestFeasible(t *testing.T) {
	n := &Node{ID: "n1", Name: "dc2-web-1", Datacenter: "dc2", NodePool: "default", NodeClass: "web", Meta: map[string]string{"rack": "c", "zones": "a,b"}}
	tests := []struct {
		name string
		job  Job
		want bool
	}{
		{"any", Job{}, true},
		{"datacenter glob", Job{Datacenters: []string{"dc*"}}, true},
		{"other datacenter", Job{Datacenters: []string{"dc1"}}, false},
		{"other pool", Job{NodePool: "batch"}, false},
		{"all pools", Job{NodePool: "all"}, true},
		{"class", Job{Constraints: []Constraint{{LTarget: "${node.class}", RTarget: "web", Operand: "="}}}, true},
		{"class differs", Job{Constraints: []Constraint{{LTarget: "${node.class}", RTarget: "batch"}}}, false},
		{"meta !=", Job{Constraints: []Constraint{{LTarget: "${meta.rack}", RTarget: "c", Operand: "!="}}}, false},
		{"regexp", Job{Constraints: []Constraint{{LTarget: "${node.unique.name}", RTarget: "^dc2-", Operand: "regexp"}}}, true},
		{"set_contains", Job{Constraints: []Constraint{{LTarget: "${meta.zones}", RTarget: "b", Operand: "set_contains"}}}, true},
		{"is_set missing", Job{Constraints: []Constraint{{LTarget: "${meta.gpu}", Operand: "is_set"}}}, false},
		{"unknown attribute is not judged", Job{Constraints: []Constraint{{LTarget: "${attr.kernel.name}", RTarget: "windows"}}}, true},
		{"group constraint", Job{Groups: map[string]Group{"g": {Constraints: []Constraint{{LTarget: "${node.datacenter}", RTarget: "dc1"}}}}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Feasible(&tt.job, "g", n); got != tt.want {
				t.Errorf("Feasible = %v; want %v", got, tt.want)
			}
		})
	}
}

// TestDrainOfSomeNodesStaysInTheLocality drains rack a of dc1 with no
// migrate.targets: the rest of dc1 takes the work, and the reservation
// keeps off the drained nodes.
func TestDrainOfSomeNodesStaysInTheLocality(t *testing.T) {
	f := baseFixture(t, "reschedule")
	f.pols[0].Migrate.Targets = nil
	f.now = at(95 * time.Minute)
	plan := Run(f.input())
	// cache, which may not leave dc1, moves too: it stays in dc1.
	if len(plan.Submit) != 3 {
		t.Fatalf("submitted %+v", plan.Submit)
	}
	r := plan.Submit[1].Request
	if r.Target != "dc1" || !slices.Equal(r.Exclude, []string{"id-dc1-a-1", "id-dc1-a-2"}) || !strings.Contains(r.Reason, "the rest of dc1") {
		t.Fatalf("request %+v", r)
	}
	// Queued, its reservation packs onto rack b only.
	f.queued(r)
	f.pols[0].Reserve = f.pols[1].Reserve
	plan = Run(f.input())
	if len(plan.Reserve) != 1 || !slices.Equal(plan.Reserve[0].Exclude, r.Exclude) {
		t.Fatalf("reserve %+v; decisions %+v", plan.Reserve, plan.Decisions)
	}
	// With rack b full it does not fit, though rack a has room.
	for _, n := range []string{"id-dc1-b-1", "id-dc1-b-2"} {
		f.allocs = append(f.allocs, Alloc{ID: "fill-" + n, Job: "filler", Namespace: "default", Node: n,
			Size: state.Resources{CPU: 2900, MemoryMB: 7000}, Live: true, Running: true})
	}
	plan = Run(f.input())
	if len(plan.Reserve) != 0 {
		t.Errorf("reserved on drained nodes: %+v", plan.Reserve)
	}
}

// TestDrainOfSomeNodesReadsTheRestOfTheLocality: a drain of rack a (half
// of dc1) with no migrate.targets reads dc1's room on rack b, which will
// carry all of dc1's work: dc1's forecast 41% of its four nodes is 82% of
// the two left, over the 80% line, so the web allocations go to dc2
// (forecast 47%) though dc1 looked the roomier read on all four nodes;
// cache, which may not leave dc1, still stays. At 35% (70% of rack b)
// the rest of dc1 comes first, though dc2 at 20% has more room, and its
// moves are checked on rack b with nothing incoming.
func TestDrainOfSomeNodesReadsTheRestOfTheLocality(t *testing.T) {
	f := baseFixture(t, "reschedule")
	f.pols[0].Migrate.Targets = nil
	f.now = at(95 * time.Minute)
	f.setFrom("dc1", "cpu", 0, 41)
	f.setFrom("dc2", "cpu", 0, 47)
	plan := Run(f.input())
	targets := map[string]string{}
	for _, s := range plan.Submit {
		targets[s.Request.Moves[0].Alloc] = s.Request.Target
	}
	if len(plan.Submit) != 3 || targets["web-0"] != "dc2" || targets["web-1"] != "dc2" || targets["cache-0"] != "dc1" {
		t.Fatalf("targets %v; want the web allocations in dc2 and cache in dc1", targets)
	}

	f.setFrom("dc1", "cpu", 0, 35)
	f.setFrom("dc2", "cpu", 0, 20)
	plan = Run(f.input())
	if len(plan.Submit) != 3 {
		t.Fatalf("submitted %+v", plan.Submit)
	}
	for _, s := range plan.Submit {
		if r := s.Request; r.Target != "dc1" || !strings.Contains(r.Reason, "the rest of dc1") {
			t.Errorf("request %s to %s (%s); want the rest of dc1", r.Resource, r.Target, r.Reason)
		}
	}
	f.queued(plan.Submit[0].Request)
	f.pols[0].Reserve = f.pols[1].Reserve
	plan = Run(f.input())
	var reasons []string
	for _, d := range plan.Decisions {
		reasons = append(reasons, d.Reason)
	}
	all := strings.Join(reasons, "\n")
	if !strings.Contains(all, "p90 cpu 70% + incoming 0% + held 0% stays under the 80% line") || !strings.Contains(all, "once the 2 drained leave") {
		t.Errorf("the queued move is not checked on rack b with nothing incoming:\n%s", all)
	}
}

// TestDrainOfSomeNodesCountsTheWorkOfNodesMadeIneligible: once the
// coordinator has made rack a's nodes ineligible for the window (at its
// first move), dc1's demand on rack b no longer holds rack a's work
// (receivingShare: an ineligible node's work stays on it), so the moves
// still to come bring it to rack b: each move's check counts it as
// incoming, and those ahead of it as held. Before, a move within its
// locality brought nothing however its nodes were read, and the moves
// of the window were checked on rack b's own work alone, 31% where they
// had read 70% a pass before.
func TestDrainOfSomeNodesCountsTheWorkOfNodesMadeIneligible(t *testing.T) {
	f := baseFixture(t, "reschedule")
	f.pols[0].Migrate.Targets = nil
	f.pols[0].Reserve = f.pols[1].Reserve
	f.now = at(95 * time.Minute)
	f.setFrom("dc1", "cpu", 0, 35)
	f.setFrom("dc2", "cpu", 0, 20)
	for _, s := range Run(f.input()).Submit {
		if s.Request.Target != "dc1" {
			t.Fatalf("request %s to %s; want the rest of dc1", s.Request.Resource, s.Request.Target)
		}
		f.queued(s.Request)
	}
	if len(f.st.Requests) != 3 {
		t.Fatalf("queued %+v; want three requests", f.st.Requests)
	}
	for i := range f.nodes[:2] {
		if !strings.HasPrefix(f.nodes[i].Name, "dc1-a-") {
			t.Fatalf("node %s; the test needs rack a first", f.nodes[i].Name)
		}
		f.nodes[i].Eligible = false
	}
	var reasons []string
	for _, d := range Run(f.input()).Decisions {
		reasons = append(reasons, d.Reason)
	}
	all := strings.Join(reasons, "\n")
	// cache-0 (500 MHz) and web-0 (1000 MHz) on rack a's first node, web-1
	// (1000 MHz) on its second: 2500 MHz, 31% of rack b's 8000.
	if !strings.Contains(all, "p90 cpu 31% + incoming 6% + held 25% stays under the 80% line") {
		t.Errorf("the last move is not checked with the window's work arriving on rack b:\n%s", all)
	}
}

// TestDrainOfSomeNodesIntoARestThatTakesNoWork: with rack b of dc1 out of
// scheduling, a drain of rack a has no rest of dc1 to stay in, and the
// request of cache, which may not leave dc1, is not made, saying so
// (it said dc1 was forbidden by the jobs' constraints).
func TestDrainOfSomeNodesIntoARestThatTakesNoWork(t *testing.T) {
	f := baseFixture(t, "reschedule")
	f.pols[0].Migrate.Targets = nil
	f.now = at(95 * time.Minute)
	for i := range f.nodes {
		if strings.HasPrefix(f.nodes[i].Name, "dc1-b-") {
			f.nodes[i].Eligible = false
		}
	}
	plan := Run(f.input())
	if !slices.ContainsFunc(plan.Decisions, func(d state.Decision) bool {
		return strings.Contains(d.Reason, "no request for allocation cache") &&
			strings.Contains(d.Reason, "the rest of dc1 has no node that takes new work once the 2 drained leave")
	}) {
		t.Errorf("no word of cache's rest of dc1 taking no work: %+v", plan.Decisions)
	}
}

// TestDrainOfSomeNodesWithTargetsLeavesTheLocality drains rack a of dc1
// with migrate.targets = ["dc2"]: the list is where its moves may go, so
// the rest of dc1 is no candidate, and cache, which may not leave dc1,
// gets no request.
func TestDrainOfSomeNodesWithTargetsLeavesTheLocality(t *testing.T) {
	f := baseFixture(t, "reschedule")
	f.now = at(95 * time.Minute)
	plan := Run(f.input())
	if len(plan.Submit) != 2 {
		t.Fatalf("submitted %+v", plan.Submit)
	}
	for _, s := range plan.Submit {
		if s.Request.Target != "dc2" {
			t.Errorf("request %s to %s; want dc2, the policy's one target", s.Request.Resource, s.Request.Target)
		}
	}
	if !slices.ContainsFunc(plan.Decisions, func(d state.Decision) bool {
		return d.Kind == KindWait && strings.Contains(d.Reason, "no request for allocation cache")
	}) {
		t.Errorf("no word of cache, which may not leave dc1: %+v", plan.Decisions)
	}
}

// TestQueueOfADeadlineTurnsUrgentTogether: the requests of one drain window
// wait for a congested target only while the queue, max_parallel at a
// time, can still finish before the window; then they move in score order.
func TestQueueOfADeadlineTurnsUrgentTogether(t *testing.T) {
	f := baseFixture(t, "reschedule")
	f.pols[1].Reserve.Enabled = false
	f.setFrom("dc2", "cpu", 0, 79)
	for _, a := range []string{"web-0", "web-1", "web-2", "web-3"} {
		r := f.allocRequest(a)
		r.Origin, r.Deadline = "schedule", at(time.Hour)
		f.queued(r)
	}
	// Four moves of 40s, two at a time, need 80s, two rounds that each
	// start at a pass (a 1m step), plus a slack of migrate.lead_time/4
	// (30m/4): urgent from 06:49:10.
	f.now = at(49 * time.Minute)
	if plan := Run(f.input()); len(plan.Start) != 0 {
		t.Fatalf("started %v eleven minutes before the window into a congested target", startIDs(plan))
	}
	f.now = at(53 * time.Minute)
	plan := Run(f.input())
	if got := startIDs(plan); len(got) != 2 {
		t.Fatalf("started %v at 06:53; want the first two in score order (max_parallel 2)", got)
	}
	if !strings.Contains(plan.Start[0].Reason, "window near: moving despite the forecast") {
		t.Errorf("reason %q", plan.Start[0].Reason)
	}
}

// TestDrainDeclaredElsewhereStaysInTheDrainedLocality drains rack a of dc1
// from dc2's policy with no migrate.targets: as when dc1's own policy
// declares it, the rest of dc1 is tried first, and dc2 (the declaring
// policy's locality, another policy's locality as seen from dc1) is a
// candidate too.
func TestDrainDeclaredElsewhereStaysInTheDrainedLocality(t *testing.T) {
	f := baseFixture(t, "reschedule")
	f.pols = parsePolicies(t, strings.Replace(strings.Replace(fmt.Sprintf(sourcePolicy, "reschedule"),
		`    targets      = ["dc2"]`+"\n", "", 1), `  schedule "rack-a" {
    cron     = "0 8 * * *"
    duration = "1h"
    action   = "drain"
    nodes    = "dc1-a-*"
  }
`, "", 1)+strings.Replace(targetPolicy, `  migrate {
    max_parallel = 2
  }`, `  migrate {
    max_parallel = 2
    strategy     = "reschedule"
    lead_time    = "30m"
  }
  schedule "dc1-rack-a" {
    cron       = "0 8 * * *"
    duration   = "1h"
    action     = "drain"
    localities = ["dc1"]
    nodes      = "dc1-a-*"
  }`, 1))
	f.now = at(95 * time.Minute)
	plan := Run(f.input())
	if len(plan.Submit) != 3 {
		t.Fatalf("submitted %+v; decisions %+v", plan.Submit, plan.Decisions)
	}
	for _, s := range plan.Submit {
		if r := s.Request; r.Source != "dc1" || r.Target != "dc1" || !strings.Contains(r.Reason, "the rest of dc1") {
			t.Errorf("request %s: %s → %s (%s); want the rest of dc1", r.Resource, r.Source, r.Target, r.Reason)
		}
	}
	// With rack b down, web's allocations go to dc2 (the declaring
	// policy's own locality); cache, which may not leave dc1, waits.
	for i := range f.nodes {
		if strings.HasPrefix(f.nodes[i].Name, "dc1-b-") {
			f.nodes[i].Ready = false
		}
	}
	plan = Run(f.input())
	var targets []string
	for _, s := range plan.Submit {
		targets = append(targets, s.Request.Resource.Job+"→"+s.Request.Target)
	}
	if !slices.Equal(targets, []string{"web→dc2", "web→dc2"}) {
		t.Errorf("submitted %v; want web's two allocations to dc2 (decisions %+v)", targets, plan.Decisions)
	}
}

// TestDrainMatchingNoNodeSaysSo: a drain window whose nodes glob, or
// locality, matches no node is a wait decision saying so, not silence.
func TestDrainMatchingNoNodeSaysSo(t *testing.T) {
	tests := []struct {
		name, from, to, want string
		down                 bool
	}{
		{"glob", `nodes    = "dc1-a-*"`, `nodes    = "dc1-rack-a-*"`, `no node of dc1 (4 in all) has a name matching nodes = "dc1-rack-a-*"`, false},
		{"locality", `nodes    = "dc1-a-*"`, `localities = ["dc9"]`, "no node of the cluster is in dc9", false},
		{"down", "", "", "no matching node is ready (2 match)", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := baseFixture(t, "reschedule")
			f.pols = parsePolicies(t, strings.Replace(fmt.Sprintf(sourcePolicy, "reschedule"), tt.from, tt.to, 1)+targetPolicy)
			if tt.down {
				for i := range f.nodes {
					if strings.HasPrefix(f.nodes[i].Name, "dc1-a-") {
						f.nodes[i].Ready = false
					}
				}
			}
			f.now = at(95 * time.Minute)
			plan := Run(f.input())
			if len(plan.Submit) != 0 {
				t.Fatalf("submitted %+v", plan.Submit)
			}
			var found bool
			for _, d := range plan.Decisions {
				found = found || (d.Kind == KindWait && strings.Contains(d.Reason, "nothing to drain: "+tt.want))
			}
			if !found {
				t.Errorf("decisions %+v; want a wait saying %q", plan.Decisions, tt.want)
			}
		})
	}
}

// TestFinishedMovesCountWhereTheyLanded: a move finished within the
// target's season counts in the target (as held: its forecast has not yet
// seen it) only for the replacements that landed there. One that
// Nomad placed back in the source (the target had no room) is not in the
// target: counting it held the target's later moves for a day.
func TestFinishedMovesCountWhereTheyLanded(t *testing.T) {
	tests := []struct {
		name   string
		landed []string // where each of the finished request's two moves landed
		want   string
	}{
		{name: "both in the target", landed: []string{"dc2", "dc2"}, want: "+ incoming 9% + held 12% would"},
		{name: "one back in the source", landed: []string{"dc2", "dc1"}, want: "+ incoming 9% + held 6% would"},
		{name: "both back in the source", landed: []string{"dc1", "dc1"}, want: "+ incoming 9% + held 0% would"},
		{name: "landing not seen", landed: []string{"", ""}, want: "+ incoming 9% + held 0% would"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := nodeRequestFixture(t)
			f.setFrom("dc2", "cpu", time.Minute, 79)
			done := state.MigrationRequest{ID: "mr-9", Resource: state.Resource{Kind: state.ResourceNode, ID: "id-dc1-b-1", Name: "dc1-b-1"},
				Source: "dc1", Target: "dc2", Policy: "dc1", Strategy: "reschedule", Origin: "operator", State: state.RequestDone,
				Created: at(-2 * time.Hour), Started: at(-90 * time.Minute), Finished: at(-time.Hour)}
			for i, l := range tt.landed {
				m := state.Move{Alloc: fmt.Sprintf("old-%d", i), Job: "web", Group: "frontend", Size: state.Resources{CPU: 1000, MemoryMB: 1024}, Done: true, Landed: l}
				if l == "dc1" {
					m.Error = "landed in dc1, outside the target dc2"
				}
				done.Moves = append(done.Moves, m)
				done.Moved = done.Moved.Add(m.Size)
			}
			f.st.Requests = append(f.st.Requests, done)
			plan := Run(f.input())
			rs, ok := rescoreOf(plan, "mr-1")
			if !ok || !strings.Contains(rs.Reason, tt.want) {
				t.Errorf("mr-1 %+v; want its reason to say %q", rs, tt.want)
			}
		})
	}
}

// nodeRequestFixture is baseFixture with mr-1 queued: node dc1-a-1's
// web-0 and cache-0 to dc2 (cache may run in dc2 here).
func nodeRequestFixture(t *testing.T) *fixture {
	f := baseFixture(t, "reschedule")
	r := f.allocRequest("web-0")
	r.Moves = append(r.Moves, f.allocRequest("cache-0").Moves...)
	r.Resource = state.Resource{Kind: state.ResourceNode, ID: "id-dc1-a-1", Name: "dc1-a-1"}
	f.queued(r)
	f.jobs[1].Datacenters = nil
	return f
}

// TestRunningMoveCountsItsWholeSizeInItsTarget: a running move counts in
// its target at its whole size, however much of its reservation it has
// handed over. Each stop shrinks the placeholder by the allocation it
// hands the room to, so the reservation's remainder fell to nothing while
// the replacements ran in the target, unseen by its forecast: counted at
// the remainder, the move no longer held the target, and a request
// behind it started into a crossing.
func TestRunningMoveCountsItsWholeSizeInItsTarget(t *testing.T) {
	for _, left := range []int{1, 0} {
		t.Run(fmt.Sprintf("%d placeholder allocations left", left), func(t *testing.T) {
			f := nodeRequestFixture(t)
			f.setFrom("dc2", "cpu", 0, 70)
			f.st.Requests[0].State, f.st.Requests[0].Started = state.RequestRunning, f.now
			f.st.Reservations = []state.Reservation{{ID: "rs-1", Request: "mr-1", Policy: "dc2", Locality: "dc2", Job: "foreshape-reserve-rs-1",
				State: state.ReservationHeld, Placed: at(-10 * time.Minute), Expires: at(time.Hour),
				Chunks: []state.Chunk{{Size: state.Resources{CPU: 1000, MemoryMB: 1024}, Count: 0}, {Size: state.Resources{CPU: 500, MemoryMB: 2048}, Count: left}}}}
			f.queued(f.allocRequest("web-2"))
			plan := Run(f.input())
			if slices.Contains(startIDs(plan), "mr-2") {
				t.Fatalf("mr-2 started into dc2 with mr-1's 9%% arriving there: %+v", plan.Start)
			}
			rs, ok := rescoreOf(plan, "mr-2")
			if want := "+ incoming 6% + held 9% would cross the 80% line in dc2"; !ok || !strings.Contains(rs.Reason, want) {
				t.Errorf("mr-2 %+v; want its reason to say %q", rs, want)
			}
		})
	}
}

// TestLandedWorkCountsWhileItsReservationIsReleased: a finished move whose
// reservation the planner releases (the release at its finish failed)
// still counts in its target for what landed there: the release gives
// back the placeholder's room, not the work that arrived.
func TestLandedWorkCountsWhileItsReservationIsReleased(t *testing.T) {
	f := nodeRequestFixture(t)
	f.setFrom("dc2", "cpu", time.Minute, 79)
	done := state.MigrationRequest{ID: "mr-9", Resource: state.Resource{Kind: state.ResourceNode, ID: "id-dc1-b-1", Name: "dc1-b-1"},
		Source: "dc1", Target: "dc2", Policy: "dc1", Strategy: "reschedule", Origin: "operator", State: state.RequestDone,
		Created: at(-2 * time.Hour), Started: at(-90 * time.Minute), Finished: at(-time.Hour)}
	for i := range 2 {
		m := state.Move{Alloc: fmt.Sprintf("old-%d", i), Job: "web", Group: "frontend", Size: state.Resources{CPU: 1000, MemoryMB: 1024}, Done: true, Landed: "dc2"}
		done.Moves = append(done.Moves, m)
		done.Moved = done.Moved.Add(m.Size)
	}
	f.st.Requests = append(f.st.Requests, done)
	f.st.Reservations = []state.Reservation{{ID: "rs-9", Request: "mr-9", Policy: "dc2", Locality: "dc2", Job: "foreshape-reserve-rs-9",
		State: state.ReservationHeld, Placed: at(-2 * time.Hour), Expires: at(time.Hour),
		Chunks: []state.Chunk{{Size: state.Resources{CPU: 1000, MemoryMB: 1024}, Count: 0}}}}
	plan := Run(f.input())
	if len(plan.Release) != 1 || plan.Release[0].Reservation != "rs-9" {
		t.Fatalf("release %+v; want rs-9's", plan.Release)
	}
	rs, ok := rescoreOf(plan, "mr-1")
	if want := "+ incoming 9% + held 12% would"; !ok || !strings.Contains(rs.Reason, want) {
		t.Errorf("mr-1 %+v; want its reason to say %q", rs, want)
	}
}
