//go:build purego || nopshufb || (!amd64 && !arm64)

package fountain

// havePSHUFB is false: the build leaves out the byte-shuffle (split-nibble
// table) multiplication kernels, and multiplication runs in Go (or with
// GFNI where the tier has it).
const havePSHUFB = false

func mulAddAVX2(dst, src *byte, n int, tab *[32]byte) { panic(noShuffle) }
func scaleAVX2(dst *byte, n int, tab *[32]byte)       { panic(noShuffle) }
func mulAddNEON(dst, src *byte, n int, tab *[32]byte) { panic(noShuffle) }
func scaleNEON(dst *byte, n int, tab *[32]byte)       { panic(noShuffle) }

const noShuffle = "fountain: byte-shuffle kernels left out of this build (nopshufb)"
