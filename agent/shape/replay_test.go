package shape

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/traces"
)

// readTrace reads a bundled PlanetLab trace: one CPU percent every 5
// minutes over a day.
func readTrace(t *testing.T, name string) []float64 {
	t.Helper()
	b, err := traces.ReadFile("planetlab/20110303/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var out []float64
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		v, err := strconv.ParseFloat(strings.TrimSpace(sc.Text()), 64)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

// TestReplayDrainIntoDailyPeak replays a day of a real PlanetLab trace as
// dc2's demand (its afternoon rise is the daily peak) while dc1's rack a is
// drained at 08:00, and carries out each plan the way the coordinator
// would, at once: it checks, minute by minute, that requests appear
// migrate.lead_time before the window, every one holds a reservation in
// dc2 sized to its allocations by the window's start minus the lead time,
// moves start in score order and never more than max_parallel at once, no
// move starts into a window forecast over the line unless its deadline
// leaves no choice, and all are done before the window.
func TestReplayDrainIntoDailyPeak(t *testing.T) {
	trace := readTrace(t, "ait05_us_es_princeton_codeen")
	f := baseFixture(t, "reschedule")
	// Four allocations on each rack-a node, sizes mixed.
	for _, n := range []string{"id-dc1-a-1", "id-dc1-a-2"} {
		for k := range 4 {
			f.allocs = append(f.allocs, Alloc{ID: fmt.Sprintf("%s-x%d", n, k), Name: fmt.Sprintf("web.frontend[%s%d]", n[len(n)-1:], k),
				Namespace: "default", Job: "web", Group: "frontend", Node: n,
				Size: state.Resources{CPU: int64(200 * (k + 1)), MemoryMB: int64(256 * (k + 1))}, Live: true, Running: true})
		}
	}
	local, err := state.NewLocal(state.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	apply := func(c state.Command) state.Result {
		r, err := local.Apply(ctx, c)
		if err != nil {
			t.Fatalf("%s: %v", c.Type(), err)
		}
		return r
	}
	// dc2's demand follows the trace (percent of one host) lifted by 35
	// points (44–102%); the planner sees it as a perfect forecast.
	demand := func(at time.Time) float64 {
		i := int(at.Sub(t0.Truncate(24*time.Hour)).Minutes()/5) % len(trace)
		return 35 + trace[i]
	}
	window := at(2 * time.Hour)
	var started []string
	waitedForCongestion := 0
	done := map[string]time.Time{}
	reservedBy := map[string]time.Time{}
	for now := at(0); now.Before(at(3 * time.Hour)); now = now.Add(time.Minute) {
		f.now = now
		f.st = local.FSM.Act()
		f.fcs = nil
		for _, m := range []string{"cpu", "memory"} {
			fc := Forecast{Policy: "dc2", Locality: "dc2", Metric: m, Quantile: 0.9, Line: 80, HasLine: true}
			for i := range 60 {
				at := now.Add(time.Duration(i) * time.Minute)
				fc.Times = append(fc.Times, at)
				fc.Planning = append(fc.Planning, demand(at))
			}
			f.fcs = append(f.fcs, fc)
		}
		plan := Run(f.input())
		for _, s := range plan.Submit {
			if now.Before(window.Add(-30 * time.Minute)) {
				t.Errorf("%s: request before the lead time: %s", clock(now), s.Request.Reason)
			}
			apply(state.SubmitRequest{Request: s.Request})
		}
		for _, rs := range plan.Rescore {
			if strings.Contains(rs.Reason, "target congested") {
				waitedForCongestion++
			}
		}
		if len(plan.Rescore) > 0 {
			apply(state.RescoreRequests{At: now, Items: plan.Rescore})
		}
		for _, rs := range plan.Reserve {
			res := apply(state.PutReservation{Reservation: state.Reservation{Request: rs.Request, Policy: rs.Policy, Locality: rs.Locality,
				Chunks: rs.Chunks, From: rs.From, Until: rs.Until, Expires: rs.Expires, Placed: now, State: state.ReservationHeld}})
			reservedBy[rs.Request] = now
			// The placeholder runs at once on dc2-1.
			for ci, c := range rs.Chunks {
				for k := range c.Count {
					f.allocs = append(f.allocs, Alloc{ID: fmt.Sprintf("%s-%d-%d", res.ID, ci, k), Job: state.PlaceholderPrefix + res.ID,
						Namespace: "default", Node: "id-dc2-1", Size: c.Size, Live: true, Running: true})
				}
			}
		}
		for _, rl := range plan.Release {
			apply(state.DeleteReservation{ID: rl.Reservation})
		}
		// Moves start in score order, and the cap holds.
		running := 0
		for _, r := range local.FSM.Act().Requests {
			if r.State == state.RequestRunning {
				running++
			}
		}
		if running+len(plan.Start) > 2 {
			t.Errorf("%s: %d running + %d started > max_parallel 2", clock(now), running, len(plan.Start))
		}
		prev := 1e9
		for _, s := range plan.Start {
			r, _ := local.FSM.Act().Request(s.Request)
			if r.Score > prev+1e-9 {
				t.Errorf("%s: %s (score %.3f) started after one of score %.3f", clock(now), r.ID, r.Score, prev)
			}
			prev = r.Score
			if !strings.Contains(s.Reason, "hand over") {
				t.Errorf("%s: %s started without its reservation: %s", clock(now), r.ID, s.Reason)
			}
			// Into congestion only when the window's queue has no time
			// left to wait: the moves not yet started, max_parallel (2) at
			// a time, each round starting at a pass (a 1m step), this one
			// twice over, and the planner's margin of a quarter of
			// migrate.lead_time (30m).
			waiting := 0
			for _, q := range local.FSM.Act().Requests {
				if !q.State.Terminal() && q.State != state.RequestRunning {
					waiting++
				}
			}
			rounds := time.Duration((waiting + 1) / 2)
			need := rounds*r.Estimated + rounds*time.Minute + 2*r.Estimated + 30*time.Minute/4
			if strings.Contains(s.Reason, "despite the forecast") && now.Add(need).Before(r.Deadline) {
				t.Errorf("%s: %s started into congestion with time left: %s", clock(now), r.ID, s.Reason)
			}
			r.State, r.Started = state.RequestRunning, now
			apply(state.UpdateRequest{Request: r, IfVersion: r.Version})
			started = append(started, r.ID)
		}
		// Running moves finish after their estimate; the allocation lands
		// in dc2 and its placeholder share goes.
		for _, r := range local.FSM.Act().Requests {
			if r.State != state.RequestRunning || now.Before(r.Started.Add(r.Estimated)) {
				continue
			}
			r.State, r.Finished = state.RequestDone, now
			r.Moves = slices.Clone(r.Moves)
			for i := range r.Moves {
				r.Moves[i].Done, r.Moves[i].Landed, r.Moves[i].Running = true, "dc2", now
			}
			apply(state.UpdateRequest{Request: r, IfVersion: r.Version})
			done[r.ID] = now
			for i := range f.allocs {
				for _, m := range r.Moves {
					if f.allocs[i].ID == m.Alloc {
						f.allocs[i].Node = "id-dc2-2"
					}
				}
			}
		}
	}
	reqs := local.FSM.Act().Requests
	if len(reqs) != 10 {
		t.Fatalf("%d requests; want one per movable allocation on rack a (10)", len(reqs))
	}
	for _, r := range reqs {
		if r.State != state.RequestDone || !done[r.ID].Before(window) {
			t.Errorf("%s: %s, finished %s; want done before the window at %s", r.ID, r.State, clock(done[r.ID]), clock(window))
		}
		if at, ok := reservedBy[r.ID]; !ok || at.After(window.Add(-15*time.Minute)) {
			t.Errorf("%s: reserved at %v; want by %s", r.ID, at, clock(window.Add(-15*time.Minute)))
		}
	}
	if len(started) != 10 {
		t.Errorf("started %v", started)
	}
	// The trace's 07:40 rise (78% before the moves) holds some moves: the
	// replay exercises waiting, not only the easy path.
	if waitedForCongestion == 0 {
		t.Error("no move ever waited for a congested target; the replay tests too little")
	}
}
