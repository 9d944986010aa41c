package predict

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/policies"
)

// at returns t0 plus the clock time hh:mm on day d (0 is t0's day).
func at(d, hh, mm int) time.Time {
	return t0.Add(time.Duration(d)*24*time.Hour + time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute)
}

// steps counts the 5-minute points from t0 up to and including t.
func steps(t time.Time) int { return int(t.Sub(t0)/(5*time.Minute)) + 1 }

// levels is a series that is `before` until `from` and `after` from then
// until `to` (exclusive), and `before` again after.
func levels(before, after float64, from, to time.Time) func(i int) float64 {
	return func(i int) float64 {
		if t := t0.Add(time.Duration(i) * 5 * time.Minute); !t.Before(from) && t.Before(to) {
			return after
		}
		return before
	}
}

// TestScheduledEventsAppliedOnce: a scheduled event is applied to a
// forecast exactly once. A window ahead of the origin gets its factor (or
// the drained demand) in full; a window under way, whose lift the history
// and the model already show, is not lifted again, and demand falls back
// after it ends. Each forecast comes from the loop's own pipeline (ets) on
// the history given.
func TestScheduledEventsAppliedOnce(t *testing.T) {
	const peak2h = `schedule "surge" {
    cron     = "0 9 * * *"
    duration = "2h"
    action   = "peak"
    factor   = 2
  }`
	const peak1h = `schedule "surge" {
    cron     = "0 9 * * *"
    duration = "1h"
    action   = "peak"
    factor   = 2
  }`
	const learned = `schedule "surge" {
    cron     = "0 9 * * *"
    duration = "1h"
    action   = "peak"
  }`
	const drainIn = `schedule "rack-a" {
    cron       = "0 9 * * *"
    duration   = "1h"
    action     = "drain"
    localities = ["dc1/rack-a"]
  }`
	web := state.Key{Locality: "dc1/web", Metric: "cpu"}
	webMHz := state.Key{Locality: "dc1/web", Metric: "cpu_mhz"}
	rackMHz := state.Key{Locality: "dc1/rack-a", Metric: "cpu_mhz"}
	nine, ten, eleven := at(0, 9, 0), at(0, 10, 0), at(0, 11, 0)
	flat := func(v float64) func(int) float64 { return func(int) float64 { return v } }

	type series struct {
		key state.Key
		f   func(i int) float64
	}
	cases := []struct {
		name     string
		schedule string
		now      time.Time
		series   []series
		// want is the p50 expected at a step's time.
		want func(at time.Time) float64
		// events is a fragment every event's description must hold.
		events string
		// over100 allows bands above 100 %: demand over capacity that a
		// schedule brings and the history does not show yet.
		over100 bool
	}{
		{
			name: "peak ahead: the declared factor in full", schedule: peak1h, now: at(0, 8, 15),
			series: []series{{web, flat(40)}},
			want: func(t time.Time) float64 {
				if t.Hour() == 9 {
					return 80
				}
				return 40
			},
			events: "×2.00, as the policy declares",
		},
		{
			// Declared demand over capacity: the forecast says so.
			name: "peak ahead: demand over capacity", schedule: peak1h, now: at(0, 8, 15),
			series: []series{{web, flat(60)}},
			want: func(t time.Time) float64 {
				if t.Hour() == 9 {
					return 120
				}
				return 60
			},
			over100: true,
		},
		{
			name: "peak under way: the history already shows the doubling", schedule: peak2h, now: at(0, 9, 40),
			series: []series{{web, levels(45, 90, nine, eleven)}},
			want:   func(time.Time) float64 { return 90 },
			events: "since 09:00",
		},
		{
			// The measurement shows less than declared (nodes saturate, or
			// the event does not touch this metric): the history wins.
			name: "peak under way: the history shows less than declared", schedule: peak2h, now: at(0, 9, 40),
			series: []series{{web, levels(45, 72, nine, eleven)}},
			want:   func(time.Time) float64 { return 72 },
		},
		{
			// Doubled demand from 50 % saturates the nodes: what the history
			// shows is what the metric can show.
			name: "peak under way: the measurement at its ceiling", schedule: peak2h, now: at(0, 9, 40),
			series: []series{{web, levels(50, 97, nine, eleven)}},
			want:   func(time.Time) float64 { return 97 },
		},
		{
			name: "peak under way: a metric the event leaves alone", schedule: peak2h, now: at(0, 9, 40),
			series: []series{{web, flat(58)}},
			want:   func(time.Time) float64 { return 58 },
		},
		{
			name: "peak ending inside the horizon: demand falls back after it", schedule: peak1h, now: at(0, 9, 40),
			series: []series{{web, levels(45, 90, nine, ten)}},
			want: func(t time.Time) float64 {
				if t.Before(ten) {
					return 90
				}
				return 45
			},
			events: "after 10:00",
		},
		{
			// Two past days with the same peak teach a factor of 2; today's
			// occurrence is under way and already in the history.
			name: "learned peak under way", schedule: learned, now: at(2, 9, 40),
			series: []series{{web, func(i int) float64 {
				if h := (i % 288) / 12; h == 9 {
					return 90
				}
				return 45
			}}},
			want: func(t time.Time) float64 {
				if t.Before(at(2, 10, 0)) {
					return 90
				}
				return 45
			},
		},
		{
			// dc1/web runs at 40 % of 10,000 MHz; rack a's 1,500 MHz (15
			// points) are moved in from 09:00: the whole move is in dc1/web's
			// history, while rack a still shows the old allocations that
			// have not stopped yet.
			name: "drain in under way: the moved demand is in the history", schedule: drainIn, now: at(0, 9, 40),
			series: []series{
				{web, levels(40, 55, nine, ten)},
				{webMHz, levels(4000, 5500, nine, ten)},
				{rackMHz, flat(1500)},
			},
			want: func(time.Time) float64 { return 55 }, // the moved work stays after the window
		},
		{
			name: "drain in under way: the drained locality is empty", schedule: drainIn, now: at(0, 9, 40),
			series: []series{
				{web, levels(40, 55, nine, ten)},
				{webMHz, levels(4000, 5500, nine, ten)},
				{rackMHz, levels(1500, 0, nine, ten)},
			},
			want: func(time.Time) float64 { return 55 },
		},
		{
			name: "drain in under way: half of it moved", schedule: drainIn, now: at(0, 9, 40),
			series: []series{
				{web, levels(40, 47.5, nine, ten)},
				{webMHz, levels(4000, 4750, nine, ten)},
				{rackMHz, levels(1500, 750, nine, ten)},
			},
			// Inside the window the other half still comes; after it,
			// what moved stays where it runs (Nomad moves nothing back).
			want: func(t time.Time) float64 {
				if t.Before(ten) {
					return 55
				}
				return 47.5
			},
		},
		{
			name: "drain in ahead: the drained demand in full", schedule: drainIn, now: at(0, 8, 15),
			series: []series{{web, flat(40)}, {webMHz, flat(4000)}, {rackMHz, flat(1500)}},
			want: func(t time.Time) float64 {
				if t.Hour() == 9 {
					return 55
				}
				return 40
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			for _, sr := range tc.series {
				fill(t, s, sr.key, t0, steps(tc.now), sr.f)
			}
			pol := policy(t, tc.schedule, nil)
			res := New(nil).RunOnce(tc.now, s, []*policies.Policy{pol})
			fc := forecastOf(t, res, web)
			if len(fc.Events) == 0 {
				t.Fatal("no event applied")
			}
			for _, e := range fc.Events {
				if !strings.Contains(e.String(), tc.events) {
					t.Errorf("event %q does not say %q", e, tc.events)
				}
			}
			for q, band := range fc.Bands {
				for i, v := range band {
					if v < 0 || v > 100 && !tc.over100 {
						t.Fatalf("%s: p%.1f is %.1f, outside what the measurement can show", fc.Times[i].Format("15:04"), 100*fc.Quantiles[q], v)
					}
				}
			}
			p50 := fc.Band(0.5)
			for i, at := range fc.Times {
				if want := tc.want(at); math.Abs(p50[i]-want) > 0.05*want {
					t.Errorf("%s: p50 %.1f, want %.1f (history ends at %.1f; events %v)",
						at.Format("15:04"), p50[i], want, fc.History[len(fc.History)-1].Value, fc.Events)
				}
			}
		})
	}
}

