package fountain

import (
	"bytes"
	"testing"
)

// naiveMul multiplies every byte of a symbol by c with the log tables only.
func naiveMulAdd(dst, src []byte, c byte) {
	for i := range dst {
		if c != 0 && src[i] != 0 {
			dst[i] ^= gf.exp[(int(gf.log[c])+int(gf.log[src[i]]))%255]
		}
	}
}

// TestConstraintEquations checks RFC 6330 section 5.3.3.4 directly: the
// intermediate symbols C of a block satisfy the S LDPC relations, the H
// HDPC relations (with G_HDPC = MT * GAMMA written out as a dense matrix)
// and reproduce the K' systematic rows through Enc. The equations are
// written out plainly here, independent of the solver's data structures.
func TestConstraintEquations(t *testing.T) {
	const T = 8
	for _, k := range []int{1, 10, 27, 100, 500, 1000} {
		o, err := NewOTI(int64(k*T), T, WithMaxBlockSymbols(MaxBlockSymbols))
		if err != nil {
			t.Fatal(err)
		}
		src := xorshiftData(k, T)
		enc, err := NewBlockEncoder(o, 0, src)
		if err != nil {
			t.Fatal(err)
		}
		p := enc.bc.p
		inter := enc.Intermediate()
		C := func(i int) []byte { return inter[i*T : (i+1)*T] }

		// LDPC (section 5.3.3.3, first part).
		D := make([][]byte, p.S)
		for i := range D {
			D[i] = make([]byte, T)
		}
		x := func(d, s []byte) {
			for i := range d {
				d[i] ^= s[i]
			}
		}
		for i := 0; i < p.B; i++ {
			a := 1 + i/p.S
			b := i % p.S
			x(D[b], C(i))
			b = (b + a) % p.S
			x(D[b], C(i))
			b = (b + a) % p.S
			x(D[b], C(i))
		}
		for i := 0; i < p.S; i++ {
			x(D[i], C(p.B+i))
		}
		for i := 0; i < p.S; i++ {
			a := i % p.P
			b := (i + 1) % p.P
			x(D[i], C(p.W+a))
			x(D[i], C(p.W+b))
		}
		for i := range D {
			if !bytes.Equal(D[i], make([]byte, T)) {
				t.Fatalf("K=%d: LDPC row %d not satisfied", k, i)
			}
		}

		// HDPC: G_HDPC = MT * GAMMA as an explicit H x (K'+S) matrix.
		ks := p.Kp + p.S
		mt := make([][]byte, p.H)
		for h := range mt {
			mt[h] = make([]byte, ks)
		}
		for j := 0; j < ks-1; j++ {
			h1 := int(rqRand(uint32(j+1), 6, uint32(p.H)))
			h2 := (h1 + int(rqRand(uint32(j+1), 7, uint32(p.H-1))) + 1) % p.H
			mt[h1][j] = 1
			mt[h2][j] = 1
		}
		for h := 0; h < p.H; h++ {
			mt[h][ks-1] = gf.exp[h%255]
		}
		for h := 0; h < p.H; h++ {
			acc := make([]byte, T)
			for j := 0; j < ks; j++ {
				// G[h][j] = sum over m >= j of MT[h][m] * alpha^(m-j).
				var g byte
				for m := j; m < ks; m++ {
					if mt[h][m] != 0 {
						g ^= gfMul(mt[h][m], gf.exp[(m-j)%255])
					}
				}
				naiveMulAdd(acc, C(j), g)
			}
			x(acc, C(ks+h))
			if !bytes.Equal(acc, make([]byte, T)) {
				t.Fatalf("K=%d: HDPC row %d not satisfied", k, h)
			}
		}

		// LT rows: Enc of ISI i is source symbol i (zero for the padding).
		padded := make([]byte, p.Kp*T)
		copy(padded, src)
		for isi := 0; isi < p.Kp; isi++ {
			got := make([]byte, T)
			tp := p.tuple(uint32(isi))
			for _, c := range p.ltCols(nil, tp) {
				x(got, C(int(c)))
			}
			if !bytes.Equal(got, padded[isi*T:(isi+1)*T]) {
				t.Fatalf("K=%d: LT row %d not satisfied", k, isi)
			}
		}
	}
}

// TestParameterTable checks derived parameters against RFC 6330 invariants
// for every row of the systematic index table.
func TestParameterTable(t *testing.T) {
	prev := 0
	for _, r := range sysIndex {
		p, err := newCodeParams(int(r.kp))
		if err != nil {
			t.Fatal(err)
		}
		if p.Kp <= prev {
			t.Fatalf("K' table not increasing at %d", p.Kp)
		}
		prev = p.Kp
		if !isPrime(p.S) || !isPrime(p.W) {
			t.Fatalf("K'=%d: S=%d or W=%d not prime", p.Kp, p.S, p.W)
		}
		if p.W > p.Kp+p.S || p.P < p.H || !isPrime(p.P1) || p.P1 < p.P {
			t.Fatalf("K'=%d: inconsistent W=%d P=%d P1=%d", p.Kp, p.W, p.P, p.P1)
		}
	}
	if len(sysIndex) != 477 || sysIndex[len(sysIndex)-1].kp != MaxBlockSymbols {
		t.Fatalf("table has %d rows", len(sysIndex))
	}
	// Spot values quoted in RFC 6330 Table 2.
	for _, c := range []sysParams{{10, 254, 7, 10, 17}, {1002, 299, 59, 10, 1021}, {56403, 471, 907, 16, 56951}} {
		i, _ := lookupKp(int(c.kp))
		if sysIndex[i] != c {
			t.Fatalf("row %v, want %v", sysIndex[i], c)
		}
	}
	if randV0[0] != 251291136 || randV3[255] != 0xcc945cf8 {
		t.Fatal("V tables corrupted")
	}
}
