package shape

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/predict"
	"github.com/foreshape/foreshape/agent/state"
)

// TestLandedWorkCountsOnlyWhatTheForecastDoesNotCarry: mr-9 moved two
// allocations (2000 MHz, 12.5% of dc2's CPU) from dc1 into dc2, started
// 90 minutes ago and done an hour ago; the metrics of dc2 show them since
// (its CPU 12.5 points higher). dc2's series rises 15 points from this
// time of day on every day (20% in the night, 35% by day). A forecast
// whose level has followed the series (47.5%: the day's 35 and the
// landed 12.5) carries the landed work already: counted again as held in
// dc2, it read dc2 12 points fuller than it will be, and mr-1 waited for
// room it has. A seasonal naive forecast (35%, yesterday's) carries none
// of it, and neither does a forecast without the series: both still
// count it. Before, each counted it in full for a day. The same for the
// moves done of a request still running, which counted at their whole
// size while it ran.
func TestLandedWorkCountsOnlyWhatTheForecastDoesNotCarry(t *testing.T) {
	tests := []struct {
		name     string
		level    float64
		observed bool
		running  bool // mr-9 still running, both its moves done
		want     string
	}{
		{name: "the forecast follows the level", level: 47.5, observed: true, want: "+ incoming 9% + held 0% would"},
		{name: "seasonal naive", level: 35, observed: true, want: "+ incoming 9% + held 12% would"},
		{name: "no series", level: 47.5, want: "+ incoming 9% + held 12% would"},
		{name: "running, its moves done", level: 47.5, observed: true, running: true, want: "+ incoming 9% + held 0% would"},
		{name: "running, seasonal naive", level: 35, observed: true, running: true, want: "+ incoming 9% + held 12% would"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := nodeRequestFixture(t)
			f.setFrom("dc2", "cpu", time.Minute, 79)
			started := at(-90 * time.Minute)
			done := state.MigrationRequest{ID: "mr-9", Resource: state.Resource{Kind: state.ResourceNode, ID: "id-dc1-b-1", Name: "dc1-b-1"},
				Source: "dc1", Target: "dc2", Policy: "dc1", Strategy: "reschedule", Origin: "operator", State: state.RequestDone,
				Created: at(-2 * time.Hour), Started: started, Finished: at(-time.Hour)}
			for i := range 2 {
				m := state.Move{Alloc: fmt.Sprintf("old-%d", i), Job: "web", Group: "frontend", Size: state.Resources{CPU: 1000, MemoryMB: 1024}, Done: true, Landed: "dc2"}
				done.Moves = append(done.Moves, m)
				done.Moved = done.Moved.Add(m.Size)
			}
			if tt.running {
				done.State, done.Finished = state.RequestRunning, time.Time{}
			}
			f.st.Requests = append(f.st.Requests, done)
			for i := range f.fcs {
				fc := &f.fcs[i]
				if fc.Locality != "dc2" || fc.Metric != "cpu" {
					continue
				}
				fc.Level = tt.level
				if tt.observed {
					fc.Observed = dailyWithLanding(fc.Times[0], started, 2*24*60, 12.5)
				}
			}
			plan := Run(f.input())
			rs, ok := rescoreOf(plan, "mr-1")
			if !ok || !strings.Contains(rs.Reason, tt.want) {
				t.Errorf("mr-1 %+v; want its reason to say %q", rs, tt.want)
			}
		})
	}
}

// dailyWithLanding is n one-minute observations up to the minute before
// first: 20% from midnight to the time of day of landed, 35% after, and
// from landed on (today) rise more.
func dailyWithLanding(first, landed time.Time, n int, rise float64) []float64 {
	out := make([]float64, n)
	turn := landed.Sub(landed.Truncate(24 * time.Hour))
	for i := range out {
		at := first.Add(-time.Duration(n-i) * time.Minute)
		v := 20.0
		if at.Sub(at.Truncate(24*time.Hour)) >= turn {
			v = 35
		}
		if !at.Before(landed) {
			v += rise
		}
		out[i] = v
	}
	return out
}

// TestCarriedSince reads a forecast's level against the series before a
// time and a season before, on and between its grid points.
func TestCarriedSince(t *testing.T) {
	times := []time.Time{at(0), at(time.Minute)}
	since := at(-90 * time.Minute)
	f := Forecast{Times: times, Level: 47.5, Observed: dailyWithLanding(times[0], since, 2*24*60, 12.5)}
	for _, s := range []time.Time{since, since.Add(-30 * time.Second)} {
		if c, ok := f.carriedSince(s, 24*time.Hour); !ok || math.Abs(c-12.5) > 1e-9 {
			t.Errorf("since %s: carried %v, %v; want 12.5", s.Format("15:04:05"), c, ok)
		}
	}
	if c, ok := f.carriedSince(since, 48*time.Hour); ok {
		t.Errorf("carried %v over a season the series does not reach back to; want no reading", c)
	}
	f.Observed = nil
	if _, ok := f.carriedSince(since, 24*time.Hour); ok {
		t.Error("a reading without observations")
	}
}

// TestCarriedSinceReadsAModelsForecast reads what an ETS forecast of
// dc1/web carries of 12.5 points moved in 90 minutes ago, on a daily
// cycle of ±10 around 30% (three days of history at 5 minutes): all of
// it (the model's level has followed), and nothing where none was moved.
func TestCarriedSinceReadsAModelsForecast(t *testing.T) {
	const n = 3*288 + 18
	origin := t0.Add(-5 * time.Minute)
	start := origin.Add(-(n - 1) * 5 * time.Minute)
	since := origin.Add(-17 * 5 * time.Minute)
	for _, landed := range []float64{12.5, 0} {
		store, err := state.NewStore(state.Config{})
		if err != nil {
			t.Fatal(err)
		}
		key := state.Key{Locality: "dc1/web", Metric: "cpu"}
		var batch []state.Sample
		for i := range n {
			at := start.Add(time.Duration(i) * 5 * time.Minute)
			v := 30 + 10*math.Sin(2*math.Pi*float64(i)/288)
			if !at.Before(since) {
				v += landed
			}
			batch = append(batch, state.Sample{Key: key, Time: at, Value: v})
		}
		if _, _, err := store.Append(5*time.Minute, batch); err != nil {
			t.Fatal(err)
		}
		pol := parsePolicies(t, `shaping "web" {
  locality {
    datacenter = "dc1"
    node_pool  = "web"
  }
  forecast {
    model    = "ets"
    horizon  = "1h"
    step     = "5m"
    history  = "3d"
    quantile = 0.9
  }
}`)
		res := predict.New(nil).RunOnce(origin, store, pol)
		if len(res.Forecasts) == 0 {
			t.Fatalf("no forecast: %+v", res.Pending)
		}
		fc := res.Forecasts[0]
		f := Forecast{Times: fc.Times, Level: fc.Level, Observed: fc.Observed}
		c, ok := f.carriedSince(since, 24*time.Hour)
		t.Logf("%.1f points moved in: the forecast carries %.2f", landed, c)
		if !ok || math.Abs(c-landed) > 2 {
			t.Errorf("%.1f points moved in: carried %.2f, %v; want about %.1f", landed, c, ok, landed)
		}
	}
}
