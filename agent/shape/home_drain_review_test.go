package shape

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/state"
)

// fromNow drops the points of the fixture's forecasts before now, as a
// forecast made at now starts after it.
func (f *fixture) fromNow() {
	for i := range f.fcs {
		fc := &f.fcs[i]
		k := 0
		for k < len(fc.Times) && fc.Times[k].Before(f.now) {
			k++
		}
		fc.Times, fc.Planning = fc.Times[k:], fc.Planning[k:]
		if fc.DrainAdded != nil {
			fc.DrainAdded = fc.DrainAdded[k:]
		}
	}
}

// TestDrainAddedNothingReadsHomeAsForecast: predict could not add dc1's
// demand to ops's forecast of dc3 (no recent samples of dc1: its event
// says so and adds nothing), so the forecast is dc3's own 60% through
// the window. The window is under way at 08:35 and none of its moves is
// queued yet (the policy came in with a reload). Three moves fit in dc3
// (60 + 3 × 6.25 = 78.75), the fourth goes to dc2. Before, the planner
// took dc1's work (28.125 points) off a forecast that did not carry it,
// read dc3 at 31.875% inside the window, and queued all four there:
// 85%, over its line.
func TestDrainAddedNothingReadsHomeAsForecast(t *testing.T) {
	f := homeDrainFixture(t, 60, 30, "")
	for i := range f.fcs {
		if f.fcs[i].Policy == "ops" {
			f.fcs[i] = flat("dc3", f.fcs[i].Metric, map[string]float64{"cpu": 60, "memory": 30}[f.fcs[i].Metric], 80)
			f.fcs[i].Policy = "ops"
		}
	}
	f.now = at(155 * time.Minute) // 08:35: the window is under way
	f.fromNow()
	plan := Run(f.input())
	queued, why := queuedTargets(plan)
	if want := []string{"web-0>dc3", "web-1>dc3", "web-2>dc3", "web-3>dc2"}; !slices.Equal(queued, want) {
		t.Fatalf("queued %v; want %v", queued, want)
	}
	if r := why["web-3"]; !strings.Contains(r, "(dc3, the policy's own locality, tried first, would be 5% over its line by the window's end at 09:30") {
		t.Errorf("web-3's reason %q; want dc3 5%% over with the fourth move", r)
	}
}

// TestDrainUnderWayReadsHomeWithoutWorkMovedElsewhere: ops's drain of
// dc1 is under way at 08:45 and its four web moves are done, to dc2 (the
// agent started inside the window, dc3 was full then, or an operator
// retargeted them); only cache-0, which may run only in dc1, is left on
// dc1's nodes. dc3's forecast carries dc1's demand in full (+28.125
// points over its own 60%): its level has not risen, as nothing landed
// there, so predict takes nothing off what it adds. dc3 takes none of
// that work: no hotspot, no scale. Before, the planner took off only
// the work still on dc1's nodes (cache-0's 3.125 points), read dc3 at
// 85%, and scaled it for work that had gone to dc2.
func TestDrainUnderWayReadsHomeWithoutWorkMovedElsewhere(t *testing.T) {
	f := homeDrainFixture(t, 60, 30, opsScale)
	f.now = at(165 * time.Minute) // 08:45
	start := at(150 * time.Minute)
	for i := range 4 {
		id := "web-" + strconv.Itoa(i)
		r := f.allocRequest(id)
		r.Target, r.Policy, r.Origin, r.Deadline = "dc2", "ops", "schedule", start
		r.OriginKey = fmt.Sprintf("schedule/ops/dc1-all/%d/%s", start.Unix(), r.Resource.Key())
		r.State, r.Finished = state.RequestDone, at(time.Duration(150+2*i)*time.Minute)
		r.Moves[0].Done, r.Moves[0].Landed = true, "dc2"
		f.queued(r)
		for k := range f.allocs {
			if f.allocs[k].ID == id {
				f.allocs[k].Node = "id-dc2-" + strconv.Itoa(i+1)
			}
		}
	}
	f.fromNow()
	plan := Run(f.input())
	if len(plan.Scale) > 0 {
		t.Errorf("scaled %+v; want none: dc3 took none of dc1's work", plan.Scale)
	}
}

