package anomaly

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
)

// Online is a detector fed one sample at a time: what `foreshape forecast
// anomalies -detector` compares on NAB. Every verdict depends only on the
// samples before it.
type Online interface {
	// Observe scores the next sample (NaN or infinite: missing).
	Observe(v float64) Point
	// Events returns the events so far; flush includes the open one.
	Events(flush bool) []Event
}

// The detectors foreshape's was chosen among, by name. Each gives every
// point a P and an Onset; NAB scores the Onsets.
const (
	// DetectorStream is Stream, the detector the agent ran before ARTime:
	// the shape statistic calibrated on the series' own past.
	DetectorStream = "shape"
	// DetectorResidual is the point statistics alone with their z
	// calibrated on the series' own past (NewDetector): what foreshape
	// ran before the shape statistic, with its settings of then
	// (refractory 144 points).
	DetectorResidual = "residual"
	// DetectorRCF is a robust random cut forest over shingles (NewRCF),
	// its collusive displacement calibrated like the shape distance.
	DetectorRCF = "rcf"
	// DetectorEnsemble combines the shape statistic and the residual
	// detector: the geometric mean of their p-values.
	DetectorEnsemble = "ensemble"
	// DetectorContext is the contextual anomaly detector (NewContextual):
	// CAD OSE's contexts over the levels of the series' learnt range.
	DetectorContext = "context"
	// DetectorShapeContext combines the shape statistic and the
	// contextual detector: the geometric mean of their p-values.
	DetectorShapeContext = "shape+context"
	// DetectorARTime is the detector the agent runs (NewARTimeStream):
	// the adaptive-resonance detector ARTime over the series' learnt
	// range, with the shape statistic's p-values.
	DetectorARTime = "artime"
	// DetectorARTimeShape combines ARTime and the shape statistic: the
	// larger of their onsets (newARTimeShape).
	DetectorARTimeShape = "artime+shape"
)

// DefaultDetector is the detector the agent runs on every series:
// ARTime's onsets and alarms with the shape statistic's p-values
// (ARTimeStream).
const DefaultDetector = DetectorARTime

// Detectors lists the detector names NewOnline accepts, sorted.
func Detectors() []string {
	out := []string{DetectorStream, DetectorResidual, DetectorRCF, DetectorEnsemble, DetectorContext, DetectorShapeContext, DetectorARTime, DetectorARTimeShape,
		DetectorARTimeLikelihood, DetectorResidualLikelihood, DetectorRCFLikelihood}
	sort.Strings(out)
	return out
}

// CheckDetector says whether NewOnline knows the detector name ("":
// DefaultDetector), with an error naming those it knows when it does not.
func CheckDetector(name string) error {
	if name == "" || slices.Contains(Detectors(), name) {
		return nil
	}
	return fmt.Errorf("anomaly: unknown detector %q (want one of %s)", name, strings.Join(Detectors(), ", "))
}

// NewOnline returns the named detector ("": DefaultDetector).
func NewOnline(name string, opts Options) (Online, error) {
	if name == "" {
		name = DefaultDetector
	}
	switch name {
	case DetectorStream:
		return NewStream(opts), nil
	case DetectorResidual:
		if opts.Refractory <= 0 {
			opts.Refractory = residualRefractory
		}
		return &withForecast{d: NewDetector(opts)}, nil
	case DetectorRCF:
		return newCalibrated(opts, NewRCF(opts.RCF).Displacement), nil
	case DetectorEnsemble:
		return newEnsemble(opts), nil
	case DetectorContext:
		return NewContextStream(opts), nil
	case DetectorShapeContext:
		return newShapeContext(opts), nil
	case DetectorARTime:
		return NewARTimeStream(opts), nil
	case DetectorARTimeShape:
		return newARTimeShape(opts), nil
	case DetectorARTimeLikelihood, DetectorResidualLikelihood, DetectorRCFLikelihood:
		return NewLikelihoodStream(strings.TrimSuffix(name, "+likelihood"), opts)
	}
	return nil, CheckDetector(name)
}

// residualRefractory is the residual detector's refractory period as it
// ran before the shape statistic.
const residualRefractory = 144

// withForecast feeds the residual detector the median of the previous
// three samples as its one-step forecast.
type withForecast struct {
	d    *Detector
	pred recentMedian
}

func (w *withForecast) Observe(v float64) Point {
	p := w.d.Observe(v, w.pred.Next())
	w.pred.Push(v)
	return p
}

func (w *withForecast) Events(flush bool) []Event { return w.d.Events(flush) }

// calibrated turns a nonconformity statistic into verdicts the way Stream
// does with the shape distance: its conformal p-value with an exponential
// tail, then the score, the onset and the point statistics.
type calibrated struct {
	stat   func(float64) float64 // NaN: no value yet
	rank   *tailRank
	warmup int
	verdicts
}

func newCalibrated(opts Options, stat func(float64) float64) *calibrated {
	o := opts.withDefaults()
	so := o.Shape.withDefaults()
	return &calibrated{stat: stat, rank: newTailRank(so.Memory, so.Tail), warmup: so.Warmup, verdicts: newVerdicts(o)}
}

func (c *calibrated) Observe(v float64) Point {
	pv := 1.0
	if !math.IsNaN(v) && !math.IsInf(v, 0) {
		if x := c.stat(v); !math.IsNaN(x) {
			if c.rank.Len() >= c.warmup {
				pv = c.rank.P(x)
			}
			c.rank.Add(x)
		}
	}
	return c.finish(v, pv)
}

