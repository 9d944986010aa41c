#include "textflag.h"

// func updateDistancesAVX(d, xa, xb *float64, n int, a, b, tol float64) bool
//
// For each entry: u = a-xa[i], v = b-xb[i], s = d[i]+u·u, d[i] = s-v·v,
// each rounded as Go rounds it; an entry with d[i] < tol·s becomes NaN
// (all bits set) and the result is true.
TEXT ·updateDistancesAVX(SB), NOSPLIT, $0-57
	MOVQ d+0(FP), DI
	MOVQ xa+8(FP), SI
	MOVQ xb+16(FP), DX
	MOVQ n+24(FP), CX
	VBROADCASTSD a+32(FP), Y0
	VBROADCASTSD b+40(FP), Y1
	VBROADCASTSD tol+48(FP), Y2
	SHRQ $2, CX
	XORQ AX, AX
	XORQ BX, BX

loop:
	TESTQ CX, CX
	JE   done
	VMOVUPD (SI)(AX*1), Y3
	VSUBPD Y3, Y0, Y3 // u = a - xa
	VMULPD Y3, Y3, Y3 // u·u
	VMOVUPD (DX)(AX*1), Y4
	VSUBPD Y4, Y1, Y4 // v = b - xb
	VMULPD Y4, Y4, Y4 // v·v
	VMOVUPD (DI)(AX*1), Y5
	VADDPD Y3, Y5, Y5 // s = old + u·u
	VSUBPD Y4, Y5, Y6 // s - v·v
	VMULPD Y2, Y5, Y7 // tol·s
	VCMPPD $1, Y7, Y6, Y8 // s-v·v < tol·s
	VORPD Y8, Y6, Y6 // NaN where it is
	VMOVUPD Y6, (DI)(AX*1)
	VMOVMSKPD Y8, R8
	ORQ  R8, BX
	ADDQ $32, AX
	DECQ CX
	JMP  loop

done:
	VZEROUPPER
	TESTQ BX, BX
	SETNE ret+56(FP)
	RET

// func firstBelowAVX(d *float64, n int, worst float64, lanes int) int
//
// Sixteen entries at a time while no lane is below worst, then four at a
// time to find the group.
TEXT ·firstBelowAVX(SB), NOSPLIT, $0-40
	MOVQ d+0(FP), DI
	MOVQ n+8(FP), CX
	VBROADCASTSD worst+16(FP), Y0
	MOVQ lanes+24(FP), R9
	XORQ AX, AX
	MOVQ CX, R10
	SUBQ $16, R10 // the last start of sixteen

scan16:
	CMPQ AX, R10
	JG   scan4
	VMOVUPD (DI)(AX*8), Y1
	VMOVUPD 32(DI)(AX*8), Y2
	VMOVUPD 64(DI)(AX*8), Y3
	VMOVUPD 96(DI)(AX*8), Y4
	VCMPPD $1, Y0, Y1, Y1
	VCMPPD $1, Y0, Y2, Y2
	VCMPPD $1, Y0, Y3, Y3
	VCMPPD $1, Y0, Y4, Y4
	VORPD Y1, Y2, Y2
	VORPD Y3, Y4, Y4
	VORPD Y2, Y4, Y4
	VMOVMSKPD Y4, R8
	ANDQ R9, R8
	JNE  scan4
	ADDQ $16, AX
	JMP  scan16

scan4:
	CMPQ AX, CX
	JGE  none
	VMOVUPD (DI)(AX*8), Y1
	VCMPPD $1, Y0, Y1, Y2 // d < worst
	VMOVMSKPD Y2, R8
	ANDQ R9, R8
	JNE  found
	ADDQ $4, AX
	JMP  scan4

none:
	MOVQ CX, AX

found:
	VZEROUPPER
	MOVQ AX, ret+32(FP)
	RET
