#include "textflag.h"

// func kernel4x8(k int, a *float64, lda int, b *float64, ldb int, c *float64, ldc int)
//
// Y0..Y7 hold the 4×8 block of c (two registers a row). For each l: Y8,
// Y9 the 8 elements of row l of b; Y10 a[r][l] broadcast; Y11 their
// product, rounded, then added to the row's accumulators. No fused
// multiply-add: the same roundings as gonum's SSE2 axpy.
TEXT ·kernel4x8(SB), NOSPLIT, $0-56
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ lda+16(FP), R8
	MOVQ b+24(FP), DI
	MOVQ ldb+32(FP), R9
	MOVQ c+40(FP), DX
	MOVQ ldc+48(FP), R10
	SHLQ $3, R8
	SHLQ $3, R9
	SHLQ $3, R10
	LEAQ (SI)(R8*1), R11
	LEAQ (R11)(R8*1), R12
	LEAQ (R12)(R8*1), R13
	LEAQ (DX)(R10*1), R14
	LEAQ (R14)(R10*1), BX
	LEAQ (BX)(R10*1), R10
	VMOVUPD (DX), Y0
	VMOVUPD 32(DX), Y1
	VMOVUPD (R14), Y2
	VMOVUPD 32(R14), Y3
	VMOVUPD (BX), Y4
	VMOVUPD 32(BX), Y5
	VMOVUPD (R10), Y6
	VMOVUPD 32(R10), Y7
	XORQ AX, AX

loop:
	TESTQ CX, CX
	JE   done
	VMOVUPD (DI), Y8
	VMOVUPD 32(DI), Y9
	VBROADCASTSD (SI)(AX*1), Y10
	VMULPD Y8, Y10, Y11
	VADDPD Y11, Y0, Y0
	VMULPD Y9, Y10, Y11
	VADDPD Y11, Y1, Y1
	VBROADCASTSD (R11)(AX*1), Y10
	VMULPD Y8, Y10, Y11
	VADDPD Y11, Y2, Y2
	VMULPD Y9, Y10, Y11
	VADDPD Y11, Y3, Y3
	VBROADCASTSD (R12)(AX*1), Y10
	VMULPD Y8, Y10, Y11
	VADDPD Y11, Y4, Y4
	VMULPD Y9, Y10, Y11
	VADDPD Y11, Y5, Y5
	VBROADCASTSD (R13)(AX*1), Y10
	VMULPD Y8, Y10, Y11
	VADDPD Y11, Y6, Y6
	VMULPD Y9, Y10, Y11
	VADDPD Y11, Y7, Y7
	ADDQ $8, AX
	ADDQ R9, DI
	DECQ CX
	JMP  loop

done:
	VMOVUPD Y0, (DX)
	VMOVUPD Y1, 32(DX)
	VMOVUPD Y2, (R14)
	VMOVUPD Y3, 32(R14)
	VMOVUPD Y4, (BX)
	VMOVUPD Y5, 32(BX)
	VMOVUPD Y6, (R10)
	VMOVUPD Y7, 32(R10)
	VZEROUPPER
	RET

// func reluAVX(x *float64, n int)
//
// x[i] = max(+0, x[i]) for the first n elements (n a multiple of 4): with
// +0 as VMAXPD's first operand it returns the second unless +0 is greater,
// so a negative value becomes +0 and -0, NaN and the rest stay as they are,
// as relu's comparison leaves them.
TEXT ·reluAVX(SB), NOSPLIT, $0-16
	MOVQ   x+0(FP), SI
	MOVQ   n+8(FP), CX
	VXORPD Y15, Y15, Y15

reluloop:
	CMPQ    CX, $4
	JLT     reludone
	VMAXPD  (SI), Y15, Y0
	VMOVUPD Y0, (SI)
	ADDQ    $32, SI
	SUBQ    $4, CX
	JMP     reluloop

reludone:
	VZEROUPPER
	RET

// func addAVX(x *float64, bias *float64, n int, relu bool)
//
// x[i] += bias[i] for the first n elements (n a multiple of 4), each sum
// rounded as the scalar add rounds it; with relu, then max(+0, x[i]) as
// reluAVX takes it.
TEXT ·addAVX(SB), NOSPLIT, $0-25
	MOVQ   x+0(FP), SI
	MOVQ   bias+8(FP), DI
	MOVQ   n+16(FP), CX
	MOVB   relu+24(FP), AX
	VXORPD Y15, Y15, Y15
	TESTB  AX, AX
	JNE    addreluloop

