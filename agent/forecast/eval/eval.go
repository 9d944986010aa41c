package eval

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/foreshape/foreshape/agent/forecast"
	"github.com/foreshape/foreshape/agent/forecast/anomaly"
	"github.com/foreshape/foreshape/internal/tracefile"
)

// Baselines every model is measured against.
const (
	Naive         = "naive"
	SeasonalNaive = "seasonal-naive"
)

// DefaultHoldout is the share of each series, at its end, that is forecast.
const DefaultHoldout = 0.2

// coverageLevels are the quantiles the coverage metrics need; they are added
// to whatever quantiles the models are asked for.
var coverageLevels = []float64{0.025, 0.1, 0.5, 0.9, 0.975}

// Config says what to evaluate.
type Config struct {
	// Horizon is H, the number of steps forecast at each origin.
	Horizon int
	// Step is the series' sampling interval.
	Step time.Duration
	// Models to evaluate; nil means forecast.Models(). Seasonal naive is
	// always evaluated, as the reference of rel_mase and rel_crps.
	Models []string
	// Quantiles asked of every model; nil means forecast.DefaultQuantiles.
	// The levels coverage needs (0.025, 0.1, 0.5, 0.9, 0.975) are added.
	Quantiles []float64
	// Workers evaluating series in parallel; 0 means GOMAXPROCS.
	Workers int
	// RefitEvery: the model's refit schedule, in origins (the pipeline
	// refits when it has absorbed RefitEvery·Horizon points since its
	// fit); 0 means the agent's schedule, one day of data
	// (max(1, 24h/(Horizon·Step)) origins), 1 means at every origin. The
	// pipeline also refits, as in the agent, on level shifts and degraded
	// one-step errors.
	RefitEvery int
	// Range gives a series' physical range from its history before the
	// first origin; nil means NonNegativeRange.
	Range func(s tracefile.Series, history []float64) forecast.Range
	// New builds a model; nil means forecast.New.
	New func(name string, opts forecast.Options) (forecast.Forecaster, error)
	// Holdout is the share of each series forecast; 0 means 0.2.
	Holdout float64
	// Now measures fitting time; nil means time.Now. It is used for the
	// fit_ms_per_series figure only.
	Now func() time.Time
	// Progress, when set, is called after each series with the number done
	// and the total. Calls are serialised but come from worker goroutines.
	Progress func(done, total int)
	// PerSeries asks for every series' own figures in Report.PerSeries.
	PerSeries bool
	// Forecasts, when set, is given every scored forecast, in no
	// particular order across series; calls are serialised. A non-nil
	// error stops the evaluation, which returns it.
	Forecasts func(ForecastRecord) error
	// Anomaly tunes the pipeline's anomaly detector; NoMasking keeps every
	// point in the models (see forecast.PipelineOptions).
	Anomaly   anomaly.Options
	NoMasking bool
}

// Num is a metric value; NaN (no data) is written to JSON as null.
type Num float64

// MarshalJSON writes NaN and infinities as null.
func (n Num) MarshalJSON() ([]byte, error) {
	f := float64(n)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return []byte(strconv.FormatFloat(f, 'g', 6, 64)), nil
}

// UnmarshalJSON reads a number or null (NaN).
func (n *Num) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*n = Num(math.NaN())
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*n = Num(f)
	return nil
}

// Metrics are one model's figures over a set of series.
type Metrics struct {
	RelMASE    Num `json:"rel_mase"`
	RelCRPS    Num `json:"rel_crps"`
	MASE       Num `json:"mase"`
	SMAPE      Num `json:"smape"`
	CRPS       Num `json:"crps"`
	Coverage80 Num `json:"coverage80"`
	Coverage95 Num `json:"coverage95"`
	// Coverage80Varying and Coverage95Varying count only the points where
	// the band has a width. A zero-width band (a constant series, or an
	// intermittent one whose quantiles all sit at 0) covers its actual or
	// misses it by construction, whatever the calibration; on a folder
	// with such series coverage80 measures them as much as the bands.
	Coverage80Varying Num `json:"coverage80_varying"`
	Coverage95Varying Num `json:"coverage95_varying"`
	FitMsPerSeries    Num `json:"fit_ms_per_series"`
	// RefitsPerSeries is the mean number of fits per series (the first
	// included): the pipeline's schedule, level shifts and degraded
	// errors.
	RefitsPerSeries Num `json:"refits_per_series"`
}

