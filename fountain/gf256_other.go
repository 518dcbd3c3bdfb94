//go:build !amd64 || purego

package fountain

// haveGFNI is false where no assembly kernels exist.
const haveGFNI = false

func mulAddGFNI(dst, src *byte, n int, mat uint64) { panic("fountain: no GFNI kernel") }

func scaleGFNI(dst *byte, n int, mat uint64) { panic("fountain: no GFNI kernel") }

func xorAVX512(dst, src *byte, n int) { panic("fountain: no AVX-512 kernel") }

func xor2AVX512(dst, a, b *byte, n int) { panic("fountain: no AVX-512 kernel") }

func xorManyAVX512(dst *byte, srcs **byte, nsrc int, n int) { panic("fountain: no AVX-512 kernel") }

func xorIntoAVX512(dst *byte, srcs **byte, nsrc int, n int) { panic("fountain: no AVX-512 kernel") }

func hdpcGFNI(slots *[]byte, y *int32, h12 *uint16, n int, off int, acc *byte, z *byte, mat uint64) {
	panic("fountain: no GFNI kernel")
}

func hdpc4GFNI(slots *[]byte, y *int32, h12 *uint16, n int, off int, acc *byte, z *byte, mat uint64) {
	panic("fountain: no GFNI kernel")
}

func xorManyIdxAVX512(dst *byte, slots *[]byte, idx *int32, nsrc int, n int) {
	panic("fountain: no AVX-512 kernel")
}

func xorIntoIdxAVX512(dst *byte, slots *[]byte, idx *int32, nsrc int, n int) {
	panic("fountain: no AVX-512 kernel")
}
