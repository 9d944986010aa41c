//go:build amd64

package forecast

import "golang.org/x/sys/cpu"

// haveCSS4 says whether the css4 and ets4 kernels can run. They fuse no
// multiply-add, and neither do cssComplete and etsRunComplete, whose
// products are converted explicitly (float64(a*b)) so that a GOAMD64=v3
// build, which may fuse a*b+c, sums as every other build does.
var haveCSS4 = cpu.X86.HasAVX2

// css4ARMA11, css4ARMA21 and css4ARMA12 write to out the sums of squares
// cssComplete computes for ARMA(1,1), (2,1) and (1,2) on the complete w
// (n > 1, n > 2, n > 2 points) under the four coefficient sets in p
// (css4_amd64.s).
//
//go:noescape
func css4ARMA11(w *float64, n int, p *[16]float64, out *[4]float64)

//go:noescape
func css4ARMA21(w *float64, n int, p *[16]float64, out *[4]float64)

//go:noescape
func css4ARMA12(w *float64, n int, p *[16]float64, out *[4]float64)

// ets4Simple and ets4Trend write to out the sums of squares
// etsRunComplete computes for a non-seasonal shape without and with a
// trend, from level l0 (and trend b0), under the four parameter sets given
// (ets4_amd64.s).
//
//go:noescape
func ets4Simple(y *float64, n int, l0 float64, alpha *[4]float64, out *[4]float64)

//go:noescape
func ets4Trend(y *float64, n int, l0, b0 float64, p *[12]float64, out *[4]float64)