// Folder holds the figures of the series of one folder.
type Folder struct {
	Series int                `json:"series"`
	Models map[string]Metrics `json:"models"`
}

// Report is the result of an evaluation.
type Report struct {
	Horizon     int                `json:"horizon"`
	Series      int                `json:"series"`
	SkippedRows int                `json:"skipped_rows"`
	Models      map[string]Metrics `json:"models"`
	// Folders holds the same figures per folder.
	Folders map[string]Folder `json:"folders"`
	// Excluded counts series left out, by reason: "zero scale" (constant or
	// exactly periodic in training, so MASE is undefined) or "too short".
	Excluded map[string]int `json:"excluded_series"`
	// Failures counts, per model, series on which it failed to fit or
	// forecast; those series are left out of that model's figures.
	Failures map[string]int `json:"failures"`
	// RefitEvery is the refit interval used, in origins.
	RefitEvery int `json:"refit_every"`
	// Origins is the number of forecast origins per model.
	Origins int `json:"origins"`
	// PerSeries holds each evaluated series' figures when Config.PerSeries
	// is set; there rel_mase and rel_crps are plain ratios to seasonal
	// naive on that series.
	PerSeries []SeriesReport `json:"per_series,omitempty"`
}

// ForecastRecord is one scored forecast (Config.Forecasts): what a model
// forecast at one origin of one series, and what came.
type ForecastRecord struct {
	Series string `json:"series"`
	Folder string `json:"folder"`
	// Model is the evaluated model; Label and Reason are the forecast's
	// own (Prediction.Model and Prediction.Reason: what auto chose, and
	// why; how the backtest shaped the bands).
	Model  string `json:"model"`
	Label  string `json:"label"`
	Reason string `json:"reason"`
	// Origin is the index of the first forecast point in the series;
	// Time its time, when the series has times.
	Origin int        `json:"origin"`
	Time   *time.Time `json:"time,omitempty"`
	// Scale is the MASE scale at the origin.
	Scale Value `json:"scale"`
	// Actual, Mean and each of Bands (at the levels of Quantiles) hold one
	// value a forecast step; a missing value is null.
	Actual    []Value   `json:"actual"`
	Mean      []Value   `json:"mean"`
	Quantiles []float64 `json:"quantiles"`
	Bands     [][]Value `json:"bands"`
}

// Value is a series or forecast value, written to JSON in full precision
// (so that an actual is inside a band in the JSON exactly when it was in
// the evaluation); NaN and infinities are written as null.
type Value float64

// MarshalJSON writes NaN and infinities as null.
func (v Value) MarshalJSON() ([]byte, error) {
	f := float64(v)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return []byte(strconv.FormatFloat(f, 'g', -1, 64)), nil
}

// UnmarshalJSON reads a number or null (NaN).
func (v *Value) UnmarshalJSON(b []byte) error {
	var n Num
	if err := n.UnmarshalJSON(b); err != nil {
		return err
	}
	*v = Value(n)
	return nil
}

func values(v []float64) []Value {
	out := make([]Value, len(v))
	for i, x := range v {
		out[i] = Value(x)
	}
	return out
}

// SeriesReport holds one series' figures.
type SeriesReport struct {
	Name    string             `json:"name"`
	Folder  string             `json:"folder"`
	Origins int                `json:"origins"`
	Models  map[string]Metrics `json:"models"`
}

// ModelNames returns the report's models: the baselines first, then the
// others by name.
func (r Report) ModelNames() []string {
	var out []string
	for _, b := range []string{Naive, SeasonalNaive} {
		if _, ok := r.Models[b]; ok {
			out = append(out, b)
		}
	}
	var rest []string
	for m := range r.Models {
		if m != Naive && m != SeasonalNaive {
			rest = append(rest, m)
		}
	}
	sort.Strings(rest)
	return append(out, rest...)
}