// ensemble is the geometric mean of the shape statistic's p-value and the
// residual detector's.
type ensemble struct {
	verdicts
	shape    *Shape
	residual *withForecast
}

func newEnsemble(opts Options) *ensemble {
	o := opts.withDefaults()
	ro := opts
	ro.Refractory = residualRefractory
	return &ensemble{verdicts: newVerdicts(o), shape: NewShape(o.Shape), residual: &withForecast{d: NewDetector(ro)}}
}

func (e *ensemble) Observe(v float64) Point {
	ps := e.shape.Observe(v).P
	pr := e.residual.Observe(v).P
	return e.finish(v, math.Sqrt(ps*pr))
}

// ContextStream is the contextual detector (Contextual) with the verdicts
// Stream gives: Score is its raw anomaly score, Onset the score it reports
// (none within a rest period after a high one), P the conformal p-value of
// the raw score among the series' own past ones, and the point statistics
// say which points deviate. It is not safe for concurrent use.
type ContextStream struct {
	cad    *Contextual
	rank   *tailRank
	warmup int
	alarm  float64
	verdicts
}

// NewContextStream returns the contextual detector with opts.Context's
// settings; an onset of at least opts.AlarmScore raises an alarm.
func NewContextStream(opts Options) *ContextStream {
	o := opts.withDefaults()
	so := o.Shape.withDefaults()
	alarm := o.ContextAlarm
	if !(alarm > 0) {
		alarm = DefaultContextAlarm
	}
	return &ContextStream{cad: NewContextual(o.Context), rank: newTailRank(so.Memory, so.Tail), warmup: so.Warmup,
		alarm: alarm, verdicts: newVerdicts(o)}
}

// Observe scores the next sample (NaN or infinite: missing).
func (c *ContextStream) Observe(v float64) Point {
	raw, reported := c.cad.Score(v)
	pv := 1.0
	if !math.IsNaN(v) && !math.IsInf(v, 0) {
		if c.rank.Len() >= c.warmup {
			pv = c.rank.P(raw)
		}
		c.rank.Add(raw)
	}
	p := c.observe(v, pv, raw)
	p.Onset = reported
	return c.complete(p, c.alarm)
}

// shapeContext is the geometric mean of the shape statistic's p-value and
// the contextual detector's.
type shapeContext struct {
	verdicts
	shape   *Shape
	context *ContextStream
}

func newShapeContext(opts Options) *shapeContext {
	o := opts.withDefaults()
	return &shapeContext{verdicts: newVerdicts(o), shape: NewShape(o.Shape), context: NewContextStream(opts)}
}

func (e *shapeContext) Observe(v float64) Point {
	ps := e.shape.Observe(v).P
	pc := e.context.Observe(v).P
	return e.finish(v, math.Sqrt(ps*pc))
}

// ARTimeStream is ARTime (the adaptive-resonance detector) with the
// verdicts Stream gives, each part from the detector measured best at it.
// Onset is ARTime's anomaly score, which NAB scores (ARTime reports an
// incident once: its own masking stands for the refractory period), and an
// onset of at least opts.ARTimeAlarm raises an alarm. P, how rare the
// latest stretch is on this series, is the shape statistic's (Shape), as
// Stream has it, and with it the point statistics say which points deviate
// and are kept out of model fitting: ARTime scores one value in Step
// samples, and its matches' p-values kept fewer spikes out of the models'
// fits than the shape statistic's on the tuning part of the shared traces.
// It is not safe for concurrent use.
type ARTimeStream struct {
	art   *ARTime
	shape *Shape
	alarm float64
	verdicts
}

// NewARTimeStream returns ARTime with opts.ARTime's settings.
func NewARTimeStream(opts Options) *ARTimeStream {
	o := opts.withDefaults()
	alarm := o.ARTimeAlarm
	if !(alarm > 0) {
		alarm = DefaultARTimeAlarm
	}
	return &ARTimeStream{art: NewARTime(o.ARTime.StartingOn(o.History)), shape: NewShape(o.Shape), alarm: alarm, verdicts: newVerdicts(o)}
}

// Observe scores the next sample (NaN or infinite: missing).
func (s *ARTimeStream) Observe(v float64) Point {
	raw := s.art.Score(v)
	pv := s.shape.Observe(v).P
	p := s.observe(v, pv, scoreOf(pv))
	p.Onset = raw
	return s.complete(p, s.alarm)
}

// artimeShape is ARTimeStream with the shape statistic's onsets beside
// ARTime's: a point's onset is the larger of ARTime's score and the shape
// statistic's onset (Stream's), and it raises an alarm when either
// detector raises its own (ARTime's onset at least opts.ARTimeAlarm, or
// the shape statistic's onset with P at most opts.AlarmP). The two err
// differently (ARTime misses what its downsampling smooths away; the shape
// statistic flags the rarest stretch of every day), so the pair was
// measured against ARTime alone.
type artimeShape struct {
	art   *ARTime
	shape *Shape
	alarm float64
	verdicts
}

func newARTimeShape(opts Options) *artimeShape {
	s := NewARTimeStream(opts)
	return &artimeShape{art: s.art, shape: s.shape, alarm: s.alarm, verdicts: s.verdicts}
}

func (s *artimeShape) Observe(v float64) Point {
	raw := s.art.Score(v)
	pv := s.shape.Observe(v).P
	p := s.observe(v, pv, scoreOf(pv))
	s.track.add(&p) // the shape statistic's onset, as Stream sets it
	alarmed := p.Onset > 0 && p.P <= s.opts.AlarmP || raw > 0 && raw >= s.alarm
	p.Onset = max(p.Onset, raw)
	return s.decide(p, alarmed)
}
