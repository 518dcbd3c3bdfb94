//go:build !purego && !nopshufb

package fountain

// havePSHUFB: the table-lookup (split-nibble) multiplication kernels are
// built in; the build tag nopshufb leaves them out.
const havePSHUFB = true

// mulAddNEON sets dst[i] ^= c*src[i] for n bytes, n a positive multiple of
// 64, with tab = gf.nib[c] (VTBL on each nibble).
//
//go:noescape
func mulAddNEON(dst, src *byte, n int, tab *[32]byte)

// scaleNEON sets dst[i] = c*dst[i] the same way.
//
//go:noescape
func scaleNEON(dst *byte, n int, tab *[32]byte)