// seriesScore is one model's accumulated errors on one series.
type seriesScore struct {
	failed  bool
	absErr  float64 // sum of |e|/scale
	smape   float64 // sum of 200|e|/(|a|+|f|)
	pinball float64 // sum of mean-over-levels pinball/scale
	points  int
	in80    int
	n80     int
	in95    int
	n95     int
	// the same over the points where the band has a width
	in80v, n80v, in95v, n95v int
	duration                 time.Duration
	refits                   int
}

func (s *seriesScore) mase() float64 { return s.absErr / float64(s.points) }
func (s *seriesScore) crps() float64 { return s.pinball / float64(s.points) }

// seriesResult holds every model's score on one series.
type seriesResult struct {
	folder   string
	excluded string
	origins  int
	scores   map[string]*seriesScore
}

// Evaluate runs the rolling-origin backtest of every model on every series
// of data and aggregates the metrics. It returns ctx's error when cancelled.
func Evaluate(ctx context.Context, data tracefile.Data, cfg Config) (Report, error) {
	if cfg.Horizon < 1 {
		return Report{}, errors.New("eval: horizon must be at least 1")
	}
	if cfg.Step <= 0 {
		return Report{}, errors.New("eval: step must be positive")
	}
	models := cfg.Models
	if len(models) == 0 {
		models = forecast.Models()
	}
	models = withModel(models, SeasonalNaive)
	if cfg.Range == nil {
		cfg.Range = NonNegativeRange
	}
	if cfg.New == nil {
		cfg.New = forecast.New
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	for _, m := range models {
		if _, err := cfg.New(m, forecast.Options{Step: cfg.Step, Horizon: cfg.Horizon}); err != nil {
			return Report{}, fmt.Errorf("eval: %w", err)
		}
	}
	refit := cfg.RefitEvery
	if refit <= 0 {
		refit = max(1, int(24*time.Hour/(time.Duration(cfg.Horizon)*cfg.Step)))
	}
	cfg.RefitEvery = refit
	holdout := cfg.Holdout
	if holdout <= 0 || holdout >= 1 {
		holdout = DefaultHoldout
	}
	workers := cfg.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	quantiles := mergeLevels(cfg.Quantiles)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var recordErr error
	if record := cfg.Forecasts; record != nil {
		var mu sync.Mutex
		cfg.Forecasts = func(r ForecastRecord) error {
			mu.Lock()
			defer mu.Unlock()
			if recordErr != nil {
				return recordErr
			}
			if err := record(r); err != nil {
				recordErr = err
				cancel()
			}
			return recordErr
		}
	}

	results := make([]seriesResult, len(data.Series))
	jobs := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	done := 0
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				results[i] = evalSeries(ctx, data.Series[i], models, cfg, quantiles, refit, holdout)
				if cfg.Progress != nil {
					mu.Lock()
					done++
					cfg.Progress(done, len(data.Series))
					mu.Unlock()
				}
			}
		}()
	}
	// Longest series first, so that a long one does not start last and
	// leave the other workers idle at the end.
	order := make([]int, len(data.Series))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		return len(data.Series[order[a]].Values) > len(data.Series[order[b]].Values)
	})
