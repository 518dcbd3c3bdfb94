package fountain

import (
	"errors"
	"math/bits"
	"slices"
)

// ErrNeedMore reports that the symbols received so far do not determine the
// block: add more symbols and decode again.
var ErrNeedMore = errors.New("fountain: not enough independent symbols")

// opKind is one whole-symbol operation of a plan.
type opKind uint8

const (
	opXor     opKind = iota // s[dst] ^= s[a]
	opXor2                  // s[dst] = s[a] ^ s[b]
	opCopy                  // s[dst] = s[a]
	opMulAdd                // s[dst] ^= c * s[a]
	opScale                 // s[dst] = c * s[dst]
	opXorMany               // s[dst] ^= s[srcs[a]] ^ ... ^ s[srcs[a+b-1]]
)

type op struct {
	dst, a, b int32
	kind      opKind
	c         byte
}

// plan is the schedule of symbol operations that solves the constraint
// system A*C = D of RFC 6330 section 5.3.3.4 for one set of rows. The
// workspace holds one slot per row (S LDPC rows, H HDPC rows, then the LT rows
// in the order given) followed by scratch slots. After run, intermediate
// symbol c is in slot colSlot[c].
type plan struct {
	rows, slots int
	ops         []op
	srcs        []int32 // source lists of opXorMany
	back        backSub
	colSlot     []int32
}

// backSub adds Z_k * x_U to every pivot row k, where Z_k is the pivot row's
// reduced inactive part (u bits) and x_U the solved inactive columns. It
// works b.bits columns at a time through a table of partial sums of those
// columns' symbols (the "method of four Russians"), built lazily in the
// scratch slots from tbase on.
type backSub struct {
	u, words int
	bits     int
	z        []uint64 // Z_k at z[k*words:]
	rows     []int32  // slot of pivot row k
	x        []int32  // slot of inactive column i's value
	tbase    int32
}

func (b *backSub) run(k kernels, s [][]byte) {
	size := 1 << b.bits
	var made [frGroup << frMaxBits]bool
	var srcs [frGroup][]byte
	table := s[b.tbase : b.tbase+int32(frGroup*size)]
	// ensure returns the sum of the inactive values in mask m of the chunk
	// at column base, held in table slot t*size+m.
	var ensure func(t, base, m int) []byte
	ensure = func(t, base, m int) []byte {
		slot := t*size + m
		if made[slot] {
			return table[slot]
		}
		made[slot] = true
		lo := bits.TrailingZeros(uint(m))
		rest := m &^ (1 << lo)
		if rest&(rest-1) == 0 {
			k.xor2(table[slot], s[b.x[base+lo]], s[b.x[base+bits.TrailingZeros(uint(rest))]])
		} else {
			k.xor2(table[slot], ensure(t, base, rest), s[b.x[base+lo]])
		}
		return table[slot]
	}
	for gbase := 0; gbase < b.u; gbase += frGroup * b.bits {
		clear(made[:frGroup*size])
		for i, row := range b.rows {
			z := b.z[i*b.words : (i+1)*b.words]
			n := 0
			for t := 0; t < frGroup; t++ {
				base := gbase + t*b.bits
				if base >= b.u {
					break
				}
				m := b.chunk(z, base)
				switch {
				case m == 0:
					continue
				case m&(m-1) == 0:
					srcs[n] = s[b.x[base+bits.TrailingZeros(uint(m))]]
				default:
					srcs[n] = ensure(t, base, m)
				}
				n++
			}
			switch n {
			case 0:
			case 1:
				k.xor(s[row], srcs[0])
			default:
				k.xorMany(s[row], srcs[:n])
			}
		}
	}
}

// chunk returns the bits base..base+b.bits-1 of the bit row z (zero past u).
func (b *backSub) chunk(z []uint64, base int) int {
	mask := 1<<b.bits - 1
	if base+b.bits > b.u {
		mask = 1<<(b.u-base) - 1
	}
	w := base >> 6
	m := int(z[w] >> (base & 63))
	if r := 64 - base&63; r < b.bits && w+1 < len(z) {
		// The chunk straddles two words.
		m |= int(z[w+1] << r)
	}
	return m & mask
}

// The back substitution handles frGroup chunks of up to frMaxBits columns
// per pass over the pivot rows; each chunk needs 2^bits scratch slots,
// which pay off when there are many more pivot rows.
const (
	frMaxBits = 6
	frGroup   = 4
)

