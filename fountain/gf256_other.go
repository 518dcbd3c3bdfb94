//go:build (!amd64 && !arm64) || purego

package fountain

// No assembly here: only the portable tier.
const (
	haveAVX512  = false
	haveAVX2    = false
	haveGFNIVEX = false
	haveNEON    = false
)

// The dispatchers exist for the compiler only: no tier that reaches them
// is supported here.

func (k kernels) xorBlocks(dst, src *byte, n int)                   { panic(noAsm) }
func (k kernels) xor2Blocks(dst, a, b *byte, n int)                 { panic(noAsm) }
func (k kernels) xorManyBlocks(dst *byte, srcs **byte, nsrc, n int) { panic(noAsm) }
func (k kernels) xorIntoBlocks(dst *byte, srcs **byte, nsrc, n int) { panic(noAsm) }
func (k kernels) xorManyIdxBlocks(dst *byte, slots *[]byte, idx *int32, nsrc, n int) {
	panic(noAsm)
}
func (k kernels) xorIntoIdxBlocks(dst *byte, slots *[]byte, idx *int32, nsrc, n int) {
	panic(noAsm)
}
func (k kernels) hdpcBlocks(slots *[]byte, y *int32, h12 *uint16, n, off int, acc, z *byte) {
	panic(noAsm)
}
func (k kernels) hdpc4Blocks(slots *[]byte, y *int32, h12 *uint16, n, off int, acc, z *byte) {
	panic(noAsm)
}
func (k kernels) mulAddBlocks(dst, src *byte, n int, c byte) { panic(noAsm) }
func (k kernels) scaleBlocks(dst *byte, n int, c byte)       { panic(noAsm) }

const noAsm = "fountain: no assembly kernels in this build"
