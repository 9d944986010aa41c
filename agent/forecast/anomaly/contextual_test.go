package anomaly

import (
	"math"
	"testing"

	"github.com/foreshape/foreshape/internal/cputime"
)

// cycle is a series that repeats a pattern of levels exactly.
func cycle(n int, pattern ...float64) []float64 {
	y := make([]float64, n)
	for i := range y {
		y[i] = pattern[i%len(pattern)]
	}
	return y
}

func TestContextualLearnsAndFlags(t *testing.T) {
	// A repeating pattern over the whole range: once learnt, nearly all
	// that predicts a step comes true (a few contexts learnt on the way
	// keep failing, so the raw score stays low but not 0); a value at a
	// level the pattern never takes there is not predicted, and is
	// reported.
	y := cycle(2000, 0, 2, 5, 7, 5, 2)
	y[1500] = 7 // where a 0 was due
	c := NewContextual(ContextOptions{Rest: 10})
	var raw, rep []float64
	for _, v := range y {
		r, p := c.Score(v)
		if r < 0 || r > 1 || p != 0 && p != r {
			t.Fatalf("raw %v reported %v", r, p)
		}
		raw, rep = append(raw, r), append(rep, p)
	}
	for i := 1000; i < 1500; i++ {
		if raw[i] > 0.2 {
			t.Fatalf("step %d of a learnt pattern scores %v", i, raw[i])
		}
	}
	if raw[1500] < DefaultContextBase || rep[1500] != raw[1500] {
		t.Errorf("the break of the pattern scores %v (reported %v), want at least %v", raw[1500], rep[1500], DefaultContextBase)
	}
	// The steps right after the break score high too, but within the rest
	// period they are not reported.
	for i := 1501; i <= 1510; i++ {
		if rep[i] != 0 {
			t.Errorf("step %d, %d after a reported score, reported %v within the rest period", i, i-1500, rep[i])
		}
	}
	if held, resets := c.Contexts(); held == 0 || resets != 0 {
		t.Errorf("%d contexts, %d resets", held, resets)
	}
}

func TestContextualRestPeriodFromStart(t *testing.T) {
	// Nothing is reported in the first Rest steps: everything is new then.
	c := NewContextual(ContextOptions{Rest: 50})
	for i, v := range cycle(200, 1, 9, 4) {
		if _, rep := c.Score(v); i < 50 && rep != 0 {
			t.Fatalf("step %d reported %v within the first rest period", i, rep)
		}
	}
}

func TestContextualMissingTeachesNothing(t *testing.T) {
	// Missing values score 0 and leave the detector as it was: the
	// verdicts on the rest are those without them.
	y := cycle(600, 3, 1, 4, 1, 5)
	a, b := NewContextual(ContextOptions{}), NewContextual(ContextOptions{})
	for i, v := range y {
		ra, pa := a.Score(v)
		if i%7 == 0 {
			if r, p := b.Score(math.NaN()); r != 0 || p != 0 {
				t.Fatalf("NaN scores %v %v", r, p)
			}
			b.Score(math.Inf(1))
		}
		rb, pb := b.Score(v)
		if ra != rb || pa != pb {
			t.Fatalf("step %d: %v %v with missing values around, %v %v without", i, rb, pb, ra, pa)
		}
	}
}

func TestContextualMemoryBounded(t *testing.T) {
	t.Parallel()
	// Noise makes new contexts at nearly every step; the memory stays
	// under MaxContexts, forgetting and starting afresh when it is full.
	// It fills every 60 or so points here: 2,000 fill it some 30 times.
	y := noisy(31, 2000, 50, 10)
	c := NewContextual(ContextOptions{MaxContexts: 500})
	for _, v := range y {
		c.Score(v)
		if held, _ := c.Contexts(); held > 500 {
			t.Fatalf("%d contexts held, bound 500", held)
		}
	}
	if _, resets := c.Contexts(); resets < 2 {
		t.Errorf("the memory filled %d times on 2,000 points of noise; want it to fill again after starting afresh", resets)
	}
}

func TestContextStreamVerdicts(t *testing.T) {
	t.Parallel()
	// The detector as the agent runs it: Onset is the reported score, P
	// the raw score's rarity on this series, and a big spike in a learnt
	// pattern is an alarm and kept out of fitting.
	y := cycle(4000, 10, 12, 15, 12)
	for i := range y {
		y[i] += float64(i%5) * 0.01
	}
	y[3000] = 40
	d := NewContextStream(Options{})
	both := newShapeContext(Options{})
	for i, v := range y {
		p := d.Observe(v)
		if p.Onset != 0 && p.Onset != p.Score || p.P <= 0 || p.P > 1 {
			t.Fatalf("point %d: %+v", i, p)
		}
		if i == 3000 && (!p.Alarm || !p.Anomalous || p.P > 0.01) {
			t.Errorf("the spike: %+v", p)
		}
		// With the shape statistic: the geometric mean of their p-values.
		if p := both.Observe(v); i == 3000 && (p.P > 0.001 || p.Onset == 0) {
			t.Errorf("shape+context at the spike: %+v", p)
		}
	}
}

// BenchmarkContextAcrossSeries is BenchmarkStreamAcrossSeries for the
// ensemble of the shape statistic and the contextual detector (20 series:
// it is some 30 times slower than Stream).
func BenchmarkContextAcrossSeries(b *testing.B) {
	benchmarkAcrossSeries(b, 20, func() Online {
		o, err := NewOnline(DetectorShapeContext, Options{})
		if err != nil {
			b.Fatal(err)
		}
		return o
	})
}

// BenchmarkContextual runs the contextual detector over two weeks of
// 5-minute data (4,032 points) per iteration.
func BenchmarkContextual(b *testing.B) {
	y := dailyTwoWeeks()
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cputime.Process()
	var held int
	for range b.N {
		c := NewContextual(ContextOptions{})
		for _, v := range y {
			c.Score(v)
		}
		held, _ = c.Contexts()
	}
	b.ReportMetric(float64(b.N)*4032/(cputime.Process()-cpu).Seconds(), "points/cpu-s")
	b.ReportMetric(float64(held), "contexts")
}