// TestTwoDrainsOfOneLocalityAtOnceReadHomeOnce: ops drains all of dc1
// from 08:30 to 09:30 and again from 09:00 to 10:00 (two schedules whose
// windows overlap, which the loader warns of). predict adds dc1's demand
// once where both windows hold a step (the second adds what its demand
// exceeds the first's: nothing), so ops's forecast of dc3 is its own 60%
// (40% from 09:30) + 28.125 from 08:30 on. At 09:05 both windows are under
// way, nothing queued: three moves fit in dc3 (78.75% until 09:30), the
// fourth goes to dc2. Before, each window took dc1's work off the
// forecast, twice from 09:00 to 09:30, and all four went to dc3: 85%,
// over its line.
func TestTwoDrainsOfOneLocalityAtOnceReadHomeOnce(t *testing.T) {
	again := `  schedule "dc1-again" {
    cron       = "0 9 * * *"
    duration   = "1h"
    action     = "drain"
    localities = ["dc1"]
  }`
	f := homeDrainFixture(t, 60, 30, again)
	for i := range f.fcs {
		fc := &f.fcs[i]
		if fc.Policy != "ops" {
			continue
		}
		add := map[string]float64{"cpu": 28.125, "memory": 18.75}[fc.Metric]
		for k, tt := range fc.Times {
			if !tt.Before(at(210 * time.Minute)) { // the second window's half alone
				fc.Planning[k] += add - 20
				if fc.DrainAdded != nil {
					fc.DrainAdded[k] += add
				}
			}
		}
	}
	f.now = at(185 * time.Minute) // 09:05
	f.fromNow()
	plan := Run(f.input())
	queued, _ := queuedTargets(plan)
	if want := []string{"web-0>dc3", "web-1>dc3", "web-2>dc3", "web-3>dc2"}; !slices.Equal(queued, want) {
		t.Fatalf("queued %v; want %v", queued, want)
	}
}

// TestTwoPoliciesDrainingOneLocality: ops (dc3) and ops4 (dc4) both drain
// all of dc1 from 08:30 without migrate.targets, and predict adds dc1's
// demand to both forecasts. The windows are under way at 08:35, nothing
// queued. The allocations are moved once, by the first policy that makes
// their requests (ops): three go home to dc3 at 60%, and the fourth to
// the target with the most room, dc4, read at its own 30% through the
// window, not with dc1's work that its forecast carries and that ops4's
// window does not move (dc2 is at 40%). Before, the targets of a window
// under way were read from now to its start, past already: no point of
// any forecast, so every target had room ("no forecast for it") and the
// first listed, dc2, took the fourth.
func TestTwoPoliciesDrainingOneLocality(t *testing.T) {
	f := homeDrainFixture(t, 60, 30, "")
	f.pols = append(f.pols, parsePolicies(t, strings.ReplaceAll(strings.Replace(opsOfDC3, `"ops"`, `"ops4"`, 1), `"dc3"`, `"dc4"`))...)
	for i := 1; i <= 4; i++ {
		name := "dc4-" + strconv.Itoa(i)
		f.nodes = append(f.nodes, Node{ID: "id-" + name, Name: name, Datacenter: "dc4", NodePool: "default", NodeClass: "web",
			CPU: 4000, MemoryMB: 8192, Ready: true, Eligible: true})
	}
	f.jobs[0].Datacenters = append(f.jobs[0].Datacenters, "dc4")
	for _, fc := range f.fcs {
		if fc.Policy == "ops" {
			fc.Policy, fc.Locality = "ops4", "dc4"
			fc.Planning = slices.Clone(fc.Planning)
			fc.DrainAdded = slices.Clone(fc.DrainAdded)
			for k := range fc.Planning {
				fc.Planning[k] -= 30 // dc4 at 30% CPU, 0% memory
			}
			f.fcs = append(f.fcs, fc)
		}
	}
	f.now = at(155 * time.Minute) // 08:35: under way, nothing queued
	f.fromNow()
	plan := Run(f.input())
	queued, why := queuedTargets(plan)
	if want := []string{"web-0>dc3", "web-1>dc3", "web-2>dc3", "web-3>dc4"}; !slices.Equal(queued, want) {
		t.Fatalf("queued %v; want %v", queued, want)
	}
	if r := why["web-3"]; !strings.Contains(r, "to dc4: the allowed target with the most room, 44% below its line") {
		t.Errorf("web-3's reason %q; want dc4 read at its own 30%%", r)
	}
	for _, s := range plan.Submit {
		if r := s.Request; r.Policy != "ops" && !WindowHold(&r) {
			t.Errorf("%s submitted by %s; want each move made once, by ops", r.Resource.ID, r.Policy)
		}
	}
}

