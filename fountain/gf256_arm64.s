//go:build arm64 && !purego

#include "textflag.h"

// NEON kernels, 64 bytes per step; n is always a positive multiple of 64.

// func xorNEON(dst, src *byte, n int)
TEXT ·xorNEON(SB), NOSPLIT, $0-24
	MOVD dst+0(FP), R0
	MOVD src+8(FP), R1
	MOVD n+16(FP), R2

loop:
	VLD1.P 64(R1), [V0.B16, V1.B16, V2.B16, V3.B16]
	VLD1   (R0), [V4.B16, V5.B16, V6.B16, V7.B16]
	VEOR   V0.B16, V4.B16, V4.B16
	VEOR   V1.B16, V5.B16, V5.B16
	VEOR   V2.B16, V6.B16, V6.B16
	VEOR   V3.B16, V7.B16, V7.B16
	VST1.P [V4.B16, V5.B16, V6.B16, V7.B16], 64(R0)
	SUBS   $64, R2, R2
	BNE    loop
	RET

// func xor2NEON(dst, a, b *byte, n int)
TEXT ·xor2NEON(SB), NOSPLIT, $0-32
	MOVD dst+0(FP), R0
	MOVD a+8(FP), R1
	MOVD b+16(FP), R2
	MOVD n+24(FP), R3

loop:
	VLD1.P 64(R1), [V0.B16, V1.B16, V2.B16, V3.B16]
	VLD1.P 64(R2), [V4.B16, V5.B16, V6.B16, V7.B16]
	VEOR   V0.B16, V4.B16, V4.B16
	VEOR   V1.B16, V5.B16, V5.B16
	VEOR   V2.B16, V6.B16, V6.B16
	VEOR   V3.B16, V7.B16, V7.B16
	VST1.P [V4.B16, V5.B16, V6.B16, V7.B16], 64(R0)
	SUBS   $64, R3, R3
	BNE    loop
	RET

// func xorManyNEON(dst *byte, srcs **byte, nsrc int, n int)
TEXT ·xorManyNEON(SB), NOSPLIT, $0-32
	MOVD dst+0(FP), R0
	MOVD srcs+8(FP), R1
	MOVD nsrc+16(FP), R2
	MOVD n+24(FP), R3
	MOVD ZR, R6

outer:
	ADD  R6, R0, R7
	VLD1 (R7), [V0.B16, V1.B16, V2.B16, V3.B16]
	MOVD ZR, R5

inner:
	MOVD (R1)(R5<<3), R8
	ADD  R6, R8, R8
	VLD1 (R8), [V4.B16, V5.B16, V6.B16, V7.B16]
	VEOR V4.B16, V0.B16, V0.B16
	VEOR V5.B16, V1.B16, V1.B16
	VEOR V6.B16, V2.B16, V2.B16
	VEOR V7.B16, V3.B16, V3.B16
	ADD  $1, R5, R5
	CMP  R2, R5
	BLT  inner
	VST1 [V0.B16, V1.B16, V2.B16, V3.B16], (R7)
	ADD  $64, R6, R6
	CMP  R3, R6
	BLT  outer
	RET

// func xorIntoNEON(dst *byte, srcs **byte, nsrc int, n int)
TEXT ·xorIntoNEON(SB), NOSPLIT, $0-32
	MOVD dst+0(FP), R0
	MOVD srcs+8(FP), R1
	MOVD nsrc+16(FP), R2
	MOVD n+24(FP), R3
	MOVD ZR, R6

outer:
	MOVD (R1), R8
	ADD  R6, R8, R8
	VLD1 (R8), [V0.B16, V1.B16, V2.B16, V3.B16]
	MOVD $1, R5
	CMP  R2, R5
	BGE  store

inner:
	MOVD (R1)(R5<<3), R8
	ADD  R6, R8, R8
	VLD1 (R8), [V4.B16, V5.B16, V6.B16, V7.B16]
	VEOR V4.B16, V0.B16, V0.B16
	VEOR V5.B16, V1.B16, V1.B16
	VEOR V6.B16, V2.B16, V2.B16
	VEOR V7.B16, V3.B16, V3.B16
	ADD  $1, R5, R5
	CMP  R2, R5
	BLT  inner

store:
	ADD  R6, R0, R7
	VST1 [V0.B16, V1.B16, V2.B16, V3.B16], (R7)
	ADD  $64, R6, R6
	CMP  R3, R6
	BLT  outer
	RET
