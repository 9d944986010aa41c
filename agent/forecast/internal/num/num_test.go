package num

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"
)

func TestMedianSelect(t *testing.T) {
	r := rand.New(rand.NewPCG(60, 61))
	for n := 1; n < 60; n++ {
		x := make([]float64, n)
		for i := range x {
			x[i] = math.Round(r.NormFloat64() * 3) // many ties
		}
		s := append([]float64(nil), x...)
		sort.Float64s(s)
		want := QuantileSorted(s, 0.5)
		if got := Median(append([]float64(nil), x...)); got != want {
			t.Fatalf("n=%d: median %v, want %v (%v)", n, got, want, x)
		}
		for k := 0; k < n; k++ {
			if got := SelectK(append([]float64(nil), x...), k); got != s[k] {
				t.Fatalf("n=%d: select(%d) = %v, want %v", n, k, got, s[k])
			}
		}
	}
}

func TestFillGaps(t *testing.T) {
	nan := math.NaN()
	for _, tc := range []struct {
		in, want []float64
	}{
		{[]float64{nan, 2, nan, 4, nan}, []float64{2, 2, 3, 4, 4}},
		{[]float64{nan, nan}, []float64{0, 0}},
		{[]float64{1, math.Inf(1), 3}, []float64{1, 2, 3}},
	} {
		got := FillGaps(tc.in)
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("FillGaps(%v) = %v, want %v", tc.in, got, tc.want)
				break
			}
		}
	}
}

func TestMedianMADIgnoresMissing(t *testing.T) {
	med, mad := MedianMAD([]float64{1, math.NaN(), 2, 3, math.Inf(-1), 100})
	if med != 2.5 || math.Abs(mad-1.4826) > 1e-12 {
		t.Errorf("MedianMAD = %v, %v; want 2.5, 1.4826", med, mad)
	}
	if med, _ := MedianMAD([]float64{math.NaN()}); !math.IsNaN(med) {
		t.Errorf("median of nothing = %v", med)
	}
}

func TestLinearFit(t *testing.T) {
	a, b := LinearFit([]float64{1, 3, math.NaN(), 7})
	if math.Abs(a-1) > 1e-12 || math.Abs(b-2) > 1e-12 {
		t.Errorf("LinearFit = %v, %v; want 1, 2", a, b)
	}
}

// TestSelectionMatchesSorting holds QuantileSelect and Median to the sorted
// figures bit for bit, ties, zeros of both signs and tiny slices included.
func TestSelectionMatchesSorting(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 4))
	for n := 1; n <= 40; n++ {
		for trial := 0; trial < 50; trial++ {
			x := make([]float64, n)
			for i := range x {
				switch rng.IntN(6) {
				case 0:
					x[i] = 0
				case 1:
					x[i] = float64(rng.IntN(3))
				case 2:
					if trial%5 == 0 {
						x[i] = math.Copysign(0, -1)
					}
				default:
					x[i] = rng.NormFloat64()
				}
			}
			sorted := append([]float64(nil), x...)
			sort.Float64s(sorted)
			for _, q := range []float64{0, 0.1, 0.25, 0.5, 0.9, 1} {
				want := QuantileSorted(sorted, q)
				got := QuantileSelect(append([]float64(nil), x...), q)
				if math.Float64bits(got) != math.Float64bits(want) {
					t.Fatalf("n=%d q=%v: %v, sorted %v (%v)", n, q, got, want, x)
				}
			}
			if HasNegativeZero(x) {
				continue // Median promises the sorted value up to the sign of a zero
			}
			want := sorted[n/2]
			if n%2 == 0 {
				want = (sorted[n/2-1] + sorted[n/2]) / 2
			}
			if got := Median(append([]float64(nil), x...)); math.Float64bits(got) != math.Float64bits(want) {
				t.Fatalf("n=%d: median %v, sorted %v", n, got, want)
			}
		}
	}
}

