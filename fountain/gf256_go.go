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
	for len(srcs) >= 8 && len(dst) >= xor8Stripe {
		n := xor8Go(dst, (*[8][]byte)(srcs), false)
		if n < len(dst) {
			for _, s := range srcs[:8] {
				subtle.XORBytes(dst[n:], dst[n:], s[n:len(dst)])
			}
		}
		srcs = srcs[8:]
	}
	for _, s := range srcs {
		subtle.XORBytes(dst, dst, s[:len(dst)])
	}
}

// xorIntoGo sets dst to the XOR of the sources (len(dst) bytes of each,
// at least one source).
func xorIntoGo(dst []byte, srcs [][]byte) {
	if len(srcs) >= 8 && len(dst) >= xor8Stripe {
		n := xor8Go(dst, (*[8][]byte)(srcs), true)
		if n < len(dst) {
			subtle.XORBytes(dst[n:], srcs[0][n:len(dst)], srcs[1][n:len(dst)])
			for _, s := range srcs[2:8] {
				subtle.XORBytes(dst[n:], dst[n:], s[n:len(dst)])
			}
		}
		xorManyGo(dst, srcs[8:])
		return
	}
	if len(srcs) == 1 {
		copy(dst, srcs[0])
		return
	}
	subtle.XORBytes(dst, srcs[0][:len(dst)], srcs[1][:len(dst)])
	xorManyGo(dst, srcs[2:])
}

// xor8Stripe is the stripe of xor8Go.
const xor8Stripe = 256

// xor8Go XORs eight sources into dst (into: replacing dst) a stripe at a
// time, reading and writing each word of dst once: faster than eight
// passes of crypto/subtle.XORBytes (about 1.35x measured at T = 4096). It
// returns the bytes done, whole stripes.
func xor8Go(dst []byte, srcs *[8][]byte, into bool) int {
	const w = xor8Stripe
	n := len(dst) &^ (w - 1)
	for off := 0; off < n; off += w {
		d := (*[w]byte)(dst[off:])
		s0 := (*[w]byte)(srcs[0][off:])
		s1 := (*[w]byte)(srcs[1][off:])
		s2 := (*[w]byte)(srcs[2][off:])
		s3 := (*[w]byte)(srcs[3][off:])
		s4 := (*[w]byte)(srcs[4][off:])
		s5 := (*[w]byte)(srcs[5][off:])
		s6 := (*[w]byte)(srcs[6][off:])
		s7 := (*[w]byte)(srcs[7][off:])
		for i := 0; i < w; i += 8 {
			v := binary.LittleEndian.Uint64(s0[i:]) ^ binary.LittleEndian.Uint64(s1[i:]) ^
				binary.LittleEndian.Uint64(s2[i:]) ^ binary.LittleEndian.Uint64(s3[i:]) ^
				binary.LittleEndian.Uint64(s4[i:]) ^ binary.LittleEndian.Uint64(s5[i:]) ^
				binary.LittleEndian.Uint64(s6[i:]) ^ binary.LittleEndian.Uint64(s7[i:])
			if !into {
				v ^= binary.LittleEndian.Uint64(d[i:])
			}
			binary.LittleEndian.PutUint64(d[i:], v)
		}
	}
	return n
}

// mul2Word multiplies each byte of x by alpha = 2: a shift, and the
// reduction by the field polynomial for the bytes whose top bit fell out.
func mul2Word(x uint64) uint64 {
	hi := x & 0x8080808080808080
	return (x&^hi)<<1 ^ (hi>>7)*(gfPoly&0xff)
}

// mulAddGo sets dst ^= c*src (len(src) bytes): one table lookup per byte,
// eight bytes per word, 64 bytes per step. (The products are spelled out
// in each loop: as a function of its own the compiler would not inline
// them, and a call per word cost more than the lookups.)
func mulAddGo(dst, src []byte, c byte) {
	row := &gf.mul[c]
	dst = dst[:len(src)]
	for len(src) >= 64 {
		d, s := (*[64]byte)(dst), (*[64]byte)(src)
		for i := 0; i < 64; i += 8 {
			x := binary.LittleEndian.Uint64(s[i:])
			p := uint64(row[byte(x)]) | uint64(row[byte(x>>8)])<<8 |
				uint64(row[byte(x>>16)])<<16 | uint64(row[byte(x>>24)])<<24 |
				uint64(row[byte(x>>32)])<<32 | uint64(row[byte(x>>40)])<<40 |
				uint64(row[byte(x>>48)])<<48 | uint64(row[x>>56])<<56
			binary.LittleEndian.PutUint64(d[i:], binary.LittleEndian.Uint64(d[i:])^p)
		}
		src, dst = src[64:], dst[64:]
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
		for len(dst) >= 64 {
			d := (*[64]byte)(dst)
			for i := 0; i < 64; i += 8 {
				x := binary.LittleEndian.Uint64(d[i:])
				p := uint64(row[byte(x)]) | uint64(row[byte(x>>8)])<<8 |
					uint64(row[byte(x>>16)])<<16 | uint64(row[byte(x>>24)])<<24 |
					uint64(row[byte(x>>32)])<<32 | uint64(row[byte(x>>40)])<<40 |
					uint64(row[byte(x>>48)])<<48 | uint64(row[x>>56])<<56
				binary.LittleEndian.PutUint64(d[i:], p)
			}
			dst = dst[64:]
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
