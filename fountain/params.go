package fountain

import (
	"fmt"
	"math/bits"
	"slices"
	"sort"
)

// sysParams is one row of RFC 6330 Table 2.
type sysParams struct {
	kp, j, s, h, w uint32
}

// MaxBlockSymbols is the largest number of source symbols in one source
// block that RFC 6330 supports.
const MaxBlockSymbols = 56403

// MaxESI is the largest encoding symbol ID (24 bits on the wire).
const MaxESI = 1<<24 - 1

// codeParams are the derived parameters of RFC 6330 section 5.3.3.3 for one
// source block of K symbols.
type codeParams struct {
	K, Kp, J, S, H, W, L, P, P1, U, B int
	// Divisors of Tuple and of the HDPC rows, for reduction without a
	// division.
	modW1, modW, modP1m1, modP1, modH, modH1 modulus
}

// modulus reduces 32-bit numbers modulo d with two multiplications
// (D. Lemire, O. Kaser, N. Kurz, "Faster remainder by direct computation").
type modulus struct {
	d uint32
	m uint64 // 2^64 / d rounded up
}

func newModulus(d int) modulus {
	return modulus{d: uint32(d), m: ^uint64(0)/uint64(d) + 1}
}

// reduce returns x mod d.
func (q modulus) reduce(x uint32) uint32 {
	hi, _ := bits.Mul64(q.m*uint64(x), uint64(q.d))
	return uint32(hi)
}

// lookupKp returns the index in sysIndex of the smallest K' >= k.
func lookupKp(k int) (int, error) {
	if k < 1 || k > MaxBlockSymbols {
		return 0, fmt.Errorf("block of %d symbols outside 1..%d", k, MaxBlockSymbols)
	}
	return sort.Search(len(sysIndex), func(i int) bool { return int(sysIndex[i].kp) >= k }), nil
}

func newCodeParams(k int) (codeParams, error) {
	i, err := lookupKp(k)
	if err != nil {
		return codeParams{}, err
	}
	r := sysIndex[i]
	p := codeParams{K: k, Kp: int(r.kp), J: int(r.j), S: int(r.s), H: int(r.h), W: int(r.w)}
	p.L = p.Kp + p.S + p.H
	p.P = p.L - p.W
	p.U = p.P - p.H
	p.B = p.W - p.S
	p.P1 = p.P
	for !isPrime(p.P1) {
		p.P1++
	}
	p.modW1, p.modW = newModulus(p.W-1), newModulus(p.W)
	p.modP1m1, p.modP1 = newModulus(p.P1-1), newModulus(p.P1)
	p.modH, p.modH1 = newModulus(p.H), newModulus(max(p.H-1, 1))
	return p, nil
}

func isPrime(n int) bool {
	if n < 2 {
		return false
	}
	for d := 2; d*d <= n; d++ {
		if n%d == 0 {
			return false
		}
	}
	return true
}

// isi maps an encoding symbol ID to the internal symbol ID (RFC 6330 5.3.1).
func (p *codeParams) isi(esi uint32) uint32 {
	if int(esi) < p.K {
		return esi
	}
	return esi + uint32(p.Kp-p.K)
}

// rqRand is Rand[y, i, m] of RFC 6330 section 5.3.5.1.
func rqRand(y uint32, i uint32, m uint32) uint32 {
	return rqRandRaw(y, i) % m
}

// rqRandRaw is Rand[y, i, m] before the reduction modulo m.
func rqRandRaw(y uint32, i uint32) uint32 {
	x0 := (y + i) & 0xff
	x1 := (y>>8 + i) & 0xff
	x2 := (y>>16 + i) & 0xff
	x3 := (y>>24 + i) & 0xff
	return randV0[x0] ^ randV1[x1] ^ randV2[x2] ^ randV3[x3]
}

// degF is the degree distribution table of RFC 6330 section 5.3.5.2.
var degF = [31]uint32{
	0, 5243, 529531, 704294, 791675, 844104, 879057, 904023, 922747, 937311,
	948962, 958494, 966438, 973160, 978921, 983914, 988283, 992138, 995565, 998631,
	1001391, 1003887, 1006157, 1008229, 1010129, 1011876, 1013490, 1014983, 1016370, 1017662,
	1048576,
}

// deg is Deg[v] of RFC 6330 section 5.3.5.2.
func (p *codeParams) deg(v uint32) int {
	d := 1
	for v >= degF[d] {
		d++
	}
	return min(d, p.W-2)
}

// tuple is the output of Tuple[K', X] (RFC 6330 section 5.3.5.4).
type tuple struct {
	d, a, b, d1, a1, b1 int
}

func (p *codeParams) tuple(x uint32) tuple {
	A := uint32(53591 + p.J*997)
	if A%2 == 0 {
		A++
	}
	B := uint32(10267 * (p.J + 1))
	y := B + x*A
	v := rqRandRaw(y, 0) & (1<<20 - 1)
	t := tuple{d: p.deg(v)}
	t.a = 1 + int(p.modW1.reduce(rqRandRaw(y, 1)))
	t.b = int(p.modW.reduce(rqRandRaw(y, 2)))
	if t.d < 4 {
		t.d1 = 2 + int(rqRandRaw(x, 3)&1)
	} else {
		t.d1 = 2
	}
	t.a1 = 1 + int(p.modP1m1.reduce(rqRandRaw(x, 4)))
	t.b1 = int(p.modP1.reduce(rqRandRaw(x, 5)))
	return t
}

