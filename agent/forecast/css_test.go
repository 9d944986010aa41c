package forecast

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestCSSCompleteMatchesGeneric holds cssComplete to cssARIMA bit for bit
// on series without missing values, for every order up to (3,3) (the
// specialised loops and the fallback), on series of every short length
// and on a long one, with and without a mean.
func TestCSSCompleteMatchesGeneric(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	series := map[string][]float64{}
	for _, n := range []int{0, 1, 2, 3, 4, 7, 1008} {
		w := make([]float64, n)
		prev := 0.0
		for i := range w {
			prev = 0.6*prev + rng.NormFloat64()
			w[i] = 3 + prev
		}
		series[fmt.Sprintf("ar1 n=%d", n)] = w
	}
	steps := make([]float64, 500)
	for i := range steps {
		steps[i] = math.Round(rng.Float64()*4) - 2 // many exact zeros and ties
	}
	series["integer steps"] = steps
	for name, w := range series {
		for p := 0; p <= 3; p++ {
			for q := 0; q <= 3; q++ {
				for _, mu := range []float64{0, 2.7} {
					phi := make([]float64, p)
					theta := make([]float64, q)
					for i := range phi {
						phi[i] = rng.Float64() - 0.5
					}
					for i := range theta {
						theta[i] = rng.Float64() - 0.5
					}
					ebuf := make([]float64, len(w))
					ww := append([]float64(nil), w...)
					want, _ := cssARIMA(ww, phi, theta, mu, ebuf)
					got := cssComplete(w, phi, theta, mu, make([]float64, len(w)))
					if math.Float64bits(got) != math.Float64bits(want) {
						t.Errorf("%s, ARMA(%d,%d), mu %g: cssComplete %v, cssARIMA %v", name, p, q, mu, got, want)
					}
				}
			}
		}
	}
}

// TestETSRunCompleteMatchesSteps holds etsRunComplete to etsStep's
// recursion bit for bit: every non-seasonal shape, parameters from the
// edges of their ranges and the middle, on series that stay put, trend
// and explode.
func TestETSRunCompleteMatchesSteps(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	series := map[string][]float64{"empty": nil, "one": {4}}
	walk := make([]float64, 1500)
	x := 50.0
	for i := range walk {
		x += rng.NormFloat64()
		walk[i] = x + 0.01*float64(i)
	}
	series["walk"] = walk
	huge := make([]float64, 200)
	for i := range huge {
		huge[i] = math.Pow(10, float64(i)) // overflows the state
	}
	series["overflowing"] = huge
	zeros := make([]float64, 60) // levels of zero, of both signs
	for i := range zeros {
		if i%3 == 1 {
			zeros[i] = math.Copysign(0, -1)
		}
		if i%7 == 5 {
			zeros[i] = float64(i%2) - 0.5
		}
	}
	series["zeros of both signs"] = zeros
	extreme := make([]float64, 40) // errors overflow, then the level turns NaN
	for i := range extreme {
		extreme[i] = math.Copysign(1.5e308, float64(i%2)-0.5)
	}
	series["extreme"] = extreme
	for name, y := range series {
		for _, spec := range []etsSpec{{}, {trend: true}, {trend: true, damped: true}} {
			for _, p := range []etsParams{
				{alpha: 1e-4, beta: 1e-5, phi: 0.8, gamma: 0},
				{alpha: 0.3, beta: 0.05, phi: 0.95, gamma: 0},
				{alpha: 0.9999, beta: 0.9, phi: 0.98, gamma: 0},
			} {
				if !spec.damped {
					p.phi = 1
				}
				if !spec.trend {
					p.beta = 0
				}
				init, ok := etsInit(y, spec)
				if !ok {
					init = etsState{l: 1, b: 0.5}
					if !spec.trend {
						init.b = 0
					}
				}
				if name == "zeros of both signs" {
					init.l = math.Copysign(0, -1)
				}
				var st etsState
				st.copyFrom(init)
				want, wantK := 0.0, 0
				for _, v := range y {
					if e := etsStep(spec, p, &st, v); !math.IsNaN(e) {
						want += float64(e * e)
						wantK++
					}
				}
				got, gotK := etsRunComplete(y, spec, p, init)
				if math.Float64bits(got) != math.Float64bits(want) || gotK != wantK {
					t.Errorf("%s, %s, %+v: etsRunComplete %v over %d, etsStep %v over %d", name, spec, p, got, gotK, want, wantK)
				}
			}
		}
	}
}

// TestFitMixedMatchesAlone holds the lock-step fits of the three mixed
// orders to fitARIMA's one at a time, bit for bit (coefficients, mean, sum
// of squares, AICc), with and without a constant, on ARMA series whose
// optimisers stop at different evaluations, on a short one, and on one
// with a missing value (which fits one at a time).
func TestFitMixedMatchesAlone(t *testing.T) {
	// fitARIMA alone runs four points at a time where the CPU can
	// (minimize4, css4): the same fits as without.
	defer func(h bool) { haveCSS4 = h }(haveCSS4)
	for _, h := range []bool{haveCSS4, false} {
		haveCSS4 = h
		t.Run(fmt.Sprintf("css4=%v", h), testFitMixedMatchesAlone)
	}
}

