package global

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// Config is a network's shape and what it forecasts.
type Config struct {
	// Name identifies the weights ("nbeats-5m").
	Name string `json:"name"`
	// Arch is "nbeats" or "lstm".
	Arch string `json:"arch"`
	// StepSeconds is the sampling interval the network was trained at.
	StepSeconds float64 `json:"step_seconds"`
	// Daily is the number of steps in a day: the lag of the seasonal inputs.
	Daily int `json:"daily"`
	// Context is how many recent points the network sees.
	Context int `json:"context"`
	// Knots are the forecast steps (from 1, ascending) the network
	// outputs; the steps between are interpolated linearly. The last knot
	// is the horizon.
	Knots []int `json:"knots"`
	// Quantiles are the levels the network outputs, ascending.
	Quantiles []float64 `json:"quantiles"`
	// Width is the hidden size; Blocks the number of blocks (nbeats) or
	// of LSTM layers (lstm: 1).
	Width  int `json:"width"`
	Blocks int `json:"blocks"`
}

// Step is the sampling interval.
func (c Config) Step() time.Duration { return time.Duration(c.StepSeconds * float64(time.Second)) }

// Horizon is the longest forecast, in steps.
func (c Config) Horizon() int { return c.Knots[len(c.Knots)-1] }

// Static inputs after the recent window and the seasonal values: whether
// the seasonal values are known, how much of the context is real, and the
// calendar (time of day and day of week as sine and cosine, and whether
// the time is known).
const statics = 7

// inputs is the length of a network input vector.
func (c Config) inputs() int { return c.Context + len(c.Knots) + statics }

// outputs is the length of a network output vector: Knots × Quantiles,
// knot-major.
func (c Config) outputs() int { return len(c.Knots) * len(c.Quantiles) }

func (c Config) validate() error {
	switch {
	case c.Arch != "nbeats" && c.Arch != "lstm":
		return fmt.Errorf("global: unknown architecture %q", c.Arch)
	case c.StepSeconds <= 0 || c.Daily < 1 || c.Context < 1 || c.Width < 1 || c.Blocks < 1:
		return errors.New("global: step, daily period, context, width and blocks must be positive")
	case len(c.Knots) == 0 || c.Knots[0] < 1 || !slices.IsSorted(c.Knots):
		return errors.New("global: knots must be ascending steps from 1")
	case len(c.Quantiles) == 0 || !slices.IsSorted(c.Quantiles) || c.Quantiles[0] <= 0 || c.Quantiles[len(c.Quantiles)-1] >= 1:
		return errors.New("global: quantiles must be ascending levels in (0, 1)")
	}
	for i := 1; i < len(c.Knots); i++ {
		if c.Knots[i] == c.Knots[i-1] {
			return errors.New("global: knots repeat")
		}
	}
	return nil
}

// Provenance says where a model's weights come from.
type Provenance struct {
	// Data lists the traces trained on (folders and file patterns) and
	// their licences.
	Data []string `json:"data"`
	// Series and Windows count what the training saw.
	Series  int `json:"series"`
	Windows int `json:"windows"`
	// Seed, Steps, Batch and LearningRate reproduce the training.
	Seed         uint64  `json:"seed"`
	Steps        int     `json:"steps"`
	Batch        int     `json:"batch"`
	LearningRate float64 `json:"learning_rate"`
	// Loss is the mean pinball loss (in units of the window's scale) over
	// the last tenth of the training steps.
	Loss float64 `json:"loss"`
	// Note is free text: the command that trained it, what was left out.
	Note string `json:"note,omitempty"`
}

// Model is a trained network. It is safe for concurrent use: Predict
// keeps its scratch space in the caller's Scratch.
type Model struct {
	Config     Config
	Provenance Provenance
	net        network
}

