package forecast

import (
	"math"

	"gonum.org/v1/gonum/optimize"
)

// minimize runs gonum's Nelder-Mead from x0 on f, at most maxEvals
// evaluations, and returns the best point found. Non-finite objective
// values are treated as +Inf so the simplex steps away from them.
func minimize(f func(x []float64) float64, x0 []float64, maxEvals int) ([]float64, float64) {
	p := optimize.Problem{Func: func(x []float64) float64 {
		v := f(x)
		if math.IsNaN(v) {
			return math.Inf(1)
		}
		return v
	}}
	s := &optimize.Settings{
		FuncEvaluations: maxEvals,
		Converger:       &optimize.FunctionConverge{Absolute: 1e-9, Relative: 1e-7, Iterations: 25},
	}
	res, _ := optimize.Minimize(p, x0, s, &optimize.NelderMead{SimplexSize: 0.5})
	if res == nil || res.X == nil {
		return x0, f(x0)
	}
	return res.X, res.F
}

func sigmoid(u float64) float64 { return 1 / (1 + math.Exp(-u)) }

func logit(p float64) float64 {
	p = math.Min(math.Max(p, 1e-6), 1-1e-6)
	return math.Log(p / (1 - p))
}

// aicc is the corrected Akaike criterion of a Gaussian model with the given
// sum of squared errors over n residuals and k estimated parameters (the
// residual variance is counted as one more).
func aicc(sse float64, n, k int) float64 {
	if n <= k+2 || sse <= 0 {
		if sse <= 0 {
			sse = 1e-300
		}
		if n <= k+2 {
			return math.Inf(1)
		}
	}
	nf, kf := float64(n), float64(k+1)
	return nf*math.Log(sse/nf) + 2*kf + 2*kf*(kf+1)/(nf-kf-1)
}
