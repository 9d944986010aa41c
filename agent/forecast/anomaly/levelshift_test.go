package anomaly

import (
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
)

// noisy returns n points of Gaussian noise with standard deviation sd
// around level, from a fixed seed.
// dailyTwoWeeks is the benchmarks' series: two weeks of 5-minute noise
// (level 50, sd 5) on a daily cycle of amplitude 20.
func dailyTwoWeeks() []float64 {
	y := noisy(19, 4032, 50, 5)
	for i := range y {
		y[i] += 20 * math.Sin(2*math.Pi*float64(i)/288)
	}
	return y
}

func noisy(seed uint64, n int, level, sd float64) []float64 {
	r := rand.New(rand.NewPCG(seed, 7))
	y := make([]float64, n)
	for i := range y {
		y[i] = level + sd*r.NormFloat64()
	}
	return y
}

func TestLevelShifts(t *testing.T) {
	step := func(n, at int, delta float64) []float64 {
		y := noisy(1, n, 10, 1)
		for i := at; i < n; i++ {
			y[i] += delta
		}
		return y
	}
	daily := func(n int) []float64 {
		y := noisy(2, n, 50, 1)
		for i := range y {
			y[i] += 20 * math.Sin(2*math.Pi*float64(i)/288)
		}
		return y
	}
	cases := []struct {
		name string
		y    []float64
		want []int // expected shift starts, each matched within ±2 points
	}{
		{"white noise", noisy(3, 4032, 10, 1), nil},
		{"step up", step(2000, 1200, 8), []int{1200}},
		{"step down", step(2000, 700, -8), []int{700}},
		{"two steps", func() []float64 {
			y := step(3000, 1000, 8)
			for i := 2000; i < 3000; i++ {
				y[i] -= 16
			}
			return y
		}(), []int{1000, 2000}},
		{"single spike is not a shift", func() []float64 {
			y := noisy(4, 2000, 10, 1)
			y[1000] = 200
			y[1001] = 150
			return y
		}(), nil},
		{"daily cycle is not a shift", daily(4032), nil},
		{"daily cycle with a shift", func() []float64 {
			y := daily(4032)
			for i := 3000; i < len(y); i++ {
				y[i] += 40
			}
			return y
		}(), []int{3000}},
		{"piecewise constant", func() []float64 {
			y := make([]float64, 200)
			for i := 120; i < 200; i++ {
				y[i] = 3
			}
			return y
		}(), []int{120}},
		{"too short", []float64{1, 2, 3}, nil},
		{"NaN gaps tolerated", func() []float64 {
			y := step(2000, 1200, 8)
			for i := 500; i < 520; i++ {
				y[i] = math.NaN()
			}
			return y
		}(), []int{1200}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := LevelShifts(tc.y)
			if len(got) != len(tc.want) {
				t.Fatalf("LevelShifts = %v, want %v (±2)", got, tc.want)
			}
			for i := range got {
				if d := got[i] - tc.want[i]; d < -2 || d > 2 {
					t.Fatalf("LevelShifts = %v, want %v (±2)", got, tc.want)
				}
			}
		})
	}
}

func TestLevelShiftDetectorOnline(t *testing.T) {
	y := noisy(5, 3000, 10, 1)
	for i := 2000; i < len(y); i++ {
		y[i] += 10
	}
	d := NewLevelShiftDetector(LevelShiftOptions{})
	var events []LevelShiftEvent
	var at []int
	for i, v := range y {
		if _, ev := d.Push(v); ev != nil {
			events = append(events, *ev)
			at = append(at, i)
		}
	}
	if len(events) != 1 {
		t.Fatalf("events = %+v, want exactly one", events)
	}
	ev := events[0]
	if ev.Start < 1995 || ev.Start > 2005 {
		t.Errorf("Start = %d, want about 2000", ev.Start)
	}
	// Online: reported only after the new level has been seen, never before
	// the shift happened.
	if at[0] < 2000 || at[0] > 2000+DefaultLevelShiftWindow+2 {
		t.Errorf("reported at %d, want within one window after 2000", at[0])
	}
	if ev.Delta < 8 || ev.Delta > 12 {
		t.Errorf("Delta = %v, want about 10", ev.Delta)
	}
}

func TestLevelShiftDetectorQuietOnNoise(t *testing.T) {
	d := NewLevelShiftDetector(LevelShiftOptions{})
	for i, v := range noisy(6, 5000, 5, 2) {
		if _, ev := d.Push(v); ev != nil {
			t.Fatalf("unexpected shift at %d: %+v", i, *ev)
		}
	}
}

func TestSortedWindowMatchesBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	for _, size := range []int{1, 2, 3, 4, 10, 33, 100} {
		w := newSortedWindow(size)
		var all []float64
		for i := 0; i < 400; i++ {
			v := math.Round(r.NormFloat64()*10) / 2 // ties on purpose
			w.Add(v)
			all = append(all, v)
			last := all[max(0, len(all)-size):]
			if got, want := w.Median(), bruteMedian(last); got != want {
				t.Fatalf("size %d step %d: median %v, want %v", size, i, got, want)
			}
			dev := make([]float64, len(last))
			m := bruteMedian(last)
			for j, x := range last {
				dev[j] = math.Abs(x - m)
			}
			if got, want := w.MAD(), bruteMedian(dev); math.Abs(got-want) > 1e-12 {
				t.Fatalf("size %d step %d: MAD %v, want %v", size, i, got, want)
			}
		}
	}
}

func bruteMedian(x []float64) float64 {
	a := slices.Clone(x)
	sort.Float64s(a)
	n := len(a)
	if n%2 == 1 {
		return a[n/2]
	}
	return (a[n/2-1] + a[n/2]) / 2
}

func TestRollingMedians(t *testing.T) {
	y := noisy(23, 300, 0, 1)
	for i := 40; i < 300; i += 7 {
		y[i] = math.NaN()
	}
	for i := 100; i < 110; i++ {
		y[i] = math.NaN() // a gap longer than half a window
	}
	buf := make([]float64, 0, 12)
	for _, w := range []int{1, 2, 5, 12} {
		m := rollingMedians(y, w)
		if len(m) != len(y)-w+1 {
			t.Fatalf("w %d: %d medians", w, len(m))
		}
		for i := range m {
			want := windowMedian(y[i:i+w], buf)
			if math.IsNaN(want) != math.IsNaN(m[i]) || (!math.IsNaN(want) && want != m[i]) {
				t.Fatalf("w %d: median at %d = %v, want %v", w, i, m[i], want)
			}
		}
	}
}
