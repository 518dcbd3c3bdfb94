package fountain

import (
	"crypto/subtle"
	"encoding/binary"
)

// The portable kernels: Go, eight bytes at a time where the operation
// allows it. crypto/subtle.XORBytes is itself vectorised on the common
// architectures and is the fastest XOR portable Go has.

// xorManyGo sets dst ^= every source (len(dst) bytes of each).
func xorManyGo(dst []byte, srcs [][]byte) {
	for _, s := range srcs {
		subtle.XORBytes(dst, dst, s[:len(dst)])
	}
}

// mulWord returns the eight products row[b] of the bytes b of x.
func mulWord(row *[256]byte, x uint64) uint64 {
	return uint64(row[byte(x)]) | uint64(row[byte(x>>8)])<<8 |
		uint64(row[byte(x>>16)])<<16 | uint64(row[byte(x>>24)])<<24 |
		uint64(row[byte(x>>32)])<<32 | uint64(row[byte(x>>40)])<<40 |
		uint64(row[byte(x>>48)])<<48 | uint64(row[byte(x>>56)])<<56
}

// mul2Word multiplies each byte of x by alpha = 2: a shift, and the
// reduction by the field polynomial for the bytes whose top bit fell out.
func mul2Word(x uint64) uint64 {
	hi := x & 0x8080808080808080
	return (x&^hi)<<1 ^ (hi>>7)*(gfPoly&0xff)
}

// mulAddGo sets dst ^= c*src (len(src) bytes).
func mulAddGo(dst, src []byte, c byte) {
	row := &gf.mul[c]
	dst = dst[:len(src)]
	for len(src) >= 8 {
		p := mulWord(row, binary.LittleEndian.Uint64(src))
		binary.LittleEndian.PutUint64(dst, binary.LittleEndian.Uint64(dst)^p)
		src, dst = src[8:], dst[8:]
	}
	for i, s := range src {
		dst[i] ^= row[s]
	}
}

// scaleGo sets dst = c*dst.
func scaleGo(dst []byte, c byte) {
	if c == 2 {
		for len(dst) >= 8 {
			binary.LittleEndian.PutUint64(dst, mul2Word(binary.LittleEndian.Uint64(dst)))
			dst = dst[8:]
		}
	} else {
		row := &gf.mul[c]
		for len(dst) >= 8 {
			binary.LittleEndian.PutUint64(dst, mulWord(row, binary.LittleEndian.Uint64(dst)))
			dst = dst[8:]
		}
	}
	row := &gf.mul[c]
	for i, s := range dst {
		dst[i] = row[s]
	}
}

// hdpcStripeWords is the stripe of hdpcStripeGo: 256 bytes.
const hdpcStripeWords = 32

// hdpcStripeGo is the portable form of the HDPC recursion kernel: for m =
// 0..n-1, on the 256 bytes at offset off of the symbols, z = 2*z ^
// slots[y[m]] (no symbol when y[m] < 0), then the rows h12[2m] and
// h12[2m+1] of acc (32 words per row) add z.
func hdpcStripeGo(slots [][]byte, y []int32, h12 []uint16, n, off int, acc []uint64, z *[hdpcStripeWords]uint64) {
	for m := 0; m < n; m++ {
		a := (*[hdpcStripeWords]uint64)(acc[int(h12[2*m])*hdpcStripeWords:])
		b := (*[hdpcStripeWords]uint64)(acc[int(h12[2*m+1])*hdpcStripeWords:])
		if ym := y[m]; ym >= 0 {
			src := (*[8 * hdpcStripeWords]byte)(slots[ym][off:])
			for i := range z {
				v := mul2Word(z[i]) ^ binary.LittleEndian.Uint64(src[8*i:])
				z[i] = v
				a[i] ^= v
				b[i] ^= v
			}
			continue
		}
		for i := range z {
			v := mul2Word(z[i])
			z[i] = v
			a[i] ^= v
			b[i] ^= v
		}
	}
}
