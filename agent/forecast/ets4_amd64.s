//go:build amd64

#include "textflag.h"

// ETS sums of squares of four parameter sets on the same complete series
// y, one set to a lane: each lane makes etsRunComplete's operations in
// its order (no fused multiply-add), so each sum is its sum to the bit.
// A lane whose error is NaN adds nothing and moves its level by +0, as
// etsRunComplete does.

// func ets4Simple(y *float64, n int, l0 float64, alpha *[4]float64, out *[4]float64)
//
// Simple exponential smoothing: e = v - l; l = l + alpha·e. Where e is
// NaN, l = l + alpha·(+0), computed beside the other branch, so that the
// NaN test is off the chain from one level to the next.
TEXT ·ets4Simple(SB), NOSPLIT, $0-40
	MOVQ         y+0(FP), SI
	MOVQ         n+8(FP), CX
	VBROADCASTSD l0+16(FP), Y0
	MOVQ         alpha+24(FP), R8
	VMOVUPD      (R8), Y1
	MOVQ         out+32(FP), DI
	VXORPD       Y2, Y2, Y2 // sse
	VMULPD       Y2, Y1, Y8 // alpha·(+0)
	XORQ         DX, DX

loops:
	CMPQ         DX, CX
	JGE          dones
	VBROADCASTSD (SI)(DX*8), Y3
	VSUBPD       Y0, Y3, Y4        // e = v - l
	VCMPPD       $0x07, Y4, Y4, Y5 // not NaN
	VADDPD       Y8, Y0, Y9        // l + alpha·(+0), for a NaN e
	VMULPD       Y4, Y1, Y6        // alpha·e
	VADDPD       Y6, Y0, Y6        // l + alpha·e
	VBLENDVPD    Y5, Y6, Y9, Y0    // l
	VMULPD       Y4, Y4, Y7        // e·e
	VADDPD       Y7, Y2, Y7        // sse + e·e
	VBLENDVPD    Y5, Y7, Y2, Y2    // where e is not NaN
	INCQ         DX
	JMP          loops

dones:
	VMOVUPD Y2, (DI)
	VZEROUPPER
	RET

// func ets4Trend(y *float64, n int, l0, b0 float64, p *[12]float64, out *[4]float64)
//
// Additive (damped) trend: phib = phi·b; f = l + phib; e = v - f;
// l = l + phib + alpha·e; b = phib + beta·e (with +0 for a NaN e, as for
// ets4Simple). etsRunComplete adds its absent seasonal term, +0, to f:
// adding +0 changes at most the sign of a zero, and a zero's sign never
// reaches a square or a non-zero sum (its no-trend loop leaves its zero
// terms out for the same reason), so the sums are the same to the bit and
// the chain from one level to the next is one addition shorter. p holds
// the lanes' alpha (p[0:4]), beta (p[4:8]) and phi (p[8:12]).
TEXT ·ets4Trend(SB), NOSPLIT, $0-48
	MOVQ         y+0(FP), SI
	MOVQ         n+8(FP), CX
	VBROADCASTSD l0+16(FP), Y0
	VBROADCASTSD b0+24(FP), Y8
	MOVQ         p+32(FP), R8
	VMOVUPD      (R8), Y1
	VMOVUPD      32(R8), Y9
	VMOVUPD      64(R8), Y10
	MOVQ         out+40(FP), DI
	VXORPD       Y2, Y2, Y2    // sse
	VXORPD       Y11, Y11, Y11 // +0
	VMULPD       Y11, Y1, Y14  // alpha·(+0)
	VMULPD       Y11, Y9, Y15  // beta·(+0)
	XORQ         DX, DX

loopt:
	CMPQ         DX, CX
	JGE          donet
	VMULPD       Y8, Y10, Y12      // phib = phi·b
	VADDPD       Y12, Y0, Y13      // f = l + phib
	VBROADCASTSD (SI)(DX*8), Y3
	VSUBPD       Y13, Y3, Y4       // e = v - f
	VCMPPD       $0x07, Y4, Y4, Y5 // not NaN
	VADDPD       Y14, Y13, Y6      // (l + phib) + alpha·(+0)
	VMULPD       Y4, Y1, Y7        // alpha·e
	VADDPD       Y7, Y13, Y7       // (l + phib) + alpha·e
	VBLENDVPD    Y5, Y7, Y6, Y0    // l
	VADDPD       Y15, Y12, Y6      // phib + beta·(+0)
	VMULPD       Y4, Y9, Y7        // beta·e
	VADDPD       Y7, Y12, Y7       // phib + beta·e
	VBLENDVPD    Y5, Y7, Y6, Y8    // b
	VMULPD       Y4, Y4, Y7        // e·e
	VADDPD       Y7, Y2, Y7        // sse + e·e
	VBLENDVPD    Y5, Y7, Y2, Y2    // where e is not NaN
	INCQ         DX
	JMP          loopt

donet:
	VMOVUPD Y2, (DI)
	VZEROUPPER
	RET
