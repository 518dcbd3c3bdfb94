//go:build amd64 && !purego

package fountain

import "golang.org/x/sys/cpu"

// haveGFNI reports whether the AVX-512 GFNI kernels can run here.
var haveGFNI = cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512GFNI && cpu.X86.HasAVX512VL

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
