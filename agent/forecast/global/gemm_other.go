//go:build !amd64

package global

// haveKernel is false: gemm leaves every product to gonum. (A variable,
// as on amd64, so that tests can switch the kernels off.)
var haveKernel = false

func kernel4x8(k int, a *float64, lda int, b *float64, ldb int, c *float64, ldc int) {
	panic("global: no gemm kernel on this architecture")
}

func reluAVX(x *float64, n int) {
	panic("global: no relu kernel on this architecture")
}

func addAVX(x *float64, bias *float64, n int, relu bool) {
	panic("global: no bias kernel on this architecture")
}

var haveKernel8 = false

func kernel8x8(k int, a *float64, lda int, b *float64, ldb int, c *float64, ldc int, cols int) {
	panic("global: no gemm kernel on this architecture")
}
