package predict

import (
	"math"
	"testing"
	"time"

	"github.com/foreshape/foreshape/policies"
)

// TestForecastCarriesItsLevelAndSeries: a forecast carries the model's
// point forecast of its first step before the scheduled events (Level)
// and the series it was given (Observed, its last point at the origin),
// which the planner reads to tell how much of the work moved in lately
// the forecast carries already. dc1/web runs a daily cycle around 30%;
// work moved in 90 minutes ago raised it by 12.5 points: the ETS level
// follows it (the rise over the same forecast without the move is
// logged), and a peak declared from the first step (01:30) leaves Level as the
// model made it.
func TestForecastCarriesItsLevelAndSeries(t *testing.T) {
	const n = 3*288 + 18 // three days and 90 minutes
	run := func(landed float64, extra string) Forecast {
		s := newStore(t)
		fill(t, s, cpu, t0, n, func(i int) float64 {
			v := daily(30, 10)(i)
			if i >= n-18 {
				v += landed
			}
			return v
		})
		now := t0.Add((n - 1) * 5 * time.Minute)
		res := New(nil).RunOnce(now, s, []*policies.Policy{policy(t, extra, nil)})
		fc := forecastOf(t, res, cpu)
		return *fc
	}
	fc := run(12.5, "")
	if fc.Level != fc.Mean[0] {
		t.Errorf("Level %.2f; want the first step's mean %.2f, no event applying there", fc.Level, fc.Mean[0])
	}
	// The policy's three days of history, to the origin.
	if k := len(fc.Observed); k != 3*288 || math.Abs(fc.Observed[k-1]-(daily(30, 10)(n-1)+12.5)) > 1e-4 {
		t.Fatalf("Observed: %d points, last %v; want %d, the series up to the origin", k, fc.Observed[k-1], 3*288)
	}
	base := run(0, "")
	t.Logf("Level %.2f with the 12.5 points moved in 90 minutes ago, %.2f without: the forecast carries %.2f of them", fc.Level, base.Level, fc.Level-base.Level)
	peak := run(12.5, `schedule "surge" {
    cron     = "30 1 * * *"
    duration = "1h"
    action   = "peak"
    factor   = 2
  }`)
	if math.Abs(peak.Level-fc.Level) > 1e-9 || peak.Mean[0] <= peak.Level {
		t.Errorf("under a peak: Level %.2f, Mean[0] %.2f; want Level %.2f as the model made it, the peak above it", peak.Level, peak.Mean[0], fc.Level)
	}
}