// network is an architecture's forward and backward pass over a flat
// parameter vector.
type network interface {
	// params is the flat parameter vector.
	params() []float64
	// forward computes the outputs of a batch of b input rows.
	forward(x []float64, b int, out []float64, c *cache)
	// forwardMedian computes, for a batch of b input rows, only the
	// outputs of quantile column q at the first K knots (b × K).
	forwardMedian(x []float64, b, q, K int, out []float64, c *cache)
	// backward accumulates into grad the gradient of the loss whose
	// gradient with respect to the outputs is dout, for the batch of the
	// last forward with the same cache.
	backward(dout []float64, b int, c *cache, grad []float64)
}

// cache holds a forward pass's intermediate values.
type cache struct {
	bufs [][]float64
}

// buf returns the i-th scratch buffer with n elements, zeroed.
func (c *cache) buf(i, n int) []float64 {
	b := c.whole(i, n)
	clear(b)
	return b
}

// whole returns the i-th scratch buffer with n elements as the last pass
// left them: for a result the caller writes whole (a copy, a product with
// beta 0, an elementwise difference).
func (c *cache) whole(i, n int) []float64 {
	for len(c.bufs) <= i {
		c.bufs = append(c.bufs, nil)
	}
	if cap(c.bufs[i]) < n {
		c.bufs[i] = make([]float64, n)
	}
	return c.bufs[i][:n]
}

func newNetwork(c Config, p []float64) (network, error) {
	switch c.Arch {
	case "nbeats":
		return newNBeats(c, p)
	case "lstm":
		return newLSTM(c, p)
	}
	return nil, fmt.Errorf("global: unknown architecture %q", c.Arch)
}

// New returns a model with freshly initialised weights (for training).
func New(c Config, seed uint64) (*Model, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	n, err := newNetwork(c, nil)
	if err != nil {
		return nil, err
	}
	initParams(c, n, seed)
	return &Model{Config: c, net: n}, nil
}

// squash maps a value in units of the window's scale (its noise) onto a
// logarithmic scale beyond ±1, so that a daily swing fifty times the noise
// and a spike a thousand times it both stay in the range a network
// handles; the network's inputs and outputs live on that scale. Quantiles
// survive the mapping (it is monotone), so the pinball loss is taken there.
func squash(z float64) float64 { return asinh(z) }

// squashAll replaces each value of x by its squash, to the bit, four at a
// time where the CPU can (asinhAVX2).
func squashAll(x []float64) {
	i := 0
	if haveAsinh {
		for i+4 <= len(x) {
			i += asinhAVX2(&x[i], (len(x)-i)&^3)
			if i+4 <= len(x) {
				// A block the kernel leaves to asinhLeft.
				for j := i; j < i+4; j++ {
					x[j] = squash(x[j])
				}
				i += 4
			}
		}
	}
	for ; i < len(x); i++ {
		x[i] = squash(x[i])
	}
}

// unsquash inverts squash, bounding its argument so that a wild output
// stays finite.
func unsquash(s float64) float64 { return sinh(math.Max(-maxSquashed, math.Min(maxSquashed, s))) }

// maxSquashed bounds outputs: sinh(12) is about 81,000 noise units.
const maxSquashed = 12

// Scratch is the per-caller working space of Predict.
type Scratch struct {
	x, out []float64
	c      cache
}

// Forecast is a model's forecast: Values[i][h] is the Quantiles[i]
// quantile at step h+1.
type Forecast struct {
	Quantiles []float64
	Values    [][]float64
}

