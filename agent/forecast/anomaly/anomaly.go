// Package anomaly is foreshape's online anomaly detection: it scores every
// point of a utilisation series as it arrives, without look-ahead, so that
// operators see what is unusual and the forecasting models keep anomalous
// samples out of their fits. It also finds level shifts in a whole history
// (LevelShifts), which the models use to fit the current regime.
//
// It is pure: data in, verdicts out. It never performs I/O, reads the
// clock or logs.
//
// The detector the agent runs is ARTimeStream (DefaultDetector). It asks
// three questions of each point:
//
//   - Is this a new kind of stretch? ARTime, an adaptive-resonance
//     detector, clusters the series' downsampled recent values online and
//     scores a stretch that fits no cluster it has learnt (Onset); an
//     onset of at least ARTimeAlarm raises an alarm. It was chosen over the
//     shape detector (Stream) because it held up on NAB files it was not
//     developed on (see docs/forecasting.md).
//   - How unusual is the series' latest stretch? The shape statistic
//     (Shape) compares the last Window points with every shape the series
//     showed in the previous week and takes the distance to the nearest
//     few: a stretch like one seen before, even rarely, is close to it; a
//     spike, a dip, a step, a burst or a flat line where the series moves
//     is far from everything. That distance is calibrated against the
//     series' own past distances as a conformal p-value (P) with an
//     exponential tail beyond the largest ones, so a threshold on P means
//     the same rarity on every series whatever its units or noise.
//   - Which points deviate? The point statistics (Detector): the robust z
//     of the point against its one-step forecast and against the recent
//     level, and a lasting level shift.
//
// A point is Anomalous, to be kept out of model fitting, when it deviates
// (z above Threshold) in a stretch that is unusual (P at most Alpha), or
// when it raises an alarm. A level shift counts only in an unusual
// stretch: a step the series takes every day is not one. Score is P on a
// 0–1 scale.
//
// Stream, the agent's detector before, takes its onsets from the shape
// statistic too: Onset is the Score of a point whose score exceeds every
// score of the previous Refractory points, so one incident rises once, and
// again within the refractory period only when it grows stronger; a point
// raises an alarm when its onset's P is at most AlarmP (a rule rather than
// a fit: 1/4032, about one alarm per two weeks of 5-minute data on a
// series that behaves as it did). The shape statistic's settings and the
// refractory day were chosen by measuring on the tuning part of the NAB
// files (nab.Tuning) only, where it scored well and elsewhere badly (it
// was overfitted); ARTime runs with its published defaults, and only its
// alarm score and the rule that sets its probation from the history it
// starts on (Options.History) were chosen there. Alpha and Threshold, which decide what is
// masked, were chosen on the forecasting error of the tuning part of the
// shared traces.
package anomaly

import "math"

// Options tune the detector. The zero value means the defaults.
type Options struct {
	// Detector names the detector NewOnline builds ("": the agent's,
	// DefaultDetector).
	Detector string
	// Threshold is the robust z above which a point deviates (default 5).
	Threshold float64
	// Alpha is the shape p-value at or below which a deviating point is
	// anomalous (default DefaultAlpha).
	Alpha float64
	// AlarmP is the p-value at or below which an onset raises an alarm
	// (default DefaultAlarmP).
	AlarmP float64
	// Refractory is how many points after a high score a lower one is not
	// an onset (default 288: a day of 5-minute data).
	Refractory int
	// Gap is how many normal points end an event; anomalies closer than
	// that belong to the same event (default 6).
	Gap int
	// Shape tunes the shape statistic.
	Shape ShapeOptions
	// Context tunes the contextual detector (NewContextStream).
	Context ContextOptions
	// ARTime tunes the adaptive-resonance detector (NewARTimeStream).
	ARTime ARTimeOptions
	// Likelihood tunes the anomaly likelihood over a detector's raw
	// scores (NewLikelihoodStream).
	Likelihood LikelihoodOptions
	// RCF tunes the random cut forest of DetectorRCF and
	// DetectorRCFLikelihood (NewRCF; the zero value: its defaults).
	RCF RCFOptions
	// History is how many samples of the series' stored history the
	// detector is started on (it still sees them one at a time, in
	// order): ARTime learns them as its probation (see
	// ARTimeOptions.StartingOn). 0: none.
	History int
	// ARTimeAlarm is the adaptive-resonance detector's onset at or above
	// which it raises an alarm (default DefaultARTimeAlarm).
	ARTimeAlarm float64
	// ContextAlarm is the contextual detector's onset at or above which it
	// raises an alarm (default DefaultContextAlarm).
	ContextAlarm float64

	// Window is how many recent residuals (and values) set the point
	// statistics' robust scale (default 1008: 3.5 days of 5-minute data).
	Window int
	// Warmup is how many points the point statistics must see before they
	// score (default 36).
	Warmup int
	// LevelShift tunes the level-shift statistic (default window 24: two
	// hours of 5-minute data, longer than for LevelShifts because online
	// the statistic must tell a shift from a burst without seeing what
	// follows).
	LevelShift LevelShiftOptions
	// NoLevel turns off the value-against-recent-values statistic.
	NoLevel bool
	// Memory is how many past z values calibrate the residual detector
	// (NewDetector) on its own (default 8064: four weeks of 5-minute data).
	// Stream calibrates the shape statistic instead (Shape.Memory).
	Memory int
}

