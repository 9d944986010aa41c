package global

import "math"

// The network's inputs and outputs go through asinh, sinh, sin and cos. The math package is Go, compiled with the rest
// of the program: built for GOAMD64=v3 its polynomials fuse a*b+c into one
// rounding and their results differ in the last bits from every other
// amd64 build. The functions here make the same operations in the same
// order as those functions do on amd64 without fused multiply-adds, each
// product converted explicitly (float64(a*b)), which no build may fuse: the
// same bits at every GOAMD64 level (TestUnfusedMatchesMath holds them to
// the math package's where that package fuses nothing).

// sinh is math.Sinh. Above 0.5 it is math.Sinh's own (Exp, which fuses
// nothing: on amd64 it is assembly choosing its instructions by the CPU,
// not by the build); at or below, its rational function (coefficients
// #2029 of Hart & Cheney, as math.Sinh).
func sinh(x float64) float64 {
	if !(math.Abs(x) <= 0.5) { // NaN and ±Inf too
		return math.Sinh(x)
	}
	const (
		P0 = -0.6307673640497716991184787251e+6
		P1 = -0.8991272022039509355398013511e+5
		P2 = -0.2894211355989563807284660366e+4
		P3 = -0.2630563213397497062819489e+2
		Q0 = -0.6307673640497716991212077277e+6
		Q1 = 0.1521517378790019070696485176e+5
		Q2 = -0.173678953558233699533450911e+3
	)
	sign := x < 0
	if sign {
		x = -x
	}
	sq := float64(x * x)
	temp := float64((float64((float64(P3*sq)+P2)*sq)+P1)*sq) + P0
	temp *= x
	temp = temp / (float64((float64((sq+Q2)*sq)+Q1)*sq) + Q0)
	if sign {
		temp = -temp
	}
	return temp
}

// sinCosSmall bounds the arguments sin and cos reduce themselves, as
// math.Sin and math.Cos do below it (beyond, both call the math package,
// whose Payne-Hanek reduction the calendar's angles, within [0, 2π), never
// reach).
const sinCosSmall = 1 << 29

// Pi/4 in three parts and the polynomials of math.Sin and math.Cos.
const (
	pi4A = 7.85398125648498535156e-1  // 0x3fe921fb40000000
	pi4B = 3.77489470793079817668e-8  // 0x3e64442d00000000
	pi4C = 2.69515142907905952645e-15 // 0x3ce8469898cc5170
)

var (
	sinP = [...]float64{
		1.58962301576546568060e-10,
		-2.50507477628578072866e-8,
		2.75573136213857245213e-6,
		-1.98412698295895385996e-4,
		8.33333333332211858878e-3,
		-1.66666666666666307295e-1,
	}
	cosP = [...]float64{
		-1.13585365213876817300e-11,
		2.08757008419747316778e-9,
		-2.75573141792967388112e-7,
		2.48015872888517045348e-5,
		-1.38888888888730564116e-3,
		4.16666666666665929218e-2,
	}
)

// octant reduces x (0 ≤ x < sinCosSmall) to z in [-π/4, π/4] and its
// octant j (0..7), as math.Sin and math.Cos do.
func octant(x float64) (j uint64, z float64) {
	j = uint64(x * (4 / math.Pi))
	y := float64(j)
	if j&1 == 1 {
		j++
		y++
	}
	j &= 7
	z = ((x - float64(y*pi4A)) - float64(y*pi4B)) - float64(y*pi4C)
	return j, z
}

// sinPoly and cosPoly are sin and cos of z in [-π/4, π/4].
func sinPoly(z float64) float64 {
	zz := float64(z * z)
	return z + float64(z*zz*horner(&sinP, zz))
}

func cosPoly(z float64) float64 {
	zz := float64(z * z)
	return (1.0 - float64(0.5*zz)) + float64(zz*zz*horner(&cosP, zz))
}

// horner is ((((c0*zz+c1)*zz+c2)*zz+c3)*zz+c4)*zz+c5, each product
// rounded.
func horner(c *[6]float64, zz float64) float64 {
	p := c[0]
	for _, ci := range c[1:] {
		p = float64(p*zz) + ci
	}
	return p
}

// sin is math.Sin.
func sin(x float64) float64 {
	if x == 0 || !(math.Abs(x) < sinCosSmall) { // ±0, NaN, ±Inf, large
		return math.Sin(x)
	}
	sign := x < 0
	if sign {
		x = -x
	}
	j, z := octant(x)
	if j > 3 {
		sign = !sign
		j -= 4
	}
	var y float64
	if j == 1 || j == 2 {
		y = cosPoly(z)
	} else {
		y = sinPoly(z)
	}
	if sign {
		y = -y
	}
	return y
}

// cos is math.Cos.
func cos(x float64) float64 {
	if !(math.Abs(x) < sinCosSmall) { // NaN, ±Inf, large
		return math.Cos(x)
	}
	x = math.Abs(x)
	sign := false
	j, z := octant(x)
	if j > 3 {
		j -= 4
		sign = !sign
	}
	if j > 1 {
		sign = !sign
	}
	var y float64
	if j == 1 || j == 2 {
		y = sinPoly(z)
	} else {
		y = cosPoly(z)
	}
	if sign {
		y = -y
	}
	return y
}

// asinh is math.Asinh: asinhAVX2's four lanes (assembly, no fused
// multiply-add at any GOAMD64 level) wherever the CPU has AVX2 — every CPU a
// GOAMD64=v3 build runs on — and asinhLeft for the values the kernel
// leaves; elsewhere the math package's.
func asinh(x float64) float64 {
	if !haveAsinh {
		return math.Asinh(x)
	}
	b := [4]float64{x, x, x, x}
	if asinhAVX2(&b[0], 4) == 4 {
		return b[0]
	}
	return asinhLeft(x)
}

// asinhLeft is math.Asinh of a value asinhAVX2 leaves. NaN, ±Inf and
// |x| > 2**28 take math.Asinh's paths, which multiply nothing into a sum
// (x itself; Log(|x|) + Ln2). The others are the x of at most 2 whose
// log1p argument y = |x| + x*x/(1+Sqrt(1+x*x)) makes 1+y an exact power of
// two, 2**k: math.log1p returns k*Ln2Hi + (c + k*Ln2Lo) there, c its
// correction (1-(u-y))/u for the rounding of u = 1+y.
func asinhLeft(x float64) float64 {
	a := math.Abs(x)
	if !(a <= 2) {
		return math.Asinh(x)
	}
	const (
		ln2Hi = 6.93147180369123816490e-01 // 0x3fe62e42fee00000
		ln2Lo = 1.90821492927058770002e-10 // 0x3dea39ef35793c76
	)
	aa := float64(a * a)
	y := a + aa/(1+math.Sqrt(1+aa))
	u := 1.0 + y
	iu := math.Float64bits(u)
	k := int(iu>>52) - 1023
	if iu&(1<<52-1) != 0 || k <= 0 {
		return math.Asinh(x) // not a value the kernel leaves
	}
	c := (1.0 - (u - y)) / u
	c += float64(float64(k) * ln2Lo)
	r := float64(float64(k)*ln2Hi) + c
	if x < 0 {
		r = -r
	}
	return r
}