// TestForecastOnlyHomeDrainPlansAsLive: a forecast_only ops plans its
// drain of dc1 as it would act on it: three moves to dc3, the fourth to
// dc2, each submission a dry run.
func TestForecastOnlyHomeDrainPlansAsLive(t *testing.T) {
	f := homeDrainFixture(t, 60, 30, "  forecast_only = true")
	plan := Run(f.input())
	queued, _ := queuedTargets(plan)
	if want := []string{"web-0>dc3", "web-1>dc3", "web-2>dc3", "web-3>dc2"}; !slices.Equal(queued, want) {
		t.Fatalf("queued %v; want %v", queued, want)
	}
	for _, s := range plan.Submit {
		if !s.DryRun {
			t.Errorf("%s submitted live; want a dry run", s.Request.Resource.ID)
		}
	}
}

// TestHomeDrainScaleLeadLongerThanMigrateLead: ops's scale block takes
// 3h to bring capacity (its observed lead), longer than its 2h
// migrate.lead_time. At 05:50, before the drain's requests are made, its
// forecast of dc3 carries dc1's work from 08:30 (88%, over its 80%
// line). That work comes only as the planner queues its moves, three of
// which fit in dc3 at 60% (the fourth goes to dc2:
// TestDrainOfAnotherLocalityGoesHomeWhileItFits), as the planner reads
// it from 06:30 on (TestDrainOfAnotherLocalityScalesHomeForNoWorkSentElsewhere):
// no scale. Before, dc3 was read with dc1's work until the window's lead
// time began, and ops scaled dc3 for work that went to dc2. The same
// where the forecasts carry their absolute demand, which a hotspot reads
// (less the MHz and MiB the drain added there).
func TestHomeDrainScaleLeadLongerThanMigrateLead(t *testing.T) {
	for _, demand := range []bool{false, true} {
		t.Run(fmt.Sprintf("demand %v", demand), func(t *testing.T) {
			f := homeDrainFixture(t, 60, 30, opsScale)
			f.st.Estimates = map[string]state.Estimate{ScaleLeadKey("ops", "workers"): {Mean: 3 * time.Hour, Samples: 2}}
			f.now = at(-10 * time.Minute) // 05:50, before ops's 2h lead of 08:30
			for i := range f.fcs {
				if fc := &f.fcs[i]; demand && fc.Policy == "ops" {
					capacity := map[string]float64{"cpu": 16000, "memory": 32768}[fc.Metric]
					for k := range fc.Planning {
						fc.Demand = append(fc.Demand, fc.Planning[k]/100*capacity)
						fc.DemandDrainAdded = append(fc.DemandDrainAdded, fc.DrainAdded[k]/100*capacity)
					}
				}
			}
			plan := Run(f.input())
			if len(plan.Submit) > 0 {
				t.Fatalf("submitted %+v; want none before the lead time", plan.Submit)
			}
			if len(plan.Scale) > 0 {
				t.Errorf("scaled %+v; want none: dc1's work is read where its moves go", plan.Scale)
			}
		})
	}
}

// TestHomeDrainOfSomeNodesReadsHomeAsForecast: a drain of some of dc1's
// nodes (nodes = "dc1-a-*") declared by ops adds nothing to its forecast
// of dc3 (their work goes to the rest of dc1 first), and the planner
// reads that forecast as it stands: dc3 at 85% inside the window is a
// hotspot it scales for.
func TestHomeDrainOfSomeNodesReadsHomeAsForecast(t *testing.T) {
	f := homeDrainFixture(t, 60, 30, opsScale)
	f.pols[len(f.pols)-1].Schedules[0].Nodes = "dc1-a-*"
	for i := range f.fcs {
		if fc := &f.fcs[i]; fc.Policy == "ops" {
			*fc = flat("dc3", fc.Metric, map[string]float64{"cpu": 60, "memory": 30}[fc.Metric], 80)
			fc.Policy = "ops"
		}
	}
	f.setFrom("dc3", "cpu", 150*time.Minute, 85)
	f.now = at(147 * time.Minute)
	plan := Run(f.input())
	if len(plan.Scale) != 1 || plan.Scale[0].Policy != "ops" {
		t.Errorf("scaled %+v; want ops to scale dc3 for its own 85%%", plan.Scale)
	}
}
