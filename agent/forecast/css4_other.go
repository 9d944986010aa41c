//go:build !amd64

package forecast

// haveCSS4 is false: every sum of squares is cssComplete's or
// etsRunComplete's own. (A
// variable, as on amd64, so that tests can switch the kernels off.)
var haveCSS4 = false

func css4ARMA11(w *float64, n int, p *[16]float64, out *[4]float64) {
	panic("forecast: no css4 kernel")
}
func css4ARMA21(w *float64, n int, p *[16]float64, out *[4]float64) {
	panic("forecast: no css4 kernel")
}
func css4ARMA12(w *float64, n int, p *[16]float64, out *[4]float64) {
	panic("forecast: no css4 kernel")
}

func ets4Simple(y *float64, n int, l0 float64, alpha *[4]float64, out *[4]float64) {
	panic("forecast: no ets4 kernel")
}

func ets4Trend(y *float64, n int, l0, b0 float64, p *[12]float64, out *[4]float64) {
	panic("forecast: no ets4 kernel")
}