// synthetic returns a forecast of cpu at 5-minute steps after origin whose
// model made raw (the mean and the p50; p90 is 10 % above), and the
// history hist(t) up to origin from the day's start.
func synthetic(origin time.Time, raw func(at time.Time) float64, hist func(at time.Time) float64) (*Forecast, history) {
	step := 5 * time.Minute
	fc := &Forecast{Metric: "cpu", Origin: origin, Step: step, Quantiles: []float64{0.5, 0.9}, Bands: [][]float64{nil, nil}}
	for i := range 12 {
		at := origin.Add(time.Duration(i+1) * step)
		v := raw(at)
		fc.Times = append(fc.Times, at)
		fc.Mean = append(fc.Mean, v)
		fc.Bands[0] = append(fc.Bands[0], v)
		fc.Bands[1] = append(fc.Bands[1], 1.1*v)
	}
	h := history{start: t0, step: step}
	for at := t0; !at.After(origin); at = at.Add(step) {
		h.y = append(h.y, hist(at))
	}
	return fc, h
}

// TestPeakWindowUnderWay: what a peak applies depends on what the model's
// forecast already carries of a window under way, which the loop's own
// pipeline does not show in every state (it keeps up to
// forecast.MaxSpike points of a new level out as spikes; a seasonal model
// may not follow the level at all).
func TestPeakWindowUnderWay(t *testing.T) {
	pol := policy(t, `schedule "surge" {
    cron     = "0 9 * * *"
    duration = "2h"
    action   = "peak"
    factor   = 2
  }`, nil)
	nine := at(0, 9, 0)
	surge := func(v float64) func(time.Time) float64 {
		return func(t time.Time) float64 {
			if t.Before(nine) {
				return 45
			}
			return v
		}
	}
	level := func(v float64) func(time.Time) float64 { return func(time.Time) float64 { return v } }
	cases := []struct {
		name     string
		origin   time.Time
		raw      func(time.Time) float64
		hist     func(time.Time) float64
		want     float64 // p50 inside the window
		wantP90  float64
		describe string
	}{
		// 09:10: three points of the surge; the pipeline still keeps them
		// out of the model, whose forecast stays at 45. The declaration
		// stands: ×2 over the level before the window.
		{"model has not taken the surge in", at(0, 9, 10), level(45), surge(90), 90, 99, "×2.00, as the policy declares"},
		// Same history, but the model already follows the new level: the
		// rest of the factor is ×1 and nothing is added.
		{"model follows the surge", at(0, 9, 10), level(90), surge(90), 90, 99, "already carries ×2.00"},
		// Halfway in: the declared ×2 over 45 is 90; the model carries ×1.6.
		{"model carries part of it", at(0, 9, 10), level(72), surge(80), 90, 99, "so ×1.25 is applied"},
		// 09:40: the window has shown ×1.6 for eight points; a model that
		// does not follow the level (it repeats yesterday's 45) is lifted
		// to what the history shows, and the bands stay within 100 %.
		{"a model that does not follow the level", at(0, 9, 40), level(45), surge(72), 72, 79.2, "×1.60, as the history shows since 09:00"},
		{"bands stay within what the measurement can show", at(0, 9, 40), level(95), surge(95), 95, 100, "×2.11, as the history shows"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fc, h := synthetic(tc.origin, tc.raw, tc.hist)
			raw := append([]float64(nil), fc.Mean...)
			events := applySchedules(fc, pol, nil, h, raw, movedDemand{}, nil)
			if len(events) != 1 || !strings.Contains(events[0].Detail, tc.describe) {
				t.Fatalf("events %v, want one saying %q", events, tc.describe)
			}
			for i, at := range fc.Times {
				if math.Abs(fc.Bands[0][i]-tc.want) > 0.01 || math.Abs(fc.Bands[1][i]-tc.wantP90) > 0.01 {
					t.Fatalf("%s: p50 %.2f p90 %.2f, want %.2f and %.2f", at.Format("15:04"), fc.Bands[0][i], fc.Bands[1][i], tc.want, tc.wantP90)
				}
			}
		})
	}
}

