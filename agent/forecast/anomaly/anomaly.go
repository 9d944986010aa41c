// Package anomaly is foreshape's online anomaly detection: spikes and level
// shifts in utilisation series, scored point by point without look-ahead, so
// that the forecasting models can keep anomalous samples out of their fits
// and operators can see them. It also finds level shifts in a whole
// history (LevelShifts), which the models use to fit the current regime.
//
// It is pure: data in, verdicts out. It never performs I/O, reads the
// clock or logs.
//
// The detector runs online, one point at a time, and never looks ahead: a
// point's score depends only on the points before it and on the forecast
// made for it. It combines three robust statistics:
//
//   - the forecast residual (actual minus the one-step forecast) against the
//     robust spread (MAD) of recent residuals: a spike or a sudden step;
//   - the value against the robust spread of the recent values themselves:
//     a level the series has not visited lately, even when it was reached
//     gradually;
//   - the online level-shift statistic (LevelShiftDetector): a lasting
//     change of level.
//
// Each is a robust z (deviations in units of 1.4826·MAD, the standard
// deviation for Gaussian data); the point's z is the largest of them, and a
// point is anomalous when it exceeds the threshold. Anomalous points are
// marked so callers can keep them out of model fitting (replace them with
// NaN), and consecutive anomalous points are grouped into events.
//
// Residuals of anomalous points enter the spread estimate clipped at the
// threshold, so a run of anomalies cannot inflate the yardstick that
// detects them.
//
// Robust z values of real metrics are heavy-tailed and differ from series to
// series, so the z is also calibrated against the series' own past: its
// conformal p-value among the z values of the previous weeks (P) and that
// p-value on a log scale (Score). Thresholds on P or Score mean the same
// rarity on every series, and an event's Onset score, which is zero for
// points that do not beat the recent maximum, gives one alarm per incident
// rather than one per point.
//
// The defaults (Window, Threshold, level-shift window 24, Refractory 144)
// were chosen by comparing a handful of settings on the 13 labelled NAB
// series foreshape is tested on, so figures on those series are in-sample.
package anomaly

import (
	"math"
	"sort"
)

// Options tune the detector. The zero value means the defaults.
type Options struct {
	// Window is how many recent residuals (and values) set the robust
	// scale (default 1008: 3.5 days of 5-minute data).
	Window int
	// Threshold is the robust z above which a point is anomalous
	// (default 5).
	Threshold float64
	// Warmup is how many points the detector must see before it scores
	// (default 36).
	Warmup int
	// Gap is how many normal points end an event; anomalies closer than
	// that belong to the same event (default 6).
	Gap int
	// LevelShift tunes the level-shift statistic (default window 24: two
	// hours of 5-minute data, longer than for LevelShifts because online
	// the statistic must tell a shift from a burst without seeing what
	// follows).
	LevelShift LevelShiftOptions
	// NoLevel turns off the value-against-recent-values statistic.
	NoLevel bool
	// Memory is how many past z values calibrate P and Score (default 8064:
	// four weeks of 5-minute data).
	Memory int
	// Refractory is how many points after a high score a lower one is not
	// an onset (default 144: half a day of 5-minute data).
	Refractory int
}

// Defaults for Options.
const (
	DefaultWindow      = 1008
	DefaultThreshold   = 5.0
	DefaultWarmup      = 36
	DefaultGap         = 6
	DefaultMemory      = 8064
	DefaultRefractory  = 144
	DefaultShiftWindow = 24
)

func (o Options) withDefaults() Options {
	if o.Window < 8 {
		o.Window = DefaultWindow
	}
	if o.Threshold <= 0 {
		o.Threshold = DefaultThreshold
	}
	if o.Warmup <= 0 {
		o.Warmup = DefaultWarmup
	}
	if o.Gap <= 0 {
		o.Gap = DefaultGap
	}
	if o.Memory <= 0 {
		o.Memory = DefaultMemory
	}
	if o.Refractory <= 0 {
		o.Refractory = DefaultRefractory
	}
	if o.LevelShift.Window <= 0 {
		o.LevelShift.Window = DefaultShiftWindow
	}
	return o
}

