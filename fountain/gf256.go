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
	// nib[c] holds c*x for x = 0..15 and then c*(x<<4) for x = 0..15: the
	// split-nibble tables of the byte-shuffle multiplication.
	nib [256][32]byte
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
		for x := 0; x < 16; x++ {
			t.nib[c][x] = t.mul[c][x]
			t.nib[c][16+x] = t.mul[c][x<<4]
		}
	}
	return t
}

func gfMul(a, b byte) byte { return gf.mul[a][b] }

// gfInv returns the multiplicative inverse of a non-zero element.
func gfInv(a byte) byte { return gf.exp[255-int(gf.log[a])] }

// gfAlphaPow returns alpha^i.
func gfAlphaPow(i int) byte { return gf.exp[i%255] }

// kernels performs whole-symbol arithmetic with one tier's kernels. The
// zero value is not usable; pick one with newKernels.
type kernels struct {
	tier Kernels
	vec  bool // XOR kernels in assembly, on multiples of 64 bytes
	mul  bool // GF(256) multiply-add and scale in assembly
	idx  bool // slot-index XOR and HDPC recursion kernels in assembly
}

// newKernels returns the kernels of tier t as ResolveKernels resolves it.
func newKernels(t Kernels) kernels {
	t = ResolveKernels(t)
	k := kernels{tier: t, vec: t != KernelsPortable}
	switch t {
	case KernelsAVX512, KernelsAVX2GFNI:
		k.mul, k.idx = true, true
	case KernelsAVX2:
		k.mul, k.idx = havePSHUFB, true
	case KernelsNEON:
		k.mul = havePSHUFB
	}
	return k
}

// xor sets dst = dst ^ src (len(src) bytes).
func (k kernels) xor(dst, src []byte) {
	n := 0
	if k.vec {
		n = len(src) &^ 63
		if n > 0 {
			_ = dst[n-1]
			k.xorBlocks(&dst[0], &src[0], n)
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
	if !k.vec || len(dst) < 64 {
		xorManyGo(dst, srcs)
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
		k.xorManyBlocks(&dst[0], &ptrs[0], m, n)
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
	if !k.vec || len(dst) < 64 {
		xorIntoGo(dst, srcs)
		return
	}
	n := len(dst) &^ 63
	var ptrs [maxFused]*byte
	m := min(len(srcs), maxFused)
	for i, s := range srcs[:m] {
		_ = s[len(dst)-1]
		ptrs[i] = &s[0]
	}
	k.xorIntoBlocks(&dst[0], &ptrs[0], m, n)
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
	if k.vec {
		n = len(a) &^ 63
		if n > 0 {
			_, _ = dst[n-1], b[n-1]
			k.xor2Blocks(&dst[0], &a[0], &b[0], n)
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
	if k.mul {
		n = len(src) &^ 63
		if n > 0 {
			_ = dst[n-1]
			k.mulAddBlocks(&dst[0], &src[0], n, c)
		}
	}
	mulAddGo(dst[n:len(src)], src[n:], c)
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
	if k.mul {
		n = len(dst) &^ 63
		if n > 0 {
			k.scaleBlocks(&dst[0], n, c)
		}
	}
	scaleGo(dst[n:], c)
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
