package anomaly

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/foreshape/foreshape/internal/cputime"
)

// rawScores is n raw scores around level with noise sd, in [0, 1].
func rawScores(seed uint64, n int, level, sd float64) []float64 {
	r := rand.New(rand.NewPCG(seed, 3))
	out := make([]float64, n)
	for i := range out {
		out[i] = min(1, max(0, level+sd*r.NormFloat64()))
	}
	return out
}

func TestLikelihoodProbation(t *testing.T) {
	l := NewLikelihood(LikelihoodOptions{Probation: 600})
	for i, r := range rawScores(1, 1000, 0.2, 0.05) {
		got := l.Observe(r)
		if i < 600 && (got != 0.5 || l.Ready()) {
			t.Fatalf("sample %d within the probation: %v (ready %v)", i, got, l.Ready())
		}
		if i >= 600 && (!l.Ready() || got <= 0 || got >= 1) {
			t.Fatalf("sample %d after the probation: %v (ready %v)", i, got, l.Ready())
		}
	}
	// A missing raw score changes nothing.
	before := *l
	if got := l.Observe(math.NaN()); got != 0.5 || l.n != before.n || l.rawSum != before.rawSum || l.sum != before.sum {
		t.Errorf("a missing raw score: %v, state moved", got)
	}
}

func TestLikelihoodRisesOnAStep(t *testing.T) {
	// Raw scores around 0.2, then from 3000 around 0.5: the likelihood of
	// the new level is near 1 within a short average, and rarely so
	// before.
	raw := rawScores(2, 4000, 0.2, 0.05)
	for i := 3000; i < len(raw); i++ {
		raw[i] = min(1, raw[i]+0.3)
	}
	l := NewLikelihood(LikelihoodOptions{Probation: 750})
	high := 0
	for i, r := range raw {
		got := l.Observe(r)
		if i >= 750 && i < 3000 && LogLikelihood(got) >= DefaultLikelihoodAlarm {
			high++
		}
		if i == 3000+DefaultLikelihoodWindow-1 && LogLikelihood(got) < 0.9 {
			t.Errorf("a full short average after the step: likelihood %v (log %.3f)", got, LogLikelihood(got))
		}
	}
	if high > 0 {
		t.Errorf("%d points before the step at the alarm score", high)
	}

	// ARTime's raw score is almost always 0: the floors of the Gaussian
	// still leave one rare score unusual, and a run of zeros not.
	l = NewLikelihood(LikelihoodOptions{Probation: 100})
	for range 2000 {
		if got := l.Observe(0); l.Ready() && got >= 0.5 {
			t.Fatalf("zeros: likelihood %v", got)
		}
	}
	if got := l.Observe(0.8); got < 0.99 {
		t.Errorf("one score of 0.8 among zeros: likelihood %v (log %.3f)", got, LogLikelihood(got))
	}
}

func TestLikelihoodMatchesDefinition(t *testing.T) {
	// The running sums give what the definition gives from scratch: the
	// short average of the last Window raw scores against the Gaussian of
	// the last Memory averages after the probation's first half.
	o := LikelihoodOptions{Window: 5, Memory: 300, Probation: 100}
	raw := rawScores(3, 2500, 0.3, 0.1)
	l := NewLikelihood(o)
	var avgs []float64
	for i, r := range raw {
		got := l.Observe(r)
		lo := max(0, i+1-o.Window)
		avg := sum(raw[lo:i+1]) / float64(i+1-lo)
		if i+1 > o.Probation/2 {
			avgs = append(avgs, avg)
		}
		if i < o.Probation {
			continue
		}
		mem := avgs[max(0, len(avgs)-o.Memory):]
		mean := sum(mem) / float64(len(mem))
		v := 0.0
		for _, a := range mem {
			v += (a - mean) * (a - mean)
		}
		v /= float64(len(mem))
		mean, v = max(mean, likelihoodMinMean), max(v, likelihoodMinVariance)
		want := 1 - 0.5*math.Erfc((avg-mean)/math.Sqrt(v)/math.Sqrt2)
		if math.Abs(got-want) > 1e-9 {
			t.Fatalf("sample %d: likelihood %v, want %v", i, got, want)
		}
	}
}

