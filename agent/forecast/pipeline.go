package forecast

import (
	"fmt"
	"math"
	"time"

	"github.com/foreshape/foreshape/agent/forecast/anomaly"
	"github.com/foreshape/foreshape/agent/forecast/internal/num"
)

// Range is the physical range of a metric: what a measurement can show (0
// to 100 for a utilisation percentage, 0 and up for a rate). Forecasts are
// clamped into it. The zero Range means unbounded.
type Range struct{ Min, Max float64 }

// Ranges of common metrics.
var (
	// Percent is a share of a capacity: demand beyond the capacity is not
	// served, so it cannot be measured above 100.
	Percent = Range{Min: 0, Max: 100}
	// NonNegative is a rate or a size.
	NonNegative = Range{Min: 0, Max: math.Inf(1)}
)

func (r Range) bounded() bool { return r != Range{} }

// clamp returns v inside r.
func (r Range) clamp(v float64) float64 {
	if !r.bounded() {
		return v
	}
	return math.Min(math.Max(v, r.Min), r.Max)
}

// PipelineOptions configure a Pipeline.
type PipelineOptions struct {
	// Model is the model's name as New takes it ("" is "auto").
	Model string
	// Options configure the model.
	Options Options
	// Anomaly chooses and tunes the anomaly detector (Anomaly.Detector:
	// anomaly.DefaultDetector unless set).
	Anomaly anomaly.Options
	// Range is the series' physical range; forecasts are clamped into it.
	Range Range
	// NoMasking keeps every point in the model: the detector still runs,
	// reports events and level shifts (which still trigger refits), but
	// masks nothing. For measuring what masking is worth.
	NoMasking bool
}

// MaxSpike is the longest anomaly, in points, that the pipeline keeps out
// of the model as a spike: a deviation that lasts longer is the series' new
// level, and triggers a refit.
const MaxSpike = 6

// maxEvents bounds the anomaly events a pipeline remembers.
const maxEvents = 32

// Pipeline is the per-series forecaster the agent runs and `foreshape
// forecast eval` measures: one model behind an online anomaly detector.
//
//   - New points go through the detector (anomaly.DefaultDetector unless
//     PipelineOptions.Anomaly names another; it sees every point once, in
//     order, and starts on the points of the first Advance: the history
//     the series has when the pipeline starts, which sets how long it
//     learns before it reports). Spikes, anomalous runs of at most MaxSpike
//     points, reach the model as missing values; a confirmed level shift,
//     an anomaly lasting longer, or a spike whose following points hold
//     its level (a step), is the series' new level and is kept.
//   - The model absorbs the points with a cheap Update, and is refitted on
//     the whole history when that makes it due: its own refit schedule or
//     degraded one-step errors (Refitter), a level shift, or a history that
//     has doubled since the fit (a model chosen on a cold start must not
//     outlive it).
//   - A refit fits the history with the spikes the detector found left
//     out: the pipeline remembers its verdict on every point of the
//     history, and a run that turned out to be a new level is put back.
//   - Forecasts are clamped into the series' physical range.
//
// A Pipeline is not safe for concurrent use.
type Pipeline struct {
	opts   PipelineOptions
	f      Forecaster
	stream anomaly.Online
	fitted bool
	fitLen int // points of history the last fit saw
	seen   int // points the detector has seen
	// masked holds the verdicts on the last len(masked) points seen: true
	// for a spike kept out of the model.
	masked []bool
	open   *Event
	quiet  int // normal points since the open event's last anomaly
	// recent holds the last points seen, point i at recent[i%len(recent)]:
	// enough to compare an event with the points around it when it closes.
	recent [32]float64
	events []Event
	// Absorbed counts the points absorbed through Update since the fit.
	absorbed int
}

// Event is an anomaly the pipeline saw, as indices into the points it was
// given since it was created (see Pipeline.Seen).
type Event struct {
	// Start and End are the indices of its first and last anomalous point.
	Start, End int
	// Kind is a spike (kept out of the model) or a level shift (a new
	// level: a confirmed shift or an anomaly longer than MaxSpike points).
	Kind anomaly.Kind
	// Score is the highest anomaly score of its points (anomaly.Point),
	// P the smallest p-value, Alarm the detector's highest onset among its
	// points that raised an alarm (0: none did).
	Score, P, Alarm float64
}

