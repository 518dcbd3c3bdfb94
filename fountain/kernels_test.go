package fountain

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
)

// TestKernelTiers checks tier names, parsing and resolution.
func TestKernelTiers(t *testing.T) {
	for _, k := range []Kernels{KernelsAuto, KernelsPortable, KernelsAVX2, KernelsAVX2GFNI, KernelsAVX512, KernelsNEON} {
		got, err := ParseKernels(k.String())
		if err != nil || got != k {
			t.Fatalf("ParseKernels(%q) = %v, %v", k.String(), got, err)
		}
	}
	if _, err := ParseKernels("sse9"); err == nil {
		t.Fatal("ParseKernels accepted an unknown tier")
	}
	sup := SupportedKernels()
	if len(sup) == 0 || sup[0] != KernelsPortable {
		t.Fatalf("SupportedKernels() = %v, want portable first", sup)
	}
	for _, k := range sup {
		if got := ResolveKernels(k); got != k {
			t.Fatalf("ResolveKernels(%v) = %v", k, got)
		}
	}
	if best := ResolveKernels(KernelsAuto); !best.Supported() || best == KernelsAuto {
		t.Fatalf("ResolveKernels(auto) = %v", best)
	}
	for _, k := range []Kernels{KernelsAVX2, KernelsAVX512, KernelsNEON} {
		if !k.Supported() && !ResolveKernels(k).Supported() {
			t.Fatalf("ResolveKernels(%v) = %v, not supported", k, ResolveKernels(k))
		}
	}
	if k := kernelsFromEnv("no-such-tier"); k != KernelsAuto {
		t.Fatalf("kernelsFromEnv(unknown) = %v", k)
	}
	if k := kernelsFromEnv("portable"); k != KernelsPortable {
		t.Fatalf("kernelsFromEnv(portable) = %v", k)
	}
	t.Logf("supported here: %v; auto: %v (%s=%q)", sup, ResolveKernels(KernelsAuto), KernelsEnv, os.Getenv(KernelsEnv))
}

// TestKernelsAgree checks every supported tier's kernels against the
// field's multiplication table, for lengths around the vector widths.
func TestKernelsAgree(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	tiers := SupportedKernels()
	for _, n := range []int{0, 1, 7, 8, 63, 64, 65, 127, 128, 129, 191, 192, 255, 256, 257, 320, 1000, 4096} {
		a, b := randBytes(r, n), randBytes(r, n)
		want := make([]byte, n)
		for i := range want {
			want[i] = a[i] ^ b[i]
		}
		srcs := make([][]byte, 1+n%37)
		wantMany := append([]byte(nil), a...)
		wantInto := make([]byte, n)
		for i := range srcs {
			srcs[i] = randBytes(r, n)
			for j := range wantMany {
				wantMany[j] ^= srcs[i][j]
				wantInto[j] ^= srcs[i][j]
			}
		}
		for _, tier := range tiers {
			k := newKernels(tier)
			if k.tier != tier {
				t.Fatalf("newKernels(%v) gave %v", tier, k.tier)
			}
			m := append([]byte(nil), a...)
			k.xorMany(m, srcs)
			if !bytes.Equal(m, wantMany) {
				t.Fatalf("%v: xorMany n=%d sources=%d differs", tier, n, len(srcs))
			}
			into := randBytes(r, n)
			k.xorInto(into, srcs)
			if !bytes.Equal(into, wantInto) {
				t.Fatalf("%v: xorInto n=%d sources=%d differs", tier, n, len(srcs))
			}
			d := make([]byte, n)
			k.xor2(d, a, b)
			e := append([]byte(nil), a...)
			k.xor(e, b)
			if !bytes.Equal(d, want) || !bytes.Equal(e, want) {
				t.Fatalf("%v: xor n=%d differs", tier, n)
			}
			for _, c := range []byte{0, 1, 2, 3, 0x1d, 0x80, 0x8e, 0xff, byte(r.Uint32())} {
				src := randBytes(r, n)
				d0 := randBytes(r, n)
				want := append([]byte(nil), d0...)
				for i := range want {
					want[i] ^= gfMul(c, src[i])
				}
				k.mulAdd(d0, src, c)
				if !bytes.Equal(d0, want) {
					t.Fatalf("%v: mulAdd n=%d c=%d differs", tier, n, c)
				}
				for i := range want {
					want[i] = gfMul(c, d0[i])
				}
				k.scale(d0, c)
				if !bytes.Equal(d0, want) {
					t.Fatalf("%v: scale n=%d c=%d differs", tier, n, c)
				}
			}
		}
	}
}