func TestLikelihoodBoundedMemory(t *testing.T) {
	o := LikelihoodOptions{Window: 10, Memory: 500, Probation: 100}
	l := NewLikelihood(o)
	for _, r := range rawScores(4, 20000, 0.3, 0.1) {
		l.Observe(r)
	}
	if got := l.Floats(); got != o.Window+o.Memory || len(l.raw) != o.Window || len(l.avgs) != o.Memory {
		t.Errorf("%d floats after 20,000 samples (raw %d, averages %d), want %d", got, len(l.raw), len(l.avgs), o.Window+o.Memory)
	}
	if d := NewLikelihood(LikelihoodOptions{}); d.Floats() != DefaultLikelihoodWindow+DefaultLikelihoodMemory {
		t.Errorf("defaults hold %d floats", d.Floats())
	}
}

func TestLogLikelihood(t *testing.T) {
	for _, c := range []struct{ l, want float64 }{{0.5, 0.030}, {0.99, 0.2}, {1 - 1e-5, 0.5}, {1, 1}, {0, 0}} {
		if got := LogLikelihood(c.l); math.Abs(got-c.want) > 0.001 {
			t.Errorf("LogLikelihood(%v) = %v, want %v", c.l, got, c.want)
		}
	}
}

func TestLikelihoodStreamVerdicts(t *testing.T) {
	t.Parallel()
	// Each wrapped detector: no onset within the probation; a burst of
	// noise raises the likelihood above anything before it (a single spike
	// moves a short average of 10 raw scores little), and with an alarm
	// score between the two it alarms there and nowhere before; the same
	// verdicts on a second run.
	y := dailyTwoWeeks()
	burst := noisy(5, 36, 0, 30)
	for i, b := range burst {
		y[3000+i] += b
	}
	const alarm = 0.4
	opts := Options{History: len(y), Likelihood: LikelihoodOptions{Alarm: alarm}, RCF: testForest}
	for _, name := range []string{DetectorARTimeLikelihood, DetectorResidualLikelihood, DetectorRCFLikelihood} {
		// Each detector alone, beside the others (rcf's takes most of
		// the time), its two runs side by side.
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			run := func() ([]Point, int, error) {
				d, err := NewOnline(name, opts)
				if err != nil {
					return nil, 0, err
				}
				out := make([]Point, len(y))
				for i, v := range y {
					out[i] = d.Observe(v)
				}
				return out, len(d.Events(true)), nil
			}
			var (
				again        []Point
				againEvents  int
				againErr     error
				secondRunEnd = make(chan struct{})
			)
			go func() {
				defer close(secondRunEnd)
				again, againEvents, againErr = run()
			}()
			pts, events, err := run()
			<-secondRunEnd
			for _, err := range []error{err, againErr} {
				if err != nil {
					t.Fatal(err)
				}
			}
			for _, n := range []int{events, againEvents} {
				if n == 0 {
					t.Errorf("%s: no events", name)
				}
			}
			probation := ARTimeOptions{}.StartingOn(len(y)).withDefaults().Probation
			inBurst := false
			for i, p := range pts {
				if p.Onset < 0 || p.Onset > 1 || i < probation && p.Onset != 0 {
					t.Fatalf("%s: point %d: %+v", name, i, p)
				}
				if p.Alarm != (p.Onset >= alarm) || p.Alarm && !p.Anomalous {
					t.Fatalf("%s: point %d: %+v", name, i, p)
				}
				if p.Alarm && i < 3000 {
					t.Errorf("%s: an alarm before the burst: point %d: %+v", name, i, p)
				}
				inBurst = inBurst || p.Alarm && i >= 3000 && i < 3000+len(burst)
			}
			if !inBurst {
				t.Errorf("%s: no alarm in the burst", name)
			}
			for i, p := range again {
				if p != pts[i] {
					t.Fatalf("%s: point %d differs on a second run: %+v and %+v", name, i, p, pts[i])
				}
			}
		})
	}
	if _, err := NewLikelihoodStream("shape", Options{}); err == nil {
		t.Error("the likelihood over shape: no error")
	}
}