func testFitMixedMatchesAlone(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	gen := func(n int, phi, theta float64) []float64 {
		w := make([]float64, n)
		prevW, prevE := 0.0, 0.0
		for i := range w {
			e := rng.NormFloat64()
			w[i] = 0.2 + phi*prevW + e + theta*prevE
			prevW, prevE = w[i], e
		}
		return w
	}
	holed := gen(400, 0.5, 0.3)
	holed[100] = math.NaN()
	series := map[string][]float64{
		"ARMA(1,1)":     gen(1008, 0.6, -0.4),
		"ARMA(2,2)":     gen(1008, 0.3, 0.7),
		"white":         gen(1008, 0, 0),
		"three points":  gen(3, 0.5, 0.5),
		"missing value": holed,
	}
	for name, w := range series {
		for _, cst := range []bool{false, true} {
			ords := []arimaOrder{{1, 0, 1, cst}, {2, 0, 1, cst}, {1, 0, 2, cst}}
			got := fitMixed(w, ords, 1.3, nmQuickIters)
			for i, o := range ords {
				want := fitARIMA(w, o, 1.3, nmQuickIters)
				g := got[i]
				if !sameBits(g.phi, want.phi) || !sameBits(g.theta, want.theta) || !sameBits([]float64{g.mu, g.sse, g.ic}, []float64{want.mu, want.sse, want.ic}) || g.nobs != want.nobs {
					t.Errorf("%s, %s: lock step phi %v theta %v mu %v sse %v, alone %v %v %v %v", name, o, g.phi, g.theta, g.mu, g.sse, want.phi, want.theta, want.mu, want.sse)
				}
			}
		}
	}
}

// TestCSSTripleMatchesComplete holds cssTriple to cssComplete of each
// order bit for bit.
func TestCSSTripleMatchesComplete(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 13))
	for _, n := range []int{3, 4, 5, 1008} {
		w := make([]float64, n)
		for i := range w {
			w[i] = rng.NormFloat64() + 1
		}
		a := &arimaCore{phi: []float64{0.4}, theta: []float64{-0.3}}
		b := &arimaCore{phi: []float64{0.2, 0.1}, theta: []float64{0.5}}
		c := &arimaCore{phi: []float64{-0.6}, theta: []float64{0.3, -0.2}}
		sa, sb, sc := cssTriple(w, a, b, c, 0.9, 1.1, 0)
		ebuf := make([]float64, n)
		for i, p := range []struct {
			got float64
			c   *arimaCore
			mu  float64
		}{{sa, a, 0.9}, {sb, b, 1.1}, {sc, c, 0}} {
			if want := cssComplete(w, p.c.phi, p.c.theta, p.mu, ebuf); math.Float64bits(p.got) != math.Float64bits(want) {
				t.Errorf("n=%d, order %d: cssTriple %v, cssComplete %v", n, i, p.got, want)
			}
		}
	}
}

// TestCSS4MatchesComplete holds each lane of the css4 kernels to
// cssComplete bit for bit (a NaN counts as any NaN: the optimiser reads it
// as +Inf), on coefficients inside and far outside the stationary and
// invertible regions, and every short length.
func TestCSS4MatchesComplete(t *testing.T) {
	if !haveCSS4 {
		t.Skip("no css4 kernels on this CPU or build")
	}
	rng := rand.New(rand.NewPCG(21, 22))
	kernels := []struct {
		p, q   int
		kernel func(w *float64, n int, p *[16]float64, out *[4]float64)
	}{{1, 1, css4ARMA11}, {2, 1, css4ARMA21}, {1, 2, css4ARMA12}}
	for _, k := range kernels {
		for _, n := range []int{3, 4, 5, 9, 1008} {
			for trial := 0; trial < 20; trial++ {
				w := make([]float64, n)
				for i := range w {
					w[i] = rng.NormFloat64()*math.Pow(10, float64(rng.IntN(5)-2)) + 1
				}
				spread := 0.9
				if trial%4 == 3 {
					spread = 30 // explosive: sums overflow to +Inf or NaN
				}
				var p [16]float64
				phis, thetas := make([][]float64, 4), make([][]float64, 4)
				for l := 0; l < 4; l++ {
					p[l] = rng.NormFloat64()
					phis[l], thetas[l] = make([]float64, k.p), make([]float64, k.q)
					for i := range phis[l] {
						phis[l][i] = spread * (2*rng.Float64() - 1)
					}
					for i := range thetas[l] {
						thetas[l][i] = spread * (2*rng.Float64() - 1)
					}
					p[4+l], p[12+l] = phis[l][0], thetas[l][0]
					if k.p == 2 {
						p[8+l] = phis[l][1]
					}
					if k.q == 2 {
						p[8+l] = thetas[l][1]
					}
				}
				var out [4]float64
				k.kernel(&w[0], n, &p, &out)
				ebuf := make([]float64, n)
				for l := 0; l < 4; l++ {
					want := cssComplete(w, phis[l], thetas[l], p[l], ebuf)
					if got := out[l]; math.Float64bits(got) != math.Float64bits(want) && !(math.IsNaN(got) && math.IsNaN(want)) {
						t.Fatalf("ARMA(%d,%d) n=%d lane %d: %v, cssComplete %v", k.p, k.q, n, l, got, want)
					}
				}
			}
		}
	}
}