func frBitsFor(rows int) int {
	switch {
	case rows >= 400:
		return frMaxBits
	case rows >= 100:
		return 5
	default:
		return 4
	}
}

// buildPlan computes the elimination schedule for the LT rows of the given
// internal symbol IDs. It returns ErrNeedMore when the rows do not have full
// rank. The method is inactivation decoding: a sparse peeling phase over the
// GF(2) rows that turns columns it cannot peel into inactive ones, a dense
// GF(256) solve of the Schur complement on the inactive columns (HDPC rows
// included there), and a back substitution; it yields the same intermediate
// symbols as the RFC's phases 1 to 5 because the solution is unique.
func buildPlan(p *codeParams, isis []uint32) (*plan, error) {
	S, H, W, L := p.S, p.H, p.W, p.L
	nLT := len(isis)
	if S+H+nLT < L {
		return nil, ErrNeedMore
	}
	nb := S + nLT // binary rows: LDPC then LT
	slotOf := func(r int) int32 {
		if r < S {
			return int32(r)
		}
		return int32(r + H)
	}

	// Binary rows in CSR form.
	rowStart := make([]int32, nb+1)
	cols := make([]int32, 0, 3*p.B+3*S+nLT*8)
	cols = p.appendLDPC(cols, rowStart[:S+1])
	var tuplesBuf [40]int32
	for i, x := range isis {
		// An LT row never repeats a column: the LT part walks W (prime)
		// positions with d < W steps, the PI part likewise walks P1.
		cols = append(cols, p.ltCols(tuplesBuf[:0], p.tuple(x))...)
		rowStart[S+i+1] = int32(len(cols))
	}
	rowCols := func(r int) []int32 { return cols[rowStart[r]:rowStart[r+1]] }

	// One arena for the integer bookkeeping of the peeling phase.
	arena := make([]int32, 3*(W+1)+3*nb+5*L)
	take := func(n int) []int32 {
		s := arena[:n:n]
		arena = arena[n:]
		return s
	}

	// Column -> rows adjacency for the LT columns (0..W-1), the number of
	// still active columns in every row, and the number of rows not yet
	// chosen as pivots in every column.
	colStart := take(W + 1)
	rcount := take(nb)
	for r := 0; r < nb; r++ {
		for _, c := range rowCols(r) {
			if int(c) < W {
				colStart[c+1]++
				rcount[r]++
			}
		}
	}
	cdeg := take(W + 1)
	for c := 0; c < W; c++ {
		cdeg[c] = colStart[c+1]
		colStart[c+1] += colStart[c]
	}
	colRows := make([]int32, colStart[W])
	fill := take(W + 1)
	copy(fill, colStart[:W])
	for r := 0; r < nb; r++ {
		for _, c := range rowCols(r) {
			if int(c) < W {
				colRows[fill[c]] = int32(r)
				fill[c]++
			}
		}
	}

	// Rows by active count, as doubly linked lists (head[n] is the first
	// row with n active columns, -1 when none).
	maxR := int32(0)
	for _, n := range rcount {
		maxR = max(maxR, n)
	}
	head := make([]int32, maxR+1)
	for i := range head {
		head[i] = -1
	}
	next, prev := take(nb), take(nb)
	link := func(r, n int32) {
		next[r], prev[r] = head[n], -1
		if head[n] >= 0 {
			prev[head[n]] = r
		}
		head[n] = r
	}
	unlink := func(r, n int32) {
		if prev[r] >= 0 {
			next[prev[r]] = next[r]
		} else {
			head[n] = next[r]
		}
		if next[r] >= 0 {
			prev[next[r]] = prev[r]
		}
	}
	for r := nb - 1; r >= 0; r-- {
		if rcount[r] > 0 {
			link(int32(r), rcount[r])
		}
	}
	chosen := make([]bool, nb+L)
	done := chosen[nb:]
	chosen = chosen[:nb]
	for c := W; c < L; c++ {
		done[c] = true
	}
	pivotIdx := take(L)
	for c := range pivotIdx {
		pivotIdx[c] = -1
	}
	inactive := take(L)[:0]
	for c := W; c < L; c++ {
		inactive = append(inactive, int32(c))
	}
	order := take(L)[:0]
	pivCol := take(L)[:0]
	minR := int32(1)
	comp := make([]int32, 2*W)
	for i := range comp[:W] {
		comp[i] = -1
	}
	ends := make([]int32, 0, 2*nb)
	// dec takes column c out of the active part of every row but except.
	dec := func(c int32, except int32) {
		for _, rr := range colRows[colStart[c]:colStart[c+1]] {
			if rr == except || chosen[rr] {
				continue
			}
			n := rcount[rr]
			unlink(rr, n)
			n--
			rcount[rr] = n
			if n > 0 {
				link(rr, n)
				minR = min(minR, n)
			}
		}
	}

	// Phase 1: peel rows with a single active column (that column becomes
	// the row's pivot). When every row has r >= 2 active columns, take a
	// row with the fewest and inactivate its r-1 active columns of highest
	// degree among the rows left (as in RFC 6330 section 5.4.2.2), so that
	// the row peels next and the inactivated columns shorten many others.
	for {
		for minR <= maxR && head[minR] < 0 {
			minR++
		}
		if minR > maxR {
			break
		}
		row := head[minR]
		if minR > 1 {
			if minR == 2 {
				row = largestComponent(head[2], next, cols, rowStart, done, W, comp, ends)
			}
			keep := int32(-1)
			for _, c := range rowCols(int(row)) {
				if int(c) < W && !done[c] && (keep < 0 || cdeg[c] < cdeg[keep]) {
					keep = c
				}
			}
			for _, c := range rowCols(int(row)) {
				if int(c) < W && !done[c] && c != keep {
					done[c] = true
					inactive = append(inactive, c)
					dec(c, -1)
				}
			}
			continue
		}
		unlink(row, 1)
		chosen[row] = true
		best := int32(-1)
		for _, c := range rowCols(int(row)) {
			if int(c) < W {
				cdeg[c]--
				if !done[c] {
					best = c
				}
			}
		}
		done[best] = true
		pivotIdx[best] = int32(len(order))
		order = append(order, row)
		pivCol = append(pivCol, best)
		dec(best, row)
	}
	for c := 0; c < W; c++ {
		if !done[c] {
			done[c] = true
			inactive = append(inactive, int32(c))
		}
	}
	u := len(inactive)
	uIdx := take(L)
	for i, c := range inactive {
		uIdx[c] = int32(i)
	}

	pl := &plan{rows: S + H + nLT}
	tz := int32(pl.rows)
	tbase := tz + 1
	frBits := frBitsFor(len(order))
	pl.slots = int(tbase) + frGroup<<frBits
	ops := make([]op, 0, nb+4*L+(nb+H-len(order)+1)*u/2)
	pl.srcs = make([]int32, 0, len(cols))

	// Forward substitution through the triangular pivot block, and the
	// inactive part Z of every pivot row.
	words := (u + 63) / 64
	Z := make([]uint64, len(order)*words)
	for k, row := range order {
		z := Z[k*words : (k+1)*words]
		dst := slotOf(int(row))
		first := len(pl.srcs)
		for _, c := range rowCols(int(row)) {
			if c == pivCol[k] {
				continue
			}
			if j := pivotIdx[c]; j >= 0 {
				xorWords(z, Z[int(j)*words:int(j+1)*words])
				pl.srcs = append(pl.srcs, slotOf(int(order[j])))
			} else {
				z[uIdx[c]>>6] ^= 1 << (uIdx[c] & 63)
			}
		}
		ops = pl.emitXors(ops, dst, first)
	}

	// Remaining binary rows: reduce them to the inactive columns.
	var rest []int32
	for r := 0; r < nb; r++ {
		if !chosen[r] {
			rest = append(rest, int32(r))
		}
	}
	nr := len(rest) + H
	nbr := len(rest)
	bin := make([]uint64, nbr*words) // reduced binary rows over U
	hd := make([]byte, H*u)          // reduced HDPC rows over U
	denseSlot := make([]int32, nr)   // binary rows, then HDPC rows
	for i, r := range rest {
		zw := bin[i*words : (i+1)*words]
		dst := slotOf(int(r))
		denseSlot[i] = dst
		first := len(pl.srcs)
		for _, c := range rowCols(int(r)) {
			if j := pivotIdx[c]; j >= 0 {
				xorWords(zw, Z[int(j)*words:int(j+1)*words])
				pl.srcs = append(pl.srcs, slotOf(int(order[j])))
			} else {
				zw[uIdx[c]>>6] ^= 1 << (uIdx[c] & 63)
			}
		}
		ops = pl.emitXors(ops, dst, first)
	}

	// HDPC rows: MT * GAMMA applied to the forward-substituted pivot rows
	// (symbols) and to their inactive parts (matrix), by the recursion
	// z_m = alpha*z_{m-1} + y_m.
	kern := newKernels(false)
	for h := 0; h < H; h++ {
		denseSlot[nbr+h] = int32(S + h)
	}
	zv := make([]byte, u)
	started := false
	ks := p.Kp + S
	for m := 0; m < ks; m++ {
		if started {
			ops = append(ops, op{kind: opScale, dst: tz, c: 2})
		}
		kern.scale(zv, 2)
		if j := pivotIdx[m]; j >= 0 {
			src := slotOf(int(order[j]))
			if started {
				ops = append(ops, op{kind: opXor, dst: tz, a: src})
			} else {
				ops = append(ops, op{kind: opCopy, dst: tz, a: src})
				started = true
			}
			z := Z[int(j)*words : int(j+1)*words]
			for w, x := range z {
				for x != 0 {
					zv[w*64+bits.TrailingZeros64(x)] ^= 1
					x &= x - 1
				}
			}
		} else {
			zv[uIdx[m]] ^= 1
		}
		if m < ks-1 {
			h1, h2 := p.hdpcMT(m)
			kern.xor(hd[h1*u:(h1+1)*u], zv)
			kern.xor(hd[h2*u:(h2+1)*u], zv)
			if started {
				ops = append(ops, op{kind: opXor, dst: int32(S + h1), a: tz}, op{kind: opXor, dst: int32(S + h2), a: tz})
			}
		} else {
			for h := 0; h < H; h++ {
				a := gfAlphaPow(h)
				kern.mulAdd(hd[h*u:(h+1)*u], zv, a)
				if started {
					ops = append(ops, op{kind: opMulAdd, dst: int32(S + h), a: tz, c: a})
				}
			}
		}
	}
	for h := 0; h < H; h++ {
		hd[h*u+int(uIdx[ks+h])] ^= 1
	}

	// Solve for the inactive columns.
	xs, err := solveDense(u, words, bin, hd, denseSlot, &ops)
	if err != nil {
		return nil, err
	}
	xslot := func(ui int) int32 { return xs[ui] }

	// Back substitution of the inactive values into the pivot rows runs
	// from Z directly (see backSub.run).
	pl.back = backSub{u: u, words: words, bits: frBits, z: Z, rows: make([]int32, len(order)), x: make([]int32, u), tbase: tbase}
	for k, row := range order {
		pl.back.rows[k] = slotOf(int(row))
	}
	for i := range pl.back.x {
		pl.back.x[i] = xslot(i)
	}

	pl.colSlot = make([]int32, L)
	for k, c := range pivCol {
		pl.colSlot[c] = slotOf(int(order[k]))
	}
	for i, c := range inactive {
		pl.colSlot[c] = xslot(i)
	}
	if nr > u {
		// Surplus rows: drop the work whose result is never read.
		ops = pruneOps(ops, pl.srcs, pl.colSlot, pl.slots)
	}
	pl.fuse(ops)
	return pl, nil
}

