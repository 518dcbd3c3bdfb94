//go:build !purego && !nopshufb

#include "textflag.h"

// GF(256) multiplication by a constant c with VPSHUFB: c*x = lo[x & 15] ^
// hi[x >> 4], the two 16-byte tables (tab = gf.nib[c]) in both lanes.

// func mulAddAVX2(dst, src *byte, n int, tab *[32]byte)
TEXT ·mulAddAVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	MOVQ tab+24(FP), AX
	VBROADCASTI128 (AX), Y6
	VBROADCASTI128 16(AX), Y7
	MOVL $0x0f0f0f0f, AX
	MOVD AX, X8
	VPBROADCASTD X8, Y8

loop:
	VMOVDQU (SI), Y0
	VMOVDQU 32(SI), Y1
	VPSRLQ $4, Y0, Y2
	VPSRLQ $4, Y1, Y3
	VPAND Y8, Y0, Y0
	VPAND Y8, Y1, Y1
	VPAND Y8, Y2, Y2
	VPAND Y8, Y3, Y3
	VPSHUFB Y0, Y6, Y0
	VPSHUFB Y1, Y6, Y1
	VPSHUFB Y2, Y7, Y2
	VPSHUFB Y3, Y7, Y3
	VPXOR Y2, Y0, Y0
	VPXOR Y3, Y1, Y1
	VPXOR (DI), Y0, Y0
	VPXOR 32(DI), Y1, Y1
	VMOVDQU Y0, (DI)
	VMOVDQU Y1, 32(DI)
	ADDQ $64, SI
	ADDQ $64, DI
	SUBQ $64, CX
	JNZ  loop
	VZEROUPPER
	RET

// func scaleAVX2(dst *byte, n int, tab *[32]byte)
TEXT ·scaleAVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ n+8(FP), CX
	MOVQ tab+16(FP), AX
	VBROADCASTI128 (AX), Y6
	VBROADCASTI128 16(AX), Y7
	MOVL $0x0f0f0f0f, AX
	MOVD AX, X8
	VPBROADCASTD X8, Y8

loop:
	VMOVDQU (DI), Y0
	VMOVDQU 32(DI), Y1
	VPSRLQ $4, Y0, Y2
	VPSRLQ $4, Y1, Y3
	VPAND Y8, Y0, Y0
	VPAND Y8, Y1, Y1
	VPAND Y8, Y2, Y2
	VPAND Y8, Y3, Y3
	VPSHUFB Y0, Y6, Y0
	VPSHUFB Y1, Y6, Y1
	VPSHUFB Y2, Y7, Y2
	VPSHUFB Y3, Y7, Y3
	VPXOR Y2, Y0, Y0
	VPXOR Y3, Y1, Y1
	VMOVDQU Y0, (DI)
	VMOVDQU Y1, 32(DI)
	ADDQ $64, DI
	SUBQ $64, CX
	JNZ  loop
	VZEROUPPER
	RET
