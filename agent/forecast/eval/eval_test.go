package eval

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/forecast"
	"github.com/foreshape/foreshape/internal/tracefile"
)

// oracle is a fake model that knows the whole series and forecasts
// actual + bias·factor, with symmetric bands at ±width around it. It
// records how it was driven.
type oracle struct {
	name    string
	series  map[float64][]float64 // by first value
	bias    map[float64]float64   // error per series (by first value)
	width   float64
	quant   []float64
	seen    []float64
	fits    *atomic.Int64
	updates *atomic.Int64
	fail    bool
	every   int // refit schedule (Options.RefitEvery)
	since   int // points absorbed since the fit
}

func (o *oracle) Name() string { return o.name }

func (o *oracle) Fit(y []float64) error {
	if o.fail {
		return forecast.ErrTooShort
	}
	o.seen = append([]float64(nil), y...)
	o.fits.Add(1)
	o.since = 0
	return nil
}

func (o *oracle) Update(y ...float64) {
	o.seen = append(o.seen, y...)
	o.updates.Add(1)
	o.since += len(y)
}

// Stale follows the refit schedule the evaluation asks of every model.
func (o *oracle) Stale() (bool, string) {
	if o.every > 0 && o.since >= o.every {
		return true, "refit schedule reached"
	}
	return false, ""
}

func (o *oracle) Forecast(h int) (forecast.Prediction, error) {
	full := o.series[o.seen[0]]
	bias := o.bias[o.seen[0]]
	p := forecast.Prediction{Model: o.name, Quantiles: o.quant}
	n := len(o.seen)
	for j := 0; j < h; j++ {
		p.Mean = append(p.Mean, full[n+j]+bias)
	}
	for _, q := range o.quant {
		band := make([]float64, h)
		for j := range band {
			switch {
			case q < 0.5:
				band[j] = p.Mean[j] - o.width
			case q > 0.5:
				band[j] = p.Mean[j] + o.width
			default:
				band[j] = p.Mean[j]
			}
		}
		p.Bands = append(p.Bands, band)
	}
	return p, nil
}

// linear returns y_t = start + t at an hourly step: the in-sample seasonal
// naive error with the daily period (24) is exactly 24 everywhere.
func linear(start float64, n int) []float64 {
	y := make([]float64, n)
	for i := range y {
		y[i] = start + float64(i)
	}
	return y
}

type fakeSet struct {
	series        map[float64][]float64
	bias          map[string]map[float64]float64
	width         map[string]float64
	fits, updates atomic.Int64
}

func (f *fakeSet) New(name string, opts forecast.Options) (forecast.Forecaster, error) {
	if name == "unknown" {
		return nil, forecast.ErrUnknownModel
	}
	return &oracle{name: name, series: f.series, bias: f.bias[name], width: f.width[name],
		quant: opts.Quantiles, fits: &f.fits, updates: &f.updates, fail: name == "broken", every: opts.RefitEvery}, nil
}