// features fills x from the history (oldest first, the last point at the
// forecast origin) and the time of its last point (zero: unknown). It
// returns the window's level and scale, which map normalised values back,
// and false when the history has no finite point.
func (c Config) features(hist []float64, last time.Time, x []float64) (level, scale float64, ok bool) {
	L := c.Context
	n := len(hist)
	start := max(0, n-L)
	// The level is the last value, so that a network that outputs zero
	// forecasts like naive; the scale is the mean step-to-step change
	// (the window's noise), else its spread around the level.
	level = math.NaN()
	for i := n - 1; i >= start; i-- {
		if finite(hist[i]) {
			level = hist[i]
			break
		}
	}
	if math.IsNaN(level) {
		return 0, 0, false
	}
	var diff, dev float64
	nd, k := 0, 0
	prevOK := math.NaN()
	for _, v := range hist[start:] {
		if !finite(v) {
			continue
		}
		dev += math.Abs(v - level)
		k++
		if !math.IsNaN(prevOK) {
			diff += math.Abs(v - prevOK)
			nd++
		}
		prevOK = v
	}
	switch {
	case nd > 0 && diff > 0:
		scale = diff / float64(nd)
	default:
		scale = dev / float64(k)
	}
	scale = math.Max(scale, 1e-6*math.Max(1, math.Abs(level)))
	// Inputs are normalised here and squashed together at the end.
	norm := func(v float64) float64 { return (v - level) / scale }
	// Recent window, right-aligned; missing points carry the previous
	// value forward, positions before the history the first value back.
	first := math.NaN()
	for _, v := range hist[start:] {
		if finite(v) {
			first = v
			break
		}
	}
	pad := L - (n - start)
	prev := first
	for i := 0; i < L; i++ {
		if i < pad {
			x[i] = norm(first)
			continue
		}
		v := hist[start+i-pad]
		if !finite(v) {
			v = prev
		}
		prev = v
		x[i] = norm(v)
	}
	// Values one day before each knot's step.
	seasonal := 0.0
	for j, kn := range c.Knots {
		i := n - 1 + kn - c.Daily
		x[L+j] = 0
		if i >= 0 && i < n && finite(hist[i]) {
			x[L+j] = norm(hist[i])
		}
	}
	squashAll(x[:L+len(c.Knots)])
	if n >= c.Daily {
		seasonal = 1
	}
	s := x[L+len(c.Knots):]
	s[0] = seasonal
	s[1] = float64(n-start) / float64(L)
	s[2], s[3], s[4], s[5], s[6] = 0, 0, 0, 0, 0
	if !last.IsZero() {
		t := last.Add(c.Step()).UTC()
		day := float64(t.Hour()*3600+t.Minute()*60+t.Second()) / 86400
		week := (float64(t.Weekday()) + day) / 7
		s[2], s[3] = sin(2*math.Pi*day), cos(2*math.Pi*day)
		s[4], s[5] = sin(2*math.Pi*week), cos(2*math.Pi*week)
		s[6] = 1
	}
	return level, scale, true
}

// History is how many recent points Predict uses: the context, or a day
// for the seasonal inputs, whichever is longer.
func (m *Model) History() int { return max(m.Config.Context, m.Config.Daily) }

// Predict forecasts h steps after the last point of hist (oldest first;
// NaN marks a missing point; only the last History points are used), whose
// time is last (zero when unknown). Steps beyond the model's horizon hold
// its last knot. It returns false when hist has no finite point.
func (m *Model) Predict(hist []float64, last time.Time, h int, s *Scratch, f *Forecast) bool {
	c := m.Config
	if cap(s.x) < c.inputs() {
		s.x = make([]float64, c.inputs())
	}
	if cap(s.out) < c.outputs() {
		s.out = make([]float64, c.outputs())
	}
	x, out := s.x[:c.inputs()], s.out[:c.outputs()]
	level, scale, ok := c.features(hist, last, x)
	if !ok {
		return false
	}
	if flat(x[:c.Context+len(c.Knots)]) {
		// Every value the network would see is the level: so is the
		// forecast.
		clear(out)
		m.paths(out, level, 0, h, f)
		return true
	}
	m.net.forward(x, 1, out, &s.c)
	m.paths(out, level, scale, h, f)
	return true
}

func flat(x []float64) bool {
	for _, v := range x {
		if v != 0 {
			return false
		}
	}
	return true
}

