package forecast

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"testing"
	"time"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/golden.json from the current models")

// goldenCase is one fit whose forecast testdata/golden.json records.
type goldenCase struct {
	Name  string
	Model string
	Trace string
	N     int
	// Tail takes the last N points of the trace's two weeks, else the
	// first N.
	Tail bool
	Step time.Duration
	H    int
	// Last, when set, is the time of the last point (the network's
	// calendar).
	Last time.Time
}

var goldenCases = []goldenCase{
	{Name: "auto two weeks at 5m, one hour ahead", Model: "auto", Trace: "rds_cpu_utilization_cc0c53.csv", N: 4032, Step: 5 * time.Minute, H: 12},
	{Name: "auto a week at 5m, four hours ahead", Model: "auto", Trace: "ec2_cpu_utilization_53ea38.csv", N: 2016, Step: 5 * time.Minute, H: 48,
		Last: time.Date(2026, 3, 4, 13, 25, 0, 0, time.UTC)},
	{Name: "auto cold start on two hours at 1m", Model: "auto", Trace: "ec2_network_in_257a54.csv", N: 120, Tail: true, Step: time.Minute, H: 60,
		Last: time.Date(2026, 3, 4, 13, 25, 0, 0, time.UTC)},
	{Name: "arima", Model: "arima", Trace: "ec2_cpu_utilization_fe7f93.csv", N: 2016, Step: 5 * time.Minute, H: 12},
	{Name: "ets", Model: "ets", Trace: "grok_asg_anomaly.csv", N: 2016, Step: 5 * time.Minute, H: 12},
}

// TestGoldenForecasts holds the forecasts of fixed series to the values
// recorded in testdata/golden.json, every digit: work on speed must not
// change a forecast. A change meant to change forecasts rewrites the file
// with `go test -run TestGoldenForecasts -update` and says why in its
// commit. The recorded values are those of amd64 at every GOAMD64 level
// (the forecasting code fuses no multiply-add there, not even at v3: make
// test-v3); elsewhere the test only checks the shape.
func TestGoldenForecasts(t *testing.T) {
	path := filepath.Join("testdata", "golden.json")
	got := make([]Prediction, len(goldenCases))
	for i, c := range goldenCases {
		y := benchTrace(t, c.Trace)
		if c.Tail {
			y = y[len(y)-c.N:]
		} else {
			y = y[:c.N]
		}
		f := mustNew(t, c.Model, Options{Step: c.Step, Horizon: c.H})
		if tf, ok := f.(Timed); ok && !c.Last.IsZero() {
			tf.SetLast(c.Last)
		}
		if err := f.Fit(y); err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		p, err := f.Forecast(c.H)
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		got[i] = p
	}
	if *updateGolden {
		b, err := json.MarshalIndent(got, "", " ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var want []Prediction
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	if len(want) != len(goldenCases) {
		t.Fatalf("%s holds %d forecasts, want %d: rewrite it with -update", path, len(want), len(goldenCases))
	}
	for i, c := range goldenCases {
		g, w := got[i], want[i]
		if runtime.GOARCH != "amd64" {
			if len(g.Mean) != len(w.Mean) || len(g.Bands) != len(w.Bands) {
				t.Errorf("%s: shape differs from the recorded forecast", c.Name)
			}
			continue
		}
		if g.Model != w.Model || g.Reason != w.Reason {
			t.Errorf("%s: model %q (%s), recorded %q (%s)", c.Name, g.Model, g.Reason, w.Model, w.Reason)
		}
		if !reflect.DeepEqual(g.Quantiles, w.Quantiles) || !sameBits(g.Mean, w.Mean) || len(g.Bands) != len(w.Bands) {
			t.Errorf("%s: mean %v, recorded %v", c.Name, g.Mean, w.Mean)
			continue
		}
		for j := range g.Bands {
			if !sameBits(g.Bands[j], w.Bands[j]) {
				t.Errorf("%s: band %v %v, recorded %v", c.Name, g.Quantiles[j], g.Bands[j], w.Bands[j])
			}
		}
	}
}

// TestGoldenForecastsWithoutKernels: the same forecasts with the css4
// kernels off, as on a CPU without AVX2.
func TestGoldenForecastsWithoutKernels(t *testing.T) {
	defer func(h bool) { haveCSS4 = h }(haveCSS4)
	haveCSS4 = false
	TestGoldenForecasts(t)
}
