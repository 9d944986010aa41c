package forecast

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/forecast/anomaly"
)

// levelsAt is a noisy series of n points that steps between the levels
// listed at the indices in at (levels[0] before at[0], levels[i+1] from
// at[i]).
func levelsAt(seed uint64, n int, at []int, levels []float64) []float64 {
	r := rand.New(rand.NewPCG(seed, 11))
	y := make([]float64, n)
	k := 0
	for i := range y {
		for k < len(at) && i >= at[k] {
			k++
		}
		y[i] = levels[k] + r.NormFloat64()
	}
	return y
}

// TestAfterShiftSegmentOrMoved holds what docs/forecasting.md says models
// fit after a level shift: the part of the history after the shift when
// it holds two days or four horizons, whichever is more, else the whole
// history with what came before the shift moved to the new level.
func TestAfterShiftSegmentOrMoved(t *testing.T) {
	const daily = 288
	// One shift, 600 points (a little over two days at five minutes)
	// before the end.
	y := levelsAt(1, 1500, []int{900}, []float64{10, 60})
	if n := len(anomaly.LevelShifts(y)); n != 1 {
		t.Fatalf("%d level shifts detected, want 1", n)
	}
	for _, tc := range []struct {
		name    string
		H       int
		segment bool
	}{
		{"two days after the shift, an hour ahead", 12, true},
		{"two days but fewer than four horizons", 160, false}, // 4·160 = 640 > 600
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, note, age := afterShift(y, tc.H, daily)
			if age < 600-anomaly.DefaultLevelShiftWindow || age > 600+anomaly.DefaultLevelShiftWindow {
				t.Fatalf("shift %d points before the end, want about 600", age)
			}
			if tc.segment {
				if len(out) != age || !strings.Contains(note, "after the last level shift") {
					t.Fatalf("%d points (%q), want the %d after the shift", len(out), note, age)
				}
				return
			}
			if len(out) != len(y) || !strings.Contains(note, "moved to the current level") {
				t.Fatalf("%d points (%q), want the whole history moved", len(out), note)
			}
			if v := out[100]; v < 55 || v > 65 {
				t.Fatalf("a point before the shift is %.1f, want it moved to about 60", v)
			}
		})
	}
}

// TestAfterShiftRegimeSwitching: a series with more than three level
// shifts switches between regimes, and over a horizon of six hours or
// more keeps its history as it is; over a shorter one the history before
// the shifts is moved to the current level.
func TestAfterShiftRegimeSwitching(t *testing.T) {
	const daily = 288
	y := levelsAt(2, 1200, []int{200, 400, 600, 800, 1000}, []float64{10, 60, 10, 60, 10, 60})
	if n := len(anomaly.LevelShifts(y)); n <= maxShifts {
		t.Fatalf("%d level shifts detected, want more than %d", n, maxShifts)
	}
	out, note, _ := afterShift(y, daily/4, daily) // six hours at five minutes
	if !slices.Equal(out, y) || !strings.Contains(note, "regime switching") {
		t.Fatalf("six hours ahead: %q, want the history kept as it is", note)
	}
	out, note, _ = afterShift(y, daily/4-1, daily)
	if slices.Equal(out, y) || !strings.Contains(note, "moved to the current level") {
		t.Fatalf("under six hours ahead: %q, want the history moved to the current level", note)
	}
}

// TestAutoCandidates holds auto's candidate list as docs/forecasting.md
// gives it: naive, the rolling median, ETS, Theta and ARIMA always;
// seasonal naive once the history holds a day; ETS, Theta and ARIMA on a
// seasonal decomposition when a season is detected or, without one, when
// the history holds two days (the daily season tried); and the global
// network for a step it was trained for.
func TestAutoCandidates(t *testing.T) {
	names := func(cs []candidate) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.name)
		}
		return out
	}
	base := []string{"naive", "median", "ets", "theta", "arima"}
	decomp := []string{"mstl-ets", "mstl-theta", "mstl-arima"}
	noise := func(n int) []float64 { return levelsAt(3, n, nil, []float64{50}) }
	for _, tc := range []struct {
		name string
		n    int
		want []string
	}{
		{"under a day", 200, base},
		{"a day and a half", 432, append(slices.Clone(base), "seasonal-naive")},
		{"two days, no season detected", 576, append(append(slices.Clone(base), "seasonal-naive"), decomp...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			y := noise(tc.n)
			ps, why := autoPeriods(y, fiveMin)
			got := names(candidates(ps, fiveMin, len(y), 12))
			want := append(slices.Clone(tc.want), "global") // a 5-minute network ships
			if !slices.Equal(got, want) {
				t.Fatalf("candidates %v (%s), want %v", got, why, want)
			}
		})
	}
	// No network for a 10-minute step.
	o := Options{Step: 10 * time.Minute, Horizon: 6}
	if got := names(candidates(nil, o, 100, 6)); slices.Contains(got, "global") {
		t.Fatalf("candidates %v at a 10-minute step, want no network", got)
	}
}

// TestBacktestWindow: the backtest's origins cover the history's last 40
// horizons, at least 2,000 and at most 3,000 points, but never its first
// half.
func TestBacktestWindow(t *testing.T) {
	for _, tc := range []struct{ n, H, span int }{
		{10000, 12, 2000},  // 40 horizons are 480 points: 2,000
		{10000, 60, 2400},  // 40 horizons
		{10000, 288, 3000}, // 40 horizons are 11,520 points: 3,000
		{3000, 12, 1500},   // the second half only
		{600, 60, 300},
	} {
		if first, _ := calibrationWindow(tc.n, tc.H); tc.n-first != tc.span {
			t.Errorf("n=%d H=%d: origins over the last %d points, want %d", tc.n, tc.H, tc.n-first, tc.span)
		}
	}
}