feed:
	for _, i := range order {
		select {
		case jobs <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if recordErr != nil {
		return Report{}, recordErr
	}
	if err := ctx.Err(); err != nil {
		return Report{}, err
	}

	rep := Report{
		Horizon:     cfg.Horizon,
		SkippedRows: data.SkippedRows,
		Excluded:    map[string]int{},
		Failures:    map[string]int{},
		Folders:     map[string]Folder{},
		RefitEvery:  refit,
	}
	byFolder := map[string][]seriesResult{}
	var kept []seriesResult
	for _, r := range results {
		if r.excluded != "" {
			rep.Excluded[r.excluded]++
			continue
		}
		kept = append(kept, r)
		byFolder[r.folder] = append(byFolder[r.folder], r)
		rep.Origins += r.origins
		for m, s := range r.scores {
			if s.failed {
				rep.Failures[m]++
			}
		}
	}
	rep.Series = len(kept)
	rep.Models = aggregate(kept, models)
	if cfg.PerSeries {
		for i, r := range results {
			if r.excluded != "" {
				continue
			}
			rep.PerSeries = append(rep.PerSeries, SeriesReport{
				Name: data.Series[i].Name, Folder: r.folder, Origins: r.origins,
				Models: aggregate([]seriesResult{r}, models),
			})
		}
	}
	for f, rs := range byFolder {
		rep.Folders[f] = Folder{Series: len(rs), Models: aggregate(rs, models)}
	}
	return rep, nil
}

// evalSeries backtests every model on one series.
func evalSeries(ctx context.Context, s tracefile.Series, models []string, cfg Config, quantiles []float64, refit int, holdout float64) seriesResult {
	res := seriesResult{folder: s.Folder, scores: map[string]*seriesScore{}}
	y := s.Values
	h := cfg.Horizon
	pl := PlanSeries(s, cfg.Horizon, cfg.Step, holdout, cfg.Range)
	if pl.Excluded != "" {
		res.excluded = pl.Excluded
		return res
	}
	origins, scales, rng := pl.Origins, pl.Scales, pl.Range
	res.origins = len(origins)
	opts := forecast.Options{Step: cfg.Step, Horizon: h, Quantiles: quantiles, RefitEvery: refit * h}
	for _, name := range models {
		sc := &seriesScore{}
		res.scores[name] = sc
		o := opts
		o.AsGiven = name == Naive || name == SeasonalNaive
		f, err := cfg.New(name, o)
		var p runner
		switch {
		case err != nil:
		case o.AsGiven:
			p = &bare{f: f, every: refit}
		default:
			p, err = forecast.NewPipelineFor(f, forecast.PipelineOptions{Model: name, Options: opts, Range: rng,
				Anomaly: cfg.Anomaly, NoMasking: cfg.NoMasking})
		}
		if err != nil {
			sc.failed = true
			continue
		}
		prev := 0
		for k, o := range origins {
			if ctx.Err() != nil {
				sc.failed = true
				break
			}
			t0 := cfg.Now()
			var last time.Time
			if !s.Start.IsZero() {
				last = s.Time(o - 1)
			}
			why, err := p.AdvanceAt(y[:o], o-prev, last)
			if why != "" {
				sc.refits++
			}
			var pred forecast.Prediction
			if err == nil {
				pred, err = p.Forecast(h)
			}
			sc.duration += cfg.Now().Sub(t0)
			prev = o
			if err != nil || len(pred.Mean) < h {
				sc.failed = true
				break
			}
			if cfg.Forecasts != nil {
				r := ForecastRecord{Series: s.Name, Folder: s.Folder, Model: name, Label: pred.Model, Reason: pred.Reason,
					Origin: o, Scale: Value(scales[k]), Actual: values(y[o : o+h]), Mean: values(pred.Mean),
					Quantiles: pred.Quantiles, Bands: make([][]Value, len(pred.Bands))}
				if !s.Start.IsZero() {
					t := s.Time(o)
					r.Time = &t
				}
				for i, b := range pred.Bands {
					r.Bands[i] = values(b)
				}
				if cfg.Forecasts(r) != nil {
					sc.failed = true
					break
				}
			}
			if !score(sc, pred, y[o:o+h], scales[k]) {
				sc.failed = true
				break
			}
		}
	}
	return res
}

// runner is what the backtest drives: forecast.Pipeline, or bare for the
// baselines.
type runner interface {
	AdvanceAt(y []float64, fresh int, last time.Time) (string, error)
	Forecast(h int) (forecast.Prediction, error)
}

// bare runs a baseline as its textbook definition: on the raw series,
// without the pipeline's anomaly masking or clamping, fitted (which only
// recalibrates its bands) every `every` origins and updated in between.
type bare struct {
	f       forecast.Forecaster
	every   int
	origins int
}

func (b *bare) AdvanceAt(y []float64, fresh int, _ time.Time) (string, error) {
	b.origins++
	if (b.origins-1)%b.every != 0 {
		b.f.Update(y[len(y)-fresh:]...)
		return "", nil
	}
	return "scheduled", b.f.Fit(y)
}

func (b *bare) Forecast(h int) (forecast.Prediction, error) { return b.f.Forecast(h) }

// NonNegativeRange is the default physical range of a series: 0 and up
// when its history has no negative value (utilisation, rates and sizes),
// else unbounded.
func NonNegativeRange(_ tracefile.Series, history []float64) forecast.Range {
	for _, v := range history {
		if v < 0 {
			return forecast.Range{}
		}
	}
	return forecast.NonNegative
}

// Plan is how a series is evaluated: its forecast origins, the MASE scale
// at each, the seasonal lag of that scale and its physical range, or why it
// is left out.
type Plan struct {
	Origins []int
	Scales  []float64
	Lag     int
	Range   forecast.Range
	// Excluded is "too short" or "zero scale" for a series left out.
	Excluded string
}

// PlanSeries plans the evaluation of one series at horizon h; holdout 0
// means DefaultHoldout and a nil rangeOf NonNegativeRange.
func PlanSeries(s tracefile.Series, h int, step time.Duration, holdout float64, rangeOf func(tracefile.Series, []float64) forecast.Range) Plan {
	if holdout <= 0 || holdout >= 1 {
		holdout = DefaultHoldout
	}
	if rangeOf == nil {
		rangeOf = NonNegativeRange
	}
	y := s.Values
	n := len(y)
	daily := max(1, int(24*time.Hour/step))
	p := Plan{Lag: daily}
	if n < 2*daily {
		p.Lag = 1
	}
	p.Origins = Origins(n, h, holdout, p.Lag+2)
	if len(p.Origins) == 0 {
		p.Excluded = "too short"
		return p
	}
	p.Scales = make([]float64, len(p.Origins))
	for k, o := range p.Origins {
		p.Scales[k] = naiveMAE(y[:o], p.Lag)
	}
	if !(p.Scales[0] > 0) {
		p.Excluded = "zero scale"
		return p
	}
	p.Range = rangeOf(s, y[:p.Origins[0]])
	return p
}

// Origins returns the forecast origins of a series of n points: from the
// start of the last holdout share, every h steps, while h actuals remain;
// at least one (n−h) when that leaves minTrain points of history; none
// otherwise.
func Origins(n, h int, holdout float64, minTrain int) []int {
	start := n - int(math.Floor(holdout*float64(n)))
	var out []int
	for o := start; o+h <= n; o += h {
		if o >= minTrain {
			out = append(out, o)
		}
	}
	if len(out) == 0 && n-h >= minTrain && n-h > 0 {
		out = append(out, n-h)
	}
	return out
}

// naiveMAE is the in-sample mean absolute error of the lag-m naive forecast
// (the MASE scale); NaN when no pair of points is available.
func naiveMAE(y []float64, m int) float64 {
	var sum float64
	var cnt int
	for t := m; t < len(y); t++ {
		if math.IsNaN(y[t]) || math.IsNaN(y[t-m]) {
			continue
		}
		sum += math.Abs(y[t] - y[t-m])
		cnt++
	}
	if cnt == 0 {
		return math.NaN()
	}
	return sum / float64(cnt)
}

// score adds one origin's errors; false when the forecast is unusable.
func score(sc *seriesScore, p forecast.Prediction, actual []float64, scale float64) bool {
	lo80, hi80 := p.Quantile(0.1), p.Quantile(0.9)
	lo95, hi95 := p.Quantile(0.025), p.Quantile(0.975)
	median := p.Quantile(0.5)
	for j, a := range actual {
		if math.IsNaN(a) {
			continue
		}
		f := p.Mean[j]
		if math.IsNaN(f) && median != nil {
			f = median[j]
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return false
		}
		e := math.Abs(a - f)
		sc.absErr += e / scale
		if d := math.Abs(a) + math.Abs(f); d > 0 {
			sc.smape += 200 * e / d
		}
		var pin float64
		var levels int
		for i, q := range p.Quantiles {
			if j >= len(p.Bands[i]) || math.IsNaN(p.Bands[i][j]) {
				continue
			}
			d := a - p.Bands[i][j]
			pin += math.Max(q*d, (q-1)*d)
			levels++
		}
		if levels > 0 {
			sc.pinball += pin / float64(levels) / scale
		} else {
			sc.pinball = math.NaN() // no level to score: the sum is undefined
		}
		if lo80 != nil && hi80 != nil {
			in := a >= lo80[j] && a <= hi80[j]
			sc.n80, sc.in80 = sc.n80+1, sc.in80+b2i(in)
			if hi80[j] > lo80[j] {
				sc.n80v, sc.in80v = sc.n80v+1, sc.in80v+b2i(in)
			}
		}
		if lo95 != nil && hi95 != nil {
			in := a >= lo95[j] && a <= hi95[j]
			sc.n95, sc.in95 = sc.n95+1, sc.in95+b2i(in)
			if hi95[j] > lo95[j] {
				sc.n95v, sc.in95v = sc.n95v+1, sc.in95v+b2i(in)
			}
		}
		sc.points++
	}
	return true
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// aggregate turns per-series scores into per-model metrics.
func aggregate(rs []seriesResult, models []string) map[string]Metrics {
	out := map[string]Metrics{}
	for _, m := range models {
		var mase, smape, crps, logMASE, logCRPS float64
		var n, nRelM, nRelC, in80, n80, in95, n95 int
		var in80v, n80v, in95v, n95v int
		var dur time.Duration
		var refits int
		for _, r := range rs {
			s := r.scores[m]
			if s == nil || s.failed || s.points == 0 {
				continue
			}
			n++
			mase += s.mase()
			smape += s.smape / float64(s.points)
			crps += s.crps()
			in80, n80, in95, n95 = in80+s.in80, n80+s.n80, in95+s.in95, n95+s.n95
			in80v, n80v, in95v, n95v = in80v+s.in80v, n80v+s.n80v, in95v+s.in95v, n95v+s.n95v
			dur += s.duration
			refits += s.refits
			ref := r.scores[SeasonalNaive]
			if ref == nil || ref.failed || ref.points == 0 {
				continue
			}
			if a, b := s.mase(), ref.mase(); b > 0 && !math.IsNaN(a) {
				logMASE += math.Log(math.Max(a, 1e-12) / b)
				nRelM++
			}
			if a, b := s.crps(), ref.crps(); b > 0 && !math.IsNaN(a) {
				logCRPS += math.Log(math.Max(a, 1e-12) / b)
				nRelC++
			}
		}
		nan := Num(math.NaN())
		met := Metrics{RelMASE: nan, RelCRPS: nan, MASE: nan, SMAPE: nan, CRPS: nan, Coverage80: nan, Coverage95: nan, Coverage80Varying: nan, Coverage95Varying: nan, FitMsPerSeries: nan, RefitsPerSeries: nan}
		if n > 0 {
			met.MASE = Num(mase / float64(n))
			met.SMAPE = Num(smape / float64(n))
			met.CRPS = Num(crps / float64(n))
			met.FitMsPerSeries = Num(float64(dur.Microseconds()) / 1000 / float64(n))
			met.RefitsPerSeries = Num(float64(refits) / float64(n))
		}
		if nRelM > 0 {
			met.RelMASE = Num(math.Exp(logMASE / float64(nRelM)))
		}
		if nRelC > 0 {
			met.RelCRPS = Num(math.Exp(logCRPS / float64(nRelC)))
		}
		if n80 > 0 {
			met.Coverage80 = Num(float64(in80) / float64(n80))
		}
		if n95 > 0 {
			met.Coverage95 = Num(float64(in95) / float64(n95))
		}
		if n80v > 0 {
			met.Coverage80Varying = Num(float64(in80v) / float64(n80v))
		}
		if n95v > 0 {
			met.Coverage95Varying = Num(float64(in95v) / float64(n95v))
		}
		out[m] = met
	}
	return out
}

func withModel(models []string, m string) []string {
	for _, x := range models {
		if x == m {
			return models
		}
	}
	return append(append([]string(nil), models...), m)
}

// mergeLevels returns qs (or the default quantiles) plus the levels the
// metrics need, sorted and without duplicates.
func mergeLevels(qs []float64) []float64 {
	if len(qs) == 0 {
		qs = forecast.DefaultQuantiles
	}
	all := append(append([]float64(nil), qs...), coverageLevels...)
	sort.Float64s(all)
	out := all[:0]
	for _, q := range all {
		if len(out) == 0 || math.Abs(out[len(out)-1]-q) > 1e-9 {
			out = append(out, q)
		}
	}
	return out
}