// ltCols appends to dst the intermediate-symbol indices that Enc[K', C, t]
// (RFC 6330 section 5.3.5.3) adds up, in order.
func (p *codeParams) ltCols(dst []int32, t tuple) []int32 {
	// step is (b + a) % m for a, b < m, without a division.
	step := func(b, a, m int) int {
		if b += a; b >= m {
			b -= m
		}
		return b
	}
	b := t.b
	dst = append(dst, int32(b))
	for j := 1; j < t.d; j++ {
		b = step(b, t.a, p.W)
		dst = append(dst, int32(b))
	}
	b1 := t.b1
	for b1 >= p.P {
		b1 = step(b1, t.a1, p.P1)
	}
	dst = append(dst, int32(p.W+b1))
	for j := 1; j < t.d1; j++ {
		b1 = step(b1, t.a1, p.P1)
		for b1 >= p.P {
			b1 = step(b1, t.a1, p.P1)
		}
		dst = append(dst, int32(p.W+b1))
	}
	return dst
}

// ldpcRows returns the columns of the S LDPC constraint rows (RFC 6330
// section 5.3.3.3), each sorted, with repeated columns cancelled.
func (p *codeParams) ldpcRows() [][]int32 {
	rows := make([][]int32, p.S)
	for i := 0; i < p.B; i++ {
		a := 1 + i/p.S
		b := i % p.S
		rows[b] = append(rows[b], int32(i))
		b = (b + a) % p.S
		rows[b] = append(rows[b], int32(i))
		b = (b + a) % p.S
		rows[b] = append(rows[b], int32(i))
	}
	for i := 0; i < p.S; i++ {
		rows[i] = append(rows[i], int32(p.B+i), int32(p.W+i%p.P), int32(p.W+(i+1)%p.P))
		rows[i] = cancelPairs(rows[i])
	}
	return rows
}

// cancelPairs sorts a GF(2) row given as a list of columns and removes
// columns that occur an even number of times.
func cancelPairs(r []int32) []int32 {
	slices.Sort(r)
	out := r[:0]
	for i := 0; i < len(r); {
		j := i
		for j < len(r) && r[j] == r[i] {
			j++
		}
		if (j-i)%2 == 1 {
			out = append(out, r[i])
		}
		i = j
	}
	return out
}

// hdpcMT returns, for column m < K'+S-1 of the matrix MT (RFC 6330 section
// 5.3.3.3), the two rows that hold a one.
func (p *codeParams) hdpcMT(m int) (int, int) {
	h1 := int(p.modH.reduce(rqRandRaw(uint32(m+1), 6)))
	h2 := h1 + int(p.modH1.reduce(rqRandRaw(uint32(m+1), 7))) + 1
	if h2 >= p.H {
		h2 -= p.H
	}
	return h1, h2
}

// appendLDPC appends the columns of the S LDPC constraint rows (the same
// rows as ldpcRows, repeated columns cancelled) to cols and sets
// rowStart[r+1] to the end of row r for r < S. rowStart must hold S+1
// zeroed entries and cols must be empty.
func (p *codeParams) appendLDPC(cols []int32, rowStart []int32) []int32 {
	S := p.S
	// Count the entries of every row, then place them in increasing column
	// order, so that repeated columns end up next to each other.
	p.ldpcWalk(func(b0, b1, b2, _ int) {
		rowStart[b0+1]++
		rowStart[b1+1]++
		rowStart[b2+1]++
	})
	for r := 0; r < S; r++ {
		rowStart[r+1] += rowStart[r] + 3
	}
	n := int(rowStart[S])
	cols = slices.Grow(cols, 2*n)[:2*n]
	raw := cols[n:]
	fillBuf := make([]int32, S)
	copy(fillBuf, rowStart[:S])
	put := func(r int, c int32) {
		raw[fillBuf[r]] = c
		fillBuf[r]++
	}
	p.ldpcWalk(func(b0, b1, b2, i int) {
		put(b0, int32(i))
		put(b1, int32(i))
		put(b2, int32(i))
	})
	for r := 0; r < S; r++ {
		put(r, int32(p.B+r))
		x, y := int32(p.W+r%p.P), int32(p.W+(r+1)%p.P)
		put(r, min(x, y))
		put(r, max(x, y))
	}
	// Compact into cols, cancelling pairs.
	out := 0
	lo := 0
	for r := 0; r < S; r++ {
		hi := int(rowStart[r+1])
		row := raw[lo:hi]
		for i := 0; i < len(row); {
			j := i
			for j < len(row) && row[j] == row[i] {
				j++
			}
			if (j-i)%2 == 1 {
				cols[out] = row[i]
				out++
			}
			i = j
		}
		rowStart[r+1] = int32(out)
		lo = hi
	}
	return cols[:out]
}

// ldpcWalk calls f with the three LDPC rows that column i < B has a one in
// (RFC 6330 section 5.3.3.3: b = i mod S, then twice b = (b + a) mod S with
// a = 1 + floor(i/S)), for every i in order.
func (p *codeParams) ldpcWalk(f func(b0, b1, b2, i int)) {
	S := p.S
	for base := 0; base < p.B; base += S {
		a := (1 + base/S) % S
		for b := 0; b < S && base+b < p.B; b++ {
			b1 := b + a
			if b1 >= S {
				b1 -= S
			}
			b2 := b1 + a
			if b2 >= S {
				b2 -= S
			}
			f(b, b1, b2, base+b)
		}
	}
}
