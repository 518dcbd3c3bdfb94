package fountain

import "crypto/subtle"

// GF(256) arithmetic of RFC 6330 section 5.7: the field is built on the
// polynomial x^8 + x^4 + x^3 + x^2 + 1 and alpha = 2 generates it.

const gfPoly = 0x11d

// gfTables holds the constant exponent, logarithm and multiplication tables.
type gfTables struct {
	exp  [510]byte
	log  [256]byte
	mul  [256][256]byte
	gfni [256]uint64 // GF2P8AFFINEQB matrices, see gfniMatrix
}

// gf is computed once at start-up and never written afterwards.
var gf = newGFTables()

func newGFTables() *gfTables {
	t := new(gfTables)
	x := 1
	for i := 0; i < 255; i++ {
		t.exp[i] = byte(x)
		t.exp[i+255] = byte(x)
		t.log[x] = byte(i)
		x <<= 1
		if x&0x100 != 0 {
			x ^= gfPoly
		}
	}
	for a := 1; a < 256; a++ {
		for b := 1; b < 256; b++ {
			t.mul[a][b] = t.exp[int(t.log[a])+int(t.log[b])]
		}
	}
	for c := range t.gfni {
		t.gfni[c] = gfniMatrix(&t.mul, byte(c))
	}
	return t
}

func gfMul(a, b byte) byte { return gf.mul[a][b] }

// gfInv returns the multiplicative inverse of a non-zero element.
func gfInv(a byte) byte { return gf.exp[255-int(gf.log[a])] }

// gfAlphaPow returns alpha^i.
func gfAlphaPow(i int) byte { return gf.exp[i%255] }

// kernels performs whole-symbol arithmetic. The zero value is not usable;
// pick one with newKernels.
type kernels struct {
	simd bool
}

// newKernels returns the fastest kernels this CPU supports, or the portable
// ones when portable is set.
func newKernels(portable bool) kernels {
	return kernels{simd: !portable && haveGFNI}
}

// xor sets dst = dst ^ src (len(src) bytes).
func (k kernels) xor(dst, src []byte) {
	n := 0
	if k.simd {
		n = len(src) &^ 63
		if n > 0 {
			_ = dst[n-1]
			xorAVX512(&dst[0], &src[0], n)
		}
	}
	if n < len(src) {
		subtle.XORBytes(dst[n:], dst[n:], src[n:])
	}
}

// maxFused is the most sources one xorMany pass reads.
const maxFused = 16

// xorMany sets dst = dst ^ srcs[0] ^ srcs[1] ^ ... (len(dst) bytes each),
// reading and writing dst once per maxFused sources.
func (k kernels) xorMany(dst []byte, srcs [][]byte) {
	if !k.simd || len(dst) < 64 {
		for _, s := range srcs {
			k.xor(dst, s)
		}
		return
	}
	n := len(dst) &^ 63
	var ptrs [maxFused]*byte
	for len(srcs) > 0 {
		m := min(len(srcs), maxFused)
		for i, s := range srcs[:m] {
			_ = s[len(dst)-1]
			ptrs[i] = &s[0]
		}
		xorManyAVX512(&dst[0], &ptrs[0], m, n)
		if n < len(dst) {
			for _, s := range srcs[:m] {
				subtle.XORBytes(dst[n:], dst[n:], s[n:len(dst)])
			}
		}
		srcs = srcs[m:]
	}
}

// xorInto sets dst = srcs[0] ^ srcs[1] ^ ... (len(dst) bytes each,
// len(srcs) >= 1) without reading dst first.
func (k kernels) xorInto(dst []byte, srcs [][]byte) {
	if !k.simd || len(dst) < 64 {
		if len(srcs) == 1 {
			copy(dst, srcs[0])
			return
		}
		subtle.XORBytes(dst, srcs[0][:len(dst)], srcs[1][:len(dst)])
		for _, s := range srcs[2:] {
			k.xor(dst, s[:len(dst)])
		}
		return
	}
	n := len(dst) &^ 63
	var ptrs [maxFused]*byte
	m := min(len(srcs), maxFused)
	for i, s := range srcs[:m] {
		_ = s[len(dst)-1]
		ptrs[i] = &s[0]
	}
	xorIntoAVX512(&dst[0], &ptrs[0], m, n)
	if n < len(dst) {
		copy(dst[n:], srcs[0][n:len(dst)])
		for _, s := range srcs[1:m] {
			subtle.XORBytes(dst[n:], dst[n:], s[n:len(dst)])
		}
	}
	if m < len(srcs) {
		k.xorMany(dst, srcs[m:])
	}
}

// xor2 sets dst = a ^ b (len(a) bytes).
func (k kernels) xor2(dst, a, b []byte) {
	n := 0
	if k.simd {
		n = len(a) &^ 63
		if n > 0 {
			_, _ = dst[n-1], b[n-1]
			xor2AVX512(&dst[0], &a[0], &b[0], n)
		}
	}
	if n < len(a) {
		subtle.XORBytes(dst[n:], a[n:], b[n:len(a)])
	}
}

// mulAdd sets dst = dst ^ c*src.
func (k kernels) mulAdd(dst, src []byte, c byte) {
	switch c {
	case 0:
		return
	case 1:
		k.xor(dst, src)
		return
	}
	n := 0
	if k.simd {
		n = len(src) &^ 63
		if n > 0 {
			_ = dst[n-1]
			mulAddGFNI(&dst[0], &src[0], n, gf.gfni[c])
		}
	}
	row := &gf.mul[c]
	dst = dst[n:len(src)]
	for i, s := range src[n:] {
		dst[i] ^= row[s]
	}
}

// scale sets dst = c*dst.
func (k kernels) scale(dst []byte, c byte) {
	switch c {
	case 1:
		return
	case 0:
		clear(dst)
		return
	}
	n := 0
	if k.simd {
		n = len(dst) &^ 63
		if n > 0 {
			scaleGFNI(&dst[0], n, gf.gfni[c])
		}
	}
	row := &gf.mul[c]
	for i, s := range dst[n:] {
		dst[n+i] = row[s]
	}
}

// gfniMatrix returns the 8x8 bit matrix that GF2P8AFFINEQB applies to
// multiply a byte by c in this field: output bit i is the parity of row i
// AND the input, and row i sits in byte 7-i of the matrix.
func gfniMatrix(mul *[256][256]byte, c byte) uint64 {
	var m uint64
	for i := 0; i < 8; i++ {
		var row byte
		for j := 0; j < 8; j++ {
			if mul[c][1<<j]>>i&1 != 0 {
				row |= 1 << j
			}
		}
		m |= uint64(row) << (8 * (7 - i))
	}
	return m
}
