package forecast

import "math"

// erfinv is math.Erfinv with every product rounded on its own
// (float64(a*b)), which no build may fuse into a multiply-add: the math
// package's Go code, compiled with GOAMD64=v3, fuses its polynomials and
// its quantiles differ from every other amd64 build's in the last bits
// (about half of the levels 0.001, 0.002, … 0.999). The rational
// approximations are those math.Erfinv uses (Wichura's AS 241, the
// coefficients highest degree first); TestErfinvMatchesMath holds the
// result to math.Erfinv's where that package fuses nothing.
func erfinv(x float64) float64 {
	if math.IsNaN(x) || x <= -1 || x >= 1 {
		return math.Erfinv(x)
	}
	sign := x < 0
	if sign {
		x = -x
	}
	var ans float64
	if x <= 0.85 {
		r := 0.180625 - float64(0.25*x*x)
		ans = float64(x*polyUnfused(&erfinvA, r)) / polyUnfused(&erfinvB, r)
	} else {
		const ln2 = 0.693147180559945309417232121458176568
		r := math.Sqrt(ln2 - math.Log(1.0-x))
		if r <= 5.0 {
			r -= 1.6
			ans = polyUnfused(&erfinvC, r) / polyUnfused(&erfinvD, r)
		} else {
			r -= 5.0
			ans = polyUnfused(&erfinvE, r) / polyUnfused(&erfinvF, r)
		}
	}
	if sign {
		return -ans
	}
	return ans
}

// polyUnfused is c[0]*r^7 + … + c[7] by Horner's rule, each product
// rounded before its sum.
func polyUnfused(c *[8]float64, r float64) float64 {
	p := c[0]
	for _, ci := range c[1:] {
		p = float64(p*r) + ci
	}
	return p
}

var (
	erfinvA = [8]float64{8.8709406962545514830200e2, 1.1819493347062294404278e4, 2.3782041382114385731252e4, 1.6235862515167575384252e4, 4.8548868893843886794648e3, 6.9706266534389598238465e2, 4.7072688112383978012285e1, 1.1975323115670912564578e0}
	erfinvB = [8]float64{5.2264952788528545610e3, 2.8729085735721942674e4, 3.9307895800092710610e4, 2.1213794301586595867e4, 5.3941960214247511077e3, 6.8718700749205790830e2, 4.2313330701600911252e1, 1.0000000000000000000e0}
	erfinvC = [8]float64{7.74545014278341407640e-4, 2.27238449892691845833e-2, 2.41780725177450611770e-1, 1.27045825245236838258e0, 3.64784832476320460504e0, 5.76949722146069140550e0, 4.63033784615654529590e0, 1.42343711074968357734e0}
	erfinvD = [8]float64{1.4859850019840355905497876e-9, 7.7441459065157709165577218e-4, 2.1494160384252876777097297e-2, 2.0945065210512749128288442e-1, 9.7547832001787427186894837e-1, 2.3707661626024532365971225e0, 2.9036514445419946173133295e0, 1.4142135623730950488016887e0}
	erfinvE = [8]float64{2.01033439929228813265e-7, 2.71155556874348757815e-5, 1.24266094738807843860e-3, 2.65321895265761230930e-2, 2.96560571828504891230e-1, 1.78482653991729133580e0, 5.46378491116411436990e0, 6.65790464350110377720e0}
	erfinvF = [8]float64{2.891024605872965461538222e-15, 2.010321207683943062279931e-7, 2.611088405080593625138020e-5, 1.112800997078859844711555e-3, 2.103693768272068968719679e-2, 1.936480946950659106176712e-1, 8.482908416595164588112026e-1, 1.414213562373095048801689e0}
)
