package anomaly

import "math"

// Detector is the point statistics, online: how far a point lies from its
// forecast and from the series' recent level, and whether the level has
// shifted. Stream uses it to tell which points of an anomalous stretch
// deviate (the ones to keep out of model fitting) and when a shift is
// confirmed.
//
// Alone, with its z calibrated against the series' own past (P and Score
// from the z values of the last Memory points), it is the residual
// detector foreshape ran before the shape statistic, kept as a baseline
// for `foreshape forecast anomalies -detector residual`.
//
// It combines three robust statistics:
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
// point deviates when it exceeds the threshold. Residuals of deviating
// points enter the spread estimate clipped at the threshold, so a run of
// anomalies cannot inflate the yardstick that detects them.
//
// It is not safe for concurrent use.
type Detector struct {
	opts   Options
	resid  *sortedWindow
	values *sortedWindow
	shift  *LevelShiftDetector
	n      int
	seen   int // non-NaN points

	zs    *sortedWindow // past Z values, for P (nil: not calibrated)
	track tracker
	// lastShift is the level shift confirmed at the last point, if any.
	lastShift *LevelShiftEvent
}

// NewDetector returns the residual detector, calibrated: its points carry
// P, Score and Onset from their z.
func NewDetector(opts Options) *Detector {
	d := newPointDetector(opts)
	d.zs = newSortedWindow(d.opts.Memory)
	return d
}

// newPointDetector returns the detector without calibration: P stays 1.
func newPointDetector(opts Options) *Detector {
	opts = opts.withDefaults()
	return &Detector{
		opts:   opts,
		resid:  newScaleWindow(opts.Window),
		values: newScaleWindow(opts.Window),
		shift:  NewLevelShiftDetector(opts.LevelShift),
		track:  tracker{gap: opts.Gap, refractory: opts.Refractory},
	}
}

// Observe scores the next point y given predicted, the forecast made for it
// before it was seen (NaN when there is none: only the level statistics
// apply). A NaN or infinite y is missing: it gets a zero verdict and
// advances the index. Anomalous is true when the point's z exceeds the
// threshold.
func (d *Detector) Observe(y, predicted float64) Point {
	p := Point{Index: d.n, P: 1}
	d.n++
	d.lastShift = nil
	if math.IsNaN(y) || math.IsInf(y, 0) {
		d.track.add(&p)
		d.track.record(p, nil)
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
	if warm && d.zs != nil {
		p.P = d.pValue(p.Z)
		p.Score = scoreOf(p.P)
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
		d.values = newScaleWindow(d.opts.Window)
		d.values.Add(y)
	}
	d.lastShift = ev
	d.track.add(&p)
	d.track.record(p, ev)
	return p
}

// pValue returns the conformal p-value of z among the past z values held
// (1 until Warmup of them are).
func (d *Detector) pValue(z float64) float64 {
	n := d.zs.Len()
	if n < d.opts.Warmup {
		return 1
	}
	ge := n - d.zs.Less(z) // #past >= z
	return float64(ge+1) / float64(n+1)
}

// Events returns the events closed so far and, when flush is true, also the
// one still open (for the end of a series).
func (d *Detector) Events(flush bool) []Event { return d.track.Events(flush) }

// robustScale is the robust standard deviation of the values held: 1.4826·MAD,
// or, when more than half the values are equal (MAD 0, common for quantised
// metrics), the spread of the central 90% scaled to a Gaussian's, or a tiny
// floor relative to the median.
func robustScale(w *sortedWindow) float64 {
	if s := 1.4826 * w.MAD(); s > 0 {
		return s
	}
	if n := w.Len(); n > 1 {
		lo, hi := w.At(int(0.05*float64(n-1))), w.At(int(math.Ceil(0.95*float64(n-1))))
		if s := (hi - lo) / 3.29; s > 0 {
			return s
		}
	}
	return 1e-6 * math.Max(1, math.Abs(w.Median()))
}

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