// largestComponent considers the graph whose nodes are the active columns
// and whose edges are the rows with two active columns (the list starting at
// first, linked by next), and returns a row of its largest connected
// component: inactivating one of that row's columns lets the whole
// component peel (RFC 6330 section 5.4.2.2). comp is scratch of 2W entries,
// the first W of them -1 on entry and on return; ends receives one active
// column per row.
func largestComponent(first int32, next []int32, cols, rowStart []int32, done []bool, W int, comp []int32, ends []int32) int32 {
	parent, size := comp[:W], comp[W:]
	find := func(c int32) int32 {
		for parent[c] != c {
			parent[c] = parent[parent[c]]
			c = parent[c]
		}
		return c
	}
	ends = ends[:0]
	for r := first; r >= 0; r = next[r] {
		var ab [2]int32
		n := 0
		for _, c := range cols[rowStart[r]:rowStart[r+1]] {
			if int(c) < W && !done[c] {
				ab[n] = c
				n++
				if parent[c] < 0 {
					parent[c] = c
					size[c] = 1
				}
			}
		}
		ends = append(ends, ab[0], ab[1])
		ra, rb := find(ab[0]), find(ab[1])
		if ra != rb {
			if size[ra] < size[rb] {
				ra, rb = rb, ra
			}
			parent[rb] = ra
			size[ra] += size[rb]
		}
	}
	best, bestSize := first, int32(0)
	i := 0
	for r := first; r >= 0; r = next[r] {
		if sz := size[find(ends[i])]; sz > bestSize {
			best, bestSize = r, sz
		}
		i += 2
	}
	for _, c := range ends {
		parent[c] = -1
	}
	return best
}

