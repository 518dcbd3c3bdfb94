//go:build amd64 && !purego

package fountain

import "golang.org/x/sys/cpu"

// CPU features, read once at start-up.
var (
	haveAVX512 = cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512GFNI && cpu.X86.HasAVX512VL
	haveAVX2   = cpu.X86.HasAVX2
	// haveGFNIVEX: GFNI with the VEX (256-bit) encoding, which needs AVX
	// but not AVX-512 (x/sys/cpu reports GFNI only along with AVX-512).
	haveGFNIVEX = cpu.X86.HasAVX2 && cpuHasGFNI()
)

// haveNEON is false: there is no arm64 code here.
const haveNEON = false

func cpuHasGFNI() bool {
	maxID, _, _, _ := cpuid(0, 0)
	if maxID < 7 {
		return false
	}
	_, _, ecx, _ := cpuid(7, 0)
	return ecx&(1<<8) != 0
}

// cpuid executes CPUID with the given leaf and sub-leaf.
func cpuid(leaf, sub uint32) (eax, ebx, ecx, edx uint32)

// The dispatchers below run one tier's assembly on n bytes, n a positive
// multiple of 64; the kernels' flags say which of them a tier has.

func (k kernels) xorBlocks(dst, src *byte, n int) {
	if k.tier == KernelsAVX512 {
		xorAVX512(dst, src, n)
	} else {
		xorAVX2(dst, src, n)
	}
}

func (k kernels) xor2Blocks(dst, a, b *byte, n int) {
	if k.tier == KernelsAVX512 {
		xor2AVX512(dst, a, b, n)
	} else {
		xor2AVX2(dst, a, b, n)
	}
}

func (k kernels) xorManyBlocks(dst *byte, srcs **byte, nsrc, n int) {
	if k.tier == KernelsAVX512 {
		xorManyAVX512(dst, srcs, nsrc, n)
	} else {
		xorManyAVX2(dst, srcs, nsrc, n)
	}
}

func (k kernels) xorIntoBlocks(dst *byte, srcs **byte, nsrc, n int) {
	if k.tier == KernelsAVX512 {
		xorIntoAVX512(dst, srcs, nsrc, n)
	} else {
		xorIntoAVX2(dst, srcs, nsrc, n)
	}
}

func (k kernels) xorManyIdxBlocks(dst *byte, slots *[]byte, idx *int32, nsrc, n int) {
	if k.tier == KernelsAVX512 {
		xorManyIdxAVX512(dst, slots, idx, nsrc, n)
	} else {
		xorManyIdxAVX2(dst, slots, idx, nsrc, n)
	}
}

func (k kernels) xorIntoIdxBlocks(dst *byte, slots *[]byte, idx *int32, nsrc, n int) {
	if k.tier == KernelsAVX512 {
		xorIntoIdxAVX512(dst, slots, idx, nsrc, n)
	} else {
		xorIntoIdxAVX2(dst, slots, idx, nsrc, n)
	}
}

func (k kernels) hdpcBlocks(slots *[]byte, y *int32, h12 *uint16, n, off int, acc, z *byte) {
	if k.tier == KernelsAVX512 {
		hdpcGFNI(slots, y, h12, n, off, acc, z, gf.gfni[2])
	} else {
		hdpcAVX2(slots, y, h12, n, off, acc, z)
	}
}

func (k kernels) hdpc4Blocks(slots *[]byte, y *int32, h12 *uint16, n, off int, acc, z *byte) {
	if k.tier == KernelsAVX512 {
		hdpc4GFNI(slots, y, h12, n, off, acc, z, gf.gfni[2])
	} else {
		hdpc4AVX2(slots, y, h12, n, off, acc, z)
	}
}

func (k kernels) mulAddBlocks(dst, src *byte, n int, c byte) {
	switch k.tier {
	case KernelsAVX512:
		mulAddGFNI(dst, src, n, gf.gfni[c])
	case KernelsAVX2GFNI:
		mulAddGFNIAVX2(dst, src, n, gf.gfni[c])
	default:
		mulAddAVX2(dst, src, n, &gf.nib[c])
	}
}

func (k kernels) scaleBlocks(dst *byte, n int, c byte) {
	switch k.tier {
	case KernelsAVX512:
		scaleGFNI(dst, n, gf.gfni[c])
	case KernelsAVX2GFNI:
		scaleGFNIAVX2(dst, n, gf.gfni[c])
	default:
		scaleAVX2(dst, n, &gf.nib[c])
	}
}

