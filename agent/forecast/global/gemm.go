package global

import (
	"math"

	"gonum.org/v1/gonum/blas"
)

// gemm computes c = alpha·op(a)·op(b) + beta·c for row-major matrices:
// op(a) is m×k, op(b) is k×n. The products the forward passes make
// (neither transposed, alpha 1, beta 0 or 1) go to gemmNN; the rest to
// gonum.
func gemm(ta, tb bool, m, nn, k int, alpha float64, a []float64, b []float64, beta float64, c []float64) {
	if !ta && !tb && alpha == 1 && (beta == 0 || beta == 1) && gemmNN(m, nn, k, a, b, beta, c) {
		return
	}
	tA, tB := blas.NoTrans, blas.NoTrans
	lda, ldb := k, nn
	if ta {
		tA, lda = blas.Trans, m
	}
	if tb {
		tB, ldb = blas.Trans, k
	}
	impl.Dgemm(tA, tB, m, nn, k, alpha, a, lda, b, ldb, beta, c, nn)
}

// gemmNN computes c = a·b (beta 0) or c += a·b (beta 1) for a m×k, b k×n
// and c m×n, row-major, with blocks of 8 rows × up to 8 columns in
// AVX-512 registers (kernel8x8) and of 4 rows × 8 columns in AVX registers
// (kernel4x8) where the CPU has them, and returns true; false
// when it leaves the product to gonum. Every element is summed exactly as
// gonum's Dgemm sums it, term by term in the order of k, each product
// rounded before it is added (no fused multiply-add), so the result is the
// same to the last bit. gonum skips the terms whose a is zero; adding them
// instead changes nothing as long as every element of b is finite (the
// term is then ±0) and no element of c is -0 (a sum that starts at +0
// never becomes -0), which gemmNN checks before it uses the kernel.
func gemmNN(m, n, k int, a, b []float64, beta float64, c []float64) bool {
	if !haveKernel || m < 4 || n < 8 || k < 1 || len(a) < m*k || len(b) < k*n || len(c) < m*n {
		return false
	}
	for _, v := range b[:k*n] {
		if v-v != 0 { // NaN or ±Inf
			return false
		}
	}
	if beta == 0 {
		clear(c[:m*n])
	} else {
		for _, v := range c[:m*n] {
			if math.Float64bits(v) == negativeZero {
				return false
			}
		}
	}
	i := 0
	if haveKernel8 {
		// Rows past the last full block of 8 are summed as part of the
		// last 8 rows: the rows that block covers again are first put
		// back as they were, then summed again to the same bits.
		var again [7 * 160]float64
		redo := m >= 8 && m%8 != 0 && (8-m%8)*n <= len(again)
		full := m - m%8
		if redo {
			copy(again[:], c[(m-8)*n:full*n])
		}
		for ; i+8 <= m; i += 8 {
			gemm8(i, n, k, a, b, c)
		}
		if redo {
			copy(c[(m-8)*n:full*n], again[:])
			gemm8(m-8, n, k, a, b, c)
			return true
		}
	}
	for ; i+4 <= m; i += 4 {
		j := 0
		for ; j+8 <= n; j += 8 {
			kernel4x8(k, &a[i*k], k, &b[j], n, &c[i*n+j], n)
		}
		gemmTail4(i, j, n, k, a, b, c)
	}
	gemmRows(i, m, 0, n, k, a, b, c)
	return true
}

const negativeZero = 1 << 63

// gemm8 adds a·b to c for the 8 rows from i, 8 columns at a time.
func gemm8(i, n, k int, a, b, c []float64) {
	for j := 0; j < n; j += 8 {
		kernel8x8(k, &a[i*k], k, &b[j], n, &c[i*n+j], n, min(8, n-j))
	}
}

// gemmTail4 is gemmRows for the four rows from i and the columns [j0, n)
// the kernel's blocks leave: each element summed in registers, the four
// rows side by side, term by term in the order of k as gemmRows sums it.
func gemmTail4(i, j0, n, k int, a, b, c []float64) {
	a0, a1, a2, a3 := a[i*k:(i+1)*k], a[(i+1)*k:(i+2)*k], a[(i+2)*k:(i+3)*k], a[(i+3)*k:(i+4)*k]
	for j := j0; j < n; j++ {
		s0, s1, s2, s3 := c[i*n+j], c[(i+1)*n+j], c[(i+2)*n+j], c[(i+3)*n+j]
		for l := 0; l < k; l++ {
			bl := b[l*n+j]
			s0 += float64(a0[l] * bl)
			s1 += float64(a1[l] * bl)
			s2 += float64(a2[l] * bl)
			s3 += float64(a3[l] * bl)
		}
		c[i*n+j], c[(i+1)*n+j], c[(i+2)*n+j], c[(i+3)*n+j] = s0, s1, s2, s3
	}
}

// gemmRows adds a·b to c for rows [i0, i1) and columns [j0, n) the way
// gonum does, one row of b at a time. Like the kernel it adds the terms
// whose a is zero, which gonum skips: under gemmNN's checks they change
// nothing, and a test on every zero of a (half of them after a ReLU) is a
// branch no predictor learns.
func gemmRows(i0, i1, j0, n, k int, a, b, c []float64) {
	if j0 >= n {
		return
	}
	for i := i0; i < i1; i++ {
		ci := c[i*n+j0 : (i+1)*n]
		for l, v := range a[i*k : (i+1)*k] {
			bl := b[l*n+j0 : (l+1)*n]
			for j := range ci {
				ci[j] += float64(v * bl[j])
			}
		}
	}
}
