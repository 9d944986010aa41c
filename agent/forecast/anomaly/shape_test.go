package anomaly

import (
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"

	"github.com/foreshape/foreshape/internal/cputime"
)

// bruteShapeDistance is the shape distance at the last point of y, by
// definition: the mean of the Neighbours smallest Euclidean distances from
// the last Window points to the shapes that end Window+j points earlier,
// j in [0, Reference), j ≡ (t−Window) mod Stride.
func bruteShapeDistance(y []float64, o ShapeOptions) float64 {
	o = o.withDefaults()
	t := len(y) - 1
	w := o.Window
	var ds []float64
	for j := 0; j < o.Reference; j++ {
		end := t - w - j
		if end-w+1 < 0 {
			break
		}
		if ((t-w-j)%o.Stride+o.Stride)%o.Stride != 0 {
			continue
		}
		var s float64
		for i := 0; i < w; i++ {
			u := y[t-i] - y[end-i]
			s += u * u
		}
		ds = append(ds, math.Sqrt(s))
	}
	if len(ds) < o.Neighbours {
		return math.NaN()
	}
	sort.Float64s(ds)
	var sum float64
	for _, d := range ds[:o.Neighbours] {
		sum += d
	}
	return sum / float64(o.Neighbours)
}

func TestShapeDistanceMatchesDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, o := range []ShapeOptions{
		{Window: 4, Reference: 30, Stride: 1, Neighbours: 1},
		{Window: 5, Reference: 37, Stride: 2, Neighbours: 3},
		{Window: 16, Reference: 200, Stride: 3, Neighbours: 2},
		{},
	} {
		s := NewShape(o)
		var seen []float64
		n := 3000
		for i := 0; i < n; i++ {
			// A level that jumps by orders of magnitude, so rounding in
			// the running sums would show.
			v := 10*math.Sin(float64(i)/7) + rng.NormFloat64()
			if i%500 > 400 {
				v += 1e8
			}
			if i%97 == 13 {
				v = math.NaN()
			}
			got := s.Observe(v)
			if math.IsNaN(v) {
				if got.P != 1 || !math.IsNaN(got.Distance) {
					t.Fatalf("%+v: missing point %d got %+v", o, i, got)
				}
				continue
			}
			seen = append(seen, v)
			want := bruteShapeDistance(seen, o)
			if math.IsNaN(want) != math.IsNaN(got.Distance) || math.Abs(got.Distance-want) > 1e-6*math.Max(1, want) {
				t.Fatalf("%+v: point %d: distance %v, want %v", o, i, got.Distance, want)
			}
		}
	}
}

// BenchmarkShape runs the shape statistic over two weeks of 5-minute data
// per iteration.
func BenchmarkShape(b *testing.B) {
	y := dailyTwoWeeks()
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cputime.Process()
	for range b.N {
		s := NewShape(ShapeOptions{})
		for _, v := range y {
			s.Observe(v)
		}
	}
	b.ReportMetric(float64(b.N)*4032/b.Elapsed().Seconds(), "points/s")
	b.ReportMetric(float64(b.N)*4032/(cputime.Process()-cpu).Seconds(), "points/cpu-s")
}

func TestTailRank(t *testing.T) {
	r := newTailRank(100, 10)
	if p := r.P(5); p != 1 {
		t.Errorf("empty: p %v, want 1", p)
	}
	for i := 1; i <= 100; i++ {
		r.Add(float64(i))
	}
	// Inside the range: the conformal rank (#past ≥ x + 1)/(n + 1).
	for _, tc := range []struct{ x, want float64 }{{0, 1}, {1, 1}, {50, 52.0 / 101}, {90.5, 11.0 / 101}, {91, 11.0 / 101}} {
		if p := r.P(tc.x); math.Abs(p-tc.want) > 1e-12 {
			t.Errorf("P(%v) = %v, want %v", tc.x, p, tc.want)
		}
	}
	// Beyond the 10th largest (91), an exponential tail whose scale is the
	// mean excess of the largest over it: (1+…+9)/9 = 5.
	for _, x := range []float64{95, 100, 120, 1000} {
		want := 10.0 / 101 * math.Exp(-(x-91)/5)
		if p := r.P(x); math.Abs(p-math.Max(want, minP))/math.Max(want, minP) > 1e-9 {
			t.Errorf("P(%v) = %v, want %v", x, p, want)
		}
	}
	if p := r.P(1e9); p != minP {
		t.Errorf("far beyond: p %v, want the floor %v", p, minP)
	}
	// The window slides: the oldest values leave.
	for i := 0; i < 100; i++ {
		r.Add(0)
	}
	if p := r.P(1); p != 1.0/101 {
		t.Errorf("after the window slid: P(1) = %v, want 1/101", p)
	}
}

