//go:build amd64 && !amd64.v3

package global

import "golang.org/x/sys/cpu"

// haveAsinh says whether asinhAVX2 can run. Built for GOAMD64=v3 the
// compiler fuses math.log1p's multiply-adds, which asinhAVX2 does not:
// there squashAll keeps to math.Asinh (asinh_other.go).
var haveAsinh = cpu.X86.HasAVX2

// asinhAVX2 replaces the first n (a multiple of 4) elements at x by their
// math.Asinh, four at a time, and returns how many it replaced: it stops
// before a block holding a value it leaves to math.Asinh (asinh_amd64.s).
//
//go:noescape
func asinhAVX2(x *float64, n int) int
