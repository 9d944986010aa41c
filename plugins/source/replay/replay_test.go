package replay

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
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

func TestLoadDir(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("timestamp,dc1/web:cpu,dc2:memory\n")
	for i := range 4 {
		fmt.Fprintf(&b, "%s,%d,%d\n", t0.Add(time.Duration(i)*5*time.Minute).Format("2006-01-02 15:04:05"), 10+i, 50+i)
	}
	write(t, filepath.Join(dir, "recorded.csv"), b.String())
	write(t, filepath.Join(dir, "policy.hcl"), "not a trace") // other files are left alone
	bs, skipped, err := LoadDir(dir, 5*time.Minute)
	if err != nil || len(skipped) != 0 {
		t.Fatal(err, skipped)
	}
	s, err := New(bs)
	if err != nil {
		t.Fatal(err)
	}
	if start, end := s.Span(); !start.Equal(t0) || !end.Equal(t0.Add(20*time.Minute)) {
		t.Errorf("span %v – %v, want %v – %v", start, end, t0, t0.Add(20*time.Minute))
	}
	res, err := s.Collect(context.Background(), source.Request{Now: t0.Add(time.Hour), Since: t0.Add(-time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]float64{}
	for _, smp := range res.Samples {
		got[smp.Series] = append(got[smp.Series], smp.Value)
	}
	if fmt.Sprint(got["dc1/web:cpu"]) != "[10 11 12 13]" || fmt.Sprint(got["dc2:memory"]) != "[50 51 52 53]" {
		t.Errorf("replayed %v", got)
	}

	for _, tc := range []struct{ name, body, want string }{
		{"column naming no series", "timestamp,cpu\n2026-01-05 00:00:00,1\n2026-01-05 00:05:00,2\n", `column "cpu" does not name a series`},
		{"no absolute times", "time,dc1:cpu\n0,1\n300,2\n", "no absolute timestamps"},
		{"bad locality", "timestamp,dc1//x:cpu\n2026-01-05 00:00:00,1\n2026-01-05 00:05:00,2\n", "does not name a series"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, filepath.Join(dir, "x.csv"), tc.body)
			if _, _, err := LoadDir(dir, 5*time.Minute); err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "x.csv") {
				t.Errorf("err = %v, want one naming x.csv and %q", err, tc.want)
			}
		})
	}
	dup := t.TempDir()
	write(t, filepath.Join(dup, "a.csv"), "timestamp,dc1:cpu\n2026-01-05 00:00:00,1\n2026-01-05 00:05:00,2\n")
	write(t, filepath.Join(dup, "b.csv"), "timestamp,dc1:cpu\n2026-01-05 00:00:00,1\n2026-01-05 00:05:00,2\n")
	if _, _, err := LoadDir(dup, 5*time.Minute); err == nil || !strings.Contains(err.Error(), "also recorded in") {
		t.Errorf("a series in two files: err = %v", err)
	}
	if _, _, err := LoadDir(t.TempDir(), 5*time.Minute); err == nil || !strings.Contains(err.Error(), "holds no") {
		t.Errorf("an empty directory: err = %v", err)
	}
}

// TestLoadDirSkippedRows: rows with a bad time or value are left out of
// the replay, which says how many and where the first is, by line and
// field.
func TestLoadDirSkippedRows(t *testing.T) {
	for _, tc := range []struct{ name, body, want string }{
		{"a value", "timestamp,dc1:cpu,dc2:cpu\n2026-01-05 00:00:00,1,2\n2026-01-05 00:05:00,2,abc\n2026-01-05 00:10:00,3,4\n",
			"x.csv: 1 row left out, their time or a value missing or invalid (the first at line 3: dc2:cpu)"},
		{"a time, then a value", "timestamp,dc1:cpu\n2026-01-05 00:00:00,1\nyesterday,2\n2026-01-05 00:10:00,\n2026-01-05 00:15:00,4\n",
			"x.csv: 2 rows left out, their time or a value missing or invalid (the first at line 3: its time)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, filepath.Join(dir, "x.csv"), tc.body)
			_, skipped, err := LoadDir(dir, 5*time.Minute)
			if err != nil || len(skipped) != 1 || !strings.HasSuffix(skipped[0], tc.want) {
				t.Errorf("skipped %q, err %v; want one ending %q", skipped, err, tc.want)
			}
		})
	}
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}
