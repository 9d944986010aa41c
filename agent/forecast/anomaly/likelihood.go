package anomaly

import "math"

// Likelihood turns a detector's raw anomaly scores, one a sample, into an
// anomaly likelihood: how unusual the recent level of the raw score is for
// this series. It is the post-processing NAB's numenta detectors put on
// their raw scores, written for foreshape from the idea:
//
//   - the raw scores are averaged over the last Window samples (the short
//     average);
//   - a Gaussian is fitted to the short averages of the last Memory
//     samples (its mean at least 0.03 and its variance at least 0.0003, so
//     a raw score that is almost always 0, as ARTime's is, still has a
//     spread);
//   - the likelihood of the current short average is 1 − Q(z), Q the
//     Gaussian's upper tail and z its distance from the mean in standard
//     deviations: 0.5 at the mean, near 1 when the recent raw scores are
//     far above what the series' raw scores usually are.
//
// The first Probation samples output 0.5: the averages of its first half
// are left out of the Gaussian (the detector under it is still learning),
// those of its second half are its first estimate, as NAB's numenta
// detectors split their probationary period. It works in one pass with
// O(1) work a sample and holds Window + Memory floats whatever the length
// of the series. It is not safe for concurrent use.
type Likelihood struct {
	o       LikelihoodOptions
	raw     []float64 // the last Window raw scores (a ring)
	rawSum  float64
	avgs    []float64 // the last Memory short averages fitted (a ring)
	sum     float64   // of avgs
	sumSq   float64   // of avgs squared
	next    int       // where the next average goes in avgs
	full    bool      // avgs holds Memory averages
	n       int       // raw scores seen
	rawNext int
}

// LikelihoodOptions tune Likelihood and the detectors wrapped in it
// (NewLikelihoodStream). The zero value means the defaults.
type LikelihoodOptions struct {
	// Window is how many raw scores the short average takes (default
	// DefaultLikelihoodWindow).
	Window int
	// Memory is how many recent short averages the Gaussian is fitted to
	// (default DefaultLikelihoodMemory).
	Memory int
	// Probation is how many samples output 0.5 (0: ARTime's probation for
	// the history the detector starts on, ARTimeOptions.StartingOn).
	Probation int
	// EveryPoint makes every point's likelihood its onset; otherwise a
	// point's onset is its likelihood's score when it exceeds every score
	// of the previous Refractory points (Stream's onset rule), so an
	// incident that keeps the likelihood high is reported once.
	EveryPoint bool
	// Alarm is the onset (LogLikelihood of the likelihood) at or above
	// which the wrapped detector raises an alarm (default
	// DefaultLikelihoodAlarm).
	Alarm float64
}

// Defaults for LikelihoodOptions.
const (
	// DefaultLikelihoodWindow is the short average's length: NAB's
	// numenta detectors' 10 samples.
	DefaultLikelihoodWindow = 10
	// DefaultLikelihoodMemory is how many short averages the Gaussian is
	// fitted to: NAB's numenta detectors' 8640 samples (a month of
	// 5-minute data).
	DefaultLikelihoodMemory = 8640
	// DefaultLikelihoodAlarm is the onset at or above which the wrapped
	// detector raises an alarm: 0.5, a likelihood of 1 − 10⁻⁵ (NAB's
	// numenta detectors' threshold on the same scale).
	DefaultLikelihoodAlarm = 0.5
)

// The floors of the fitted Gaussian (NAB's numenta detectors' lower
// bounds).
const (
	likelihoodMinMean     = 0.03
	likelihoodMinVariance = 0.0003
)

func (o LikelihoodOptions) withDefaults() LikelihoodOptions {
	if o.Window <= 0 {
		o.Window = DefaultLikelihoodWindow
	}
	if o.Memory <= 0 {
		o.Memory = DefaultLikelihoodMemory
	}
	if o.Probation < 2 {
		o.Probation = DefaultARTimeProbation
	}
	if !(o.Alarm > 0) {
		o.Alarm = DefaultLikelihoodAlarm
	}
	return o
}

// NewLikelihood returns the likelihood of a stream of raw scores.
func NewLikelihood(opts LikelihoodOptions) *Likelihood {
	o := opts.withDefaults()
	return &Likelihood{o: o, raw: make([]float64, 0, o.Window), avgs: make([]float64, o.Memory)}
}

// Observe takes the next raw score and returns the likelihood of the
// recent ones: 0.5 during the probation. A NaN or infinite raw score is
// missing: it changes nothing and returns 0.5.
func (l *Likelihood) Observe(raw float64) float64 {
	if math.IsNaN(raw) || math.IsInf(raw, 0) {
		return 0.5
	}
	l.n++
	if len(l.raw) < l.o.Window {
		l.raw = append(l.raw, raw)
		l.rawSum += raw
	} else {
		l.rawSum += raw - l.raw[l.rawNext]
		l.raw[l.rawNext] = raw
		l.rawNext++
		if l.rawNext == len(l.raw) {
			l.rawNext = 0
			l.rawSum = sum(l.raw) // no drift from the running sum
		}
	}
	avg := l.rawSum / float64(len(l.raw))
	if l.n <= l.o.Probation/2 {
		return 0.5 // learning: left out of the Gaussian
	}
	l.add(avg)
	if l.n <= l.o.Probation {
		return 0.5
	}
	mean, variance := l.gaussian()
	z := (avg - mean) / math.Sqrt(variance)
	return 1 - 0.5*math.Erfc(z/math.Sqrt2)
}