// TestPeakWindowWithoutTheLevelBefore: when the history starts inside a
// window under way, nothing says what the level was before it; once the
// window has shown its level, the forecast keeps it rather than lift it
// again.
func TestPeakWindowWithoutTheLevelBefore(t *testing.T) {
	pol := policy(t, `schedule "surge" {
    cron     = "0 9 * * *"
    duration = "2h"
    action   = "peak"
    factor   = 2
  }`, nil)
	fc, h := synthetic(at(0, 9, 40), func(time.Time) float64 { return 80 }, func(time.Time) float64 { return 80 })
	nine := steps(at(0, 9, 0)) - 1
	h.y, h.start = h.y[nine:], at(0, 9, 0)
	events := applySchedules(fc, pol, nil, h, append([]float64(nil), fc.Mean...), movedDemand{}, nil)
	for i := range fc.Times {
		if fc.Mean[i] != 80 {
			t.Fatalf("step %d: %.1f, want the level the history shows (80)", i, fc.Mean[i])
		}
	}
	if len(events) != 1 || !strings.Contains(events[0].Detail, "holds nothing from before it") {
		t.Errorf("events %v", events)
	}
}

// TestDrainInBeforeTheModelFollows: moves into this locality are under way
// but the model still forecasts the level before them (the arrivals are
// still kept out as spikes); the drained demand is added in full, as the
// history before the moves measured it, not the drained locality's latest
// use (which the moves have already lowered).
func TestDrainInBeforeTheModelFollows(t *testing.T) {
	pol := policy(t, `schedule "rack-a" {
    cron       = "0 9 * * *"
    duration   = "1h"
    action     = "drain"
    localities = ["dc1/rack-a"]
  }`, nil)
	origin := at(0, 8, 55) // the moves began at 08:45 (migrate.lead_time 15m)
	fc, h := synthetic(origin, func(time.Time) float64 { return 40 }, func(time.Time) float64 { return 40 })
	var asked [2]time.Time
	moved := movedDemand{
		Latest: func(policies.Locality, string) (float64, bool) { return 5, true },
		Before: func(_ policies.Locality, _ string, a, b time.Time) (float64, bool) {
			asked = [2]time.Time{a, b}
			return 15, true
		},
	}
	events := applySchedules(fc, pol, nil, h, append([]float64(nil), fc.Mean...), moved, nil)
	if want := [2]time.Time{at(0, 8, 10), at(0, 8, 45)}; asked != want {
		t.Errorf("drained use read over %v, want the %d steps before the moves began %v", asked, levelPoints, want)
	}
	for i, at := range fc.Times {
		want := 40.0
		if at.Hour() == 9 {
			want = 55
		}
		if math.Abs(fc.Mean[i]-want) > 1e-9 {
			t.Fatalf("%s: %.1f, want %.1f (events %v)", at.Format("15:04"), fc.Mean[i], want, events)
		}
	}
	if len(events) != 1 || events[0].Added != 15 || !strings.Contains(events[0].Detail, "already carries +0.0") {
		t.Errorf("events %v", events)
	}
}

