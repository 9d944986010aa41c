package anomaly

import (
	"math"
	"slices"
	"testing"

	"github.com/foreshape/foreshape/internal/cputime"
)

// spiked is two weeks of a noisy daily cycle with a spike at 3000.
func spiked() []float64 {
	y := dailyTwoWeeks()
	y[3000] += 80
	return y
}

func TestARTimeScoresASpikeOnce(t *testing.T) {
	y := spiked()
	a := NewARTime(ARTimeOptions{})
	step := a.Step()
	if step != 7 {
		t.Fatalf("step %d, want 7 (a probation of 750 samples, 8 values a window, 13 windows)", step)
	}
	var events []int
	for i, v := range y {
		s := a.Score(v)
		if s < 0 || s > 1 {
			t.Fatalf("sample %d scores %v", i, s)
		}
		if s == 0 {
			continue
		}
		if i < DefaultARTimeProbation || (i+1)%step != 0 {
			t.Fatalf("sample %d scores %v: only the last sample of a downsampled value after the probation may", i, s)
		}
		events = append(events, i)
	}
	// The spike's downsampled value ends at 3002.
	found := false
	for _, i := range events {
		found = found || i == 3002
	}
	if !found {
		t.Errorf("events at %v, none at the spike's value (3002)", events)
	}
	if len(events) > 6 {
		t.Errorf("%d events on a regular cycle with one spike: %v", len(events), events)
	}
	if n := a.Categories(); n < 2 || n > DefaultARTimeMaxCategories {
		t.Errorf("%d categories", n)
	}
}

func TestARTimeScaleFree(t *testing.T) {
	// Twice the series (exact in floating point) scores the same: the
	// range is learnt, so units do not matter.
	y := spiked()
	for i := 3500; i < len(y); i++ {
		y[i] += 60 // the range widens after the probation: rescaled
	}
	a, b := NewARTime(ARTimeOptions{}), NewARTime(ARTimeOptions{})
	events := 0
	for i, v := range y {
		sa, sb := a.Score(v), b.Score(2*v)
		if sa != sb {
			t.Fatalf("sample %d: %v, twice the series %v", i, sa, sb)
		}
		if sa > 0 {
			events++
		}
	}
	if events == 0 {
		t.Fatal("no events")
	}
}