// TestSelectKLong: on long inputs of every shape (unordered, many ties,
// all equal, sorted either way) SelectK returns the sorted order's k-th
// value and leaves x partitioned around it; with a -0 it is Hoare's
// quickselect to the bit (the sign of a zero result unchanged).
func TestSelectKLong(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 17))
	shapes := map[string]func(i, n int) float64{
		"normal":  func(int, int) float64 { return rng.NormFloat64() },
		"ties":    func(int, int) float64 { return math.Round(rng.NormFloat64() * 2) },
		"equal":   func(int, int) float64 { return 3 },
		"sorted":  func(i, n int) float64 { return float64(i) },
		"reverse": func(i, n int) float64 { return float64(n - i) },
		"zeros":   func(int, int) float64 { return float64(rng.IntN(2)) * math.Copysign(0, float64(rng.IntN(2))-0.5) },
	}
	for name, f := range shapes {
		for _, n := range []int{25, 26, 100, 401, 1000, 4032} {
			x := make([]float64, n)
			for i := range x {
				x[i] = f(i, n)
			}
			sorted := append([]float64(nil), x...)
			sort.Float64s(sorted)
			for _, k := range []int{0, 1, n / 3, n / 2, n - 2, n - 1} {
				a := append([]float64(nil), x...)
				got := SelectK(a, k)
				if got != sorted[k] || math.Float64bits(a[k]) != math.Float64bits(got) {
					t.Fatalf("%s n=%d k=%d: %v (x[k] %v), sorted %v", name, n, k, got, a[k], sorted[k])
				}
				for i, v := range a {
					if (i < k && v > got) || (i > k && v < got) {
						t.Fatalf("%s n=%d k=%d: x[%d]=%v on the wrong side of %v", name, n, k, i, v, got)
					}
				}
				if HasNegativeZero(x) {
					h := append([]float64(nil), x...)
					if want := selectHoare(h, k); math.Float64bits(got) != math.Float64bits(want) {
						t.Fatalf("%s n=%d k=%d: %v, Hoare's %v", name, n, k, got, want)
					}
				}
			}
		}
	}
}

func BenchmarkMedian4032(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	xs := make([][]float64, 64)
	for i := range xs {
		xs[i] = make([]float64, 4032)
		for j := range xs[i] {
			xs[i][j] = rng.NormFloat64()
		}
	}
	a := make([]float64, 4032)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		copy(a, xs[i%len(xs)])
		Median(a)
	}
}

// TestSortFloatsMatchesSort: SortFloats gives sort.Float64s's order to the
// bit on values of every sign and scale, with repeats, infinities,
// subnormals and +0, and with NaN or -0 (where it is sort.Float64s).
func TestSortFloatsMatchesSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(71, 72))
	for _, n := range []int{0, 1, 255, 256, 257, 1000, 2400} {
		for trial := 0; trial < 8; trial++ {
			x := make([]float64, n)
			for i := range x {
				switch rng.IntN(10) {
				case 0:
					x[i] = math.Round(rng.NormFloat64() * 3)
				case 1:
					x[i] = math.Inf(2*rng.IntN(2) - 1)
				case 2:
					x[i] = float64(rng.IntN(5)-2) * math.SmallestNonzeroFloat64
				case 3:
					x[i] = math.Float64frombits(rng.Uint64() &^ (0x7ff << 52)) // subnormal, either sign
				case 4:
					// Values a few ulps apart: keys that differ in their low bytes only.
					x[i] = math.Float64frombits(math.Float64bits(-1.5+3*float64(rng.IntN(2))) + uint64(rng.IntN(1<<20)))
				default:
					x[i] = rng.NormFloat64() * math.Pow(10, float64(rng.IntN(40)-20))
				}
				if x[i] == 0 {
					x[i] = 0 // +0 (a -0 would make it sort.Float64s)
				}
			}
			if trial == 6 && n > 0 {
				x[rng.IntN(n)] = math.Copysign(0, -1)
			}
			if trial == 7 && n > 0 {
				x[rng.IntN(n)] = math.NaN()
			}
			want := append([]float64(nil), x...)
			sort.Float64s(want)
			got := append([]float64(nil), x...)
			SortFloats(got)
			for i := range want {
				if math.Float64bits(got[i]) != math.Float64bits(want[i]) && !(math.IsNaN(got[i]) && math.IsNaN(want[i])) {
					t.Fatalf("n=%d trial %d: [%d] = %v, sort.Float64s %v", n, trial, i, got[i], want[i])
				}
			}
		}
	}
}

// TestFiniteAsIsNaNIsInf: Finite is !IsNaN && !IsInf on every kind of
// value.
func TestFiniteAsIsNaNIsInf(t *testing.T) {
	rng := rand.New(rand.NewPCG(81, 82))
	vals := []float64{0, math.Copysign(0, -1), 1, -1, math.MaxFloat64, -math.MaxFloat64, math.SmallestNonzeroFloat64,
		math.Inf(1), math.Inf(-1), math.NaN(), math.Float64frombits(0x7ff0000000000001), math.Float64frombits(0xfff8000000000000)}
	for range 100000 {
		vals = append(vals, math.Float64frombits(rng.Uint64()))
	}
	for _, v := range vals {
		if got, want := Finite(v), !math.IsNaN(v) && !math.IsInf(v, 0); got != want {
			t.Fatalf("Finite(%v [%#x]) = %v, want %v", v, math.Float64bits(v), got, want)
		}
	}
}
