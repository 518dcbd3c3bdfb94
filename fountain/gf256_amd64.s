//go:build amd64 && !purego

#include "textflag.h"

// func mulAddGFNI(dst, src *byte, n int, mat uint64)
TEXT ·mulAddGFNI(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	VPBROADCASTQ mat+24(FP), Z1

loop:
	VMOVDQU64 (SI), Z0
	VGF2P8AFFINEQB $0, Z1, Z0, Z0
	VPXORQ (DI), Z0, Z0
	VMOVDQU64 Z0, (DI)
	ADDQ $64, SI
	ADDQ $64, DI
	SUBQ $64, CX
	JNZ loop
	VZEROUPPER
	RET

// func scaleGFNI(dst *byte, n int, mat uint64)
TEXT ·scaleGFNI(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ n+8(FP), CX
	VPBROADCASTQ mat+16(FP), Z1

sloop:
	VMOVDQU64 (DI), Z0
	VGF2P8AFFINEQB $0, Z1, Z0, Z0
	VMOVDQU64 Z0, (DI)
	ADDQ $64, DI
	SUBQ $64, CX
	JNZ sloop
	VZEROUPPER
	RET

// func xorAVX512(dst, src *byte, n int)
TEXT ·xorAVX512(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	CMPQ CX, $128
	JB   xtail

xloop2:
	VMOVDQU64 (SI), Z0
	VMOVDQU64 64(SI), Z1
	VPXORQ (DI), Z0, Z0
	VPXORQ 64(DI), Z1, Z1
	VMOVDQU64 Z0, (DI)
	VMOVDQU64 Z1, 64(DI)
	ADDQ $128, SI
	ADDQ $128, DI
	SUBQ $128, CX
	CMPQ CX, $128
	JAE  xloop2

xtail:
	TESTQ CX, CX
	JZ    xdone
	VMOVDQU64 (SI), Z0
	VPXORQ (DI), Z0, Z0
	VMOVDQU64 Z0, (DI)

xdone:
	VZEROUPPER
	RET

// func xor2AVX512(dst, a, b *byte, n int)
TEXT ·xor2AVX512(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DX
	MOVQ n+24(FP), CX
	CMPQ CX, $128
	JB   x2tail

x2loop2:
	VMOVDQU64 (SI), Z0
	VMOVDQU64 64(SI), Z1
	VPXORQ (DX), Z0, Z0
	VPXORQ 64(DX), Z1, Z1
	VMOVDQU64 Z0, (DI)
	VMOVDQU64 Z1, 64(DI)
	ADDQ $128, SI
	ADDQ $128, DX
	ADDQ $128, DI
	SUBQ $128, CX
	CMPQ CX, $128
	JAE  x2loop2

x2tail:
	TESTQ CX, CX
	JZ    x2done
	VMOVDQU64 (SI), Z0
	VPXORQ (DX), Z0, Z0
	VMOVDQU64 Z0, (DI)

x2done:
	VZEROUPPER
	RET

// func xorManyAVX512(dst *byte, srcs **byte, nsrc int, n int)
// dst[i] ^= srcs[0][i] ^ ... ^ srcs[nsrc-1][i] for n bytes; n a positive
// multiple of 64, nsrc >= 1.
TEXT ·xorManyAVX512(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ srcs+8(FP), SI
	MOVQ nsrc+16(FP), DX
	MOVQ n+24(FP), CX
	XORQ AX, AX

mloop256:
	CMPQ CX, $256
	JB   mtail
	VMOVDQU64 (DI)(AX*1), Z0
	VMOVDQU64 64(DI)(AX*1), Z1
	VMOVDQU64 128(DI)(AX*1), Z2
	VMOVDQU64 192(DI)(AX*1), Z3
	XORQ BX, BX

msrc256:
	MOVQ (SI)(BX*8), R8
	VPXORQ (R8)(AX*1), Z0, Z0
	VPXORQ 64(R8)(AX*1), Z1, Z1
	VPXORQ 128(R8)(AX*1), Z2, Z2
	VPXORQ 192(R8)(AX*1), Z3, Z3
	INCQ BX
	CMPQ BX, DX
	JB   msrc256
	VMOVDQU64 Z0, (DI)(AX*1)
	VMOVDQU64 Z1, 64(DI)(AX*1)
	VMOVDQU64 Z2, 128(DI)(AX*1)
	VMOVDQU64 Z3, 192(DI)(AX*1)
	ADDQ $256, AX
	SUBQ $256, CX
	JMP  mloop256

mtail:
	TESTQ CX, CX
	JZ    mdone
	VMOVDQU64 (DI)(AX*1), Z0
	XORQ BX, BX

msrc64:
	MOVQ (SI)(BX*8), R8
	VPXORQ (R8)(AX*1), Z0, Z0
	INCQ BX
	CMPQ BX, DX
	JB   msrc64
	VMOVDQU64 Z0, (DI)(AX*1)
	ADDQ $64, AX
	SUBQ $64, CX
	JMP  mtail

mdone:
	VZEROUPPER
	RET