// add puts a short average into the Gaussian's memory.
func (l *Likelihood) add(avg float64) {
	if l.full {
		old := l.avgs[l.next]
		l.sum -= old
		l.sumSq -= old * old
	}
	l.avgs[l.next] = avg
	l.sum += avg
	l.sumSq += avg * avg
	l.next++
	if l.next == len(l.avgs) {
		l.next, l.full = 0, true
		// Once a memory, the sums afresh: no drift from the running ones.
		l.sum, l.sumSq = 0, 0
		for _, a := range l.avgs {
			l.sum += a
			l.sumSq += a * a
		}
	}
}

// gaussian returns the mean and variance of the averages in memory, at
// least their floors.
func (l *Likelihood) gaussian() (mean, variance float64) {
	n := l.next
	if l.full {
		n = len(l.avgs)
	}
	mean = l.sum / float64(n)
	variance = l.sumSq/float64(n) - mean*mean
	return max(mean, likelihoodMinMean), max(variance, likelihoodMinVariance)
}

// Ready says whether the probation is over.
func (l *Likelihood) Ready() bool { return l.n > l.o.Probation }

// Floats returns how many floats the likelihood holds: Window + Memory,
// whatever the length of the series.
func (l *Likelihood) Floats() int { return cap(l.raw) + len(l.avgs) }

func sum(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s
}

// LogLikelihood maps a likelihood to a score in [0, 1] that spreads the
// likelihoods near 1 apart (NAB's numenta detectors' scale): log(1 + 10⁻¹⁰
// − L) / log(10⁻¹⁰), so 0.5 scores 0.03, 0.99 scores 0.2, 1 − 10⁻⁵ scores
// 0.5 and 1 − 10⁻¹⁰ or more scores 1.
func LogLikelihood(l float64) float64 {
	s := math.Log(1.0000000001-l) / math.Log(1.0-0.9999999999)
	return min(1, max(0, s))
}

// The detectors wrapped in Likelihood, by name (NewOnline).
const (
	// DetectorARTimeLikelihood is ARTime's raw score under Likelihood,
	// with ARTimeStream's p-values and point statistics.
	DetectorARTimeLikelihood = "artime+likelihood"
	// DetectorResidualLikelihood is the residual detector's score (its
	// calibrated p-value on the 0–1 scale) under Likelihood.
	DetectorResidualLikelihood = "residual+likelihood"
	// DetectorRCFLikelihood is the random cut forest's score (its
	// calibrated p-value on the 0–1 scale) under Likelihood.
	DetectorRCFLikelihood = "rcf+likelihood"
)

// LikelihoodStream is an online detector whose onsets and alarms come from
// the anomaly likelihood (Likelihood) of another detector's raw scores.
// P, Score, the point statistics and what is kept out of model fitting
// are the detector's underneath; a point that raises the likelihood's
// alarm is kept out too. Onset is LogLikelihood of the likelihood (0
// during the probation and for missing points), under Stream's onset rule
// unless Likelihood.EveryPoint. It is not safe for concurrent use.
type LikelihoodStream struct {
	inner Online
	raw   func(Point) float64
	lik   *Likelihood
	every bool
	alarm float64
	track tracker
}

// NewLikelihoodStream returns the named detector (DetectorARTime,
// DetectorResidual or DetectorRCF) under Likelihood with
// opts.Likelihood's settings. ARTime's raw score is its anomaly score
// (ARTimeStream's Onset; ARTime's own alarms are off underneath); the
// others' is their Score.
func NewLikelihoodStream(name string, opts Options) (*LikelihoodStream, error) {
	o := opts.withDefaults()
	lo := o.Likelihood
	if lo.Probation <= 0 {
		lo.Probation = o.ARTime.StartingOn(o.History).withDefaults().Probation
	}
	lo = lo.withDefaults()
	s := &LikelihoodStream{lik: NewLikelihood(lo), every: lo.EveryPoint, alarm: lo.Alarm,
		track: tracker{gap: o.Gap, refractory: o.Refractory}}
	switch name {
	case DetectorARTime:
		io := opts
		io.ARTimeAlarm = math.Inf(1) // the likelihood alarms
		s.inner, s.raw = NewARTimeStream(io), func(p Point) float64 { return p.Onset }
	case DetectorResidual, DetectorRCF:
		in, err := NewOnline(name, opts)
		if err != nil {
			return nil, err
		}
		s.inner, s.raw = in, func(p Point) float64 { return p.Score }
	default:
		return nil, CheckDetector(name + "+likelihood")
	}
	return s, nil
}

// shifter is a detector that says which level shift it confirmed at its
// last point.
type shifter interface{ lastLevelShift() *LevelShiftEvent }

func (c *verdicts) lastLevelShift() *LevelShiftEvent     { return c.point.lastShift }
func (w *withForecast) lastLevelShift() *LevelShiftEvent { return w.d.lastShift }

// Observe scores the next sample (NaN or infinite: missing).
func (s *LikelihoodStream) Observe(v float64) Point {
	p := s.inner.Observe(v)
	raw := s.raw(p)
	p.Onset, p.Alarm = 0, false
	if !math.IsNaN(v) && !math.IsInf(v, 0) {
		score := LogLikelihood(s.lik.Observe(raw))
		if !s.lik.Ready() {
			score = 0
		}
		if s.every {
			p.Onset = score
		} else {
			q := p
			q.Score = score
			s.track.add(&q)
			p.Onset = q.Onset
		}
		p.Alarm = p.Onset > 0 && p.Onset >= s.alarm
		p.Anomalous = p.Anomalous || p.Alarm
	}
	var shift *LevelShiftEvent
	if sh, ok := s.inner.(shifter); ok && p.LevelShift {
		shift = sh.lastLevelShift()
	}
	s.track.record(p, shift)
	return p
}

// Events returns the last events (at most 64) closed so far and, when flush
// is true, also the one still open (for the end of a series).
func (s *LikelihoodStream) Events(flush bool) []Event { return s.track.Events(flush) }
