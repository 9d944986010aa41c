package forecast

import (
	"bufio"
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/internal/cputime"
	"github.com/foreshape/foreshape/traces"
)

// benchSeries is 4,032 points (two weeks at 5 minutes) of a real series.
func benchSeries(b *testing.B) []float64 {
	return benchTrace(b, "rds_cpu_utilization_cc0c53.csv")
}

// benchTrace reads the first 4,032 points of a bundled NAB series.
func benchTrace(b testing.TB, name string) []float64 {
	b.Helper()
	raw, err := traces.ReadFile("nab/data/realAWSCloudwatch/" + name)
	if err != nil {
		b.Fatal(err)
	}
	var y []float64
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		_, v, ok := strings.Cut(sc.Text(), ",")
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			continue
		}
		y = append(y, f)
	}
	if len(y) < 4032 {
		b.Fatalf("trace has %d points, want 4032", len(y))
	}
	return y[:4032]
}

// stateBytes is the memory a fitted forecaster holds per series.
func stateBytes(f Forecaster) int {
	switch m := f.(type) {
	case *model:
		return m.c.bytes() + 8*(len(m.cal.scale)+len(m.cal.levels)) + 128
	case *autoModel:
		return m.ac.bytes() + 8*(len(m.cal.scale)+len(m.cal.levels)) + 128
	}
	return 0
}

// BenchmarkFitForecast fits each model on 4,032 points and forecasts one
// hour (H=12), as a full refit with selection does.
func BenchmarkFitForecast(b *testing.B) {
	y := benchSeries(b)
	o := Options{Step: 5 * time.Minute, Horizon: 12}
	for _, name := range Models() {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			var f Forecaster
			cpu0 := cputime.Process()
			for i := 0; i < b.N; i++ {
				f = mustNew(b, name, o)
				if err := f.Fit(y); err != nil {
					b.Fatal(err)
				}
				if _, err := f.Forecast(12); err != nil {
					b.Fatal(err)
				}
			}
			reportCPURate(b, cpu0)
			b.ReportMetric(float64(stateBytes(f)), "state-bytes/series")
		})
	}
}

// reportCPURate reports the operations per second of wall time and per
// second of CPU time since cpu0 (what one core does on a loaded machine).
func reportCPURate(b *testing.B, cpu0 time.Duration) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "series/s")
	if cpu := cputime.Process() - cpu0; cpu > 0 {
		b.ReportMetric(float64(b.N)/cpu.Seconds(), "series/cpu-s")
	}
}

// BenchmarkUpdateForecast absorbs one new observation into a fitted model
// and forecasts one hour, as every cycle between refits does.
func BenchmarkUpdateForecast(b *testing.B) {
	y := benchSeries(b)
	o := Options{Step: 5 * time.Minute, Horizon: 12}
	for _, name := range Models() {
		b.Run(name, func(b *testing.B) {
			f := mustNew(b, name, o)
			if err := f.Fit(y[:3000]); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				f.Update(y[3000+i%1032])
				if _, err := f.Forecast(12); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "series/s")
			b.ReportMetric(float64(stateBytes(f)), "state-bytes/series")
		})
	}
}

// BenchmarkAutoFitByTrace is auto's full refit (selection included) on every
// bundled two-week NAB series, to show the spread around the headline
// figure.
func BenchmarkAutoFitByTrace(b *testing.B) {
	names := []string{
		"ec2_cpu_utilization_53ea38.csv", "ec2_cpu_utilization_c6585a.csv",
		"ec2_cpu_utilization_fe7f93.csv", "ec2_disk_write_bytes_1ef3de.csv",
		"ec2_network_in_257a54.csv", "grok_asg_anomaly.csv",
		"rds_cpu_utilization_cc0c53.csv",
	}
	o := Options{Step: 5 * time.Minute, Horizon: 12}
	for _, name := range names {
		y := benchTrace(b, name)
		b.Run(strings.TrimSuffix(name, ".csv"), func(b *testing.B) {
			cpu0 := cputime.Process()
			for i := 0; i < b.N; i++ {
				f := mustNew(b, "auto", o)
				if err := f.Fit(y); err != nil {
					b.Fatal(err)
				}
				if _, err := f.Forecast(12); err != nil {
					b.Fatal(err)
				}
			}
			reportCPURate(b, cpu0)
		})
	}
}

// BenchmarkAutoFitParallel is auto's full refit (selection, backtests and
// calibration; H=12) on 4,032 points of a real series, on every core: the
// rate at which a machine refits series.
func BenchmarkAutoFitParallel(b *testing.B) {
	y := benchSeries(b)
	o := Options{Step: 5 * time.Minute, Horizon: 12}
	cpu0 := cputime.Process()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			f := mustNew(b, "auto", o)
			if err := f.Fit(y); err != nil {
				b.Error(err)
				return
			}
			if _, err := f.Forecast(12); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportCPURate(b, cpu0)
}