// paths turns one network output into quantile paths over h steps: the
// knots' quantiles in the series' units (sorted, so they never cross),
// linearly interpolated between knots and held after the last.
func (m *Model) paths(out []float64, level, scale float64, h int, f *Forecast) {
	c := m.Config
	Q, K := len(c.Quantiles), len(c.Knots)
	f.Quantiles = c.Quantiles
	if len(f.Values) != Q {
		f.Values = make([][]float64, Q)
	}
	for q := range f.Values {
		if cap(f.Values[q]) < h {
			f.Values[q] = make([]float64, h)
		}
		f.Values[q] = f.Values[q][:h]
	}
	// In place: out becomes the knots' values, knot-major.
	used := K
	for used > 1 && c.Knots[used-2] >= h {
		used-- // knots past the last needed one are never read
	}
	for k := 0; k < used; k++ {
		col := out[k*Q : (k+1)*Q]
		for q, v := range col {
			col[q] = level + float64(scale*unsquash(v))
		}
		slices.Sort(col)
	}
	j := 0
	for t := 1; t <= h; t++ {
		for j < K-1 && c.Knots[j+1] <= t {
			j++
		}
		switch {
		case t <= c.Knots[0]:
			for q := 0; q < Q; q++ {
				f.Values[q][t-1] = out[q]
			}
		case j >= K-1:
			for q := 0; q < Q; q++ {
				f.Values[q][t-1] = out[(K-1)*Q+q]
			}
		default:
			a, b := c.Knots[j], c.Knots[j+1]
			w := float64(t-a) / float64(b-a)
			for q := 0; q < Q; q++ {
				f.Values[q][t-1] = float64(out[j*Q+q]*(1-w)) + float64(out[(j+1)*Q+q]*w)
			}
		}
	}
}

// finite is !math.IsNaN(v) && !math.IsInf(v, 0): whether v's exponent
// bits are not all ones.
func finite(v float64) bool { return math.Float64bits(v)&(0x7ff<<52) != 0x7ff<<52 }

// Shapes are the models `make train` trains: N-BEATS and LSTM networks for
// 5-minute series (a six-hour window, a one-day horizon: every step of the
// first hour, then every half hour) and for 1-minute series (a two-hour
// window, a one-hour horizon: every step of the first ten minutes, then
// every five), all with foreshape's default quantiles.
var Shapes = []Config{
	{Name: "nbeats-5m", Arch: "nbeats", StepSeconds: 300, Daily: 288, Context: 72, Knots: knots(12, 6, 288), Quantiles: defaultQuantiles, Width: 64, Blocks: 3},
	{Name: "nbeats-1m", Arch: "nbeats", StepSeconds: 60, Daily: 1440, Context: 120, Knots: knots(10, 5, 60), Quantiles: defaultQuantiles, Width: 64, Blocks: 3},
	{Name: "lstm-5m", Arch: "lstm", StepSeconds: 300, Daily: 288, Context: 72, Knots: knots(12, 6, 288), Quantiles: defaultQuantiles, Width: 32, Blocks: 1},
	{Name: "lstm-1m", Arch: "lstm", StepSeconds: 60, Daily: 1440, Context: 120, Knots: knots(10, 5, 60), Quantiles: defaultQuantiles, Width: 32, Blocks: 1},
}

// defaultQuantiles are forecast.DefaultQuantiles (this package cannot
// import forecast).
var defaultQuantiles = []float64{0.025, 0.05, 0.1, 0.5, 0.9, 0.95, 0.975, 0.99}

// knots returns every step up to dense, then every stride up to horizon.
func knots(dense, stride, horizon int) []int {
	var out []int
	for k := 1; k <= dense; k++ {
		out = append(out, k)
	}
	for k := dense + stride - dense%stride; k <= horizon; k += stride {
		if k > dense {
			out = append(out, k)
		}
	}
	if out[len(out)-1] != horizon {
		out = append(out, horizon)
	}
	return out
}

// Parameters is the number of the network's weights.
func (m *Model) Parameters() int { return len(m.net.params()) }

