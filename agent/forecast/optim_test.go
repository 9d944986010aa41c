package forecast

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/optimize"
)

// gonumMinimize is how foreshape minimised before minimize ran in the
// caller's goroutine: gonum's Nelder-Mead with the same settings.
func gonumMinimize(f func(x []float64) float64, x0 []float64, maxEvals, stall int) ([]float64, float64) {
	p := optimize.Problem{Func: func(x []float64) float64 {
		v := f(x)
		if math.IsNaN(v) {
			return math.Inf(1)
		}
		return v
	}}
	s := &optimize.Settings{
		FuncEvaluations: maxEvals,
		Converger:       &optimize.FunctionConverge{Absolute: nmConvAbs, Relative: nmConvRel, Iterations: stall},
	}
	res, _ := optimize.Minimize(p, x0, s, &optimize.NelderMead{SimplexSize: 0.5})
	if res == nil || res.X == nil {
		return x0, f(x0)
	}
	return res.X, res.F
}

// TestMinimizeMatchesGonum holds minimize to gonum's Nelder-Mead bit for
// bit: the same points evaluated in the same order and the same result,
// on smooth, flat, rugged and partly undefined objectives, with budgets
// that stop it at every stage.
func TestMinimizeMatchesGonum(t *testing.T) {
	objectives := map[string]func(x []float64) float64{
		"quadratic": func(x []float64) float64 {
			s := 0.0
			for i, v := range x {
				d := v - float64(i) - 0.3
				s += float64(i+1) * d * d
			}
			return s
		},
		"rosenbrock": func(x []float64) float64 {
			s := (1 - x[0]) * (1 - x[0])
			for i := 1; i < len(x); i++ {
				d := x[i] - x[i-1]*x[i-1]
				s += 100 * d * d
			}
			return s
		},
		"abs and ties": func(x []float64) float64 {
			s := 0.0
			for _, v := range x {
				s += math.Round(4*math.Abs(v-0.7)) / 4
			}
			return s
		},
		"undefined left": func(x []float64) float64 {
			if x[0] < -0.2 {
				return math.NaN()
			}
			s := 0.0
			for _, v := range x {
				s += math.Cos(3*v) + v*v
			}
			return s
		},
		"flat": func(x []float64) float64 { return 2 },
	}
	rng := rand.New(rand.NewPCG(7, 11))
	for name, f := range objectives {
		for dim := 1; dim <= 5; dim++ {
			for trial := 0; trial < 6; trial++ {
				x0 := make([]float64, dim)
				for i := range x0 {
					x0[i] = rng.NormFloat64()
				}
				if name == "undefined left" && trial == 0 {
					x0[0] = -1 // starts where f is undefined
				}
				for _, c := range []struct{ budget, stall int }{
					{1, nmConvIters}, {2, nmConvIters}, {dim + 1, nmConvIters}, {dim + 3, nmConvIters},
					{dim + 4, nmConvIters}, {dim + 5, nmConvIters}, {dim + 6, nmConvIters}, {dim + 8, nmConvIters},
					{30*dim + 40, nmConvIters}, {60*dim + 40, nmConvIters}, {2000, nmConvIters},
					{30*dim + 40, nmQuickIters}, {60*dim + 40, nmQuickIters}, {2000, nmQuickIters},
				} {
					budget, stall := c.budget, c.stall
					t.Run(fmt.Sprintf("%s/dim%d/%d/budget%d/stall%d", name, dim, trial, budget, stall), func(t *testing.T) {
						var want, got [][]float64
						record := func(seen *[][]float64) func(x []float64) float64 {
							return func(x []float64) float64 {
								*seen = append(*seen, append([]float64(nil), x...))
								return f(x)
							}
						}
						wx, wf := gonumMinimize(record(&want), append([]float64(nil), x0...), budget, stall)
						gx, gf := minimize(record(&got), append([]float64(nil), x0...), budget, stall)
						if len(got) != len(want) {
							t.Fatalf("%d evaluations, gonum %d", len(got), len(want))
						}
						for i := range want {
							if !sameBits(got[i], want[i]) {
								t.Fatalf("evaluation %d at %v, gonum at %v", i, got[i], want[i])
							}
						}
						if !sameBits(gx, wx) || math.Float64bits(gf) != math.Float64bits(wf) {
							t.Fatalf("result %v (%v), gonum %v (%v)", gx, gf, wx, wf)
						}
						// Four points at a time, evaluated ahead: the same run.
						f4 := func(xs *[4][]float64, out *[4]float64) {
							for i, x := range xs {
								out[i] = f(x)
							}
						}
						sx, sf := minimize4(f, f4, append([]float64(nil), x0...), budget, stall)
						if !sameBits(sx, wx) || math.Float64bits(sf) != math.Float64bits(wf) {
							t.Fatalf("four at a time %v (%v), gonum %v (%v)", sx, sf, wx, wf)
						}
					})
				}
			}
		}
	}
}

func sameBits(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
			return false
		}
	}
	return true
}
