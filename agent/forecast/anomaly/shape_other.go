//go:build !amd64

package anomaly

// haveAVX is false: the shape statistic runs its Go loops.
const haveAVX = false

func updateDistancesAVX(d, xa, xb *float64, n int, a, b, tol float64) bool {
	panic("anomaly: no AVX on this architecture")
}

func firstBelowAVX(d *float64, n int, worst float64, lanes int) int {
	panic("anomaly: no AVX on this architecture")
}
