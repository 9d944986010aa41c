package num

import "math"

// Tanh is math.Tanh with every product rounded on its own (float64(a*b)),
// which no build may fuse into a multiply-add: below 0.625 math.Tanh is a
// rational function in Go, which a GOAMD64=v3 build fuses, and its result
// then differs in the last bit for a few arguments in a million (3 of
// 2,000,000 random ones). The coefficients are math.Tanh's (Cephes);
// TestTanhMatchesMath holds the result to math.Tanh's where the math
// package fuses nothing.
func Tanh(x float64) float64 {
	z := math.Abs(x)
	if !(z < 0.625) || x == 0 { // Exp's branches, ±0, NaN
		return math.Tanh(x)
	}
	const (
		p0 = -9.64399179425052238628e-1
		p1 = -9.92877231001918586564e1
		p2 = -1.61468768441708447952e3
		q0 = 1.12811678491632931402e2
		q1 = 2.23548839060100448583e3
		q2 = 4.84406305325125486048e3
	)
	s := float64(x * x)
	num := float64((float64(p0*s)+p1)*s) + p2
	den := float64((float64((s+q0)*s)+q1)*s) + q2
	return x + float64(x*s*num)/den
}
