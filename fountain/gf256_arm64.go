//go:build arm64 && !purego

package fountain

// Advanced SIMD is part of every arm64 CPU.
const (
	haveAVX512  = false
	haveAVX2    = false
	haveGFNIVEX = false
	haveNEON    = true
)

// The dispatchers run the NEON assembly on n bytes, n a positive multiple
// of 64. NEON has no slot-index or HDPC kernels (kernels.idx is false):
// those run in Go.

func (k kernels) xorBlocks(dst, src *byte, n int)   { xorNEON(dst, src, n) }
func (k kernels) xor2Blocks(dst, a, b *byte, n int) { xor2NEON(dst, a, b, n) }
func (k kernels) xorManyBlocks(dst *byte, srcs **byte, nsrc, n int) {
	xorManyNEON(dst, srcs, nsrc, n)
}
func (k kernels) xorIntoBlocks(dst *byte, srcs **byte, nsrc, n int) {
	xorIntoNEON(dst, srcs, nsrc, n)
}
func (k kernels) mulAddBlocks(dst, src *byte, n int, c byte) { mulAddNEON(dst, src, n, &gf.nib[c]) }
func (k kernels) scaleBlocks(dst *byte, n int, c byte)       { scaleNEON(dst, n, &gf.nib[c]) }

func (k kernels) xorManyIdxBlocks(dst *byte, slots *[]byte, idx *int32, nsrc, n int) {
	panic("fountain: no slot-index kernels on arm64")
}
func (k kernels) xorIntoIdxBlocks(dst *byte, slots *[]byte, idx *int32, nsrc, n int) {
	panic("fountain: no slot-index kernels on arm64")
}
func (k kernels) hdpcBlocks(slots *[]byte, y *int32, h12 *uint16, n, off int, acc, z *byte) {
	panic("fountain: no HDPC kernel on arm64")
}
func (k kernels) hdpc4Blocks(slots *[]byte, y *int32, h12 *uint16, n, off int, acc, z *byte) {
	panic("fountain: no HDPC kernel on arm64")
}

// xorNEON sets dst[i] ^= src[i] for n bytes, n a positive multiple of 64.
//
//go:noescape
func xorNEON(dst, src *byte, n int)

// xor2NEON sets dst[i] = a[i] ^ b[i] for n bytes, n a positive multiple of
// 64.
//
//go:noescape
func xor2NEON(dst, a, b *byte, n int)

// xorManyNEON sets dst[i] ^= srcs[0][i] ^ ... ^ srcs[nsrc-1][i] for n
// bytes, n a positive multiple of 64 and nsrc >= 1.
//
//go:noescape
func xorManyNEON(dst *byte, srcs **byte, nsrc int, n int)

// xorIntoNEON sets dst[i] = srcs[0][i] ^ ... ^ srcs[nsrc-1][i] for n
// bytes, n a positive multiple of 64 and nsrc >= 1.
//
//go:noescape
func xorIntoNEON(dst *byte, srcs **byte, nsrc int, n int)