// Kind says what an event looks like.
type Kind string

// Kinds of anomaly event.
const (
	// KindSpike: points away from the forecast or the recent level.
	KindSpike Kind = "spike"
	// KindLevelShift: the series moved to a new level and stayed.
	KindLevelShift Kind = "level_shift"
)

// Point is the detector's verdict on one point.
type Point struct {
	// Index is the point's position in the series.
	Index int
	// Z is the largest robust z of the point's statistics (0 during warmup
	// and for NaN points).
	Z float64
	// P is Z calibrated against the series' own history: the conformal
	// p-value of Z among the Z values of the previous Memory points,
	// (#earlier Z ≥ this Z + 1)/(#earlier + 1). 0.001 means "larger than
	// all but one in a thousand of what this series usually does", so one
	// threshold means the same for every series. 1 during warmup.
	P float64
	// Score is P on a logarithmic scale in [0, 1]: log(1/P)/log(Memory+1),
	// so 1 is the rarest value Memory points can tell apart and each step
	// of rarity by a factor of ten adds the same amount. 0 during warmup.
	// A threshold search over Score moves through orders of magnitude of
	// rarity evenly, which is what a hill-climbing threshold optimiser
	// (NAB's) needs.
	Score float64
	// Onset is Score when it exceeds every Score of the previous Refractory
	// points, and 0 otherwise: for any threshold on Onset, a series alarms
	// again within the refractory period only for a stronger anomaly. That
	// is what a benchmark that rewards the earliest detection and penalises
	// repeats (NAB) should see.
	Onset float64
	// Anomalous is true when Z exceeds the threshold: keep the point out of
	// model fitting. The level-shift statistic does not count for the
	// points that follow a confirmed shift while its windows still
	// straddle it (they are the new level).
	Anomalous bool
	// LevelShift is true when a level shift was confirmed at this point.
	LevelShift bool
}

// Event is a run of anomalous points.
type Event struct {
	// Start and End are the indices of its first and last anomalous point
	// (for a level shift, Start is the estimated first point at the new
	// level).
	Start, End int
	// Score is the highest Score of its points, P the smallest P, Z the
	// highest Z.
	Score, P, Z float64
	Kind        Kind
}

// Detector is the online detector. It is not safe for concurrent use.
type Detector struct {
	opts   Options
	resid  *sortedWindow
	values *sortedWindow
	shift  *LevelShiftDetector
	n      int
	seen   int // non-NaN points

	zs     *sortedWindow // past Z values, for Score
	recent maxQueue      // past Scores, for Onset

	open   *Event
	quiet  int // normal points since the open event's last anomaly
	events []Event
}

// NewDetector returns an online detector.
func NewDetector(opts Options) *Detector {
	opts = opts.withDefaults()
	return &Detector{
		opts:   opts,
		resid:  newSortedWindow(opts.Window),
		values: newSortedWindow(opts.Window),
		shift:  NewLevelShiftDetector(opts.LevelShift),
		zs:     newSortedWindow(opts.Memory),
	}
}