// TestPeakEndsInsideTheHorizon: after a window under way ends, the forecast
// falls back to the level before it: a model that kept the window's level
// is divided by the lift it carries; one that knows the window ends (it
// already forecasts the old level there) is left alone.
func TestPeakEndsInsideTheHorizon(t *testing.T) {
	pol := policy(t, `schedule "surge" {
    cron     = "0 9 * * *"
    duration = "2h"
    action   = "peak"
    factor   = 2
  }`, nil)
	eleven := at(0, 11, 0)
	hist := func(t time.Time) float64 {
		if t.Before(at(0, 9, 0)) || !t.Before(eleven) {
			return 45
		}
		return 90
	}
	for _, tc := range []struct {
		name   string
		origin time.Time
		raw    func(time.Time) float64
	}{
		{"the model keeps the window's level", at(0, 10, 30), func(time.Time) float64 { return 90 }},
		{"the model knows the window ends", at(0, 10, 30), func(t time.Time) float64 {
			if t.Before(eleven) {
				return 90
			}
			return 45
		}},
		// 11:10: two points after the window, which the pipeline still
		// keeps out as spikes; its forecast is the window's level.
		{"the window ended, the model has not followed yet", at(0, 11, 10), func(time.Time) float64 { return 90 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fc, h := synthetic(tc.origin, tc.raw, hist)
			applySchedules(fc, pol, nil, h, append([]float64(nil), fc.Mean...), movedDemand{}, nil)
			for i, at := range fc.Times {
				want := 45.0
				if at.Before(eleven) {
					want = 90
				}
				if math.Abs(fc.Mean[i]-want) > 1e-9 {
					t.Fatalf("%s: %.1f, want %.1f", at.Format("15:04"), fc.Mean[i], want)
				}
			}
		})
	}
}