// solveDense eliminates the Schur complement on the u inactive columns:
// binary rows bin (bit rows of words words) and HDPC rows hd (byte rows),
// whose symbols are in slot[i] (binary rows first). It first does a GF(2)
// Gauss-Jordan pass with the binary rows, eliminating each pivot column from
// the HDPC rows too, then finishes the columns no binary row could take in
// GF(256) with the HDPC rows and the binary rows left over. It appends the
// symbol operations to ops and returns the slot that ends up holding each
// inactive column's value.
func solveDense(u, words int, bin []uint64, hd []byte, slot []int32, ops *[]op) ([]int32, error) {
	nbr := len(bin) / max(words, 1)
	H := len(hd) / max(u, 1)
	xs := make([]int32, u)
	pivOf := make([]int32, u) // binary pivot row of a column, or -1
	used := make([]bool, nbr)
	row := func(i int) []uint64 { return bin[i*words : (i+1)*words] }
	var deferred []int
	for col := 0; col < u; col++ {
		w, bit := col>>6, uint64(1)<<(col&63)
		pr := -1
		for i := 0; i < nbr; i++ {
			if !used[i] && bin[i*words+w]&bit != 0 {
				pr = i
				break
			}
		}
		pivOf[col] = int32(pr)
		if pr < 0 {
			deferred = append(deferred, col)
			continue
		}
		used[pr] = true
		prow := row(pr)
		for i := 0; i < nbr; i++ {
			if i != pr && bin[i*words+w]&bit != 0 {
				xorWords(row(i), prow)
				*ops = append(*ops, op{kind: opXor, dst: slot[i], a: slot[pr]})
			}
		}
		for h := 0; h < H; h++ {
			f := hd[h*u+col]
			if f == 0 {
				continue
			}
			hr := hd[h*u : (h+1)*u]
			for wi, x := range prow {
				for x != 0 {
					hr[wi*64+bits.TrailingZeros64(x)] ^= f
					x &= x - 1
				}
			}
			if f == 1 {
				*ops = append(*ops, op{kind: opXor, dst: slot[nbr+h], a: slot[pr]})
			} else {
				*ops = append(*ops, op{kind: opMulAdd, dst: slot[nbr+h], a: slot[pr], c: f})
			}
		}
		xs[col] = slot[pr]
	}
	if len(deferred) == 0 {
		return xs, nil
	}

	// GF(256) part on the deferred columns only: the rows left over (binary
	// ones first, then HDPC), and the binary pivot rows, which may still
	// hold entries in those columns.
	nd := len(deferred)
	var lrows, prows []int // indices into slot
	for i := 0; i < nbr; i++ {
		if used[i] {
			prows = append(prows, i)
		} else {
			lrows = append(lrows, i)
		}
	}
	for h := 0; h < H; h++ {
		lrows = append(lrows, nbr+h)
	}
	get := func(i, col int) byte {
		if i < nbr {
			return byte(bin[i*words+col>>6] >> (col & 63) & 1)
		}
		return hd[(i-nbr)*u+col]
	}
	lm := make([]byte, len(lrows)*nd)
	for r, i := range lrows {
		for d, col := range deferred {
			lm[r*nd+d] = get(i, col)
		}
	}
	pm := make([]byte, len(prows)*nd)
	for r, i := range prows {
		for d, col := range deferred {
			pm[r*nd+d] = get(i, col)
		}
	}
	kern := newKernels(false)
	perm := make([]int, len(lrows))
	for i := range perm {
		perm[i] = i
	}
	for d := 0; d < nd; d++ {
		pr := -1
		for i := d; i < len(perm); i++ {
			if lm[perm[i]*nd+d] != 0 {
				pr = i
				break
			}
		}
		if pr < 0 {
			return nil, ErrNeedMore
		}
		perm[d], perm[pr] = perm[pr], perm[d]
		prow := lm[perm[d]*nd : (perm[d]+1)*nd]
		pslot := slot[lrows[perm[d]]]
		if c := prow[d]; c != 1 {
			inv := gfInv(c)
			kern.scale(prow, inv)
			*ops = append(*ops, op{kind: opScale, dst: pslot, c: inv})
		}
		elim := func(r []byte, dst int32) {
			f := r[d]
			if f == 0 {
				return
			}
			kern.mulAdd(r, prow, f)
			if f == 1 {
				*ops = append(*ops, op{kind: opXor, dst: dst, a: pslot})
			} else {
				*ops = append(*ops, op{kind: opMulAdd, dst: dst, a: pslot, c: f})
			}
		}
		for i := range perm {
			if i != d {
				elim(lm[perm[i]*nd:(perm[i]+1)*nd], slot[lrows[perm[i]]])
			}
		}
		for r, i := range prows {
			elim(pm[r*nd:(r+1)*nd], slot[i])
		}
		xs[deferred[d]] = pslot
	}
	return xs, nil
}

