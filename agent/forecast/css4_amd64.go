//go:build amd64 && !amd64.v3

package forecast

import "golang.org/x/sys/cpu"

// haveCSS4 says whether the css4 kernels can run. Built for GOAMD64=v3 the
// compiler fuses cssComplete's multiply-adds, which the kernels do not:
// there every sum is cssComplete's own (css4_other.go).
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