func TestLikelihoodStreamEveryPoint(t *testing.T) {
	// With EveryPoint the onset is every point's score; with Stream's
	// onset rule it is a subset of those.
	y := dailyTwoWeeks()
	y[3000] = 200
	every, _ := NewOnline(DetectorARTimeLikelihood, Options{Likelihood: LikelihoodOptions{EveryPoint: true}})
	once, _ := NewOnline(DetectorARTimeLikelihood, Options{})
	nEvery, nOnce := 0, 0
	for i, v := range y {
		pe, po := every.Observe(v), once.Observe(v)
		if po.Onset != 0 && po.Onset != pe.Onset {
			t.Fatalf("point %d: onset %v, the point's score %v", i, po.Onset, pe.Onset)
		}
		if pe.Onset > 0.1 {
			nEvery++
		}
		if po.Onset > 0.1 {
			nOnce++
		}
	}
	if nOnce == 0 || nOnce >= nEvery {
		t.Errorf("onsets above 0.1: %d once, %d every point", nOnce, nEvery)
	}
}

// BenchmarkLikelihood runs the likelihood alone over 100,000 raw scores
// per iteration.
func BenchmarkLikelihood(b *testing.B) {
	raw := rawScores(6, 100000, 0.2, 0.1)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cputime.Process()
	for range b.N {
		l := NewLikelihood(LikelihoodOptions{})
		for _, r := range raw {
			l.Observe(r)
		}
	}
	b.ReportMetric(float64(b.N)*float64(len(raw))/(cputime.Process()-cpu).Seconds(), "points/cpu-s")
}

// BenchmarkARTimeLikelihoodAcrossSeries is BenchmarkARTimeAcrossSeries
// with the likelihood over ARTime's raw scores (window 3, the candidate
// chosen on the tuning part).
func BenchmarkARTimeLikelihoodAcrossSeries(b *testing.B) {
	benchmarkAcrossSeries(b, 200, func() Online {
		d, _ := NewLikelihoodStream(DetectorARTime, Options{History: 4032, Likelihood: LikelihoodOptions{Window: 3}})
		return d
	})
}

func TestLikelihoodStreamKeepsTheDetectorsVerdicts(t *testing.T) {
	t.Parallel()
	// Over each detector, P, Score, Z and the level shifts are the
	// detector's underneath (ARTime's with its own alarms off), and a
	// point is kept out of the models when the detector keeps it out or
	// the likelihood alarms.
	y := dailyTwoWeeks()
	y[2000] = 200
	for i := 3000; i < 3036; i++ {
		y[i] += 60 * math.Sin(float64(i))
	}
	opts := Options{History: len(y), Likelihood: LikelihoodOptions{Alarm: 0.4}, RCF: testForest}
	for _, base := range []string{DetectorARTime, DetectorResidual, DetectorRCF} {
		// Each detector alone, beside the others (rcf takes most of the
		// time); the detector and the likelihood over it run side by
		// side and their points are compared after.
		t.Run(base, func(t *testing.T) {
			t.Parallel()
			inOpts := opts
			if base == DetectorARTime {
				inOpts.ARTimeAlarm = math.Inf(1)
			}
			inner, err := NewOnline(base, inOpts)
			if err != nil {
				t.Fatal(err)
			}
			outer, err := NewOnline(base+"+likelihood", opts)
			if err != nil {
				t.Fatal(err)
			}
			ins := make([]Point, len(y))
			innerEnd := make(chan struct{})
			go func() {
				defer close(innerEnd)
				for i, v := range y {
					ins[i] = inner.Observe(v)
				}
			}()
			outs := make([]Point, len(y))
			for i, v := range y {
				outs[i] = outer.Observe(v)
			}
			<-innerEnd
			alarms, kept := 0, 0
			for i := range y {
				pi, po := ins[i], outs[i]
				if po.P != pi.P || po.Score != pi.Score || po.Z != pi.Z || po.LevelShift != pi.LevelShift {
					t.Fatalf("%s: point %d: %+v over %+v", base, i, po, pi)
				}
				if po.Anomalous != (pi.Anomalous || po.Alarm) {
					t.Fatalf("%s: point %d: anomalous %v, the detector's %v, alarm %v", base, i, po.Anomalous, pi.Anomalous, po.Alarm)
				}
				if po.Alarm {
					alarms++
				}
				if pi.Anomalous {
					kept++
				}
			}
			if alarms == 0 || kept == 0 {
				t.Errorf("%s: %d alarms, %d points kept out by the detector: the check saw neither", base, alarms, kept)
			}
		})
	}
}
