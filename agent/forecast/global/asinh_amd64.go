//go:build amd64

package global

import "golang.org/x/sys/cpu"

// haveAsinh says whether asinhAVX2 can run (always, built for GOAMD64=v3).
// It fuses no multiply-add, so its results are math.Asinh's where the
// math package fuses none either, at every GOAMD64 level (unfused.go).
var haveAsinh = cpu.X86.HasAVX2

// asinhAVX2 replaces the first n (a multiple of 4) elements at x by their
// math.Asinh, four at a time, and returns how many it replaced: it stops
// before a block holding a value it leaves to asinhLeft (asinh_amd64.s).
//
//go:noescape
func asinhAVX2(x *float64, n int) int
