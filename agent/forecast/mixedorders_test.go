package forecast

import (
	"testing"
	"time"
)

// TestMixedOrdersOnlyUnderSixHours holds what docs/forecasting.md says of
// auto's ARIMA candidates: only horizons under six hours (a quarter of the
// daily period) search the mixed orders, at five-minute and at one-minute
// steps, for the ARIMA candidate and the one on the seasonally adjusted
// series alike.
func TestMixedOrdersOnlyUnderSixHours(t *testing.T) {
	for _, tc := range []struct {
		step  time.Duration
		H     int
		mixed bool
	}{
		{5 * time.Minute, 12, true},
		{5 * time.Minute, 71, true},   // 5h55m
		{5 * time.Minute, 72, false},  // six hours
		{5 * time.Minute, 288, false}, // a day
		{time.Minute, 60, true},       // the agent's default policy
		{time.Minute, 359, true},      // 5h59m
		{time.Minute, 360, false},     // six hours
	} {
		o := Options{Step: tc.step, Horizon: tc.H}
		n := 3 * o.daily()
		var seen int
		for _, c := range candidates([]int{o.daily()}, o, n, tc.H) {
			var ar *arCore
			switch core := c.c.(type) {
			case *arCore:
				ar = core
			case *mstlCore:
				ar, _ = core.inner.(*arCore)
			}
			if ar == nil {
				continue
			}
			seen++
			if ar.mixed != tc.mixed {
				t.Errorf("step %v, H=%d: %s searches mixed orders %v, want %v", tc.step, tc.H, c.name, ar.mixed, tc.mixed)
			}
		}
		if seen != 2 {
			t.Errorf("step %v, H=%d: %d ARIMA candidates, want arima and mstl-arima", tc.step, tc.H, seen)
		}
	}
}
