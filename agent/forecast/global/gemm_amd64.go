package global

import "golang.org/x/sys/cpu"

// haveKernel says whether kernel4x8 can run: it needs AVX.
var haveKernel = cpu.X86.HasAVX

// kernel4x8 adds to the 4×8 block of c at c (rows ldc apart) the product
// of the 4×k block of a at a (rows lda apart) and the k×8 block of b at b
// (rows ldb apart): for each l in order, each element gets a·b rounded,
// then added (gemm_amd64.s).
//
//go:noescape
func kernel4x8(k int, a *float64, lda int, b *float64, ldb int, c *float64, ldc int)

// reluAVX sets the first n (a multiple of 4) elements at x to relu's
// result four at a time, without relu's data-dependent branch
// (gemm_amd64.s).
//
//go:noescape
func reluAVX(x *float64, n int)

// addAVX adds bias[i] to x[i] for the first n (a multiple of 4) elements,
// four at a time, then, with relu, takes reluAVX's maximum (gemm_amd64.s).
//
//go:noescape
func addAVX(x *float64, bias *float64, n int, relu bool)

// haveKernel8 says whether kernel8x8 can run: it needs AVX-512.
var haveKernel8 = cpu.X86.HasAVX512F

// kernel8x8 is kernel4x8 for a block of 8 rows and cols ≤ 8 columns
// (gemm_amd64.s): the same sums, eight columns to a register.
//
//go:noescape
func kernel8x8(k int, a *float64, lda int, b *float64, ldb int, c *float64, ldc int, cols int)
