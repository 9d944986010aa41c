//go:build !amd64

package global

// haveAsinh is false: squashAll calls math.Asinh on each value. (A
// variable, as on amd64, so that tests can switch the kernel off.)
var haveAsinh = false

func asinhAVX2(x *float64, n int) int {
	panic("global: no asinh kernel on this architecture")
}