// Observe scores the next point y given predicted, the forecast made for it
// before it was seen (NaN when there is none: only the level statistics
// apply). A NaN or infinite y is missing: it gets a zero verdict and
// advances the index.
func (d *Detector) Observe(y, predicted float64) Point {
	p := Point{Index: d.n, P: 1}
	d.n++
	if math.IsNaN(y) || math.IsInf(y, 0) {
		d.advance(p)
		return p
	}
	d.seen++
	k := d.opts.Threshold

	var zRes, zVal float64
	r := y - predicted
	hasRes := !math.IsNaN(r) && !math.IsInf(r, 0)
	warm := d.seen > d.opts.Warmup
	if warm && hasRes && d.resid.Len() >= d.opts.Warmup/2 {
		zRes = math.Abs(r-d.resid.Median()) / robustScale(d.resid)
	}
	if warm && !d.opts.NoLevel && d.values.Len() >= d.opts.Warmup {
		zVal = math.Abs(y-d.values.Median()) / robustScale(d.values)
	}
	lsZ, ev := d.shift.Push(y)
	zShift := lsZ * k / d.shift.k
	if !warm {
		zShift = 0
	}
	p.Z = max(zRes, zVal, zShift)
	// After a confirmed shift the shift statistic stays high while its two
	// windows straddle the change. The score keeps saying so, but the
	// points are the new level, not anomalies to keep out of fitting.
	zFlag := p.Z
	if ev == nil && !d.shift.armed {
		zFlag = max(zRes, zVal)
	}
	if warm {
		p.P = d.pValue(p.Z)
		p.Score = math.Log(1/p.P) / math.Log(float64(d.opts.Memory)+1)
		d.zs.Add(p.Z)
	}
	p.Anomalous = zFlag > k
	p.LevelShift = ev != nil && warm

	// Update the scales, clipping anomalous contributions.
	if hasRes {
		if p.Anomalous && d.resid.Len() > 0 {
			m, s := d.resid.Median(), robustScale(d.resid)
			r = m + math.Max(-k*s, math.Min(k*s, r-m))
		}
		d.resid.Add(r)
	}
	v := y
	if p.Anomalous && !p.LevelShift && d.values.Len() > 0 {
		m, s := d.values.Median(), robustScale(d.values)
		v = m + math.Max(-k*s, math.Min(k*s, v-m))
	}
	d.values.Add(v)

	if p.LevelShift {
		// The old level no longer describes the series: forget it.
		d.values = newSortedWindow(d.opts.Window)
		d.values.Add(y)
	}
	d.track(&p, ev)
	return p
}

// pValue returns the conformal p-value of z among the past z values held
// (1 until Warmup of them are).
func (d *Detector) pValue(z float64) float64 {
	n := d.zs.Len()
	if n < d.opts.Warmup {
		return 1
	}
	ge := n - sort.SearchFloat64s(d.zs.sorted, z) // #past >= z
	return float64(ge+1) / float64(n+1)
}

// advance handles a NaN point for event tracking.
func (d *Detector) advance(p Point) { d.track(&p, nil) }

// track groups anomalous points into events and sets p.Onset.
func (d *Detector) track(p *Point, shift *LevelShiftEvent) {
	p.Onset = p.Score
	if m, ok := d.recent.Max(p.Index - d.opts.Refractory); ok && m >= p.Score {
		p.Onset = 0
	}
	d.recent.Push(p.Index, p.Score)
	if !p.Anomalous {
		if d.open != nil {
			d.quiet++
			if d.quiet >= d.opts.Gap {
				d.events = append(d.events, *d.open)
				d.open = nil
			}
		}
		return
	}
	if d.open != nil {
		d.quiet = 0
		d.open.End = p.Index
		d.open.Score = max(d.open.Score, p.Score)
		d.open.P = min(d.open.P, p.P)
		d.open.Z = max(d.open.Z, p.Z)
		if p.LevelShift && shift != nil {
			d.open.Kind = KindLevelShift
			d.open.Start = min(d.open.Start, shift.Start)
		}
		return
	}
	ev := &Event{Start: p.Index, End: p.Index, Score: p.Score, P: p.P, Z: p.Z, Kind: KindSpike}
	if p.LevelShift && shift != nil {
		ev.Kind = KindLevelShift
		ev.Start = min(ev.Start, shift.Start)
	}
	d.open, d.quiet = ev, 0
}

// Events returns the events closed so far and, when flush is true, also the
// one still open (for the end of a series).
func (d *Detector) Events(flush bool) []Event {
	out := append([]Event(nil), d.events...)
	if flush && d.open != nil {
		out = append(out, *d.open)
	}
	return out
}

// robustScale is the robust standard deviation of the values held: 1.4826·MAD,
// or, when more than half the values are equal (MAD 0, common for quantised
// metrics), the spread of the central 90% scaled to a Gaussian's, or a tiny
// floor relative to the median.
func robustScale(w *sortedWindow) float64 {
	if s := 1.4826 * w.MAD(); s > 0 {
		return s
	}
	a := w.sorted
	if n := len(a); n > 1 {
		lo, hi := a[int(0.05*float64(n-1))], a[int(math.Ceil(0.95*float64(n-1)))]
		if s := (hi - lo) / 3.29; s > 0 {
			return s
		}
	}
	return 1e-6 * math.Max(1, math.Abs(w.Median()))
}

