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

// func xorIntoAVX512(dst *byte, srcs **byte, nsrc int, n int)
// dst[i] = srcs[0][i] ^ ... ^ srcs[nsrc-1][i] for n bytes; n a positive
// multiple of 64, nsrc >= 1.
TEXT ·xorIntoAVX512(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ srcs+8(FP), SI
	MOVQ nsrc+16(FP), DX
	MOVQ n+24(FP), CX
	MOVQ (SI), R9
	XORQ AX, AX

iloop256:
	CMPQ CX, $256
	JB   itail
	VMOVDQU64 (R9)(AX*1), Z0
	VMOVDQU64 64(R9)(AX*1), Z1
	VMOVDQU64 128(R9)(AX*1), Z2
	VMOVDQU64 192(R9)(AX*1), Z3
	MOVQ $1, BX
	CMPQ BX, DX
	JAE  istore256

isrc256:
	MOVQ (SI)(BX*8), R8
	VPXORQ (R8)(AX*1), Z0, Z0
	VPXORQ 64(R8)(AX*1), Z1, Z1
	VPXORQ 128(R8)(AX*1), Z2, Z2
	VPXORQ 192(R8)(AX*1), Z3, Z3
	INCQ BX
	CMPQ BX, DX
	JB   isrc256

istore256:
	VMOVDQU64 Z0, (DI)(AX*1)
	VMOVDQU64 Z1, 64(DI)(AX*1)
	VMOVDQU64 Z2, 128(DI)(AX*1)
	VMOVDQU64 Z3, 192(DI)(AX*1)
	ADDQ $256, AX
	SUBQ $256, CX
	JMP  iloop256

itail:
	TESTQ CX, CX
	JZ    idone
	VMOVDQU64 (R9)(AX*1), Z0
	MOVQ $1, BX
	CMPQ BX, DX
	JAE  istore64

isrc64:
	MOVQ (SI)(BX*8), R8
	VPXORQ (R8)(AX*1), Z0, Z0
	INCQ BX
	CMPQ BX, DX
	JB   isrc64

istore64:
	VMOVDQU64 Z0, (DI)(AX*1)
	ADDQ $64, AX
	SUBQ $64, CX
	JMP  itail

idone:
	VZEROUPPER
	RET

// func hdpcGFNI(slots *[]byte, y *int32, h12 *uint16, n int, off int, acc *byte, z *byte, mat uint64)
// For m = 0..n-1, on the 64 bytes at offset off of the symbols: z = mat*z
// ^ slots[y[m]] (no symbol when y[m] < 0), then acc[h1] ^= z and
// acc[h2] ^= z for h1, h2 = h12[2m], h12[2m+1] (acc holds 64 bytes per
// row). z is read and written back.
TEXT ·hdpcGFNI(SB), NOSPLIT, $0-64
	MOVQ slots+0(FP), SI
	MOVQ y+8(FP), DX
	MOVQ h12+16(FP), BX
	MOVQ n+24(FP), CX
	MOVQ off+32(FP), R8
	MOVQ acc+40(FP), DI
	MOVQ z+48(FP), R9
	VPBROADCASTQ mat+56(FP), Z1
	VMOVDQU64 (R9), Z0
	TESTQ CX, CX
	JZ    hdone

hloop:
	VGF2P8AFFINEQB $0, Z1, Z0, Z0
	MOVLQSX (DX), AX
	TESTQ AX, AX
	JS    hnoy
	LEAQ (AX)(AX*2), AX
	MOVQ (SI)(AX*8), R10
	VPXORQ (R10)(R8*1), Z0, Z0

hnoy:
	MOVWQZX (BX), R11
	SHLQ $6, R11
	VPXORQ (DI)(R11*1), Z0, Z2
	VMOVDQU64 Z2, (DI)(R11*1)
	MOVWQZX 2(BX), R11
	SHLQ $6, R11
	VPXORQ (DI)(R11*1), Z0, Z3
	VMOVDQU64 Z3, (DI)(R11*1)
	ADDQ $4, DX
	ADDQ $4, BX
	DECQ CX
	JNZ  hloop

hdone:
	VMOVDQU64 Z0, (R9)
	VZEROUPPER
	RET

// func hdpc4GFNI(slots *[]byte, y *int32, h12 *uint16, n int, off int, acc *byte, z *byte, mat uint64)
// Like hdpcGFNI on 256 bytes: acc holds 256 bytes per row, z 256 bytes.
TEXT ·hdpc4GFNI(SB), NOSPLIT, $0-64
	MOVQ slots+0(FP), SI
	MOVQ y+8(FP), DX
	MOVQ h12+16(FP), BX
	MOVQ n+24(FP), CX
	MOVQ off+32(FP), R8
	MOVQ acc+40(FP), DI
	MOVQ z+48(FP), R9
	VPBROADCASTQ mat+56(FP), Z8
	VMOVDQU64 (R9), Z0
	VMOVDQU64 64(R9), Z1
	VMOVDQU64 128(R9), Z2
	VMOVDQU64 192(R9), Z3
	TESTQ CX, CX
	JZ    h4done

h4loop:
	VGF2P8AFFINEQB $0, Z8, Z0, Z0
	VGF2P8AFFINEQB $0, Z8, Z1, Z1
	VGF2P8AFFINEQB $0, Z8, Z2, Z2
	VGF2P8AFFINEQB $0, Z8, Z3, Z3
	MOVLQSX (DX), AX
	TESTQ AX, AX
	JS    h4noy
	LEAQ (AX)(AX*2), AX
	MOVQ (SI)(AX*8), R10
	ADDQ R8, R10
	VPXORQ (R10), Z0, Z0
	VPXORQ 64(R10), Z1, Z1
	VPXORQ 128(R10), Z2, Z2
	VPXORQ 192(R10), Z3, Z3

h4noy:
	MOVWQZX (BX), R11
	SHLQ $8, R11
	ADDQ DI, R11
	VPXORQ (R11), Z0, Z4
	VPXORQ 64(R11), Z1, Z5
	VPXORQ 128(R11), Z2, Z6
	VPXORQ 192(R11), Z3, Z7
	VMOVDQU64 Z4, (R11)
	VMOVDQU64 Z5, 64(R11)
	VMOVDQU64 Z6, 128(R11)
	VMOVDQU64 Z7, 192(R11)
	MOVWQZX 2(BX), R11
	SHLQ $8, R11
	ADDQ DI, R11
	VPXORQ (R11), Z0, Z4
	VPXORQ 64(R11), Z1, Z5
	VPXORQ 128(R11), Z2, Z6
	VPXORQ 192(R11), Z3, Z7
	VMOVDQU64 Z4, (R11)
	VMOVDQU64 Z5, 64(R11)
	VMOVDQU64 Z6, 128(R11)
	VMOVDQU64 Z7, 192(R11)
	ADDQ $4, DX
	ADDQ $4, BX
	DECQ CX
	JNZ  h4loop

h4done:
	VMOVDQU64 Z0, (R9)
	VMOVDQU64 Z1, 64(R9)
	VMOVDQU64 Z2, 128(R9)
	VMOVDQU64 Z3, 192(R9)
	VZEROUPPER
	RET

// The two kernels below read their sources through slot indices:
// source i is slots[idx[i]] (a []byte header), nsrc >= 1, n a positive
// multiple of 64.

// func xorManyIdxAVX512(dst *byte, slots *[]byte, idx *int32, nsrc int, n int)
TEXT ·xorManyIdxAVX512(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ slots+8(FP), SI
	MOVQ idx+16(FP), R9
	MOVQ nsrc+24(FP), DX
	MOVQ n+32(FP), CX
	XORQ AX, AX

xorManl256:
	CMPQ CX, $256
	JB   xorMantail
	VMOVDQU64 (DI)(AX*1), Z0
	VMOVDQU64 64(DI)(AX*1), Z1
	VMOVDQU64 128(DI)(AX*1), Z2
	VMOVDQU64 192(DI)(AX*1), Z3
	XORQ BX, BX

xorMans256:
	MOVLQSX (R9)(BX*4), R8
	LEAQ (R8)(R8*2), R8
	MOVQ (SI)(R8*8), R8
	VPXORQ (R8)(AX*1), Z0, Z0
	VPXORQ 64(R8)(AX*1), Z1, Z1
	VPXORQ 128(R8)(AX*1), Z2, Z2
	VPXORQ 192(R8)(AX*1), Z3, Z3
	INCQ BX
	CMPQ BX, DX
	JB   xorMans256

xorManst256:
	VMOVDQU64 Z0, (DI)(AX*1)
	VMOVDQU64 Z1, 64(DI)(AX*1)
	VMOVDQU64 Z2, 128(DI)(AX*1)
	VMOVDQU64 Z3, 192(DI)(AX*1)
	ADDQ $256, AX
	SUBQ $256, CX
	JMP  xorManl256

xorMantail:
	TESTQ CX, CX
	JZ    xorMandone
	VMOVDQU64 (DI)(AX*1), Z0
	XORQ BX, BX

xorMans64:
	MOVLQSX (R9)(BX*4), R8
	LEAQ (R8)(R8*2), R8
	MOVQ (SI)(R8*8), R8
	VPXORQ (R8)(AX*1), Z0, Z0
	INCQ BX
	CMPQ BX, DX
	JB   xorMans64

xorManst64:
	VMOVDQU64 Z0, (DI)(AX*1)
	ADDQ $64, AX
	SUBQ $64, CX
	JMP  xorMantail

xorMandone:
	VZEROUPPER
	RET

// func xorIntoIdxAVX512(dst *byte, slots *[]byte, idx *int32, nsrc int, n int)
TEXT ·xorIntoIdxAVX512(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ slots+8(FP), SI
	MOVQ idx+16(FP), R9
	MOVQ nsrc+24(FP), DX
	MOVQ n+32(FP), CX
	XORQ AX, AX

xorIntl256:
	CMPQ CX, $256
	JB   xorInttail
	MOVLQSX (R9), R8
	LEAQ (R8)(R8*2), R8
	MOVQ (SI)(R8*8), R8
	VMOVDQU64 (R8)(AX*1), Z0
	VMOVDQU64 64(R8)(AX*1), Z1
	VMOVDQU64 128(R8)(AX*1), Z2
	VMOVDQU64 192(R8)(AX*1), Z3
	MOVQ $1, BX
	CMPQ BX, DX
	JAE  xorIntst256

xorInts256:
	MOVLQSX (R9)(BX*4), R8
	LEAQ (R8)(R8*2), R8
	MOVQ (SI)(R8*8), R8
	VPXORQ (R8)(AX*1), Z0, Z0
	VPXORQ 64(R8)(AX*1), Z1, Z1
	VPXORQ 128(R8)(AX*1), Z2, Z2
	VPXORQ 192(R8)(AX*1), Z3, Z3
	INCQ BX
	CMPQ BX, DX
	JB   xorInts256

xorIntst256:
	VMOVDQU64 Z0, (DI)(AX*1)
	VMOVDQU64 Z1, 64(DI)(AX*1)
	VMOVDQU64 Z2, 128(DI)(AX*1)
	VMOVDQU64 Z3, 192(DI)(AX*1)
	ADDQ $256, AX
	SUBQ $256, CX
	JMP  xorIntl256

xorInttail:
	TESTQ CX, CX
	JZ    xorIntdone
	MOVLQSX (R9), R8
	LEAQ (R8)(R8*2), R8
	MOVQ (SI)(R8*8), R8
	VMOVDQU64 (R8)(AX*1), Z0
	MOVQ $1, BX
	CMPQ BX, DX
	JAE  xorIntst64

xorInts64:
	MOVLQSX (R9)(BX*4), R8
	LEAQ (R8)(R8*2), R8
	MOVQ (SI)(R8*8), R8
	VPXORQ (R8)(AX*1), Z0, Z0
	INCQ BX
	CMPQ BX, DX
	JB   xorInts64

xorIntst64:
	VMOVDQU64 Z0, (DI)(AX*1)
	ADDQ $64, AX
	SUBQ $64, CX
	JMP  xorInttail

xorIntdone:
	VZEROUPPER
	RET
