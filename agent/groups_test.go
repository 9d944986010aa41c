package agent

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/shape"
	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/policies"
)

const groupsPolicy = `
shaping "dc1" {
  locality {
    datacenter = "dc1"
  }
  forecast {
    horizon = "2h"
    step    = "5m"
    history = "7d"
  }
  migrate {
    spread        = true
    spread_by_use = %v
  }
}
`

// groupStore holds two task groups' series at 5 minutes: web (4
// allocations) uses 400 MHz each but from 10:00 to 11:00, when it uses
// 1200 (a daily peak, 1600 on one day of three); cache (2 allocations,
// only the last 30 minutes held) 300 MHz each.
func groupStore(t *testing.T, now time.Time, days int) *state.Store {
	t.Helper()
	st, err := state.NewStore(state.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var samples []state.Sample
	add := func(group, metric string, at time.Time, v float64) {
		samples = append(samples, state.Sample{Key: state.Key{Locality: "group/default/" + group, Metric: metric}, Time: at, Value: v})
	}
	for at := now.Add(-time.Duration(days) * 24 * time.Hour); !at.After(now); at = at.Add(5 * time.Minute) {
		use := 400.0
		if h := at.Hour(); h == 10 {
			use = 1200
			if at.Day()%3 == 0 {
				use = 1600
			}
		}
		add("web/web", "cpu_mhz", at, 4*use)
		add("web/web", "memory_mb", at, 4*256)
		add("web/web", "allocs", at, 4)
		if now.Sub(at) <= 30*time.Minute {
			add("cache/cache", "cpu_mhz", at, 2*300)
			add("cache/cache", "allocs", at, 2)
		}
	}
	if _, _, err := st.Append(5*time.Minute, samples); err != nil {
		t.Fatal(err)
	}
	return st
}

func TestGroupForecastsReadEachGroupsOwnDay(t *testing.T) {
	now := time.Date(2026, 3, 9, 9, 0, 0, 0, time.UTC)
	pols, diags := policies.Parse("p.hcl", []byte(fmt.Sprintf(groupsPolicy, true)))
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	byKey := func(fs []shape.Forecast) map[string]shape.Forecast {
		out := map[string]shape.Forecast{}
		for _, f := range fs {
			out[f.Group+":"+f.Metric] = f
		}
		return out
	}
	got := byKey(GroupForecasts(groupStore(t, now, 7), now, pols))
	web, ok := got["default/web/web:cpu"]
	if !ok {
		t.Fatalf("no web cpu forecast: %v", got)
	}
	if len(web.Times) != 25 || !web.Times[0].Equal(now) || web.Quantile != 0.9 || web.Locality != "" {
		t.Fatalf("web forecast %d times from %v, quantile %v, locality %q", len(web.Times), web.Times[0], web.Quantile, web.Locality)
	}
	for i, at := range web.Times {
		// Per allocation, at the same time of day over the seven days
		// held: 400 outside 10:00–11:00; inside, the 90th percentile of
		// 1200 on five days and 1600 on two (9 and 6 March).
		want := 400.0
		if at.Hour() == 10 {
			want = 1600
		}
		if math.Abs(web.Planning[i]-want) > 1e-9 {
			t.Errorf("web at %s: %v MHz per allocation; want %v", at.Format("15:04"), web.Planning[i], want)
		}
	}
	if m := got["default/web/web:memory"]; len(m.Planning) == 0 || m.Planning[0] != 256 {
		t.Errorf("web memory %v; want 256 MiB per allocation", m.Planning)
	}
	// cache has no earlier day: its use over the last hour, throughout.
	cache, ok := got["default/cache/cache:cpu"]
	if !ok || cache.Planning[0] != 300 || cache.Planning[len(cache.Planning)-1] != 300 {
		t.Errorf("cache %+v; want 300 MHz per allocation throughout", cache.Planning)
	}
	if _, ok := got["default/cache/cache:memory"]; ok {
		t.Error("a cache memory forecast without a memory series")
	}

	// Without migrate.spread_by_use nothing reads them.
	off, _ := policies.Parse("p.hcl", []byte(fmt.Sprintf(groupsPolicy, false)))
	if fs := GroupForecasts(groupStore(t, now, 7), now, off); fs != nil {
		t.Errorf("forecasts without a policy spreading by use: %d", len(fs))
	}
}