addloop:
	CMPQ    CX, $4
	JLT     adddone
	VMOVUPD (SI), Y0
	VADDPD  (DI), Y0, Y0
	VMOVUPD Y0, (SI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	SUBQ    $4, CX
	JMP     addloop

addreluloop:
	CMPQ    CX, $4
	JLT     adddone
	VMOVUPD (SI), Y0
	VADDPD  (DI), Y0, Y0
	VMAXPD  Y0, Y15, Y0
	VMOVUPD Y0, (SI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	SUBQ    $4, CX
	JMP     addreluloop

adddone:
	VZEROUPPER
	RET

// func kernel8x8(k int, a *float64, lda int, b *float64, ldb int, c *float64, ldc int, cols int)
//
// kernel4x8 for 8 rows and up to 8 columns with AVX-512: Z0..Z7 hold the
// rows of the block of c; for each l, Z8 the first cols elements of row l
// of b (the mask K1 keeps the rest of b, c and the products untouched),
// Z9..Z16 a[r][l] broadcast times Z8, each product rounded, then added.
// No fused multiply-add.
TEXT ·kernel8x8(SB), NOSPLIT, $0-64
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ lda+16(FP), R8
	MOVQ b+24(FP), DI
	MOVQ ldb+32(FP), R9
	MOVQ c+40(FP), DX
	MOVQ ldc+48(FP), R10
	MOVQ cols+56(FP), CX
	MOVQ $1, BX
	SHLQ CX, BX
	DECQ BX
	KMOVW BX, K1
	MOVQ k+0(FP), CX
	SHLQ $3, R8
	SHLQ $3, R9
	SHLQ $3, R10
	// a's rows: SI, SI+R8, SI+2R8, R11, SI+4R8, R11+2R8, R12, R11+4R8
	LEAQ (SI)(R8*2), R11
	ADDQ R8, R11
	LEAQ (R11)(R8*2), R12
	ADDQ R8, R12
	MOVQ DX, AX
	VMOVUPD.Z (AX), K1, Z0
	ADDQ R10, AX
	VMOVUPD.Z (AX), K1, Z1
	ADDQ R10, AX
	VMOVUPD.Z (AX), K1, Z2
	ADDQ R10, AX
	VMOVUPD.Z (AX), K1, Z3
	ADDQ R10, AX
	VMOVUPD.Z (AX), K1, Z4
	ADDQ R10, AX
	VMOVUPD.Z (AX), K1, Z5
	ADDQ R10, AX
	VMOVUPD.Z (AX), K1, Z6
	ADDQ R10, AX
	VMOVUPD.Z (AX), K1, Z7

loop8:
	TESTQ CX, CX
	JE    done8
	VMOVUPD.Z (DI), K1, Z8
	VBROADCASTSD (SI), Z9
	VBROADCASTSD (SI)(R8*1), Z10
	VBROADCASTSD (SI)(R8*2), Z11
	VBROADCASTSD (R11), Z12
	VBROADCASTSD (SI)(R8*4), Z13
	VBROADCASTSD (R11)(R8*2), Z14
	VBROADCASTSD (R12), Z15
	VBROADCASTSD (R11)(R8*4), Z16
	VMULPD Z8, Z9, Z9
	VMULPD Z8, Z10, Z10
	VMULPD Z8, Z11, Z11
	VMULPD Z8, Z12, Z12
	VMULPD Z8, Z13, Z13
	VMULPD Z8, Z14, Z14
	VMULPD Z8, Z15, Z15
	VMULPD Z8, Z16, Z16
	VADDPD Z9, Z0, Z0
	VADDPD Z10, Z1, Z1
	VADDPD Z11, Z2, Z2
	VADDPD Z12, Z3, Z3
	VADDPD Z13, Z4, Z4
	VADDPD Z14, Z5, Z5
	VADDPD Z15, Z6, Z6
	VADDPD Z16, Z7, Z7
	ADDQ  $8, SI
	ADDQ  $8, R11
	ADDQ  $8, R12
	ADDQ  R9, DI
	DECQ  CX
	JMP   loop8

done8:
	MOVQ DX, AX
	VMOVUPD Z0, K1, (AX)
	ADDQ R10, AX
	VMOVUPD Z1, K1, (AX)
	ADDQ R10, AX
	VMOVUPD Z2, K1, (AX)
	ADDQ R10, AX
	VMOVUPD Z3, K1, (AX)
	ADDQ R10, AX
	VMOVUPD Z4, K1, (AX)
	ADDQ R10, AX
	VMOVUPD Z5, K1, (AX)
	ADDQ R10, AX
	VMOVUPD Z6, K1, (AX)
	ADDQ R10, AX
	VMOVUPD Z7, K1, (AX)
	VZEROUPPER
	RET