// TestSlotKernelsAgree runs the slot-index XOR kernels and the HDPC
// recursion of every tier on the same workspace and compares them with
// plain code.
func TestSlotKernelsAgree(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, T := range []int{64, 192, 256, 320, 1024, 4096 + 64} {
		const nslots = 40
		base := make([][]byte, nslots)
		for i := range base {
			base[i] = randBytes(r, T)
		}
		list := []int32{3, 17, 5, 9, 33, 1, 2, 38, 11, 12, 13, 14, 15, 16, 18, 19, 20, 21}
		wantMany := append([]byte(nil), base[0]...)
		wantInto := make([]byte, T)
		for _, x := range list {
			for j := range wantMany {
				wantMany[j] ^= base[x][j]
				wantInto[j] ^= base[x][j]
			}
		}
		// HDPC: columns 0..29 read slots y[m] (some none), rows 0..9 out
		// to slots 30..39.
		const H, cols = 10, 30
		h := hdpcRun{y: make([]int32, cols), h12: make([]uint16, 2*cols), out: make([]int32, H), tz: 0}
		for m := range h.y {
			h.y[m] = int32(1 + r.IntN(29))
			if m%7 == 3 {
				h.y[m] = -1
			}
			h.h12[2*m], h.h12[2*m+1] = uint16(r.IntN(H)), uint16(r.IntN(H))
		}
		for i := range h.out {
			h.out[i] = int32(30 + i)
		}
		h.out[4] = -1
		var want [][]byte
		for _, tier := range SupportedKernels() {
			k := newKernels(tier)
			ws := make([][]byte, nslots)
			for i := range ws {
				ws[i] = append([]byte(nil), base[i]...)
			}
			pl := &plan{ops: []op{
				{kind: opXorMany, dst: 0, a: 0, b: int32(len(list))},
				{kind: opXorInto, dst: 39, a: 0, b: int32(len(list))},
			}, srcs: list}
			pl.run(k, ws)
			if !bytes.Equal(ws[0], wantMany) || !bytes.Equal(ws[39], wantInto) {
				t.Fatalf("%v T=%d: fused slot XOR differs", tier, T)
			}
			// The HDPC rows' slots start at zero; slot 0 is z's scratch.
			for _, o := range h.out {
				if o >= 0 {
					clear(ws[o])
				}
			}
			h.run(k, ws, true)
			if want == nil {
				ref := make([][]byte, nslots)
				for i := range ref {
					ref[i] = append([]byte(nil), base[i]...)
				}
				copy(ref[39], wantInto)
				for _, o := range h.out {
					if o >= 0 {
						clear(ref[o])
					}
				}
				h.runRange(newKernels(KernelsPortable), ref, 0, T)
				want = ref
			}
			for i := 1; i < nslots; i++ {
				if !bytes.Equal(ws[i], want[i]) {
					t.Fatalf("%v T=%d: HDPC recursion differs in slot %d", tier, T, i)
				}
			}
		}
	}
}

