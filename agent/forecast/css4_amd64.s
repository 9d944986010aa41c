//go:build amd64

#include "textflag.h"

// The conditional sums of squares of four coefficient sets of one ARMA
// order on the same complete series w, one set to a lane: each lane makes
// cssComplete's operations in its order (no fused multiply-add), so each
// sum is cssComplete's to the bit. The recursion through the last error is
// latency-bound: four lanes cost about what one sum does.
//
// p holds the lanes' mu (p[0:4]), first AR coefficient (p[4:8]), second
// coefficient (p[8:12]: AR for (2,1), MA for (1,2)) and first MA
// coefficient (p[12:16]).

// func css4ARMA11(w *float64, n int, p *[16]float64, out *[4]float64)
TEXT ·css4ARMA11(SB), NOSPLIT, $0-32
	MOVQ    w+0(FP), SI
	MOVQ    n+8(FP), DX
	MOVQ    p+16(FP), R8
	MOVQ    out+24(FP), DI
	VMOVUPD 0(R8), Y0
	VMOVUPD 32(R8), Y1
	VMOVUPD 96(R8), Y3
	VXORPD  Y4, Y4, Y4 // e1
	VXORPD  Y5, Y5, Y5 // sse
	MOVQ    $1, CX

loop11:
	CMPQ         CX, DX
	JGE          done11
	VBROADCASTSD -8(SI)(CX*8), Y6
	VSUBPD       Y0, Y6, Y6       // w[t-1] - mu
	VMULPD       Y6, Y1, Y6       // a0·(w[t-1] - mu)
	VADDPD       Y6, Y0, Y6       // f = mu + …
	VMULPD       Y4, Y3, Y7       // t0·e1
	VADDPD       Y7, Y6, Y6       // f += t0·e1
	VBROADCASTSD (SI)(CX*8), Y7
	VSUBPD       Y6, Y7, Y4       // e = w[t] - f
	VMULPD       Y4, Y4, Y7
	VADDPD       Y7, Y5, Y5       // sse += e·e
	INCQ         CX
	JMP          loop11

done11:
	VMOVUPD Y5, (DI)
	VZEROUPPER
	RET

// func css4ARMA21(w *float64, n int, p *[16]float64, out *[4]float64)
TEXT ·css4ARMA21(SB), NOSPLIT, $0-32
	MOVQ    w+0(FP), SI
	MOVQ    n+8(FP), DX
	MOVQ    p+16(FP), R8
	MOVQ    out+24(FP), DI
	VMOVUPD 0(R8), Y0
	VMOVUPD 32(R8), Y1
	VMOVUPD 64(R8), Y2
	VMOVUPD 96(R8), Y3
	VXORPD  Y4, Y4, Y4 // e1
	VXORPD  Y5, Y5, Y5 // sse
	MOVQ    $2, CX

loop21:
	CMPQ         CX, DX
	JGE          done21
	VBROADCASTSD -8(SI)(CX*8), Y6
	VSUBPD       Y0, Y6, Y6       // w[t-1] - mu
	VMULPD       Y6, Y1, Y6       // a0·(w[t-1] - mu)
	VADDPD       Y6, Y0, Y6       // f = mu + …
	VBROADCASTSD -16(SI)(CX*8), Y8
	VSUBPD       Y0, Y8, Y8       // w[t-2] - mu
	VMULPD       Y8, Y2, Y8       // a1·(w[t-2] - mu)
	VADDPD       Y8, Y6, Y6       // f += …
	VMULPD       Y4, Y3, Y7       // t0·e1
	VADDPD       Y7, Y6, Y6       // f += t0·e1
	VBROADCASTSD (SI)(CX*8), Y7
	VSUBPD       Y6, Y7, Y4       // e = w[t] - f
	VMULPD       Y4, Y4, Y7
	VADDPD       Y7, Y5, Y5       // sse += e·e
	INCQ         CX
	JMP          loop21

done21:
	VMOVUPD Y5, (DI)
	VZEROUPPER
	RET

// func css4ARMA12(w *float64, n int, p *[16]float64, out *[4]float64)
TEXT ·css4ARMA12(SB), NOSPLIT, $0-32
	MOVQ    w+0(FP), SI
	MOVQ    n+8(FP), DX
	MOVQ    p+16(FP), R8
	MOVQ    out+24(FP), DI
	VMOVUPD 0(R8), Y0
	VMOVUPD 32(R8), Y1
	VMOVUPD 64(R8), Y2
	VMOVUPD 96(R8), Y3
	VXORPD  Y9, Y9, Y9 // e2 = 0 (and e0)

	// t = 1: f = mu + a0·(w[0] - mu) + t0·0; e1 = w[1] - f; sse = 0 + e1·e1.
	VBROADCASTSD (SI), Y6
	VSUBPD       Y0, Y6, Y6
	VMULPD       Y6, Y1, Y6
	VADDPD       Y6, Y0, Y6
	VMULPD       Y9, Y3, Y7
	VADDPD       Y7, Y6, Y6
	VBROADCASTSD 8(SI), Y7
	VSUBPD       Y6, Y7, Y4       // e1
	VMULPD       Y4, Y4, Y7
	VXORPD       Y5, Y5, Y5
	VADDPD       Y7, Y5, Y5       // sse
	MOVQ         $2, CX

loop12:
	CMPQ         CX, DX
	JGE          done12
	VBROADCASTSD -8(SI)(CX*8), Y6
	VSUBPD       Y0, Y6, Y6       // w[t-1] - mu
	VMULPD       Y6, Y1, Y6       // a0·(w[t-1] - mu)
	VADDPD       Y6, Y0, Y6       // f = mu + …
	VMULPD       Y4, Y3, Y7       // t0·e1
	VADDPD       Y7, Y6, Y6       // f += t0·e1
	VMULPD       Y9, Y2, Y8       // t1·e2
	VADDPD       Y8, Y6, Y6       // f += t1·e2
	VMOVAPD      Y4, Y9           // e2 = e1
	VBROADCASTSD (SI)(CX*8), Y7
	VSUBPD       Y6, Y7, Y4       // e = w[t] - f
	VMULPD       Y4, Y4, Y7
	VADDPD       Y7, Y5, Y5       // sse += e·e
	INCQ         CX
	JMP          loop12

done12:
	VMOVUPD Y5, (DI)
	VZEROUPPER
	RET
