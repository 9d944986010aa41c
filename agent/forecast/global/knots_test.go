package global

import (
	"testing"
	"time"
)

// TestMedianBatchKnotsAtOneHour holds the figure docs/forecasting.md gives
// for auto's backtest of the shipped five-minute network: at one hour
// (12 steps) MedianBatch computes the output layer for 13 of its 58 knots,
// the twelve steps' own and the one after (weighed by zero), and for every
// knot a day ahead.
func TestMedianBatchKnotsAtOneHour(t *testing.T) {
	m, ok := ForArch(5*time.Minute, "nbeats")
	if !ok {
		t.Skip("no shipped 5-minute network")
	}
	k := m.Config.Knots
	if len(k) != 58 {
		t.Fatalf("%s has %d knots, want 58", m.Config.Name, len(k))
	}
	if got := knotsFor(k, 12); got != 13 {
		t.Errorf("one hour reads %d knots, want 13", got)
	}
	if got := knotsFor(k, 288); got != len(k) {
		t.Errorf("a day reads %d knots, want all %d", got, len(k))
	}
}
