package forecast

import (
	"math"
	"reflect"
	"testing"
	"time"
)

// TestAutoSameOnSpareCores checks that backtesting auto's candidates on
// spare cores changes nothing: the same forecast as with every core busy.
func TestAutoSameOnSpareCores(t *testing.T) {
	y := benchTrace(t, "ec2_cpu_utilization_c6585a.csv")[:3000]
	fit := func() Prediction {
		f := mustNew(t, "auto", Options{Step: 5 * time.Minute, Horizon: 24})
		if err := f.Fit(y); err != nil {
			t.Fatal(err)
		}
		p, err := f.Forecast(24)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	spread := fit()
	// Hold every spare core: the candidates run one after the other.
	spare := spareCores()
	for range cap(spare) {
		spare <- struct{}{}
	}
	serial := fit()
	for range cap(spare) {
		<-spare
	}
	if !reflect.DeepEqual(spread, serial) {
		t.Fatalf("auto on spare cores forecast %v (%s), one at a time %v (%s)", spread.Mean, spread.Model, serial.Mean, serial.Model)
	}
	if math.IsNaN(spread.Mean[0]) {
		t.Fatal("NaN forecast")
	}
}

// TestInParallelCallsEachOnce checks that every index is done exactly once
// whatever the spare cores.
func TestInParallelCallsEachOnce(t *testing.T) {
	for _, n := range []int{0, 1, 2, 7, 100} {
		counts := make([]int, n)
		inParallel(n, func(i int) { counts[i]++ })
		for i, c := range counts {
			if c != 1 {
				t.Fatalf("n=%d: index %d done %d times", n, i, c)
			}
		}
	}
}