// Detect runs the detector over a whole series with its built-in one-step
// forecast (see Stream). It returns a verdict per point and the events.
// Every verdict depends only on earlier points.
func Detect(y []float64, opts Options) ([]Point, []Event) {
	s := NewStream(opts)
	pts := make([]Point, len(y))
	for i, v := range y {
		pts[i] = s.Observe(v)
	}
	return pts, s.Events(true)
}

// Stream is the detector with its built-in one-step forecast, the median of
// the previous three samples, which a single spike cannot drag along: what
// a caller without a forecast of its own feeds samples to, one at a time.
// Running a Stream over a history gives the same verdicts as Detect. It is
// not safe for concurrent use.
type Stream struct {
	d    *Detector
	pred recentMedian
}

// NewStream returns a stream detector.
func NewStream(opts Options) *Stream { return &Stream{d: NewDetector(opts)} }

// Observe scores the next sample (NaN or infinite: missing).
func (s *Stream) Observe(v float64) Point {
	p := s.d.Observe(v, s.pred.Next())
	s.pred.Push(v)
	return p
}

// Events returns the events so far (see Detector.Events).
func (s *Stream) Events(flush bool) []Event { return s.d.Events(flush) }

// recentMedian is the detector's built-in one-step forecast: the median
// of the last three samples (NaN before the first).
type recentMedian struct {
	last [3]float64
	held int
	buf  [3]float64
}

// Next returns the forecast for the next sample.
func (m *recentMedian) Next() float64 {
	if m.held == 0 {
		return math.NaN()
	}
	return windowMedian(m.last[:min(m.held, 3)], m.buf[:0])
}

// Push records a sample; NaN and infinities are ignored.
func (m *recentMedian) Push(v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return
	}
	copy(m.last[1:], m.last[:2])
	m.last[0] = v
	m.held++
}

// Clean returns a copy of y with the points the detector marks
// anomalous replaced by NaN, for model fitting, and the events. Points of a
// level-shift event are kept: after a shift the new level is the series'
// truth, and models must learn it (see LevelShifts).
func Clean(y []float64, opts Options) ([]float64, []Event) {
	pts, events := Detect(y, opts)
	return Mask(y, pts, events), events
}

// Mask returns a copy of y with the points pts marks anomalous, outside
// the level-shift events, replaced by NaN.
func Mask(y []float64, pts []Point, events []Event) []float64 {
	clean := append([]float64(nil), y...)
	shift := make([]bool, len(y))
	for _, e := range events {
		if e.Kind == KindLevelShift {
			for i := max(0, e.Start); i <= e.End && i < len(y); i++ {
				shift[i] = true
			}
		}
	}
	for i, p := range pts {
		if p.Anomalous && !shift[i] {
			clean[i] = math.NaN()
		}
	}
	return clean
}

// maxQueue gives the maximum of the values pushed since a given index
// in O(1) amortised: it keeps the pushed (index, value) pairs whose value
// is larger than every later one.
type maxQueue struct {
	idx  []int
	vals []float64
}

// Push appends value v at index i (indices ascending).
func (q *maxQueue) Push(i int, v float64) {
	n := len(q.vals)
	for n > 0 && q.vals[n-1] <= v {
		n--
	}
	q.idx, q.vals = append(q.idx[:n], i), append(q.vals[:n], v)
}

// Max returns the largest value pushed at an index >= from, dropping older
// ones; ok is false when there is none.
func (q *maxQueue) Max(from int) (float64, bool) {
	drop := 0
	for drop < len(q.idx) && q.idx[drop] < from {
		drop++
	}
	if drop > 0 {
		q.idx = append(q.idx[:0], q.idx[drop:]...)
		q.vals = append(q.vals[:0], q.vals[drop:]...)
	}
	if len(q.vals) == 0 {
		return 0, false
	}
	return q.vals[0], true
}