// TestCSSSumMatchesCSSARIMA: cssSum, which on a complete series skips the
// copy and the errors buffer for pure AR and the orders cssComplete keeps
// in registers, gives cssARIMA's sum and count to the bit.
func TestCSSSumMatchesCSSARIMA(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	for _, n := range []int{0, 1, 2, 3, 4, 7, 500} {
		for _, o := range []arimaOrder{{p: 0}, {p: 1}, {p: 2}, {p: 5}, {p: 9}, {p: 1, q: 1}, {p: 2, q: 1}, {p: 1, q: 2}, {p: 2, q: 2}} {
			for _, holed := range []bool{false, true} {
				w := make([]float64, n)
				for i := range w {
					w[i] = rng.NormFloat64()*3 + 2
				}
				if holed && n > 2 {
					w[n/2] = math.NaN()
				}
				phi, theta := make([]float64, o.p), make([]float64, o.q)
				for i := range phi {
					phi[i] = rng.Float64() - 0.5
				}
				for i := range theta {
					theta[i] = rng.Float64() - 0.5
				}
				mu := rng.NormFloat64()
				gs, gk := cssSum(w, phi, theta, mu)
				ws, wk := cssARIMA(append([]float64(nil), w...), phi, theta, mu, make([]float64, n))
				if math.Float64bits(gs) != math.Float64bits(ws) || gk != wk {
					t.Fatalf("n=%d %v holed=%v: %v (%d), cssARIMA %v (%d)", n, o, holed, gs, gk, ws, wk)
				}
			}
		}
	}
}

// TestETS4MatchesRunComplete holds each lane of the ets4 kernels to
// etsRunComplete bit for bit (a NaN counts as any NaN), on a random walk,
// a series that overflows the state, levels of zero of both signs and
// errors that overflow to NaN.
func TestETS4MatchesRunComplete(t *testing.T) {
	if !haveCSS4 {
		t.Skip("no ets4 kernels on this CPU or build")
	}
	rng := rand.New(rand.NewPCG(41, 42))
	walk := make([]float64, 1500)
	x := 50.0
	for i := range walk {
		x += rng.NormFloat64()
		walk[i] = x + 0.01*float64(i)
	}
	huge := make([]float64, 200)
	for i := range huge {
		huge[i] = math.Pow(10, float64(i))
	}
	zeros := make([]float64, 60)
	for i := range zeros {
		if i%3 == 1 {
			zeros[i] = math.Copysign(0, -1)
		}
		if i%7 == 5 {
			zeros[i] = float64(i%2) - 0.5
		}
	}
	extreme := make([]float64, 40)
	for i := range extreme {
		extreme[i] = math.Copysign(1.5e308, float64(i%2)-0.5)
	}
	params := [4]etsParams{
		{alpha: 1e-4, beta: 1e-5, phi: 0.8},
		{alpha: 0.3, beta: 0.05, phi: 0.95},
		{alpha: 0.9999, beta: 0.9, phi: 0.98},
		{alpha: 0.6, beta: 0.2, phi: 0.85},
	}
	for name, y := range map[string][]float64{"one": {4}, "walk": walk, "overflowing": huge, "zeros of both signs": zeros, "extreme": extreme} {
		for _, spec := range []etsSpec{{}, {trend: true}, {trend: true, damped: true}} {
			init := etsState{l: y[0], b: 0}
			if spec.trend {
				init.b = 0.5
			}
			if name == "zeros of both signs" {
				init.l = math.Copysign(0, -1)
			}
			var ps [4]etsParams
			var alpha [4]float64
			var p [12]float64
			for i, q := range params {
				if !spec.damped {
					q.phi = 1
				}
				if !spec.trend {
					q.beta = 0
				}
				ps[i] = q
				alpha[i] = q.alpha
				p[i], p[4+i], p[8+i] = q.alpha, q.beta, q.phi
			}
			var out [4]float64
			if spec.trend {
				ets4Trend(&y[0], len(y), init.l, init.b, &p, &out)
			} else {
				ets4Simple(&y[0], len(y), init.l, &alpha, &out)
			}
			for i, q := range ps {
				want, _ := etsRunComplete(y, spec, q, init)
				if got := out[i]; math.Float64bits(got) != math.Float64bits(want) && !(math.IsNaN(got) && math.IsNaN(want)) {
					t.Errorf("%s, %s, lane %d %+v: %v, etsRunComplete %v", name, spec, i, q, got, want)
				}
			}
		}
	}
}
