//go:build !purego && !nopshufb

package fountain

// havePSHUFB: the byte-shuffle (split-nibble table) multiplication kernels
// are built in; the build tag nopshufb leaves them out.
const havePSHUFB = true

// mulAddAVX2 sets dst[i] ^= c*src[i] for n bytes, n a positive multiple of
// 64, with tab = gf.nib[c] (VPSHUFB on each nibble).
//
//go:noescape
func mulAddAVX2(dst, src *byte, n int, tab *[32]byte)

// scaleAVX2 sets dst[i] = c*dst[i] the same way.
//
//go:noescape
func scaleAVX2(dst *byte, n int, tab *[32]byte)