// mulAddGFNI sets dst[i] ^= c*src[i] for n bytes, n a positive multiple of 64;
// mat is gfniMatrix(c).
//
//go:noescape
func mulAddGFNI(dst, src *byte, n int, mat uint64)

// scaleGFNI sets dst[i] = c*dst[i] for n bytes, n a positive multiple of 64.
//
//go:noescape
func scaleGFNI(dst *byte, n int, mat uint64)

// xorAVX512 sets dst[i] ^= src[i] for n bytes, n a positive multiple of 64.
//
//go:noescape
func xorAVX512(dst, src *byte, n int)

// xor2AVX512 sets dst[i] = a[i] ^ b[i] for n bytes, n a positive multiple
// of 64.
//
//go:noescape
func xor2AVX512(dst, a, b *byte, n int)

// xorManyAVX512 sets dst[i] ^= srcs[0][i] ^ ... ^ srcs[nsrc-1][i] for n
// bytes, n a positive multiple of 64 and nsrc >= 1.
//
//go:noescape
func xorManyAVX512(dst *byte, srcs **byte, nsrc int, n int)

// xorIntoAVX512 sets dst[i] = srcs[0][i] ^ ... ^ srcs[nsrc-1][i] for n
// bytes, n a positive multiple of 64 and nsrc >= 1.
//
//go:noescape
func xorIntoAVX512(dst *byte, srcs **byte, nsrc int, n int)

// hdpcGFNI runs the recursion of hdpcRun on 64 bytes at offset off of the
// symbols for columns 0..n-1: z = mat*z ^ slots[y[m]] (skipped when
// y[m] < 0), then the 64-byte rows h12[2m] and h12[2m+1] of acc add z.
//
//go:noescape
func hdpcGFNI(slots *[]byte, y *int32, h12 *uint16, n int, off int, acc *byte, z *byte, mat uint64)

// hdpc4GFNI is hdpcGFNI on 256 bytes at a time (acc: 256 bytes per row).
//
//go:noescape
func hdpc4GFNI(slots *[]byte, y *int32, h12 *uint16, n int, off int, acc *byte, z *byte, mat uint64)

// xorManyIdxAVX512 sets dst[i] ^= slots[idx[0]][i] ^ ... ^
// slots[idx[nsrc-1]][i] for n bytes, n a positive multiple of 64 and
// nsrc >= 1.
//
//go:noescape
func xorManyIdxAVX512(dst *byte, slots *[]byte, idx *int32, nsrc int, n int)

// xorIntoIdxAVX512 sets dst[i] = slots[idx[0]][i] ^ ... ^
// slots[idx[nsrc-1]][i] for n bytes, n a positive multiple of 64 and
// nsrc >= 1.
//
//go:noescape
func xorIntoIdxAVX512(dst *byte, slots *[]byte, idx *int32, nsrc int, n int)

// The AVX2 kernels do what their AVX-512 namesakes do, 32 bytes per
// instruction; n is a positive multiple of 64.

//go:noescape
func xorAVX2(dst, src *byte, n int)

//go:noescape
func xor2AVX2(dst, a, b *byte, n int)

//go:noescape
func xorManyAVX2(dst *byte, srcs **byte, nsrc int, n int)

//go:noescape
func xorIntoAVX2(dst *byte, srcs **byte, nsrc int, n int)

//go:noescape
func xorManyIdxAVX2(dst *byte, slots *[]byte, idx *int32, nsrc int, n int)

//go:noescape
func xorIntoIdxAVX2(dst *byte, slots *[]byte, idx *int32, nsrc int, n int)

// hdpcAVX2 and hdpc4AVX2 are hdpcGFNI and hdpc4GFNI with the
// multiplication by alpha done by a byte add and a conditional reduction.
//
//go:noescape
func hdpcAVX2(slots *[]byte, y *int32, h12 *uint16, n int, off int, acc *byte, z *byte)

//go:noescape
func hdpc4AVX2(slots *[]byte, y *int32, h12 *uint16, n int, off int, acc *byte, z *byte)

// mulAddGFNIAVX2 and scaleGFNIAVX2 are mulAddGFNI and scaleGFNI in the VEX
// encoding (AVX2 and GFNI, no AVX-512).
//
//go:noescape
func mulAddGFNIAVX2(dst, src *byte, n int, mat uint64)

//go:noescape
func scaleGFNIAVX2(dst *byte, n int, mat uint64)
