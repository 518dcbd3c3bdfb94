package fountain

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestRoundTripQuick(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, k := range []int{1, 2, 10, 18, 101, 1000} {
		for _, T := range []int{8, 64} {
			size := int64(k*T - T/2)
			if size < 1 {
				size = 1
			}
			o, err := NewOTI(size, T, WithMaxBlockSymbols(MaxBlockSymbols))
			if err != nil {
				t.Fatal(err)
			}
			src := randBytes(r, int(size))
			enc, err := NewBlockEncoder(o, 0, src)
			if err != nil {
				t.Fatalf("K=%d: %v", k, err)
			}
			K := o.BlockSymbols(0)
			// Source symbols must come out as the source.
			sym := make([]byte, T)
			for i := 0; i < K; i++ {
				enc.Symbol(uint32(i), sym)
				want := make([]byte, T)
				copy(want, src[i*T:min(len(src), (i+1)*T)])
				if !bytes.Equal(sym, want) {
					t.Fatalf("K=%d T=%d: source symbol %d differs", k, T, i)
				}
			}
			dec := NewBlockDecoder(o, 0)
			// Half of the source symbols plus repair symbols.
			n := 0
			for esi := uint32(0); n < K+2; esi++ {
				if esi < uint32(K) && r.IntN(2) == 0 {
					continue
				}
				enc.Symbol(esi, sym)
				if _, err := dec.Add(esi, sym); err != nil {
					t.Fatal(err)
				}
				n++
			}
			out := make([]byte, len(src))
			if err := dec.Decode(out); err != nil {
				t.Fatalf("K=%d T=%d: decode: %v", k, T, err)
			}
			if !bytes.Equal(out, src) {
				t.Fatalf("K=%d T=%d: decoded bytes differ", k, T)
			}
		}
	}
}