// pruneOps drops operations whose result never reaches an intermediate
// symbol (for example the elimination of surplus received rows).
func pruneOps(ops []op, srcs []int32, out []int32, slots int) []op {
	live := make([]bool, slots)
	for _, s := range out {
		live[s] = true
	}
	for i := len(ops) - 1; i >= 0; i-- {
		o := &ops[i]
		if !live[o.dst] {
			o.dst = -1
			continue
		}
		switch o.kind {
		case opXor, opMulAdd:
			live[o.a] = true
		case opXorMany:
			for _, x := range srcs[o.a : o.a+o.b] {
				live[x] = true
			}
		case opXor2:
			live[o.dst] = false
			live[o.a] = true
			live[o.b] = true
		case opCopy:
			live[o.dst] = false
			live[o.a] = true
		}
	}
	res := ops[:0]
	for _, o := range ops {
		if o.dst >= 0 {
			res = append(res, o)
		}
	}
	return slices.Clip(res)
}

// emitXors appends the XOR of the sources pl.srcs[first:] into slot dst
// as one operation (none when the list is empty).
func (pl *plan) emitXors(ops []op, dst int32, first int) []op {
	switch n := len(pl.srcs) - first; n {
	case 0:
		return ops
	case 1:
		a := pl.srcs[first]
		pl.srcs = pl.srcs[:first]
		return append(ops, op{kind: opXor, dst: dst, a: a})
	default:
		return append(ops, op{kind: opXorMany, dst: dst, a: int32(first), b: int32(n)})
	}
}

