package global

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/blas"
)

// TestGemmMatchesGonum holds gemm's own products to gonum's Dgemm bit for
// bit, on shapes around the kernel's 4×8 blocks, with zeros (as after a
// ReLU) in a, beta 0 and 1, and the cases where gonum's skipping of zero
// terms matters (a -0 in c, a non-finite b), which gemm leaves to gonum.
func TestGemmMatchesGonum(t *testing.T) { eachKernelSetting(t, testGemmMatchesGonum) }

// eachKernelSetting runs test with the kernels this CPU has, then with the
// AVX-512 ones off, then with none, so that a machine without them runs
// code a test has run here.
func eachKernelSetting(t *testing.T, test func(t *testing.T)) {
	k, k8, as := haveKernel, haveKernel8, haveAsinh
	defer func() { haveKernel, haveKernel8, haveAsinh = k, k8, as }()
	for _, c := range []struct {
		name      string
		k, k8, as bool
	}{{"cpu", k, k8, as}, {"no-avx512", k, false, as}, {"generic", false, false, false}} {
		haveKernel, haveKernel8, haveAsinh = c.k, c.k8, c.as
		t.Run(c.name, test)
	}
}

func testGemmMatchesGonum(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	fill := func(n int, zeros float64) []float64 {
		x := make([]float64, n)
		for i := range x {
			if rng.Float64() < zeros {
				continue
			}
			x[i] = rng.NormFloat64() * math.Pow(10, float64(rng.IntN(7)-3))
		}
		return x
	}
	for _, m := range []int{1, 3, 4, 5, 8, 13, 200} {
		for _, n := range []int{1, 7, 8, 9, 16, 58, 64, 137} {
			for _, k := range []int{1, 2, 7, 64, 137} {
				for _, beta := range []float64{0, 1} {
					for _, odd := range []string{"", "negative zero in c", "inf in b", "nan in b"} {
						if odd == "negative zero in c" && beta == 0 {
							continue
						}
						t.Run(fmt.Sprintf("%dx%dx%d/beta%v/%s", m, n, k, beta, odd), func(t *testing.T) {
							a, b, c := fill(m*k, 0.4), fill(k*n, 0.05), fill(m*n, 0.1)
							switch odd {
							case "negative zero in c":
								c[len(c)/2] = math.Copysign(0, -1)
							case "inf in b":
								b[len(b)-1] = math.Inf(1)
							case "nan in b":
								b[0] = math.NaN()
							}
							want := append([]float64(nil), c...)
							impl.Dgemm(blas.NoTrans, blas.NoTrans, m, n, k, 1, a, k, b, n, beta, want, n)
							got := append([]float64(nil), c...)
							gemm(false, false, m, n, k, 1, a, b, beta, got)
							for i := range want {
								if math.Float64bits(got[i]) != math.Float64bits(want[i]) {
									t.Fatalf("c[%d] = %v, gonum %v", i, got[i], want[i])
								}
							}
						})
					}
				}
			}
		}
	}
}

// TestReluAsComparison holds relu to its scalar definition bit for bit:
// negatives become +0; -0, +0, NaN, infinities and positives stay; every
// length around the four-wide blocks.
func TestReluAsComparison(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	special := []float64{math.Copysign(0, -1), 0, math.NaN(), math.Inf(1), math.Inf(-1), -math.SmallestNonzeroFloat64, math.SmallestNonzeroFloat64}
	for n := 0; n <= 37; n++ {
		x := make([]float64, n)
		for i := range x {
			if rng.IntN(3) == 0 {
				x[i] = special[rng.IntN(len(special))]
			} else {
				x[i] = rng.NormFloat64()
			}
		}
		want := append([]float64(nil), x...)
		for i, v := range want {
			if v < 0 {
				want[i] = 0
			}
		}
		relu(x)
		for i := range x {
			if math.Float64bits(x[i]) != math.Float64bits(want[i]) {
				t.Fatalf("n=%d: relu[%d] = %v (%#x), want %v (%#x)", n, i, x[i], math.Float64bits(x[i]), want[i], math.Float64bits(want[i]))
			}
		}
	}
}

// TestAddBiasReluAsScalar holds addBiasRelu to adding the bias element by
// element and then relu's comparison, bit for bit, for widths around the
// four-wide blocks, with zeros of both signs, NaN and infinities.
func TestAddBiasReluAsScalar(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	special := []float64{math.Copysign(0, -1), 0, math.NaN(), math.Inf(1), math.Inf(-1)}
	val := func() float64 {
		if rng.IntN(4) == 0 {
			return special[rng.IntN(len(special))]
		}
		return rng.NormFloat64() * math.Pow(10, float64(rng.IntN(5)-2))
	}
	for n := 1; n <= 19; n++ {
		for _, rows := range []int{1, 3} {
			for _, r := range []bool{false, true} {
				bias := make([]float64, n)
				x := make([]float64, rows*n)
				for i := range bias {
					bias[i] = val()
				}
				for i := range x {
					x[i] = val()
				}
				want := append([]float64(nil), x...)
				for i := range want {
					v := want[i] + bias[i%n]
					if r && v < 0 {
						v = 0
					}
					want[i] = v
				}
				addBiasRelu(x, rows, bias, r)
				for i := range x {
					if math.Float64bits(x[i]) != math.Float64bits(want[i]) {
						t.Fatalf("n=%d rows=%d relu=%v: [%d] = %v, want %v", n, rows, r, i, x[i], want[i])
					}
				}
			}
		}
	}
}
