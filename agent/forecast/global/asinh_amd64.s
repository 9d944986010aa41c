//go:build amd64

#include "textflag.h"

// Constants of math.Asinh, math.Log (log_amd64.s) and math.log1p, as
// their bits.
DATA asinhK<>+0x00(SB)/8, $0x7fffffffffffffff // |x| mask
DATA asinhK<>+0x08(SB)/8, $0x8000000000000000 // sign bit
DATA asinhK<>+0x10(SB)/8, $0x3ff0000000000000 // 1
DATA asinhK<>+0x18(SB)/8, $0x4000000000000000 // 2
DATA asinhK<>+0x20(SB)/8, $0x3fe0000000000000 // 0.5; exponent of [0.5, 1)
DATA asinhK<>+0x28(SB)/8, $0x41b0000000000000 // 2**28
DATA asinhK<>+0x30(SB)/8, $0x3e30000000000000 // 2**-28
DATA asinhK<>+0x38(SB)/8, $0x3fe6a09e667f3bcd // Sqrt(2)/2 (Log)
DATA asinhK<>+0x40(SB)/8, $0x3fda827999fcef32 // Sqrt(2)-1 (log1p)
DATA asinhK<>+0x48(SB)/8, $0x000fffffffffffff // mantissa mask
DATA asinhK<>+0x50(SB)/8, $0x0006a09e667f3bcd // mantissa of Sqrt(2)
DATA asinhK<>+0x58(SB)/8, $0x0010000000000000 // 1<<52 (integer)
DATA asinhK<>+0x60(SB)/8, $0x432ffffffffffc02 // bits of 2**52 less 1022: + exponent → 2**52 + k
DATA asinhK<>+0x68(SB)/8, $0x4330000000000000 // 2**52
DATA asinhK<>+0x70(SB)/8, $1023
DATA asinhK<>+0x78(SB)/8, $0x3fe62e42fee00000 // Ln2Hi
DATA asinhK<>+0x80(SB)/8, $0x3dea39ef35793c76 // Ln2Lo
DATA asinhK<>+0x88(SB)/8, $0x3fe5555555555593 // L1 = Lp1
DATA asinhK<>+0x90(SB)/8, $0x3fd999999997fa04 // L2
DATA asinhK<>+0x98(SB)/8, $0x3fd2492494229359 // L3
DATA asinhK<>+0xa0(SB)/8, $0x3fcc71c51d8e78af // L4
DATA asinhK<>+0xa8(SB)/8, $0x3fc7466496cb03de // L5
DATA asinhK<>+0xb0(SB)/8, $0x3fc39a09d078c69f // L6
DATA asinhK<>+0xb8(SB)/8, $0x3fc2f112df3e5244 // L7
GLOBL asinhK<>(SB), RODATA|NOPTR, $0xc0

#define ABS    asinhK<>+0x00(SB)
#define SIGN   asinhK<>+0x08(SB)
#define ONE    asinhK<>+0x10(SB)
#define TWO    asinhK<>+0x18(SB)
#define HALF   asinhK<>+0x20(SB)
#define LARGE  asinhK<>+0x28(SB)
#define NEAR0  asinhK<>+0x30(SB)
#define HSQRT2 asinhK<>+0x38(SB)
#define SQ2M1  asinhK<>+0x40(SB)
#define MANT   asinhK<>+0x48(SB)
#define SQ2MAN asinhK<>+0x50(SB)
#define TWO52I asinhK<>+0x58(SB)
#define MAGIC  asinhK<>+0x60(SB)
#define TWO52  asinhK<>+0x68(SB)
#define I1023  asinhK<>+0x70(SB)
#define LN2HI  asinhK<>+0x78(SB)
#define LN2LO  asinhK<>+0x80(SB)
#define L1     asinhK<>+0x88(SB)
#define L2     asinhK<>+0x90(SB)
#define L3     asinhK<>+0x98(SB)
#define L4     asinhK<>+0xa0(SB)
#define L5     asinhK<>+0xa8(SB)
#define L6     asinhK<>+0xb0(SB)
#define L7     asinhK<>+0xb8(SB)

// func asinhAVX2(x *float64, n int) int
//
// Replaces x[i] by math.Asinh(x[i]), four at a time, for the first n
// elements (n a multiple of 4), and returns how many it replaced: it
// stops before the first block of four holding a value it leaves to
// math.Asinh (NaN, ±Inf, |x| > 2**28, or a log1p argument whose reduced
// mantissa is zero). Each lane makes math.Asinh's operations in its order
// (math.Log as log_amd64.s, math.log1p as log1p.go, without fused
// multiply-adds), both branches computed and the lane's one kept, so the
// results are the same bits.
TEXT ·asinhAVX2(SB), NOSPLIT, $0-24
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	XORQ DX, DX