// NewPipeline returns an unfitted pipeline around the model New builds from
// o.Model and o.Options; it fails like New for an unknown model or bad
// options, or for an empty range.
func NewPipeline(o PipelineOptions) (*Pipeline, error) {
	f, err := New(o.Model, o.Options)
	if err != nil {
		return nil, err
	}
	return NewPipelineFor(f, o)
}

// NewPipelineFor returns an unfitted pipeline around the forecaster f
// (o.Model and o.Options are not used); it fails for an empty range or an
// unknown anomaly detector.
func NewPipelineFor(f Forecaster, o PipelineOptions) (*Pipeline, error) {
	if r := o.Range; r.bounded() && !(r.Min <= r.Max) {
		return nil, fmt.Errorf("forecast: range [%v, %v] is empty", r.Min, r.Max)
	}
	if err := anomaly.CheckDetector(o.Anomaly.Detector); err != nil {
		return nil, fmt.Errorf("forecast: %w", err)
	}
	return &Pipeline{opts: o, f: f}, nil
}

// Advance brings the pipeline up to date with the history y, a regular
// grid whose last fresh points are new since the previous call (on the
// first call, all of y is). It screens the fresh points for anomalies,
// then updates the model with them or refits it on y when a refit is due.
// It returns why it refitted ("" when it only updated) and the model's
// error when a fit fails (the pipeline then needs a new start).
func (p *Pipeline) Advance(y []float64, fresh int) (string, error) {
	return p.AdvanceAt(y, fresh, time.Time{})
}

// AdvanceAt is Advance with the time of y's last point, for models that
// use the calendar (see Timed); the zero time means unknown.
func (p *Pipeline) AdvanceAt(y []float64, fresh int, last time.Time) (string, error) {
	if t, ok := p.f.(Timed); ok {
		t.SetLast(last)
	}
	fresh = min(max(fresh, 0), len(y))
	if p.stream == nil {
		// The detector starts on the history the series has now (see
		// anomaly.Options.History).
		o := p.opts.Anomaly
		o.History = fresh
		var err error
		if p.stream, err = anomaly.NewOnline(o.Detector, o); err != nil {
			return "", fmt.Errorf("forecast: %w", err)
		}
	}
	masked, shifted := p.screen(y[len(y)-fresh:])
	if len(p.masked) > 2*len(y)+1024 {
		// Keep the verdicts on the history only.
		p.masked = append([]bool(nil), p.masked[len(p.masked)-len(y):]...)
	}
	reason := "first fit"
	if p.fitted {
		// Absorb the new points first, so that the refit schedule and the
		// one-step errors count them.
		p.f.Update(masked...)
		p.absorbed += len(masked)
		switch {
		case p.stale() != "":
			reason = p.stale()
		case shifted:
			reason = "level shift: the new level replaces the old"
		case len(y) >= 2*p.fitLen:
			reason = "history doubled since the fit"
		default:
			return "", nil
		}
	}
	if err := p.fit(y); err != nil {
		return reason, err
	}
	return reason, nil
}

// stale is the model's own reason for a refit, if it has one.
func (p *Pipeline) stale() string {
	if r, ok := p.f.(Refitter); ok {
		if due, why := r.Stale(); due {
			return why
		}
	}
	return ""
}

// fit refits the model on y with the spikes left out.
func (p *Pipeline) fit(y []float64) error {
	clean := append([]float64(nil), y...)
	off := len(p.masked) - len(y) // y[i] is the point of verdict masked[off+i]
	for i := range clean {
		if j := off + i; j >= 0 && p.masked[j] {
			clean[i] = math.NaN()
		}
	}
	if err := p.f.Fit(clean); err != nil {
		p.fitted = false
		return fmt.Errorf("fit: %w", err)
	}
	p.fitted, p.fitLen, p.absorbed = true, len(y), 0
	return nil
}