// TestDrainOfSomeNodesReadsHotspotsOnTheRest: a drain of rack a, 3 of
// dc1/web's 10 nodes (30% of its CPU, 46% of its memory: its nodes have
// twice the memory), moves rack a's work to rack b. The collector
// measures dc1/web over its ready nodes, drained or not, so while rack a
// is up its percent does not rise: the forecast is left exactly as the
// model made it (the bands of the same policy without the drain). Its
// hotspot reads the window on rack b, ×all ÷ rest from the node list:
// 60% CPU is 85.7% of rack b, over the 80% line, a hotspot on the rest
// that says so; 40% is 57.1%, under it, and 30% memory 55.7%. With one
// of rack a down it is out of the base: 2 of 9 nodes, ×1.29. With rack a
// down the percent is measured over rack b already (70% before the
// window, 85.7% once it went down in it): the factor is 1, and the
// hotspot reads the band as it is, not ×1.43 again.
func TestDrainOfSomeNodesReadsHotspotsOnTheRest(t *testing.T) {
	const rackA = `schedule "rack-a" {
    cron     = "0 9 * * *"
    duration = "1h"
    action   = "drain"
    nodes    = "dc1-rack-a-*"
  }`
	web := state.Key{Locality: "dc1/web", Metric: "cpu"}
	webMem := state.Key{Locality: "dc1/web", Metric: "memory"}
	nine, ten := at(0, 9, 0), at(0, 10, 0)
	nodes := func(rackADown int) []Node {
		var out []Node
		for i := 1; i <= 3; i++ {
			out = append(out, Node{Name: fmt.Sprintf("dc1-rack-a-%d", i), Datacenter: "dc1", NodePool: "web", Ready: i > rackADown, CPUMHz: 4000, MemoryMB: 16384})
		}
		for i := 1; i <= 7; i++ {
			out = append(out, Node{Name: fmt.Sprintf("dc1-rack-b-%d", i), Datacenter: "dc1", NodePool: "web", Ready: true, CPUMHz: 4000, MemoryMB: 8192})
		}
		// Neither is dc1/web's: another pool's node the glob matches, and
		// a node of dc1/web that is down.
		return append(out, Node{Name: "dc1-rack-a-9", Datacenter: "dc1", NodePool: "batch", Ready: true, CPUMHz: 4000, MemoryMB: 8192},
			Node{Name: "dc1-old-1", Datacenter: "dc1", NodePool: "web", CPUMHz: 4000, MemoryMB: 8192})
	}
	const rest = 60 / 0.7 // 85.7
	cases := []struct {
		name      string
		now       time.Time
		cpu       func(i int) float64
		nodes     []Node
		factor    float64
		detail    string
		hotspotAt time.Time // zero: none
		onRest    bool      // the hotspot is read on rack b
	}{
		{
			name: "ahead, rack a up", now: at(0, 8, 15), cpu: func(int) float64 { return 60 }, nodes: nodes(0), factor: 10.0 / 7,
			detail:    "nodes dc1-rack-a-* (3 of 10, 30% of its CPU) are drained; the rest's load is ×1.43 the locality's, which its hotspots read",
			hotspotAt: nine, onRest: true,
		},
		{
			name: "ahead, the rest under the line", now: at(0, 8, 15), cpu: func(int) float64 { return 40 }, nodes: nodes(0), factor: 10.0 / 7,
			detail: "nodes dc1-rack-a-* (3 of 10, 30% of its CPU) are drained; the rest's load is ×1.43 the locality's, which its hotspots read",
		},
		{
			name: "ahead, one of rack a down", now: at(0, 8, 15), cpu: func(int) float64 { return 50 }, nodes: nodes(1), factor: 9.0 / 7,
			detail: "nodes dc1-rack-a-* (2 of 9, 22% of its CPU) are drained; the rest's load is ×1.29 the locality's, which its hotspots read " +
				"(1 more of them down, out of the capacity it is measured over)",
		},
		{
			// Rack a went down before the window: the 70% measured is
			// rack b's load already, not 100% (×1.43) of it.
			name: "ahead, rack a down already", now: at(0, 8, 15), cpu: func(int) float64 { return 70 }, nodes: nodes(3), factor: 1,
			detail: "nodes dc1-rack-a-* (3) are drained and down, out of the capacity the locality is measured over: its CPU percent is the rest's load (×1.00)",
		},
		{
			// Rack a stays up, drained: in the base still, and the
			// history shows no rise.
			name: "under way, rack a up", now: at(0, 9, 40), cpu: func(int) float64 { return 60 }, nodes: nodes(0), factor: 10.0 / 7,
			detail:    "the rest's load is ×1.43 the locality's",
			hotspotAt: at(0, 9, 45), onRest: true,
		},
		{
			name: "under way, rack a down", now: at(0, 9, 40), cpu: levels(60, rest, nine, ten), nodes: nodes(3), factor: 1,
			detail:    "nodes dc1-rack-a-* (3) are drained and down, out of the capacity the locality is measured over: its CPU percent is the rest's load (×1.00)",
			hotspotAt: at(0, 9, 45),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			fill(t, s, web, t0, steps(tc.now), tc.cpu)
			fill(t, s, webMem, t0, steps(tc.now), func(int) float64 { return 30 })
			res := New(nil).RunOnce(tc.now, s, []*policies.Policy{policy(t, rackA, nil)}, tc.nodes...)
			without := New(nil).RunOnce(tc.now, s, []*policies.Policy{policy(t, "", nil)}, tc.nodes...)
			fcs, plain := map[state.Key]*Forecast{}, map[state.Key]*Forecast{}
			for i := range res.Forecasts {
				fcs[res.Forecasts[i].Key()] = &res.Forecasts[i]
			}
			for i := range without.Forecasts {
				plain[without.Forecasts[i].Key()] = &without.Forecasts[i]
			}
			for _, key := range []state.Key{web, webMem} {
				fc, p := fcs[key], plain[key]
				if fc == nil || p == nil {
					t.Fatalf("no forecast of %s: %+v %+v", key, res.Pending, without.Pending)
				}
				if !reflect.DeepEqual(fc.Bands, p.Bands) || !reflect.DeepEqual(fc.Mean, p.Mean) {
					t.Errorf("%s: bands %v\nwant those of the policy without the drain %v", key, fc.Bands, p.Bands)
				}
			}
			fc := fcs[web]
			if len(fc.Events) != 1 || fc.Events[0].Nodes != "dc1-rack-a-*" || math.Abs(fc.Events[0].Factor-tc.factor) > 1e-9 ||
				!strings.Contains(fc.Events[0].Detail, tc.detail) {
				t.Fatalf("events %+v; want one of nodes dc1-rack-a-* saying %q, factor %.4f", fc.Events, tc.detail, tc.factor)
			}
			band := fc.Band(0.9)
			var hot *Hotspot
			for i := range res.Hotspots {
				switch h := &res.Hotspots[i]; h.Metric {
				case "cpu":
					hot = h
				case "memory":
					t.Errorf("memory hotspot %+v; 30%% is %.1f%% of rack b, under the line", *h, 30*tc.factor)
				}
			}
			switch {
			case tc.hotspotAt.IsZero():
				if hot != nil {
					t.Errorf("hotspot %+v; want none", *hot)
				}
				return
			case hot == nil || !hot.At.Equal(tc.hotspotAt):
				t.Fatalf("hotspot %+v; want one at %s", hot, tc.hotspotAt.Format("15:04"))
			}
			if *fc.Hotspot != *hot {
				t.Errorf("the forecast's hotspot %+v is not the result's %+v", *fc.Hotspot, *hot)
			}
			if !tc.onRest {
				if hot.Detail != "" || hot.Peak != slices.Max(band) {
					t.Errorf("hotspot %+v; want the band as it is (peak %.1f), no word of the rest", *hot, slices.Max(band))
				}
				return
			}
			i := slices.Index(fc.Times, hot.At)
			want := fmt.Sprintf("on the nodes of dc1/web that stay while dc1-rack-a-* are drained: p90 %.1f%% ×1.43 = %.1f%% over the 80%% line",
				band[i], band[i]*tc.factor)
			t.Log(hot.Detail)
			if hot.Detail != want || band[i] >= 80 || band[i]*tc.factor < 80 {
				t.Errorf("hotspot detail %q; want %q (the band %.1f under the line, the rest over it)", hot.Detail, want, band[i])
			}
			peak := math.Inf(-1)
			for i, at := range fc.Times {
				if !at.Before(nine) && at.Before(ten) {
					peak = math.Max(peak, band[i]*tc.factor)
				}
			}
			if math.Abs(hot.Peak-peak) > 1e-9 {
				t.Errorf("hotspot peak %.2f; want the rest's %.2f", hot.Peak, peak)
			}
		})
	}
}

