package predict

import (
	"math"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/forecast"
	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/policies"
)

func TestCharacteriseLocality(t *testing.T) {
	web := policies.Locality{Datacenter: "dc1", NodePool: "web"}
	key := func(m string) state.Key { return state.Key{Locality: web.String(), Metric: m} }
	n := 3 * 288 // three days of 5-minute points
	now := t0.Add(time.Duration(n-1) * 5 * time.Minute)
	for _, tc := range []struct {
		name  string
		fill  func(s *state.Store)
		check func(t *testing.T, w *Workload)
	}{
		{"too little history", func(s *state.Store) { fill(t, s, key("cpu"), now.Add(-time.Hour), 12, daily(50, 0)) },
			func(t *testing.T, w *Workload) {
				if w != nil {
					t.Errorf("characterised from an hour: %+v", w)
				}
			}},
		{"diurnal and CPU-bound, disks read-heavy", func(s *state.Store) {
			fill(t, s, key("cpu"), t0, n, daily(60, 20))
			fill(t, s, key("memory"), t0, n, daily(25, 2))
			fill(t, s, key("iops_read"), t0, n, daily(900, 100))
			fill(t, s, key("iops_write"), t0, n, daily(200, 20))
		}, func(t *testing.T, w *Workload) {
			if w == nil || w.Kind != forecast.Diurnal || w.Bound != forecast.CPUBound || w.IO != forecast.ReadHeavy || w.Points != n {
				t.Errorf("workload = %+v, want diurnal, cpu-bound, read-heavy over %d points", w, n)
			}
		}},
		{"flat and memory-bound, no disk split", func(s *state.Store) {
			fill(t, s, key("cpu"), t0, n, func(int) float64 { return 20 })
			fill(t, s, key("memory"), t0, n, func(int) float64 { return 70 })
			fill(t, s, key("iops"), t0, n, func(int) float64 { return 500 })
		}, func(t *testing.T, w *Workload) {
			if w == nil || w.Kind != forecast.Flat || w.Bound != forecast.MemoryBound || w.IO != "" {
				t.Errorf("workload = %+v, want flat, memory-bound, IO unknown", w)
			}
		}},
		{"bursty", func(s *state.Store) {
			fill(t, s, key("cpu"), t0, n, func(i int) float64 {
				if i%40 == 0 {
					return 95
				}
				return 30 + math.Sin(float64(i))
			})
		}, func(t *testing.T, w *Workload) {
			if w == nil || w.Kind != forecast.Bursty {
				t.Errorf("workload = %+v, want bursty", w)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			tc.fill(s)
			tc.check(t, newWorkloads().of(s, web, now))
		})
	}
}

func TestWorkloadIsRedoneHourly(t *testing.T) {
	web := policies.Locality{Datacenter: "dc1", NodePool: "web"}
	s := newStore(t)
	fill(t, s, state.Key{Locality: web.String(), Metric: "cpu"}, t0, 288, daily(60, 20))
	now := t0.Add(287 * 5 * time.Minute)
	w := newWorkloads()
	first := w.of(s, web, now)
	if first == nil {
		t.Fatal("no characterisation")
	}
	fill(t, s, state.Key{Locality: web.String(), Metric: "cpu"}, now.Add(5*time.Minute), 12, daily(60, 20))
	if again := w.of(s, web, now.Add(30*time.Minute)); again != first {
		t.Error("characterised again within the hour")
	}
	if later := w.of(s, web, now.Add(time.Hour)); later == first || later.Points != 300 {
		t.Errorf("after an hour: %+v, want a new characterisation of 300 points", later)
	}
	w.forget(map[policies.Locality]bool{})
	if len(w.byLocality) != 0 {
		t.Error("forget kept a locality")
	}
}