// PredictBatch forecasts h steps after each of several histories at once
// (a backtest's origins, or many series): one batched pass through the
// network, much cheaper than one Predict each. out[i] receives history i's
// forecast; ok[i] is false for a history without a finite point.
func (m *Model) PredictBatch(hists [][]float64, lasts []time.Time, h int, s *Scratch, out []Forecast, ok []bool) {
	c := m.Config
	in, outs := c.inputs(), c.outputs()
	b := len(hists)
	if cap(s.x) < b*in {
		s.x = make([]float64, b*in)
	}
	if cap(s.out) < b*outs {
		s.out = make([]float64, b*outs)
	}
	x, y := s.x[:b*in], s.out[:b*outs]
	levels, scales := make([]float64, b), make([]float64, b)
	flats := make([]bool, b)
	for i, hist := range hists {
		var last time.Time
		if lasts != nil {
			last = lasts[i]
		}
		xi := x[i*in : (i+1)*in]
		levels[i], scales[i], ok[i] = c.features(hist, last, xi)
		flats[i] = ok[i] && flat(xi[:c.Context+len(c.Knots)])
	}
	m.net.forward(x, b, y, &s.c)
	for i := range hists {
		if !ok[i] {
			continue
		}
		yi := y[i*outs : (i+1)*outs]
		scale := scales[i]
		if flats[i] {
			clear(yi)
			scale = 0
		}
		m.paths(yi, levels[i], scale, h, &out[i])
	}
}

// MedianBatch is PredictBatch for the median only (auto's backtests need
// nothing else): out[i] receives history i's median path over h steps.
// It computes an eighth of the network's output layer, and of that only
// the knots the h steps are interpolated from.
func (m *Model) MedianBatch(hists [][]float64, lasts []time.Time, h int, s *Scratch, out [][]float64, ok []bool) {
	c := m.Config
	in, K := c.inputs(), knotsFor(c.Knots, h)
	b := len(hists)
	if cap(s.x) < b*in {
		s.x = make([]float64, b*in)
	}
	if cap(s.out) < b*K {
		s.out = make([]float64, b*K)
	}
	x, y := s.x[:b*in], s.out[:b*K]
	levels, scales := make([]float64, b), make([]float64, b)
	for i, hist := range hists {
		var last time.Time
		if lasts != nil {
			last = lasts[i]
		}
		xi := x[i*in : (i+1)*in]
		levels[i], scales[i], ok[i] = c.features(hist, last, xi)
		if ok[i] && flat(xi[:c.Context+len(c.Knots)]) {
			scales[i] = 0
		}
	}
	m.net.forwardMedian(x, b, m.medianColumn(), K, y, &s.c)
	for i := range hists {
		if !ok[i] {
			continue
		}
		if cap(out[i]) < h {
			out[i] = make([]float64, h)
		}
		out[i] = out[i][:h]
		knots := y[i*K : (i+1)*K]
		for k, v := range knots {
			knots[k] = levels[i] + scales[i]*unsquash(v)
		}
		interpolate(c.Knots[:K], knots, out[i])
	}
}

// knotsFor is how many of the first knots interpolate reads for steps
// 1..h: up to the last knot at or before h and the one after it (which
// interpolate weighs by zero at a knot's own step), all when h reaches
// the last knot.
func knotsFor(knots []int, h int) int {
	j := 0
	for j < len(knots)-1 && knots[j+1] <= h {
		j++
	}
	return min(len(knots), j+2)
}

// medianColumn is the index of the 0.5 quantile among the outputs of a
// knot (the middle level when 0.5 is not one).
func (m *Model) medianColumn() int {
	for i, q := range m.Config.Quantiles {
		if q == 0.5 {
			return i
		}
	}
	return len(m.Config.Quantiles) / 2
}

// interpolate fills out (steps 1..len(out)) from values at the knots:
// linearly between knots, the first knot's value before it and the last's
// after it.
func interpolate(knots []int, vals, out []float64) {
	K := len(knots)
	j := 0
	for t := 1; t <= len(out); t++ {
		for j < K-1 && knots[j+1] <= t {
			j++
		}
		switch {
		case t <= knots[0]:
			out[t-1] = vals[0]
		case j >= K-1:
			out[t-1] = vals[K-1]
		default:
			a, b := knots[j], knots[j+1]
			w := float64(t-a) / float64(b-a)
			out[t-1] = float64(vals[j]*(1-w)) + float64(vals[j+1]*w)
		}
	}
}
