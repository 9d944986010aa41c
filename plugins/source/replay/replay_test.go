package replay

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/foreshape/foreshape/plugins/source"
	"github.com/foreshape/foreshape/plugins/source/sourcetest"
	"github.com/foreshape/foreshape/policies"
	"github.com/foreshape/foreshape/traces"
)

var (
	t0  = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	dc1 = policies.Locality{Datacenter: "dc1"}
)

func TestCollectWindowAndScale(t *testing.T) {
	s, err := New([]Binding{{Locality: dc1, Metric: source.CPUPercent, Values: []float64{1, 2, math.NaN(), 4, 5},
		Step: 5 * time.Minute, Start: t0, Scale: 10}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Collect(context.Background(), source.Request{Now: t0.Add(15 * time.Minute), Since: t0})
	if err != nil {
		t.Fatal(err)
	}
	// (t0, t0+15m]: points 1 (20), 2 (NaN, skipped), 3 (40).
	if len(res.Samples) != 2 || res.Samples[0].Value != 20 || res.Samples[1].Value != 40 ||
		!res.Samples[1].Time.Equal(t0.Add(15*time.Minute)) || res.Samples[0].Series != "dc1:cpu" {
		t.Errorf("samples = %+v", res.Samples)
	}
	// Past the end without Loop: nothing more.
	res, _ = s.Collect(context.Background(), source.Request{Now: t0.Add(time.Hour), Since: t0.Add(20 * time.Minute)})
	if len(res.Samples) != 0 {
		t.Errorf("samples after the end = %+v", res.Samples)
	}
}

func TestLoop(t *testing.T) {
	s, err := New([]Binding{{Locality: dc1, Metric: "iops", Values: []float64{1, 2, 3}, Step: time.Minute, Start: t0, Loop: true}})
	if err != nil {
		t.Fatal(err)
	}
	res, _ := s.Collect(context.Background(), source.Request{Now: t0.Add(5 * time.Minute), Since: t0.Add(2 * time.Minute)})
	var got []float64
	for _, smp := range res.Samples {
		got = append(got, smp.Value)
	}
	if len(got) != 3 || got[0] != 1 || got[1] != 2 || got[2] != 3 {
		t.Errorf("looped values = %v, want [1 2 3]", got)
	}
}

func TestNewRejects(t *testing.T) {
	good := Binding{Locality: dc1, Metric: "cpu", Values: []float64{1}, Step: time.Minute, Start: t0}
	for name, tweak := range map[string]func(*Binding){
		"no step":   func(b *Binding) { b.Step = 0 },
		"no values": func(b *Binding) { b.Values = nil },
		"no start":  func(b *Binding) { b.Start = time.Time{} },
		"metric":    func(b *Binding) { b.Metric = "a:b" },
	} {
		b := good
		tweak(&b)
		if _, err := New([]Binding{b}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := New([]Binding{good, good}); err == nil {
		t.Error("a series bound twice was accepted")
	}
}

func TestLoadSeriesFromBundledTraces(t *testing.T) {
	v, err := LoadSeries(traces.FS(), "nab/data/realAWSCloudwatch/ec2_cpu_utilization_53ea38.csv", "", 5*time.Minute)
	if err != nil || len(v) < 4000 {
		t.Fatalf("NAB series: %d values, %v", len(v), err)
	}
	v, err = LoadSeries(traces.FS(), "datacenter/google2019/instance_usage_grouped_300_seconds_week1.csv", "avg_cpu", 5*time.Minute)
	if err != nil || len(v) != 2016 {
		t.Fatalf("google avg_cpu: %d values, %v", len(v), err)
	}
	if _, err := LoadSeries(traces.FS(), "datacenter/google2019/instance_usage_grouped_300_seconds_week1.csv", "nope", 5*time.Minute); err == nil {
		t.Error("an unknown column was accepted")
	}
}

func TestConformance(t *testing.T) {
	v, err := LoadSeries(traces.FS(), "nab/data/realAWSCloudwatch/rds_cpu_utilization_cc0c53.csv", "", 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	sourcetest.Run(t, func(t *testing.T) sourcetest.Fixture {
		s, err := New([]Binding{{Locality: dc1, Metric: "cpu", Values: v, Step: 5 * time.Minute, Start: t0}})
		if err != nil {
			t.Fatal(err)
		}
		return sourcetest.Fixture{
			Source:     s,
			Request:    source.Request{Now: t0.Add(24 * time.Hour), Lookback: 6 * time.Hour, Step: 5 * time.Minute},
			WantSeries: []string{"dc1:cpu"},
		}
	})
}