// TestDrainOfSomeNodesOfAnotherLocalityAddsNothingHere: dc1/web's policy
// declares a drain of dc2's rack a. The planner sends its work to the rest
// of dc2 first, or to migrate.targets, none of which is dc1/web: it is
// not added to dc1/web's forecast (it added dc2's whole demand, 15
// points, though 3 of its nodes drained), and the event says where it
// goes.
func TestDrainOfSomeNodesOfAnotherLocalityAddsNothingHere(t *testing.T) {
	const rackA = `schedule "dc2-rack-a" {
    cron       = "0 9 * * *"
    duration   = "1h"
    action     = "drain"
    localities = ["dc2"]
    nodes      = "dc2-rack-a-*"
  }`
	web := state.Key{Locality: "dc1/web", Metric: "cpu"}
	for _, tc := range []struct {
		name    string
		targets []policies.Locality
		detail  string
	}{
		{name: "the rest of dc2 first", detail: "their work moves to the rest of dc2 first, while it takes it; nothing is added here"},
		{name: "migrate.targets", targets: []policies.Locality{{Datacenter: "dc3"}},
			detail: "their work moves to dc3 (migrate.targets); nothing is added here"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			now := at(0, 8, 15)
			fill(t, s, web, t0, steps(now), func(int) float64 { return 40 })
			fill(t, s, state.Key{Locality: "dc1/web", Metric: "cpu_mhz"}, t0, steps(now), func(int) float64 { return 4000 })
			fill(t, s, state.Key{Locality: "dc2", Metric: "cpu_mhz"}, t0, steps(now), func(int) float64 { return 1500 })
			pol := policy(t, rackA, func(p *policies.Policy) { p.Migrate.Targets = tc.targets })
			res := New(nil).RunOnce(now, s, []*policies.Policy{pol})
			fc := forecastOf(t, res, web)
			if len(fc.Events) != 1 || fc.Events[0].Added != 0 || !strings.Contains(fc.Events[0].Detail, tc.detail) {
				t.Fatalf("events %+v; want one adding nothing, saying %q", fc.Events, tc.detail)
			}
			for i, v := range fc.Band(0.5) {
				if math.Abs(v-40) > 2 {
					t.Errorf("%s: p50 %.1f, want 40", fc.Times[i].Format("15:04"), v)
				}
			}
		})
	}
}

