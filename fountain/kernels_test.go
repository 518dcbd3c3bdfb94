package fountain

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestKernelsAgree checks the SIMD kernels against the portable ones and
// against the field's multiplication table, for lengths around the vector
// width.
func TestKernelsAgree(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	fast, slow := newKernels(false), newKernels(true)
	if !haveGFNI {
		t.Log("no GFNI on this CPU: only the portable kernels are checked")
	}
	for _, n := range []int{0, 1, 63, 64, 65, 127, 128, 129, 191, 192, 1000, 4096} {
		a, b := randBytes(r, n), randBytes(r, n)
		want := make([]byte, n)
		for i := range want {
			want[i] = a[i] ^ b[i]
		}
		srcs := make([][]byte, 1+n%37)
		wantMany := append([]byte(nil), a...)
		for i := range srcs {
			srcs[i] = randBytes(r, n)
			for j := range wantMany {
				wantMany[j] ^= srcs[i][j]
			}
		}
		for _, k := range []kernels{fast, slow} {
			m := append([]byte(nil), a...)
			k.xorMany(m, srcs)
			if !bytes.Equal(m, wantMany) {
				t.Fatalf("xorMany n=%d sources=%d simd=%v differs", n, len(srcs), k.simd)
			}
			d := make([]byte, n)
			k.xor2(d, a, b)
			e := append([]byte(nil), a...)
			k.xor(e, b)
			if !bytes.Equal(d, want) || !bytes.Equal(e, want) {
				t.Fatalf("xor n=%d simd=%v differs", n, k.simd)
			}
		}
		for _, c := range []byte{0, 1, 2, 3, 0x1d, 0x80, 0xff, byte(r.Uint32())} {
			src := randBytes(r, n)
			d0 := randBytes(r, n)
			d1 := append([]byte(nil), d0...)
			want := append([]byte(nil), d0...)
			for i := range want {
				want[i] ^= gfMul(c, src[i])
			}
			fast.mulAdd(d0, src, c)
			slow.mulAdd(d1, src, c)
			if !bytes.Equal(d0, want) || !bytes.Equal(d1, want) {
				t.Fatalf("mulAdd n=%d c=%d differs", n, c)
			}
			for i := range want {
				want[i] = gfMul(c, d0[i])
			}
			fast.scale(d0, c)
			slow.scale(d1, c)
			if !bytes.Equal(d0, want) || !bytes.Equal(d1, want) {
				t.Fatalf("scale n=%d c=%d differs", n, c)
			}
		}
	}
}

func TestFieldAxioms(t *testing.T) {
	for a := 1; a < 256; a++ {
		if gfMul(byte(a), gfInv(byte(a))) != 1 {
			t.Fatalf("inverse of %d wrong", a)
		}
	}
	// alpha^8 = alpha^4 + alpha^3 + alpha^2 + 1 in RFC 6330's field.
	if gfAlphaPow(8) != 0x1d {
		t.Fatalf("alpha^8 = %#x", gfAlphaPow(8))
	}
}

func BenchmarkKernels(b *testing.B) {
	for _, n := range []int{1024, 4096} {
		src, dst := make([]byte, n), make([]byte, n)
		for _, name := range []string{"simd", "portable"} {
			k := newKernels(name == "portable")
			b.Run(fmt.Sprintf("xor/%s/%d", name, n), func(b *testing.B) {
				b.SetBytes(int64(n))
				for i := 0; i < b.N; i++ {
					k.xor(dst, src)
				}
			})
			b.Run(fmt.Sprintf("mulAdd/%s/%d", name, n), func(b *testing.B) {
				b.SetBytes(int64(n))
				for i := 0; i < b.N; i++ {
					k.mulAdd(dst, src, 0x53)
				}
			})
		}
	}
}