block:
	CMPQ DX, CX
	JGE  done

	// a = |x|; y = a + a*a/(1+Sqrt(1+a*a)) for |x| ≤ 2 (Log1p's argument),
	// y = 2*a + 1/(Sqrt(a*a+1)+a) above (Log's argument); Y4 marks a > 2.
	VMOVUPD      (SI)(DX*8), Y0
	VBROADCASTSD ABS, Y1
	VANDPD       Y1, Y0, Y1
	VMULPD       Y1, Y1, Y2
	VBROADCASTSD ONE, Y14
	VADDPD       Y14, Y2, Y3
	VSQRTPD      Y3, Y3
	VBROADCASTSD TWO, Y13
	VCMPPD       $0x1e, Y13, Y1, Y4
	VADDPD       Y1, Y3, Y5
	VADDPD       Y3, Y14, Y6
	VBLENDVPD    Y4, Y5, Y6, Y6
	VBLENDVPD    Y4, Y14, Y2, Y7
	VDIVPD       Y6, Y7, Y7
	VADDPD       Y1, Y1, Y8
	VBLENDVPD    Y4, Y8, Y1, Y8
	VADDPD       Y7, Y8, Y5

	// Log(y) → Y6, as log_amd64.s: f1 = y's mantissa in [0.5, 1),
	// k = y's exponent less 0x3FE; if f1 ≤ Sqrt(2)/2 { k -= 1; f1 *= 2 }.
	VBROADCASTSD MANT, Y7
	VANDPD       Y7, Y5, Y7
	VBROADCASTSD HALF, Y8
	VORPD        Y8, Y7, Y7
	VPSRLQ       $52, Y5, Y8
	VBROADCASTSD MAGIC, Y9
	VPADDQ       Y9, Y8, Y8
	VBROADCASTSD TWO52, Y9
	VSUBPD       Y9, Y8, Y8
	VBROADCASTSD HSQRT2, Y9
	VCMPPD       $0x12, Y9, Y7, Y9
	VBROADCASTSD ONE, Y10
	VANDPD       Y10, Y9, Y9
	VSUBPD       Y9, Y8, Y8
	VADDPD       Y10, Y9, Y9
	VMULPD       Y9, Y7, Y7
	VSUBPD       Y10, Y7, Y7
	// s = f/(2+f); s2, s4; t1 = s2*(L1+s4*(L3+s4*(L5+s4*L7)));
	// t2 = s4*(L2+s4*(L4+s4*L6)); R = t1+t2; hfsq = 0.5*f*f;
	// k*Ln2Hi - ((hfsq - (s*(hfsq+R) + k*Ln2Lo)) - f)
	VBROADCASTSD TWO, Y9
	VADDPD       Y7, Y9, Y9
	VDIVPD       Y9, Y7, Y9
	VMULPD       Y9, Y9, Y10
	VMULPD       Y10, Y10, Y11
	VBROADCASTSD L7, Y12
	VMULPD       Y11, Y12, Y12
	VBROADCASTSD L5, Y13
	VADDPD       Y13, Y12, Y12
	VMULPD       Y11, Y12, Y12
	VBROADCASTSD L3, Y13
	VADDPD       Y13, Y12, Y12
	VMULPD       Y11, Y12, Y12
	VBROADCASTSD L1, Y13
	VADDPD       Y13, Y12, Y12
	VMULPD       Y12, Y10, Y10
	VBROADCASTSD L6, Y12
	VMULPD       Y11, Y12, Y12
	VBROADCASTSD L4, Y13
	VADDPD       Y13, Y12, Y12
	VMULPD       Y11, Y12, Y12
	VBROADCASTSD L2, Y13
	VADDPD       Y13, Y12, Y12
	VMULPD       Y12, Y11, Y11
	VADDPD       Y11, Y10, Y10
	VBROADCASTSD HALF, Y11
	VMULPD       Y7, Y11, Y11
	VMULPD       Y7, Y11, Y11
	VADDPD       Y11, Y10, Y10
	VMULPD       Y10, Y9, Y9
	VBROADCASTSD LN2LO, Y10
	VMULPD       Y8, Y10, Y10
	VADDPD       Y10, Y9, Y9
	VSUBPD       Y9, Y11, Y11
	VSUBPD       Y7, Y11, Y11
	VBROADCASTSD LN2HI, Y10
	VMULPD       Y10, Y8, Y8
	VSUBPD       Y11, Y8, Y6

	// Log1p(y) → Y7, as log1p.go for 2**-28 ≤ y < 2**53: below Sqrt(2)-1
	// f = y and k = 0; else u = 1+y, k its exponent, the correction
	// c = (k > 0 ? 1-(u-y) : y-(u-1))/u, u's mantissa normalised into
	// [Sqrt(2)/2, Sqrt(2)) (k+1 above Sqrt(2)), f = u-1. Y9 marks the lanes
	// whose reduced mantissa iu is zero (log1p's other branch).
	VADDPD       Y5, Y14, Y2
	VSUBPD       Y5, Y2, Y8
	VSUBPD       Y8, Y14, Y8
	VSUBPD       Y14, Y2, Y9
	VSUBPD       Y9, Y5, Y9
	VPSRLQ       $52, Y2, Y3
	VBROADCASTSD I1023, Y10
	VPCMPGTQ     Y10, Y3, Y10
	VBLENDVPD    Y10, Y8, Y9, Y8
	VDIVPD       Y2, Y8, Y8
	VBROADCASTSD MANT, Y10
	VANDPD       Y10, Y2, Y9
	VBROADCASTSD SQ2MAN, Y10
	VPCMPGTQ     Y9, Y10, Y10
	VPADDQ       Y10, Y3, Y3
	VBROADCASTSD ONE, Y11
	VBROADCASTSD HALF, Y12
	VBLENDVPD    Y10, Y11, Y12, Y11
	VORPD        Y11, Y9, Y11
	VBROADCASTSD TWO52I, Y12
	VPSUBQ       Y9, Y12, Y12
	VPSRLQ       $2, Y12, Y12
	VBLENDVPD    Y10, Y9, Y12, Y9
	VPXOR        Y12, Y12, Y12
	VPCMPEQQ     Y12, Y9, Y9
	VSUBPD       Y14, Y11, Y11
	VBROADCASTSD SQ2M1, Y12
	VCMPPD       $0x11, Y12, Y5, Y12
	VBLENDVPD    Y12, Y5, Y11, Y11
	VPANDN       Y9, Y12, Y9
	VBROADCASTSD MAGIC, Y13
	VPADDQ       Y13, Y3, Y3
	VBROADCASTSD TWO52, Y13
	VSUBPD       Y13, Y3, Y3
	VPANDN       Y3, Y12, Y3
	VXORPD       Y13, Y13, Y13
	VCMPPD       $0x00, Y13, Y3, Y13
	// s = f/(2+f); z = s*s; R = z*(Lp1+z*(Lp2+...+z*(Lp6+z*Lp7)));
	// hfsq = 0.5*f*f; k == 0: f - (hfsq - s*(hfsq+R));
	// else k*Ln2Hi - ((hfsq - (s*(hfsq+R) + (k*Ln2Lo + c))) - f)
	VBROADCASTSD TWO, Y10
	VADDPD       Y11, Y10, Y10
	VDIVPD       Y10, Y11, Y10
	VMULPD       Y10, Y10, Y12
	VBROADCASTSD L7, Y2
	VMULPD       Y2, Y12, Y2
	VBROADCASTSD L6, Y15
	VADDPD       Y15, Y2, Y2
	VMULPD       Y2, Y12, Y2
	VBROADCASTSD L5, Y15
	VADDPD       Y15, Y2, Y2
	VMULPD       Y2, Y12, Y2
	VBROADCASTSD L4, Y15
	VADDPD       Y15, Y2, Y2
	VMULPD       Y2, Y12, Y2
	VBROADCASTSD L3, Y15
	VADDPD       Y15, Y2, Y2
	VMULPD       Y2, Y12, Y2
	VBROADCASTSD L2, Y15
	VADDPD       Y15, Y2, Y2
	VMULPD       Y2, Y12, Y2
	VBROADCASTSD L1, Y15
	VADDPD       Y15, Y2, Y2
	VMULPD       Y2, Y12, Y2
	VBROADCASTSD HALF, Y15
	VMULPD       Y11, Y15, Y15
	VMULPD       Y11, Y15, Y15
	VADDPD       Y2, Y15, Y2
	VMULPD       Y2, Y10, Y2
	VSUBPD       Y2, Y15, Y12
	VSUBPD       Y12, Y11, Y12
	VBROADCASTSD LN2LO, Y10
	VMULPD       Y10, Y3, Y10
	VADDPD       Y8, Y10, Y10
	VADDPD       Y10, Y2, Y2
	VSUBPD       Y2, Y15, Y15
	VSUBPD       Y11, Y15, Y15
	VBROADCASTSD LN2HI, Y10
	VMULPD       Y10, Y3, Y10
	VSUBPD       Y15, Y10, Y10
	VBLENDVPD    Y13, Y12, Y10, Y7

	// The lane's branch, x's sign, x itself below 2**-28; stop before
	// the block when a lane is left to math.Asinh.
	VBLENDVPD    Y4, Y6, Y7, Y6
	VBROADCASTSD ABS, Y1
	VANDPD       Y1, Y0, Y1
	VBROADCASTSD SIGN, Y2
	VANDPD       Y2, Y0, Y2
	VORPD        Y2, Y6, Y6
	VBROADCASTSD NEAR0, Y3
	VCMPPD       $0x11, Y3, Y1, Y3
	VBLENDVPD    Y3, Y0, Y6, Y6
	VBROADCASTSD LARGE, Y2
	VCMPPD       $0x16, Y2, Y1, Y2
	VPANDN       Y9, Y4, Y9
	VPANDN       Y9, Y3, Y9
	VPOR         Y9, Y2, Y2
	VMOVMSKPD    Y2, AX
	TESTQ        AX, AX
	JNE          done
	VMOVUPD      Y6, (SI)(DX*8)
	ADDQ         $4, DX
	JMP          block

done:
	MOVQ DX, ret+16(FP)
	VZEROUPPER
	RET