func TestRCF(t *testing.T) {
	y := noisy(23, 1500, 10, 1)
	y[1200] = 40
	run := func(seed uint64) []float64 {
		f := NewRCF(RCFOptions{Trees: 20, Samples: 64, Shingle: 4, Seed: seed})
		out := make([]float64, len(y))
		for i, v := range y {
			out[i] = f.Displacement(v)
		}
		return out
	}
	a, b := run(1), run(1)
	for i := range a {
		if a[i] != b[i] && !(math.IsNaN(a[i]) && math.IsNaN(b[i])) {
			t.Fatalf("point %d: %v and %v with the same seed", i, a[i], b[i])
		}
	}
	if !math.IsNaN(a[0]) || !math.IsNaN(a[2]) || math.IsNaN(a[10]) {
		t.Errorf("first shingle at point 3: %v", a[:11])
	}
	// The outlier's shingles displace far more than a typical point's.
	var typical []float64
	for i := 1000; i < 1200; i++ {
		typical = append(typical, a[i])
	}
	sort.Float64s(typical)
	if med := typical[len(typical)/2]; !(a[1200] > 5*med) {
		t.Errorf("outlier displacement %v, median before it %v", a[1200], med)
	}
	if d := NewRCF(RCFOptions{}).Displacement(math.Inf(1)); !math.IsNaN(d) {
		t.Errorf("an infinite point scored %v", d)
	}
}

// testForest is the forest the tests of the rcf detectors' online and
// verdict behaviour run: those hold for any forest, and 10 trees in place
// of 50 take a fifth of the time under -race. TestRCF checks the forest.
var testForest = RCFOptions{Trees: 10}

// TestOptionsRCFReachTheForest: Options.RCF is the forest the rcf
// detectors and their likelihood build (a seed changes their scores; the
// same seed gives the same ones).
func TestOptionsRCFReachTheForest(t *testing.T) {
	t.Parallel()
	y := noisy(24, 400, 10, 1)
	scores := func(name string, seed uint64) []float64 {
		d, err := NewOnline(name, Options{RCF: RCFOptions{Trees: 5, Seed: seed}})
		if err != nil {
			t.Fatal(err)
		}
		out := make([]float64, len(y))
		for i, v := range y {
			out[i] = d.Observe(v).Score
		}
		return out
	}
	for _, name := range []string{DetectorRCF, DetectorRCFLikelihood} {
		if a, b := scores(name, 1), scores(name, 1); !slices.Equal(a, b) {
			t.Errorf("%s: two runs with seed 1 score differently", name)
		}
		if a, b := scores(name, 1), scores(name, 2); slices.Equal(a, b) {
			t.Errorf("%s: seeds 1 and 2 score the same: Options.RCF does not reach the forest", name)
		}
	}
}

// TestSortedWindow checks the window against a sorted copy of the last n
// values, with duplicates and NaN.
func TestSortedWindow(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{1, 7, 63, 64, 65, 130, 1000} {
		w := newSortedWindow(n)
		var last []float64
		for i := 0; i < 5000; i++ {
			v := math.Round(rng.NormFloat64()*20) / 4 // many ties
			if i%211 == 0 {
				v = math.NaN()
			}
			w.Add(v)
			if !math.IsNaN(v) {
				last = append(last, v)
				if len(last) > n {
					last = last[1:]
				}
			}
			if i%37 != 0 {
				continue
			}
			want := append([]float64(nil), last...)
			sort.Float64s(want)
			if w.Len() != len(want) {
				t.Fatalf("n %d step %d: len %d, want %d", n, i, w.Len(), len(want))
			}
			// Ranks first, while values added and dropped since the
			// last merge are held aside.
			for _, x := range []float64{math.Round(rng.NormFloat64()*20) / 4, v, math.Inf(1), math.Inf(-1)} {
				if got, exp := w.Less(x), sort.SearchFloat64s(want, x); got != exp {
					t.Fatalf("n %d step %d: Less(%v) = %d, want %d", n, i, x, got, exp)
				}
			}
			for j := range want {
				if w.At(j) != want[j] {
					t.Fatalf("n %d step %d: At(%d) = %v, want %v", n, i, j, w.At(j), want[j])
				}
			}
			same := func(a, b float64) bool { return a == b || math.IsNaN(a) && math.IsNaN(b) }
			if got, exp := w.Median(), sortedMedian(want); !same(got, exp) {
				t.Fatalf("n %d step %d: median %v, want %v", n, i, got, exp)
			}
			if got, exp := w.MAD(), sortedMAD(want); !same(got, exp) {
				t.Fatalf("n %d step %d: MAD %v, want %v", n, i, got, exp)
			}
		}
	}
}
