package season

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// seasonal is a noiseless daily-shaped pattern of period m.
func seasonal(n, m int, amp, level float64) []float64 {
	y := make([]float64, n)
	for i := range y {
		ph := 2 * math.Pi * float64(i%m) / float64(m)
		y[i] = level + amp*math.Sin(ph) + 0.3*amp*math.Cos(2*ph)
	}
	return y
}

func constant(n int, v float64) []float64 {
	y := make([]float64, n)
	for i := range y {
		y[i] = v
	}
	return y
}

func TestDetect(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	noisy := func(y []float64, s float64) []float64 {
		for i := range y {
			y[i] += s * r.NormFloat64()
		}
		return y
	}
	tests := []struct {
		name string
		y    []float64
		want []int
	}{
		{"daily", noisy(seasonal(288*5, 288, 10, 50), 2), []int{288}},
		{"twelve hours", noisy(seasonal(288*5, 144, 10, 50), 2), []int{144}},
		{"hourly", noisy(seasonal(288*2, 12, 10, 50), 2), []int{12}},
		{"white noise", noisy(constant(288*5, 50), 2), nil},
		{"one day only", noisy(seasonal(288, 288, 10, 50), 2), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Detect(tc.y, 5*time.Minute)
			if len(got) != len(tc.want) {
				t.Fatalf("got %+v, want periods %v", got, tc.want)
			}
			for i := range got {
				if got[i].Steps != tc.want[i] {
					t.Fatalf("got %+v, want periods %v", got, tc.want)
				}
				if got[i].Period != time.Duration(tc.want[i])*5*time.Minute {
					t.Fatalf("period %v for %d steps", got[i].Period, got[i].Steps)
				}
			}
		})
	}
}

// TestDecomposeTwoSeasons: hourly data with a daily (24) and a weekly (168)
// component decomposes into both profiles.
func TestDecomposeTwoSeasons(t *testing.T) {
	n := 168 * 4
	day := func(i int) float64 { return 5 * math.Sin(2*math.Pi*float64(i%24)/24) }
	week := func(i int) float64 {
		if (i%168)/24 >= 5 {
			return -8 // weekend
		}
		return 3.2
	}
	y := make([]float64, n)
	for i := range y {
		y[i] = 100 + day(i) + week(i)
	}
	prof := Decompose(y, []int{24, 168})
	if len(prof) != 2 || len(prof[0]) != 24 || len(prof[1]) != 168 {
		t.Fatalf("profiles of lengths %d", len(prof))
	}
	for i := 0; i < 168; i++ {
		got := prof[0][i%24] + prof[1][i]
		want := day(i) + week(i) // both have zero mean
		if math.Abs(got-want) > 1.5 {
			t.Fatalf("phase %d: seasonal %.2f, want %.2f", i, got, want)
		}
	}
}
