package source

import (
	"testing"
	"time"
)

func TestLocalityNameRoundTrip(t *testing.T) {
	for _, l := range []Locality{
		{},
		{Datacenter: "dc1"},
		{Datacenter: "dc1", NodePool: "web"},
		{Datacenter: "dc1", NodePool: "web", NodeClass: "m5"},
		{NodeClass: "gpu"},
	} {
		got, err := ParseLocality(l.Name())
		if err != nil || got != l {
			t.Errorf("ParseLocality(%q) = %+v, %v; want %+v", l.Name(), got, err, l)
		}
	}
	if _, err := ParseLocality("dc1/web"); err == nil {
		t.Error("ParseLocality(dc1/web): want an error")
	}
}

func TestLocalityMatches(t *testing.T) {
	l := Locality{Datacenter: "dc1", NodePool: "web"}
	cases := []struct {
		dc, pool, class string
		want            bool
	}{
		{"dc1", "web", "", true},
		{"dc1", "web", "m5", true},
		{"dc2", "web", "", false},
		{"dc1", "batch", "", false},
	}
	for _, c := range cases {
		if got := l.Matches(c.dc, c.pool, c.class); got != c.want {
			t.Errorf("Matches(%q,%q,%q) = %v, want %v", c.dc, c.pool, c.class, got, c.want)
		}
	}
}

func TestSplitSeries(t *testing.T) {
	scope, metric, ok := SplitSeries(SeriesName("dc1/web/*", CPUPercent))
	if !ok || scope != "dc1/web/*" || metric != "cpu" {
		t.Errorf("SplitSeries = %q %q %v", scope, metric, ok)
	}
	for _, bad := range []string{"", "cpu", ":cpu", "dc1/web/*:"} {
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