// screen runs the detector over new points and records anomaly events. It
// returns the points with spikes replaced by NaN, so they stay out of the
// model, and whether the series moved to a new level.
func (p *Pipeline) screen(fresh []float64) ([]float64, bool) {
	out := append([]float64(nil), fresh...)
	shifted := false
	for i, v := range fresh {
		at := p.seen
		p.seen++
		pt := p.stream.Observe(v)
		p.masked = append(p.masked, false)
		p.recent[at%len(p.recent)] = v
		if !pt.Anomalous && !pt.LevelShift {
			if p.open != nil {
				p.quiet++
				if p.quiet > MaxSpike {
					if p.close(at) {
						shifted = true
					}
				}
			}
			continue
		}
		if p.open == nil {
			p.open = &Event{Start: at, Kind: anomaly.KindSpike, P: 1}
		}
		p.quiet = 0
		p.open.End = at
		p.open.Score = math.Max(p.open.Score, pt.Score)
		p.open.P = math.Min(p.open.P, pt.P)
		if pt.Alarm {
			p.open.Alarm = math.Max(p.open.Alarm, pt.Onset)
		}
		if pt.LevelShift || p.open.End-p.open.Start >= MaxSpike {
			if p.open.Kind != anomaly.KindLevelShift {
				// The run is the series' new level: the points masked as
				// spikes so far belong to it.
				for j := max(p.open.Start-(p.seen-len(p.masked)), 0); j < len(p.masked); j++ {
					p.masked[j] = false
				}
			}
			p.open.Kind = anomaly.KindLevelShift
			shifted = true
		} else if !p.opts.NoMasking {
			out[i] = math.NaN()
			p.masked[len(p.masked)-1] = true
		}
	}
	return out, shifted
}

// close closes the open event at point at, MaxSpike+1 normal points after
// its last anomaly. A spike whose following points hold its level rather
// than return to the level before it (a step in a constant or quantised
// series, such as a provisioned capacity raised once, which the detector
// accepts after a few points) was the series' new level: its points go
// back into the history and close reports true, so the model is refitted
// with them.
func (p *Pipeline) close(at int) bool {
	held := p.open.Kind == anomaly.KindSpike && p.heldLevel(at)
	if held {
		p.open.Kind = anomaly.KindLevelShift
		for i := p.open.Start; i <= p.open.End; i++ {
			if j := i - (p.seen - len(p.masked)); j >= 0 {
				p.masked[j] = false
			}
		}
	}
	p.events = append(p.events, *p.open)
	if len(p.events) > maxEvents {
		p.events = p.events[len(p.events)-maxEvents:]
	}
	p.open = nil
	return held
}

// heldLevel tells whether the points after the open event, up to point at,
// sit nearer the event's level than the level of the points before it
// (medians of each; false when the event starts the series).
func (p *Pipeline) heldLevel(at int) bool {
	e := p.open
	from := max(e.Start-MaxSpike-1, 0)
	if from == e.Start || at-from >= len(p.recent) {
		return false
	}
	level := func(i, j int) float64 { // median of points i..j-1
		var xs []float64
		for ; i < j; i++ {
			if v := p.recent[i%len(p.recent)]; num.Finite(v) {
				xs = append(xs, v)
			}
		}
		if len(xs) == 0 {
			return math.NaN()
		}
		return num.Median(xs)
	}
	before, during, after := level(from, e.Start), level(e.Start, e.End+1), level(e.End+1, at+1)
	return math.Abs(after-during) < math.Abs(after-before)
}

// Seen is the number of points the pipeline has screened since it was
// created: the index the next point will have.
func (p *Pipeline) Seen() int { return p.seen }

// Absorbed is the number of points the model absorbed through Update since
// its last fit.
func (p *Pipeline) Absorbed() int { return p.absorbed }

// Events returns the recent anomaly events, oldest first, the one still
// open last.
func (p *Pipeline) Events() []Event {
	out := append([]Event(nil), p.events...)
	if p.open != nil {
		out = append(out, *p.open)
	}
	return out
}

// Forecast predicts the next h points with the model, clamped into the
// series' physical range.
func (p *Pipeline) Forecast(h int) (Prediction, error) {
	if !p.fitted {
		return Prediction{}, fmt.Errorf("forecast before fit: %w", ErrTooShort)
	}
	pred, err := p.f.Forecast(h)
	if err != nil {
		return Prediction{}, err
	}
	if r := p.opts.Range; r.bounded() {
		for i, v := range pred.Mean {
			pred.Mean[i] = r.clamp(v)
		}
		for _, band := range pred.Bands {
			for i, v := range band {
				band[i] = r.clamp(v)
			}
		}
	}
	return pred, nil
}