// fuse stores ops in the plan, turning runs of XORs into the same slot into
// one opXorMany that reads and writes that slot once.
func (pl *plan) fuse(ops []op) {
	out := ops[:0]
	for i := 0; i < len(ops); {
		j := i + 1
		if ops[i].kind == opXor {
			for j < len(ops) && ops[j].kind == opXor && ops[j].dst == ops[i].dst {
				j++
			}
		}
		if j-i < 2 {
			out = append(out, ops[i])
			i++
			continue
		}
		fused := op{kind: opXorMany, dst: ops[i].dst, a: int32(len(pl.srcs)), b: int32(j - i)}
		for _, o := range ops[i:j] {
			pl.srcs = append(pl.srcs, o.a)
		}
		out = append(out, fused)
		i = j
	}
	pl.ops = slices.Clip(out)
}

func xorWords(dst, src []uint64) {
	for i, x := range src {
		dst[i] ^= x
	}
}

// run executes the plan on a workspace of pl.slots equally long slots.
func (pl *plan) run(k kernels, s [][]byte) {
	pl.runOps(k, s)
	pl.back.run(k, s)
}

func (pl *plan) runOps(k kernels, s [][]byte) {
	var srcs [maxFused][]byte
	for i := range pl.ops {
		o := &pl.ops[i]
		switch o.kind {
		case opXor:
			k.xor(s[o.dst], s[o.a])
		case opXor2:
			k.xor2(s[o.dst], s[o.a], s[o.b])
		case opCopy:
			copy(s[o.dst], s[o.a])
		case opMulAdd:
			k.mulAdd(s[o.dst], s[o.a], o.c)
		case opScale:
			k.scale(s[o.dst], o.c)
		case opXorMany:
			list := pl.srcs[o.a : o.a+o.b]
			for len(list) > 0 {
				n := min(len(list), maxFused)
				for i, x := range list[:n] {
					srcs[i] = s[x]
				}
				k.xorMany(s[o.dst], srcs[:n])
				list = list[n:]
			}
		}
	}
}