// TestDrainOfAnotherLocalityWithTargetsAddsNothingHere: a policy with
// migrate.targets that drains another locality sends its work to the
// targets, none of which shares a node with its own: nothing of the
// drained locality's demand is added to its forecast, and the event says
// where the work goes. Without targets it is added, and the event says
// the planner sends the moves here first while they fit.
func TestDrainOfAnotherLocalityWithTargetsAddsNothingHere(t *testing.T) {
	const dc2 = `schedule "dc2-down" {
    cron       = "0 9 * * *"
    duration   = "1h"
    action     = "drain"
    localities = ["dc2"]
  }`
	web := state.Key{Locality: "dc1/web", Metric: "cpu"}
	for _, tc := range []struct {
		name    string
		targets []policies.Locality
		added   bool
		detail  string
	}{
		{name: "no targets", added: true, detail: "moves here; the planner sends its moves here first, while this locality stays under its line with them, and the rest to the other allowed localities"},
		{name: "migrate.targets", targets: []policies.Locality{{Datacenter: "dc3"}}, detail: "its work moves to dc3 (migrate.targets); nothing is added here"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			now := at(0, 8, 15)
			fill(t, s, web, t0, steps(now), func(int) float64 { return 40 })
			fill(t, s, state.Key{Locality: "dc1/web", Metric: "cpu_mhz"}, t0, steps(now), func(int) float64 { return 4000 })
			fill(t, s, state.Key{Locality: "dc2", Metric: "cpu_mhz"}, t0, steps(now), func(int) float64 { return 1500 })
			pol := policy(t, dc2, func(p *policies.Policy) { p.Migrate.Targets = tc.targets })
			res := New(nil).RunOnce(now, s, []*policies.Policy{pol})
			fc := forecastOf(t, res, web)
			if len(fc.Events) != 1 || (fc.Events[0].Added > 0) != tc.added || !strings.Contains(fc.Events[0].Detail, tc.detail) {
				t.Fatalf("events %+v; want one adding something %v, saying %q", fc.Events, tc.added, tc.detail)
			}
			if tc.added {
				return
			}
			for i, v := range fc.Band(0.5) {
				if math.Abs(v-40) > 2 {
					t.Errorf("%s: p50 %.1f, want 40", fc.Times[i].Format("15:04"), v)
				}
			}
		})
	}
}

// forecastOf is res's forecast of key; the test fails without one.
func forecastOf(t *testing.T, res Result, key state.Key) *Forecast {
	t.Helper()
	for i := range res.Forecasts {
		if res.Forecasts[i].Key() == key {
			return &res.Forecasts[i]
		}
	}
	t.Fatalf("no forecast of %s: %+v", key, res.Pending)
	return nil
}
