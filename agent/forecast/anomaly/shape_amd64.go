package anomaly

import "golang.org/x/sys/cpu"

// haveAVX says whether the shape statistic's AVX loops can run.
var haveAVX = cpu.X86.HasAVX

// updateDistancesAVX is updateDistances' loop over the first n entries (a
// multiple of 4), four at a time, with the same roundings in the same
// order and no fused multiply-add; it reports whether any entry was set to
// NaN (shape_amd64.s).
//
//go:noescape
func updateDistancesAVX(d, xa, xb *float64, n int, a, b, tol float64) bool

// firstBelowAVX returns the offset of the first group of four entries at
// d (n of them, a multiple of 4) in which an entry of a lane set in lanes
// (bit l: lane l) is below worst, or n when none is (shape_amd64.s).
//
//go:noescape
func firstBelowAVX(d *float64, n int, worst float64, lanes int) int