// Defaults for Options.
const (
	DefaultThreshold   = 5.0
	DefaultAlpha       = 0.01
	DefaultAlarmP      = 1.0 / 4032
	DefaultRefractory  = 288
	DefaultGap         = 6
	DefaultWindow      = 1008
	DefaultWarmup      = 36
	DefaultMemory      = 8064
	DefaultShiftWindow = 24
	// DefaultContextAlarm is the contextual detector's alarm score: the
	// standard-profile threshold chosen on the tuning part of the NAB
	// files (0.6097, rounded).
	DefaultContextAlarm = 0.61
	// DefaultARTimeAlarm is the adaptive-resonance detector's alarm
	// score: the standard-profile threshold chosen on the tuning part of
	// the NAB files (0.6209, rounded). Its p-values rarely reach AlarmP at
	// an onset (never on the tuning files), so they do not raise alarms.
	DefaultARTimeAlarm = 0.62
)

func (o Options) withDefaults() Options {
	if !(o.Threshold > 0) {
		o.Threshold = DefaultThreshold
	}
	if !(o.Alpha > 0) {
		o.Alpha = DefaultAlpha
	}
	if !(o.AlarmP > 0 && o.AlarmP <= 1) {
		o.AlarmP = DefaultAlarmP
	}
	if o.Refractory <= 0 {
		o.Refractory = DefaultRefractory
	}
	if o.Gap <= 0 {
		o.Gap = DefaultGap
	}
	if o.Window < 8 {
		o.Window = DefaultWindow
	}
	if o.Warmup <= 0 {
		o.Warmup = DefaultWarmup
	}
	if o.Memory <= 0 {
		o.Memory = DefaultMemory
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
	// KindSpike: points away from the forecast or the recent level, or an
	// unusual stretch that raised an alarm.
	KindSpike Kind = "spike"
	// KindLevelShift: the series moved to a new level and stayed.
	KindLevelShift Kind = "level_shift"
)

// Point is the detector's verdict on one point.
type Point struct {
	// Index is the point's position in the series.
	Index int
	// Z is the point's deviation: the largest robust z of its point
	// statistics (0 during warmup and for missing points).
	Z float64
	// P is how rare the latest stretch is on this series: the conformal
	// p-value of its shape distance among the series' past distances (see
	// the package comment). 0.001 means "more unusual than all but one in a
	// thousand of what this series did", so one threshold means the same on
	// every series. 1 during warmup and for missing points.
	P float64
	// Score is P on a scale from 0 to 1: L/(1+L) with L = log10(1/P), so
	// P = 0.1 scores 0.5, 0.01 scores 0.67, 0.001 scores 0.75, and every
	// factor of ten of rarity moves it further towards 1.
	Score float64
	// Onset is Score when it exceeds every Score of the previous Refractory
	// points, and 0 otherwise: for any threshold on Onset, a series alarms
	// again within the refractory period only for a stronger anomaly.
	// That is what a benchmark that rewards the earliest detection and
	// penalises repeats (NAB) sees.
	Onset float64
	// Alarm is true when Onset is at least the alarm score.
	Alarm bool
	// Anomalous is true for a point to keep out of model fitting: it
	// deviates in an unusual stretch, or it raised an alarm. The points
	// that follow a confirmed level shift are the new level, not
	// anomalies.
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
	// Alarm is the highest Onset of its points that raised an alarm: the
	// detector's own score where it alarmed (0: it raised none).
	Alarm float64
	Kind  Kind
}

// AlarmScore is the onset score at or above which a point raises an
// alarm when alarms take p-values at or below alarmP.
func AlarmScore(alarmP float64) float64 { return scoreOf(alarmP) }

// scoreOf maps a p-value to a score in [0, 1).
func scoreOf(p float64) float64 {
	if !(p < 1) {
		return 0
	}
	l := math.Log10(1 / math.Max(p, minP))
	return l / (1 + l)
}

// tracker sets each point's Onset and groups anomalous points into
// events.
type tracker struct {
	gap, refractory int
	recent          maxQueue // past Scores, for Onset
	open            *Event
	quiet           int // normal points since the open event's last anomaly
	events          []Event
}

// maxEvents bounds the closed events a detector keeps.
const maxEvents = 64

// add sets p.Onset.
func (t *tracker) add(p *Point) {
	p.Onset = p.Score
	if m, ok := t.recent.Max(p.Index - t.refractory); ok && m >= p.Score {
		p.Onset = 0
	}
	t.recent.Push(p.Index, p.Score)
}

// record groups p into the events once its flags are final.
func (t *tracker) record(p Point, shift *LevelShiftEvent) {
	if !p.Anomalous {
		if t.open != nil {
			t.quiet++
			if t.quiet >= t.gap {
				t.close()
			}
		}
		return
	}
	if t.open != nil {
		t.quiet = 0
		t.open.End = p.Index
		t.open.Score = max(t.open.Score, p.Score)
		t.open.P = min(t.open.P, p.P)
		t.open.Z = max(t.open.Z, p.Z)
		if p.Alarm {
			t.open.Alarm = max(t.open.Alarm, p.Onset)
		}
		if p.LevelShift && shift != nil {
			t.open.Kind = KindLevelShift
			t.open.Start = min(t.open.Start, shift.Start)
		}
		return
	}
	ev := &Event{Start: p.Index, End: p.Index, Score: p.Score, P: p.P, Z: p.Z, Kind: KindSpike}
	if p.Alarm {
		ev.Alarm = p.Onset
	}
	if p.LevelShift && shift != nil {
		ev.Kind = KindLevelShift
		ev.Start = min(ev.Start, shift.Start)
	}
	t.open, t.quiet = ev, 0
}

func (t *tracker) close() {
	t.events = append(t.events, *t.open)
	if len(t.events) > maxEvents {
		t.events = t.events[len(t.events)-maxEvents:]
	}
	t.open = nil
}

// Events returns the last events closed (at most 64) and, when flush is
// true, also the one still open (for the end of a series).
func (t *tracker) Events(flush bool) []Event {
	out := append([]Event(nil), t.events...)
	if flush && t.open != nil {
		out = append(out, *t.open)
	}
	return out
}

// Stream is the detector foreshape runs on every series (see the package
// comment): the shape statistic for how unusual the latest stretch is, the
// point statistics (with the median of the previous three samples as the
// one-step forecast, which a single spike cannot drag along) for which
// points deviate. Feed it the samples one at a time. It is not safe for
// concurrent use.
//
// Its memory is bounded: about 2·(2·Shape.Window+Shape.Reference) +
// Shape.Reference + 2·Shape.Memory + 4·Window + 8,064 floats (the last for
// the level-shift statistic's week of differences and of steps), some
// 220 KB with the defaults, whatever the length of the series.
type Stream struct {
	shape *Shape
	verdicts
}

// NewStream returns a stream detector.
func NewStream(opts Options) *Stream {
	o := opts.withDefaults()
	return &Stream{shape: NewShape(o.Shape), verdicts: newVerdicts(o)}
}

// Observe scores the next sample (NaN or infinite: missing).
func (s *Stream) Observe(v float64) Point { return s.finish(v, s.shape.Observe(v).P) }

// verdicts turns a point's p-value into its verdict: the score, the onset
// and the alarm, and, from the point statistics, whether it deviates.
type verdicts struct {
	opts  Options
	point *Detector
	pred  recentMedian
	track tracker
}

func newVerdicts(o Options) verdicts {
	return verdicts{opts: o, point: newPointDetector(o), track: tracker{gap: o.Gap, refractory: o.Refractory}}
}

// finish completes the verdict on v, whose stretch has p-value pv.
func (c *verdicts) finish(v, pv float64) Point {
	p := c.observe(v, pv, scoreOf(pv))
	c.track.add(&p)
	return c.complete(p, AlarmScore(c.opts.AlarmP))
}

// observe starts the verdict on v: its point statistics, P and Score.
func (c *verdicts) observe(v, pv, score float64) Point {
	dp := c.point.Observe(v, c.pred.Next())
	c.pred.Push(v)
	return Point{Index: dp.Index, Z: dp.Z, P: pv, Score: score, LevelShift: dp.LevelShift, Anomalous: dp.Anomalous}
}

// complete finishes a verdict whose Onset is set: p.Anomalous and
// p.LevelShift come in as the point statistics' and leave as the
// verdict's; an Onset of at least alarm raises an alarm.
func (c *verdicts) complete(p Point, alarm float64) Point {
	return c.decide(p, p.Onset > 0 && p.Onset >= alarm)
}

// decide is complete with the alarm decided by the caller.
func (c *verdicts) decide(p Point, alarmed bool) Point {
	deviates, shifted := p.Anomalous, p.LevelShift
	unusual := p.P <= c.opts.Alpha
	p.Alarm = alarmed
	p.Anomalous = (deviates && unusual) || p.Alarm
	p.LevelShift = shifted && unusual
	var shift *LevelShiftEvent
	if p.LevelShift {
		shift = c.point.lastShift
	}
	c.track.record(p, shift)
	return p
}

// Events returns the last events (at most 64) closed so far and, when flush
// is true, also the one still open (for the end of a series).
func (c *verdicts) Events(flush bool) []Event { return c.track.Events(flush) }

// Detect runs Stream over a whole series. It returns a verdict per point
// and the events. Every verdict depends only on earlier points.
func Detect(y []float64, opts Options) ([]Point, []Event) {
	s := NewStream(opts)
	pts := make([]Point, len(y))
	for i, v := range y {
		pts[i] = s.Observe(v)
	}
	return pts, s.Events(true)
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