func TestARTimeKnownRangeIsLearntRange(t *testing.T) {
	// When the probation shows the series' whole range, learning the range
	// is knowing it.
	y := dailyTwoWeeks()
	y[100], y[200] = 0, 120
	lo, hi := y[0], y[0]
	for _, v := range y {
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	if lo != 0 || hi != 120 {
		t.Fatalf("range %v..%v", lo, hi)
	}
	// Without headroom the learnt range is the probation's; with it, the
	// probation's widened by a quarter of its width on each side.
	m := DefaultARTimeHeadroom * (hi - lo)
	for _, c := range []struct {
		name    string
		learnt  ARTimeOptions
		lo, hi  float64
		differs bool
	}{
		{"no headroom", ARTimeOptions{Headroom: -1}, lo, hi, false},
		{"default headroom", ARTimeOptions{}, lo - m, hi + m, false},
		{"default headroom against the bare range", ARTimeOptions{}, lo, hi, true},
	} {
		a, b := NewARTime(c.learnt), NewARTime(ARTimeOptions{Range: &[2]float64{c.lo, c.hi}})
		differs := false
		for i, v := range y {
			if sa, sb := a.Score(v), b.Score(v); sa != sb {
				if !c.differs {
					t.Fatalf("%s: sample %d: learnt range %v, known range %v", c.name, i, sa, sb)
				}
				differs = true
			}
		}
		if c.differs && !differs {
			t.Errorf("%s: the headroom changed no score", c.name)
		}
	}
}

func TestARTimeWidenedRangeRescales(t *testing.T) {
	// A value far beyond the range seen is an anomaly, and what was learnt
	// is rescaled: the series afterwards, back at its level, raises
	// nothing more.
	y := dailyTwoWeeks()
	y[2500] = 1000
	a := NewARTime(ARTimeOptions{})
	var events []int
	for i, v := range y {
		if a.Score(v) > 0 {
			events = append(events, i)
		}
	}
	if len(events) == 0 || events[0] != 2505 {
		t.Fatalf("events %v, want the first at 2505 (the end of the value holding 2500)", events)
	}
	for _, i := range events[1:] {
		if i > 2505+20*a.Step() {
			t.Errorf("event at %d, long after the spike: %v", i, events)
		}
	}
}

func TestFuzzyARTRescale(t *testing.T) {
	// A box over the value features maps through the rescaling; the
	// wavelet features and the blank category stay.
	var f fuzzyART
	f.init(8, 10) // window 2: 2 wavelet, 2 value features
	f.train([]float64{0, 0, 0, 0, 1, 1, 1, 1}, true)
	f.rhoLB, f.rhoUB = 0.5, 0.5
	f.add([]float64{0.2, 0.4, 0.2, 0.6, 0.8, 0.6, 0.5, 0.3}) // values: [0.2,0.5] and [0.6,0.7]
	f.rescale(2, func(u float64) float64 { return u / 2 })
	want := []float64{0.2, 0.4, 0.1, 0.3, 0.8, 0.6, 0.75, 0.65}
	for k, w := range want {
		if got := f.w[8+k]; math.Abs(got-w) > 1e-12 {
			t.Errorf("weight %d: %v, want %v", k, got, w)
		}
	}
	if f.norm[1] != 3.8 && math.Abs(f.norm[1]-3.8) > 1e-12 {
		t.Errorf("norm %v, want 3.8", f.norm[1])
	}
	for k := range 8 {
		if f.w[k] != 1 {
			t.Fatalf("the blank category changed: %v", f.w[:8])
		}
	}
}

func TestARTimeMissingAndBounded(t *testing.T) {
	// A missing sample teaches nothing; the categories stay within their
	// bound on noise, where most values are new.
	y := noisy(3, 6000, 50, 20)
	a, b := NewARTime(ARTimeOptions{MaxCategories: 16}), NewARTime(ARTimeOptions{MaxCategories: 16})
	for i, v := range y {
		if i%100 == 0 {
			if s := b.Score(math.NaN()); s != 0 {
				t.Fatalf("a missing sample scores %v", s)
			}
		}
		if sa, sb := a.Score(v), b.Score(v); sa != sb {
			t.Fatalf("sample %d: %v, with missing samples between %v", i, sa, sb)
		}
	}
	if n := a.Categories(); n != 16 {
		t.Errorf("%d categories on noise, want the bound 16", n)
	}
}

func TestARTimeStreamVerdicts(t *testing.T) {
	// As the agent runs it: Onset is ARTime's score, a strong one raises an
	// alarm and is kept out of fitting, P is the stretch's rarity.
	y := dailyTwoWeeks()
	y[3000] = 200
	d, err := NewOnline(DetectorARTime, Options{})
	if err != nil {
		t.Fatal(err)
	}
	alarms := 0
	for i, v := range y {
		p := d.Observe(v)
		if p.P <= 0 || p.P > 1 || p.Score != scoreOf(p.P) || p.Onset < 0 || p.Onset > 1 {
			t.Fatalf("point %d: %+v", i, p)
		}
		if p.Alarm != (p.Onset >= DefaultARTimeAlarm) || p.Alarm && !p.Anomalous {
			t.Fatalf("point %d: %+v", i, p)
		}
		if p.Alarm {
			alarms++
		}
		if i == 3002 && (!p.Alarm || p.P > 0.01) {
			t.Errorf("the spike's value: %+v", p)
		}
	}
	if alarms > 3 {
		t.Errorf("%d alarms on a regular cycle with one spike", alarms)
	}
	if ev := d.Events(true); len(ev) == 0 {
		t.Error("no events")
	}
}

func TestARTimeStreamYoungSeries(t *testing.T) {
	// Within ARTime's probation a spike in a young series is still kept
	// out of fitting (the shape statistic finds it), but raises no alarm:
	// ARTime has not scored anything yet.
	y := dailyTwoWeeks()[:1500]
	y[400] = 200
	d := NewARTimeStream(Options{})
	for i, v := range y {
		p := d.Observe(v)
		if p.Alarm || p.Onset != 0 && i < DefaultARTimeProbation {
			t.Fatalf("point %d within the probation: %+v", i, p)
		}
		if i == 400 && (!p.Anomalous || p.P > 0.001) {
			t.Errorf("the spike: %+v", p)
		}
	}
}

func TestARTimeStartsOnItsHistory(t *testing.T) {
	for _, c := range []struct{ history, probation int }{
		{0, 750},      // nothing known: a new series
		{693, 750},    // 15% is 103, under one step a value
		{694, 104},    // 15% is 104: a step of one sample
		{4032, 604},   // two weeks of 5-minute data, as NAB gives ARTime
		{4999, 749},   // NAB's rule up to its cap
		{5000, 750},   // the cap
		{100000, 750}, // a long history
	} {
		if got := (ARTimeOptions{}).StartingOn(c.history).withDefaults().Probation; got != c.probation {
			t.Errorf("history %d: probation %d, want %d", c.history, got, c.probation)
		}
	}
	if got := (ARTimeOptions{Probation: 300}).StartingOn(4032).Probation; got != 300 {
		t.Errorf("a probation of 300 started on 4032 points: %d, want 300 (at most the probation set)", got)
	}

	// A detector started on two weeks of history learns 604 of them,
	// and reports a spike after that; one that knows of no history is
	// still learning there.
	y := dailyTwoWeeks()
	y[680] = 200
	for _, c := range []struct {
		history int
		alarms  bool
	}{{4032, true}, {0, false}} {
		d := NewARTimeStream(Options{History: c.history})
		alarmed := false
		for i, v := range y[:750] {
			p := d.Observe(v)
			if p.Alarm && (i < 680 || i > 686) {
				t.Errorf("history %d: alarm at %d: %+v", c.history, i, p)
			}
			alarmed = alarmed || p.Alarm
		}
		if alarmed != c.alarms {
			t.Errorf("history %d: alarm on the spike %v, want %v", c.history, alarmed, c.alarms)
		}
	}
}

// BenchmarkARTime runs ARTime over two weeks of 5-minute data (4,032
// points) per iteration.
func BenchmarkARTime(b *testing.B) {
	y := dailyTwoWeeks()
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cputime.Process()
	var cats int
	for range b.N {
		a := NewARTime(ARTimeOptions{})
		for _, v := range y {
			a.Score(v)
		}
		cats = a.Categories()
	}
	b.ReportMetric(float64(b.N)*4032/(cputime.Process()-cpu).Seconds(), "points/cpu-s")
	b.ReportMetric(float64(cats), "categories")
}

// BenchmarkARTimeAcrossSeries is BenchmarkStreamAcrossSeries for ARTime
// with the agent's verdicts, each detector started as the agent starts one
// on a series with two weeks of stored history (a probation of 604
// samples, so a downsampling step of 5).
func BenchmarkARTimeAcrossSeries(b *testing.B) {
	benchmarkAcrossSeries(b, 200, func() Online { return NewARTimeStream(Options{History: 4032}) })
}

// TestARTimeShapeTakesBothOnsets: artime+shape's onset at every point is
// the larger of ARTime's (ARTimeStream) and the shape statistic's (Stream),
// it alarms where either does, and its p-values are theirs.
func TestARTimeShapeTakesBothOnsets(t *testing.T) {
	y := dailyTwoWeeks()
	y[1500] += 40 // within both detectors' reach
	y[3000] -= 25
	o := Options{History: len(y)}
	both, err := NewOnline(DetectorARTimeShape, o)
	if err != nil {
		t.Fatal(err)
	}
	art, shape := NewARTimeStream(o), NewStream(o)
	var fromArt, fromShape int
	for i, v := range y {
		b, a, s := both.Observe(v), art.Observe(v), shape.Observe(v)
		if b.Onset != max(a.Onset, s.Onset) || b.Alarm != (a.Alarm || s.Alarm) || b.P != s.P {
			t.Fatalf("point %d: artime+shape %+v, artime %+v, shape %+v", i, b, a, s)
		}
		if b.Onset > 0 && b.Onset == a.Onset && a.Onset > s.Onset {
			fromArt++
		}
		if b.Onset > 0 && b.Onset == s.Onset && s.Onset > a.Onset {
			fromShape++
		}
	}
	if fromArt == 0 || fromShape == 0 {
		t.Errorf("onsets from ARTime %d, from the shape statistic %d: want both", fromArt, fromShape)
	}
}

func TestARTimeHeadroomAtTheFloatRange(t *testing.T) {
	// A probation spanning nearly the whole float range cannot be widened
	// by a quarter of its width on each side: it keeps the range it
	// showed, and the scores stay numbers.
	y := dailyTwoWeeks()
	lo, hi := slices.Min(y), slices.Max(y)
	for i := range y {
		y[i] = (2*(y[i]-lo)/(hi-lo) - 1) * 0.7e308 // a width of 1.4e308
	}
	a := NewARTime(ARTimeOptions{})
	for i, v := range y {
		if s := a.Score(v); math.IsNaN(s) || s < 0 || s > 1 {
			t.Fatalf("sample %d: score %v", i, s)
		}
	}
	if math.IsInf(a.nhi-a.nlo, 0) || math.IsNaN(a.nhi-a.nlo) {
		t.Errorf("range %v..%v", a.nlo, a.nhi)
	}
}

func TestARTimeHeadroomOfAFlatProbation(t *testing.T) {
	// A flat probation gets no headroom: its range stays the one value it
	// showed, and the first sample beyond it widens it to that sample
	// only, as without headroom; the two detectors score alike.
	y := dailyTwoWeeks()
	for i := range 750 {
		y[i] = 50
	}
	a, b := NewARTime(ARTimeOptions{}), NewARTime(ARTimeOptions{Headroom: -1})
	for i, v := range y {
		if sa, sb := a.Score(v), b.Score(v); sa != sb {
			t.Fatalf("sample %d: %v with the default headroom, %v without", i, sa, sb)
		}
		if i == 749 && (a.nlo != 50 || a.nhi != 50) {
			t.Fatalf("a flat probation's range %v..%v, want 50..50", a.nlo, a.nhi)
		}
	}
	if a.lo != slices.Min(y) || a.hi != slices.Max(y) {
		t.Errorf("range %v..%v, want the samples' %v..%v", a.lo, a.hi, slices.Min(y), slices.Max(y))
	}
}
