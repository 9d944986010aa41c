package source

import (
	"testing"
	"time"
)

func TestSplitSeries(t *testing.T) {
	scope, metric, ok := SplitSeries(SeriesName("dc1/web", CPUPercent))
	if !ok || scope != "dc1/web" || metric != "cpu" {
		t.Errorf("SplitSeries = %q %q %v", scope, metric, ok)
	}
	for _, bad := range []string{"", "cpu", ":cpu", "dc1/web:"} {
		if _, _, ok := SplitSeries(bad); ok {
			t.Errorf("SplitSeries(%q): want !ok", bad)
		}
	}
}

func TestResultSort(t *testing.T) {
	t0 := time.Unix(0, 0)
	r := Result{
		Samples: []Sample{{"b:cpu", t0, 1}, {"a:cpu", t0.Add(time.Minute), 2}, {"a:cpu", t0, 3}},
		Stale:   []Stale{{"z", ""}, {"a", ""}},
	}
	r.Sort()
	if r.Samples[0].Value != 3 || r.Samples[1].Value != 2 || r.Samples[2].Value != 1 {
		t.Errorf("samples not sorted: %+v", r.Samples)
	}
	if r.Stale[0].Series != "a" {
		t.Errorf("stale not sorted: %+v", r.Stale)
	}
}