// TestTiersAgree encodes and decodes the same blocks with every supported
// tier and compares intermediate, repair and decoded symbols byte for
// byte, for symbol sizes that exercise the vector bodies and the tails.
func TestTiersAgree(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 9))
	tiers := SupportedKernels()
	for _, c := range []struct{ K, T int }{{10, 64}, {101, 200}, {300, 1024}, {1000, 260}, {500, 4096}} {
		o, err := NewOTI(int64(c.K*c.T-c.T/3), c.T, WithMaxBlockSymbols(c.K))
		if err != nil {
			t.Fatal(err)
		}
		src := randBytes(r, int(o.F))
		var refInter []byte
		var refSyms [][]byte
		for _, tier := range tiers {
			enc, err := NewBlockEncoder(o, 0, src, WithKernels(tier))
			if err != nil {
				t.Fatal(err)
			}
			inter := enc.Intermediate()
			var syms [][]byte
			for esi := uint32(c.K / 2); esi < uint32(c.K+c.K/2+2); esi++ {
				sym := make([]byte, c.T)
				if err := enc.Symbol(esi, sym); err != nil {
					t.Fatal(err)
				}
				syms = append(syms, sym)
			}
			if refInter == nil {
				refInter, refSyms = inter, syms
			} else {
				if !bytes.Equal(inter, refInter) {
					t.Fatalf("K=%d T=%d: %v intermediate symbols differ from %v", c.K, c.T, tier, tiers[0])
				}
				for i := range syms {
					if !bytes.Equal(syms[i], refSyms[i]) {
						t.Fatalf("K=%d T=%d: %v symbol %d differs from %v", c.K, c.T, tier, c.K/2+i, tiers[0])
					}
				}
			}
			dec := NewBlockDecoder(o, 0, WithKernels(tier))
			for i, sym := range refSyms {
				if _, err := dec.Add(uint32(c.K/2+i), sym); err != nil {
					t.Fatal(err)
				}
			}
			out := make([]byte, len(src))
			if err := dec.Decode(out); err != nil {
				t.Fatalf("K=%d T=%d %v: %v", c.K, c.T, tier, err)
			}
			if !bytes.Equal(out, src) {
				t.Fatalf("K=%d T=%d %v: decoded bytes differ", c.K, c.T, tier)
			}
			enc.Release()
			dec.Release()
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
	for x := 0; x < 256; x++ {
		w := mul2Word(uint64(x) * 0x0101010101010101)
		if byte(w) != gfMul(2, byte(x)) || w != uint64(byte(w))*0x0101010101010101 {
			t.Fatalf("mul2Word(%#x) = %#x", x, w)
		}
	}
}

func BenchmarkKernels(b *testing.B) {
	for _, n := range []int{1024, 4096} {
		src, dst := make([]byte, n), make([]byte, n)
		srcs := make([][]byte, 12)
		for i := range srcs {
			srcs[i] = make([]byte, n)
		}
		for _, tier := range SupportedKernels() {
			k := newKernels(tier)
			b.Run(fmt.Sprintf("xor/%v/%d", tier, n), func(b *testing.B) {
				b.SetBytes(int64(n))
				for i := 0; i < b.N; i++ {
					k.xor(dst, src)
				}
			})
			b.Run(fmt.Sprintf("xorMany12/%v/%d", tier, n), func(b *testing.B) {
				b.SetBytes(int64(n * len(srcs)))
				for i := 0; i < b.N; i++ {
					k.xorMany(dst, srcs)
				}
			})
			b.Run(fmt.Sprintf("mulAdd/%v/%d", tier, n), func(b *testing.B) {
				b.SetBytes(int64(n))
				for i := 0; i < b.N; i++ {
					k.mulAdd(dst, src, 0x53)
				}
			})
			b.Run(fmt.Sprintf("scale2/%v/%d", tier, n), func(b *testing.B) {
				b.SetBytes(int64(n))
				for i := 0; i < b.N; i++ {
					k.scale(dst, 2)
				}
			})
		}
	}
}

// BenchmarkHDPC measures the HDPC recursion over 1060 columns of 10 rows
// (about K'=1000) per tier; "rows" is the whole-symbol form the tiers fall
// back to. Bytes are those of the symbols read.
func BenchmarkHDPC(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, T := range []int{1024, 4096} {
		const cols, H = 1060, 10
		ws := make([][]byte, cols+H+1)
		for i := range ws {
			ws[i] = randBytes(r, T)
		}
		h := hdpcRun{y: make([]int32, cols), h12: make([]uint16, 2*cols), out: make([]int32, H), tz: int32(cols + H)}
		for m := range h.y {
			h.y[m] = int32(m)
			h.h12[2*m], h.h12[2*m+1] = uint16(r.IntN(H)), uint16(r.IntN(H))
		}
		for i := range h.out {
			h.out[i] = int32(cols + i)
		}
		for _, tier := range SupportedKernels() {
			k := newKernels(tier)
			b.Run(fmt.Sprintf("%v/T=%d", tier, T), func(b *testing.B) {
				b.SetBytes(int64(cols * T))
				for i := 0; i < b.N; i++ {
					h.run(k, ws, true)
				}
			})
			b.Run(fmt.Sprintf("%v-rows/T=%d", tier, T), func(b *testing.B) {
				b.SetBytes(int64(cols * T))
				for i := 0; i < b.N; i++ {
					h.runRange(k, ws, 0, T)
				}
			})
		}
	}
}