func TestEvaluateKnownMetrics(t *testing.T) {
	a, b := linear(1000, 200), linear(5000, 200)
	fs := &fakeSet{
		series: map[float64][]float64{1000: a, 5000: b},
		bias: map[string]map[float64]float64{
			"perfect":        {1000: 0, 5000: 0},
			"seasonal-naive": {1000: 12, 5000: 12},   // MASE 0.5 on both
			"model":          {1000: 24, 5000: 6},    // ratio 2 and 0.5: geometric mean 1
			"biased":         {1000: -48, 5000: -48}, // outside every band
		},
		width: map[string]float64{"perfect": 0, "seasonal-naive": 100, "model": 100, "biased": 1},
	}
	data := tracefile.Data{
		Series: []tracefile.Series{
			{Name: "a", Folder: "f1", Step: time.Hour, Values: a},
			{Name: "b", Folder: "f2", Step: time.Hour, Values: b},
		},
		SkippedRows: 7,
	}
	rep, err := Evaluate(context.Background(), data, Config{
		Horizon: 10, Step: time.Hour, Models: []string{"perfect", "model", "biased"},
		New: fs.New, Quantiles: []float64{0.5},
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Horizon != 10 || rep.Series != 2 || rep.SkippedRows != 7 {
		t.Errorf("header: %+v", rep)
	}
	// Last 20% of 200 points: origins 160, 170, 180, 190 per series.
	if rep.Origins != 8 {
		t.Errorf("origins %d, want 8", rep.Origins)
	}
	// 24h / (10·1h) = 2: refit every 2 origins.
	if rep.RefitEvery != 2 {
		t.Errorf("refit every %d, want 2", rep.RefitEvery)
	}
	// 4 models (seasonal-naive added) × 2 series × 2 fits (origins 0, 2);
	// updates: 3 per series for the models in the pipeline (it absorbs new
	// points before it refits), 2 for the bare baseline (origins 1, 3).
	if fs.fits.Load() != 16 || fs.updates.Load() != 3*2*3+2*2 {
		t.Errorf("fits %d updates %d, want 16 and 22", fs.fits.Load(), fs.updates.Load())
	}

	check := func(model, metric string, got Num, want float64) {
		t.Helper()
		if math.IsNaN(want) != math.IsNaN(float64(got)) || (!math.IsNaN(want) && math.Abs(float64(got)-want) > 1e-9) {
			t.Errorf("%s %s = %v, want %v", model, metric, got, want)
		}
	}
	p := rep.Models["perfect"]
	check("perfect", "mase", p.MASE, 0)
	check("perfect", "smape", p.SMAPE, 0)
	check("perfect", "crps", p.CRPS, 0)
	check("perfect", "coverage80", p.Coverage80, 1)
	check("perfect", "coverage95", p.Coverage95, 1)
	// Its bands have no width: they say nothing of calibration.
	check("perfect", "coverage80_varying", p.Coverage80Varying, math.NaN())
	check("perfect", "coverage95_varying", p.Coverage95Varying, math.NaN())

	s := rep.Models["seasonal-naive"]
	check("seasonal-naive", "mase", s.MASE, 0.5) // 12 / 24
	check("seasonal-naive", "rel_mase", s.RelMASE, 1)
	check("seasonal-naive", "coverage80", s.Coverage80, 1)

	m := rep.Models["model"]
	check("model", "mase", m.MASE, (1+0.25)/2) // 24/24 and 6/24
	check("model", "rel_mase", m.RelMASE, 1)   // sqrt(2 · 0.5)
	// With bands at ±100 around a forecast biased by b, the pinball loss
	// averaged over the five levels is (25 + b/2)/5: seasonal naive
	// (b = 12) 31/5, the model 37/5 and 28/5.
	check("model", "rel_crps", m.RelCRPS, math.Sqrt(37.0/31*28.0/31))
	check("seasonal-naive", "crps", s.CRPS, 31.0/5/24)

	bi := rep.Models["biased"]
	check("biased", "mase", bi.MASE, 2) // 48 / 24
	check("biased", "rel_mase", bi.RelMASE, 4)
	check("biased", "coverage80", bi.Coverage80, 0)
	check("biased", "coverage95", bi.Coverage95, 0)
	check("biased", "coverage80_varying", bi.Coverage80Varying, 0)
	check("model", "coverage80_varying", m.Coverage80Varying, 1)
	check("model", "coverage95_varying", m.Coverage95Varying, 1)
	// Quantile levels are the requested 0.5 plus the coverage levels:
	// 0.025, 0.1, 0.5, 0.9, 0.975. Error 48 below the truth, bands ±1:
	// pinball = mean over levels of q·(48 ∓ 1) (actual above every band),
	// divided by the scale 24.
	levels := []float64{0.025, 0.1, 0.5, 0.9, 0.975}
	offs := []float64{-1, -1, 0, 1, 1}
	var pin float64
	for i, q := range levels {
		pin += q * (48 - offs[i])
	}
	check("biased", "crps", bi.CRPS, pin/5/24)
	// sMAPE of the biased model on the first origin's first point of series a
	// is 200·48/(|a|+|a−48|); just bound it.
	if bi.SMAPE <= 0 || bi.SMAPE > 200 {
		t.Errorf("biased smape %v", bi.SMAPE)
	}

	if rep.PerSeries != nil {
		t.Errorf("per-series figures without asking: %+v", rep.PerSeries)
	}
	// Per folder: series a alone has model/seasonal-naive = 2.
	check("f1 model", "rel_mase", rep.Folders["f1"].Models["model"].RelMASE, 2)
	check("f2 model", "rel_mase", rep.Folders["f2"].Models["model"].RelMASE, 0.5)
	if rep.Folders["f1"].Series != 1 {
		t.Errorf("folder f1: %+v", rep.Folders["f1"])
	}
}

func TestEvaluateRefitEveryOrigin(t *testing.T) {
	a := linear(1, 120)
	fs := &fakeSet{series: map[float64][]float64{1: a}, bias: map[string]map[float64]float64{}, width: map[string]float64{}}
	rep, err := Evaluate(context.Background(), tracefile.Data{Series: []tracefile.Series{{Name: "a", Values: a}}},
		Config{Horizon: 6, Step: time.Hour, Models: []string{"seasonal-naive"}, New: fs.New, RefitEvery: 1})
	if err != nil {
		t.Fatal(err)
	}
	// Origins 96, 102, 108, 114: four fits of the bare baseline, no
	// update.
	if rep.Origins != 4 || fs.fits.Load() != 4 || fs.updates.Load() != 0 {
		t.Errorf("origins %d fits %d updates %d, want 4, 4, 0", rep.Origins, fs.fits.Load(), fs.updates.Load())
	}
}

func TestEvaluateExclusionsAndFailures(t *testing.T) {
	good := linear(1, 200)
	flat := make([]float64, 200)
	for i := range flat {
		flat[i] = 3
	}
	fs := &fakeSet{series: map[float64][]float64{1: good, 3: flat}, bias: map[string]map[float64]float64{}, width: map[string]float64{}}
	data := tracefile.Data{Series: []tracefile.Series{
		{Name: "good", Values: good},
		{Name: "flat", Values: flat},
		{Name: "short", Values: []float64{1, 2, 3}},
	}}
	rep, err := Evaluate(context.Background(), data, Config{Horizon: 12, Step: time.Hour, Models: []string{"broken"}, New: fs.New})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Series != 1 || rep.Excluded["zero scale"] != 1 || rep.Excluded["too short"] != 1 {
		t.Errorf("series %d excluded %v", rep.Series, rep.Excluded)
	}
	if rep.Failures["broken"] != 1 {
		t.Errorf("failures %v", rep.Failures)
	}
	if !math.IsNaN(float64(rep.Models["broken"].MASE)) {
		t.Errorf("broken model has a MASE: %v", rep.Models["broken"].MASE)
	}
	// NaN figures are JSON nulls, and the object has the documented keys.
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"horizon", "series", "skipped_rows", "models", "folders"} {
		if _, ok := obj[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, b)
		}
	}
	if !strings.Contains(string(b), `"broken":{"rel_mase":null`) {
		t.Errorf("broken model not null in JSON: %s", b)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !math.IsNaN(float64(back.Models["broken"].MASE)) || back.Models["seasonal-naive"].MASE != rep.Models["seasonal-naive"].MASE {
		t.Errorf("round trip: %+v", back.Models)
	}

	if _, err := Evaluate(context.Background(), data, Config{Horizon: 12, Step: time.Hour, Models: []string{"unknown"}, New: fs.New}); !errors.Is(err, forecast.ErrUnknownModel) {
		t.Errorf("unknown model: %v", err)
	}
	if _, err := Evaluate(context.Background(), data, Config{Horizon: 0, Step: time.Hour, New: fs.New}); err == nil {
		t.Error("zero horizon accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Evaluate(ctx, data, Config{Horizon: 12, Step: time.Hour, Models: []string{"seasonal-naive"}, New: fs.New}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestOrigins(t *testing.T) {
	cases := []struct {
		n, h, minTrain int
		want           []int
	}{
		{100, 5, 10, []int{80, 85, 90, 95}},
		{100, 7, 10, []int{80, 87}},
		{100, 30, 10, []int{70}}, // span shorter than H: one origin at n−H
		{100, 95, 10, nil},       // not enough history
		{4032, 288, 26, []int{3226, 3514}},
		{10, 1, 2, []int{8, 9}},
	}
	for _, tc := range cases {
		if got := Origins(tc.n, tc.h, 0.2, tc.minTrain); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Origins(%d, %d) = %v, want %v", tc.n, tc.h, got, tc.want)
		}
	}
}

func TestNaiveMAE(t *testing.T) {
	y := []float64{1, 2, 4, math.NaN(), 8, 9}
	// lag 1 pairs: |2−1|, |4−2|, |9−8| = 1, 2, 1.
	if got := naiveMAE(y, 1); math.Abs(got-4.0/3) > 1e-12 {
		t.Errorf("lag 1: %v", got)
	}
	// lag 2 pairs: |4−1|, |8−4| (9−NaN skipped) = 3, 4.
	if got := naiveMAE(y, 2); got != 3.5 {
		t.Errorf("lag 2: %v", got)
	}
	if got := naiveMAE([]float64{1}, 1); !math.IsNaN(got) {
		t.Errorf("single point: %v", got)
	}
}

func TestMergeLevels(t *testing.T) {
	got := mergeLevels([]float64{0.99, 0.5, 0.1})
	want := []float64{0.025, 0.1, 0.5, 0.9, 0.975, 0.99}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("mergeLevels = %v, want %v", got, want)
	}
}

// TestEvaluateParallelMatchesSerial: the worker count changes nothing but
// the time taken, and progress reaches the total once per series.
func TestEvaluateParallelMatchesSerial(t *testing.T) {
	series := map[float64][]float64{}
	var data tracefile.Data
	for k := 0; k < 9; k++ {
		y := linear(float64(100*(k+1)), 150+10*k)
		for i := range y {
			y[i] += float64((i * (k + 3)) % 7) // break the exact periodicity
		}
		series[y[0]] = y
		data.Series = append(data.Series, tracefile.Series{Name: fmt.Sprint(k), Folder: fmt.Sprint(k % 2), Values: y})
	}
	bias := map[float64]float64{}
	for first := range series {
		bias[first] = first / 100
	}
	run := func(workers int) (Report, []int) {
		snaive := map[float64]float64{}
		for first := range series {
			snaive[first] = 3
		}
		fs := &fakeSet{series: series, bias: map[string]map[float64]float64{"model": bias, "seasonal-naive": snaive}, width: map[string]float64{"model": 2}}
		var calls []int
		rep, err := Evaluate(context.Background(), data, Config{
			Horizon: 5, Step: time.Hour, Models: []string{"model"}, New: fs.New, Workers: workers,
			Now:      func() time.Time { return time.Time{} }, // no timing noise
			Progress: func(done, total int) { calls = append(calls, done*100+total) },
		})
		if err != nil {
			t.Fatal(err)
		}
		return rep, calls
	}
	serial, calls := run(1)
	parallel, _ := run(4)
	a, _ := json.Marshal(serial)
	b, _ := json.Marshal(parallel)
	if string(a) != string(b) {
		t.Errorf("serial %s\nparallel %s", a, b)
	}
	if math.IsNaN(float64(serial.Models["model"].RelMASE)) {
		t.Errorf("no rel_mase: %s", a)
	}
	want := []int{109, 209, 309, 409, 509, 609, 709, 809, 909}
	if !reflect.DeepEqual(calls, want) {
		t.Errorf("progress calls %v, want %v", calls, want)
	}
}

func TestEvaluatePerSeries(t *testing.T) {
	a, b := linear(1000, 200), linear(5000, 200)
	fs := &fakeSet{
		series: map[float64][]float64{1000: a, 5000: b},
		bias: map[string]map[float64]float64{
			"seasonal-naive": {1000: 12, 5000: 12},
			"model":          {1000: 24, 5000: 6},
		},
		width: map[string]float64{"seasonal-naive": 100, "model": 100},
	}
	data := tracefile.Data{Series: []tracefile.Series{{Name: "a", Folder: "f", Values: a}, {Name: "b", Folder: "f", Values: b}}}
	rep, err := Evaluate(context.Background(), data, Config{Horizon: 10, Step: time.Hour, Models: []string{"model"}, New: fs.New, PerSeries: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.PerSeries) != 2 || rep.PerSeries[0].Name != "a" || rep.PerSeries[1].Name != "b" || rep.PerSeries[0].Origins != 4 {
		t.Fatalf("per series %+v", rep.PerSeries)
	}
	for i, want := range []float64{2, 0.5} {
		m := rep.PerSeries[i].Models["model"]
		if math.Abs(float64(m.RelMASE)-want) > 1e-9 || math.Abs(float64(m.MASE)-want/2) > 1e-9 {
			t.Errorf("series %s: rel_mase %v mase %v, want %v and %v", rep.PerSeries[i].Name, m.RelMASE, m.MASE, want, want/2)
		}
	}
}

// TestEvaluateRunsTheAgentPipeline: models are evaluated behind the
// agent's per-series pipeline: a spike in the history reaches the model as
// a missing value, and forecasts are clamped into the series' physical
// range (0 and up for a series that never went below 0).
func TestEvaluateRunsTheAgentPipeline(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	a := make([]float64, 400)
	for i := range a {
		a[i] = 100 + 2*r.NormFloat64() // a flat, noisy series
	}
	a[0] = 100
	a[200] = 5000 // a spike in the history
	fs := &fakeSet{
		series: map[float64][]float64{100: a},
		bias:   map[string]map[float64]float64{"negative": {100: -1000}},
		width:  map[string]float64{"negative": 1},
	}
	var mu sync.Mutex
	var fitted [][]float64
	newModel := func(name string, o forecast.Options) (forecast.Forecaster, error) {
		f, err := fs.New(name, o)
		if err != nil || name != "negative" {
			return f, err // the baseline sees the raw series
		}
		return recordFit{f.(*oracle), func(y []float64) { mu.Lock(); fitted = append(fitted, y); mu.Unlock() }}, nil
	}
	rep, err := Evaluate(context.Background(), tracefile.Data{Series: []tracefile.Series{{Name: "a", Values: a}}},
		Config{Horizon: 10, Step: time.Hour, Models: []string{"negative"}, New: newModel, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(fitted) == 0 {
		t.Fatal("no fit")
	}
	for _, y := range fitted {
		if !math.IsNaN(y[200]) {
			t.Fatalf("the spike at 200 reached the model: %v", y[200])
		}
	}
	// Forecasts 1,000 below a series near 100 are clamped to 0: the error
	// is the series itself, about 100, not 1,000.
	neg := rep.Models["negative"]
	if !(neg.MASE > 0) || float64(neg.MASE) > 200/naiveScale(a) {
		t.Errorf("mase %v: the negative forecasts were not clamped at 0", neg.MASE)
	}
	// Eight origins, a refit every 24h of data (two origins of 10h).
	if neg.RefitsPerSeries != 4 {
		t.Errorf("refits per series %v, want 4", neg.RefitsPerSeries)
	}
}

// recordFit reports every history its model is fitted on.
type recordFit struct {
	*oracle
	fit func([]float64)
}

func (r recordFit) Fit(y []float64) error {
	r.fit(append([]float64(nil), y...))
	return r.oracle.Fit(y)
}

// naiveScale is the in-sample seasonal naive error (lag 24) of y.
func naiveScale(y []float64) float64 { return naiveMAE(y[:320], 24) }

// TestEvaluateForecastRecords: Config.Forecasts gets each scored forecast
// once, with the series' actuals and the model's bands; its error stops the
// evaluation and is returned.
func TestEvaluateForecastRecords(t *testing.T) {
	a, b := linear(1000, 200), linear(5000, 200)
	fs := &fakeSet{
		series: map[float64][]float64{1000: a, 5000: b},
		bias:   map[string]map[float64]float64{"seasonal-naive": {1000: 12, 5000: 12}, "model": {1000: 24, 5000: 6}},
		width:  map[string]float64{"seasonal-naive": 100, "model": 100},
	}
	data := tracefile.Data{Series: []tracefile.Series{{Name: "a", Folder: "f", Values: a}, {Name: "b", Folder: "g", Values: b}}}
	var recs []ForecastRecord
	cfg := Config{Horizon: 10, Step: time.Hour, Models: []string{"model"}, New: fs.New, Workers: 2,
		Forecasts: func(r ForecastRecord) error { recs = append(recs, r); return nil }}
	rep, err := Evaluate(context.Background(), data, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2*rep.Origins {
		t.Fatalf("%d records, want %d", len(recs), 2*rep.Origins)
	}
	for _, r := range recs {
		y := map[string][]float64{"a": a, "b": b}[r.Series]
		if y == nil || len(r.Actual) != 10 || float64(r.Actual[3]) != y[r.Origin+3] || len(r.Bands) != len(r.Quantiles) ||
			r.Folder != map[string]string{"a": "f", "b": "g"}[r.Series] || r.Label == "" {
			t.Fatalf("record %+v", r)
		}
		if r.Model == "model" {
			bias := map[string]float64{"a": 24, "b": 6}[r.Series]
			if d := float64(r.Mean[0]) - y[r.Origin]; math.Abs(math.Abs(d)-bias) > 1e-9 {
				t.Errorf("%s at %d: mean off the actual by %v, want %v", r.Series, r.Origin, d, bias)
			}
		}
	}

	boom := errors.New("disk full")
	calls := 0
	cfg.Forecasts = func(ForecastRecord) error { calls++; return boom }
	if _, err := Evaluate(context.Background(), data, cfg); !errors.Is(err, boom) {
		t.Errorf("error %v, want %v", err, boom)
	}
	if calls != 1 {
		t.Errorf("%d calls after the first error, want 1", calls)
	}
}
