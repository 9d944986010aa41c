package shape

import (
	"fmt"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/policies"
)

func TestSpent(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 6, 30, 0, 0, time.UTC)
	pols := []*policies.Policy{
		{Name: "dc1", Locality: policies.Locality{Datacenter: "dc1"},
			Schedules: []policies.Schedule{{Name: "maintenance", Duration: 3 * time.Hour}}},
		{Name: "dc2", Locality: policies.Locality{Datacenter: "dc2"},
			Forecast: policies.Forecast{Seasonality: []time.Duration{24 * time.Hour, 7 * 24 * time.Hour}}},
	}
	done := func(target, key string, finished time.Time) state.MigrationRequest {
		return state.MigrationRequest{State: state.RequestDone, Source: "dc1", Target: target, OriginKey: key, Finished: finished}
	}
	window := fmt.Sprintf("schedule/dc1/maintenance/%d/alloc/a1", t0.Unix())
	for _, tc := range []struct {
		name string
		r    state.MigrationRequest
		now  time.Time
		want bool
	}{
		{"running", state.MigrationRequest{State: state.RequestRunning, Target: "dc3"}, t0.Add(48 * time.Hour), false},
		{"operator's, a day on", done("dc3", "", t0), t0.Add(24 * time.Hour), true},
		{"still counted at its target", done("dc3", "", t0), t0.Add(23 * time.Hour), false},
		{"weekly season at its target", done("dc2", "", t0), t0.Add(48 * time.Hour), false},
		{"weekly season past", done("dc2", "", t0), t0.Add(7 * 24 * time.Hour), true},
		{"window not ended", done("dc3", window, t0.Add(-23*time.Hour)), t0.Add(2 * time.Hour), false},
		{"window ended", done("dc3", window, t0.Add(-23*time.Hour)), t0.Add(3 * time.Hour), true},
		{"schedule gone", done("dc3", fmt.Sprintf("schedule/dc1/gone/%d/alloc/a1", t0.Unix()), t0.Add(-23*time.Hour)), t0.Add(time.Hour), true},
		{"spread peak ahead", done("dc3", fmt.Sprintf("spread/dc1/%d/a1", t0.Add(30*time.Hour).Unix()), t0), t0.Add(30 * time.Hour), false},
		{"spread peak past", done("dc3", fmt.Sprintf("spread/dc1/%d/a1", t0.Add(30*time.Hour).Unix()), t0), t0.Add(31 * time.Hour), true},
		{"rebalance crossing ahead", done("dc3", fmt.Sprintf("rebalance/dc1/%d/a1", t0.Add(24*time.Hour+30*time.Minute).Unix()), t0), t0.Add(25 * time.Hour), false},
	} {
		if got := Spent(&tc.r, tc.now, pols); got != tc.want {
			t.Errorf("%s: Spent %v; want %v", tc.name, got, tc.want)
		}
	}
}
