package fountain

import (
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"math/bits"
	"slices"
	"sync"
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
	opXorInto               // s[dst] = s[srcs[a]] ^ ... ^ s[srcs[a+b-1]]
	opBack                  // plan.back: dense back substitution
	opHDPC                  // plan.hdpc: the HDPC rows' right-hand sides
)

type op struct {
	dst, a, b int32
	kind      opKind
	c         byte
}

// Where a row's symbol can be read when the back substitution needs it
// (planSpec.copyOf); any other value is a slot holding an unmodified copy.
const (
	symLost = -1 // only in the row's own slot, which the plan overwrites
	symZero = -2 // the symbol is zero
)

// planSpec describes the rows a plan solves for: the LT rows of isis and,
// optionally, where unmodified copies of their symbols are kept. Slots
// rows..rows+ext-1 (rows = S+H+len(isis)) are external to the workspace:
// copyOf[i] names the slot holding LT row i's symbol throughout the run (or
// symLost, symZero; nil means all symLost), and scratch lists external slots
// the plan may overwrite. A row whose symbol survives lets the back
// substitution use the row's few original columns instead of its dense
// inactive part.
type planSpec struct {
	isis    []uint32
	ext     int
	copyOf  []int32
	scratch []int32
	// With unloaded, the LT rows' own slots hold nothing at the start (zero
	// bytes): a row whose symbol survives (copyOf[i] >= 0) is read from
	// there only, which spares copying the symbols into the workspace.
	unloaded bool
	// After solving, slot fill[i] receives the encoding symbol of ISI
	// fillISI[i].
	fill    []int32
	fillISI []uint32
}

// plan is the schedule of symbol operations that solves the constraint
// system A*C = D of RFC 6330 section 5.3.3.4 for one set of rows. The
// workspace holds one slot per row (S LDPC rows, H HDPC rows, then the LT
// rows in the order given), ext external slots (see planSpec), then scratch
// slots. After run, intermediate symbol c is in slot colSlot[c], always one
// of the first rows slots.
type plan struct {
	rows, ext, slots int
	ops              []op
	srcs             []int32 // source lists of opXorMany and opXorInto
	back             backSub
	hdpc             hdpcRun
	colSlot          []int32
}

// backSub adds Z_k * x_U to pivot rows k, where Z_k is the pivot row's
// reduced inactive part (u bits) and x_U the solved inactive columns. It
// works b.bits columns at a time through a table of partial sums of those
// columns' symbols (the "method of four Russians"), built lazily in the
// scratch slots from tbase on.
type backSub struct {
	u, words int
	bits     int
	z        []uint64 // Z of row i at z[i*words:]
	rows     []int32  // slot of each row to update
	x        []int32  // slot of inactive column i's value
	tbase    int32
}

func (b *backSub) run(k kernels, s [][]byte) {
	if len(b.rows) == 0 {
		return
	}
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
	// frMinRows is the fewest dense rows worth tables; fewer rows add
	// their inactive values directly.
	frMinRows = 64
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

// hdpcRun computes the right-hand sides of the H HDPC rows, MT * GAMMA * y
// over the first K'+S columns, with the recursion z_m = alpha*z_(m-1) + y_m:
// the HDPC rows h1(m), h2(m) that MT has a one in, for m < K'+S-1, add z_m,
// and every row h adds alpha^h * z_(K'+S-1). y_m is the symbol in slot y[m]
// (none when y[m] < 0). Rows whose out[h] < 0 are not needed.
type hdpcRun struct {
	y   []int32
	h12 []uint16 // h1, h2 of column m at 2m, 2m+1
	out []int32
	tz  int32 // scratch slot for z
}

// run computes the rows; with uniform set, every slot is as long as s[0].
func (h *hdpcRun) run(k kernels, s [][]byte, uniform bool) {
	n := len(s[h.tz])
	last := len(h.y) - 1
	body := 0
	if uniform && last > 0 {
		// A few cache lines at a time through all the columns, z and the
		// rows' sums staying in the cache.
		H := len(h.out)
		var acc [16 * 256]byte
		var z [256]byte
		for body+64 <= n {
			w := 64
			if body+256 <= n {
				w = 256
			}
			if !k.idx && w != 256 {
				break // the portable stripe is 256 bytes
			}
			switch {
			case k.idx:
				clear(acc[:H*w])
				clear(z[:w])
				if w == 256 {
					k.hdpc4Blocks(&s[0], &h.y[0], &h.h12[0], last, body, &acc[0], &z[0])
				} else {
					k.hdpcBlocks(&s[0], &h.y[0], &h.h12[0], last, body, &acc[0], &z[0])
				}
			default:
				var accw [16 * hdpcStripeWords]uint64
				var zw [hdpcStripeWords]uint64
				hdpcStripeGo(s, h.y, h.h12, last, body, accw[:H*hdpcStripeWords], &zw)
				for i, x := range zw {
					binary.LittleEndian.PutUint64(z[8*i:], x)
				}
				for i, x := range accw[:H*hdpcStripeWords] {
					binary.LittleEndian.PutUint64(acc[8*i:], x)
				}
			}
			zw := z[:w]
			k.scale(zw, 2)
			if y := h.y[last]; y >= 0 {
				k.xor(zw, s[y][body:body+w])
			}
			for hh, o := range h.out {
				if o >= 0 {
					a := acc[hh*w : (hh+1)*w]
					k.mulAdd(a, zw, gfAlphaPow(hh))
					copy(s[o][body:body+w], a)
				}
			}
			body += w
		}
	}
	if body < n {
		h.runRange(k, s, body, n)
	}
}

// runRange runs the recursion on bytes lo..hi-1 of the symbols, whole
// symbols at a time.
func (h *hdpcRun) runRange(k kernels, s [][]byte, lo, hi int) {
	z := s[h.tz][lo:hi]
	started := false
	last := len(h.y) - 1
	for m, y := range h.y {
		if started {
			k.scale(z, 2)
		}
		if y >= 0 {
			if started {
				k.xor(z, s[y][lo:hi])
			} else {
				copy(z, s[y][lo:hi])
				started = true
			}
		}
		if !started {
			continue
		}
		if m < last {
			for _, hh := range h.h12[2*m : 2*m+2] {
				if o := h.out[hh]; o >= 0 {
					k.xor(s[o][lo:hi], z)
				}
			}
			continue
		}
		for hh, o := range h.out {
			if o >= 0 {
				k.mulAdd(s[o][lo:hi], z, gfAlphaPow(hh))
			}
		}
	}
}

// planner holds the scratch memory of plan building, reused from one plan
// to the next.
type planner struct {
	p *codeParams
	// Rows in CSR form: row r has columns cols[rowStart[r]:rowStart[r+1]],
	// those below W (the LT columns) first, up to wEnd[r].
	rowStart, wEnd, cols []int32
	// Column -> rows adjacency of the LT columns.
	colStart, colRows []int32
	rcount            []int32 // active columns of each row
	cdeg              []int32 // rows not yet chosen of each column
	done, chosen      []bool
	stack             []int32 // rows that may have one active column
	// Union-find over the LT columns joined by rows with two active
	// columns: parent (-1: in no such row), size, a row of each component.
	parent, csize, rep, roots []int32

	pivotIdx, order, pivCol, inactive, uIdx []int32
	yslot                                   []int32
	sparse                                  []bool
	z, bin, hd, zv, zt                      []uint64
	rest                                    []int32
	kc                                      kpData
	dense                                   denseSolution
	spec                                    planSpec
	out                                     plan     // the plan last built
	sink                                    int32    // see warm
	slots                                   [][]byte // workspace of a run
}

// kpData is what depends on K' only, kept while a planner serves blocks of
// one size.
type kpData struct {
	kp int
	// The S LDPC rows in the planner's CSR form.
	ldpcStart, ldpcWEnd, ldpcCols []int32
	h12                           []uint16 // see hdpcRun; never written once built
	// The LT row of ISI x < len(ltOff), once computed: columns
	// ltCols[ltOff[x]-1:][:ltLen[x]], the first ltD[x] of them below W.
	ltOff      []int32
	ltLen, ltD []uint8
	ltCols     []int32
}

// planners keeps planners (scratch memory and K'-dependent rows) for reuse
// by the next block; what it holds never changes a plan.
var planners = sync.Pool{New: func() any { return new(planner) }}

// kpData returns the K'-dependent data for p, building it if the planner
// last served another K'.
func (pp *planner) kpData(p *codeParams) *kpData {
	kc := &pp.kc
	if kc.kp == p.Kp && kc.h12 != nil {
		return kc
	}
	S, W := p.S, p.W
	kc.kp = p.Kp
	kc.ldpcStart = grow32(kc.ldpcStart, S+1)
	kc.ldpcWEnd = grow32(kc.ldpcWEnd, S)
	kc.ldpcCols = p.appendLDPC(kc.ldpcCols[:0], kc.ldpcStart)
	for r := 0; r < S; r++ {
		e := kc.ldpcStart[r]
		for e < kc.ldpcStart[r+1] && int(kc.ldpcCols[e]) < W {
			e++
		}
		kc.ldpcWEnd[r] = e
	}
	ks := p.Kp + S
	kc.h12 = make([]uint16, 2*ks)
	for m := 0; m < ks-1; m++ {
		h1, h2 := p.hdpcMT(m)
		kc.h12[2*m], kc.h12[2*m+1] = uint16(h1), uint16(h2)
	}
	n := 4 * p.Kp
	kc.ltOff = grow32(kc.ltOff, n)
	if cap(kc.ltLen) < n {
		kc.ltLen, kc.ltD = make([]uint8, n), make([]uint8, n)
	}
	kc.ltLen, kc.ltD = kc.ltLen[:n], kc.ltD[:n]
	kc.ltCols = kc.ltCols[:0]
	return kc
}

// buildPlan computes the elimination schedule for the LT rows of the given
// internal symbol IDs, whose symbols are all in their workspace slots.
func buildPlan(p *codeParams, isis []uint32) (*plan, error) {
	return newPlan(p, &planSpec{isis: isis})
}

// getPlanner takes a planner from the pool, preferring one that has
// served before.
func getPlanner() *planner {
	// A sync.Pool keeps one object per P out of the other Ps' reach. A
	// spare planner (never used, so cheap) is left in that place, so that
	// the planner given back after use goes where any P finds it.
	pp := planners.Get().(*planner)
	var spare *planner
	if pp.p == nil {
		spare = planners.Get().(*planner)
		if spare.p != nil {
			pp, spare = spare, pp
		}
	} else {
		spare = new(planner)
	}
	planners.Put(spare)
	return pp
}

// newPlan builds the plan for spec with a pooled planner; the plan owns
// its memory.
func newPlan(p *codeParams, spec *planSpec) (*plan, error) {
	pp := getPlanner()
	defer planners.Put(pp)
	pl, err := pp.build(p, spec)
	if err != nil {
		return nil, err
	}
	return pl.clone(), nil
}

func grow32(s []int32, n int) []int32 {
	if cap(s) < n {
		return make([]int32, n)
	}
	s = s[:n]
	clear(s)
	return s
}

func fill32(s []int32, n int, v int32) []int32 {
	if cap(s) < n {
		s = make([]int32, n)
	}
	s = s[:n]
	for i := range s {
		s[i] = v
	}
	return s
}

func growBool(s []bool, n int) []bool {
	if cap(s) < n {
		return make([]bool, n)
	}
	s = s[:n]
	clear(s)
	return s
}

func growU64(s []uint64, n int) []uint64 {
	if cap(s) < n {
		return make([]uint64, n)
	}
	s = s[:n]
	clear(s)
	return s
}

// build computes the elimination schedule for spec. It returns ErrNeedMore
// when the rows do not have full rank. The method is inactivation decoding:
// a sparse peeling phase over the GF(2) rows that turns columns it cannot
// peel into inactive ones, a dense GF(256) solve of the Schur complement on
// the inactive columns (HDPC rows included there), and a back substitution;
// it yields the same intermediate symbols as the RFC's phases 1 to 5
// because the solution is unique.
func (pp *planner) build(p *codeParams, spec *planSpec) (*plan, error) {
	S, H, L := p.S, p.H, p.L
	nLT := len(spec.isis)
	if S+H+nLT < L {
		return nil, ErrNeedMore
	}
	pp.p = p
	pp.warm()
	nb := S + nLT // binary rows: LDPC then LT
	pp.rows(spec.isis)
	pp.peel(nb)
	u := len(pp.inactive)
	pp.uIdx = grow32(pp.uIdx, L)
	for i, c := range pp.inactive {
		pp.uIdx[c] = int32(i)
	}
	rows := S + H + nLT
	pl := &pp.out
	*pl = plan{rows: rows, ext: spec.ext, ops: pl.ops[:0], srcs: pl.srcs[:0], colSlot: pl.colSlot,
		back: backSub{z: pl.back.z[:0], rows: pl.back.rows[:0], x: pl.back.x},
		hdpc: hdpcRun{y: pl.hdpc.y, out: pl.hdpc.out}}
	tz := int32(rows + spec.ext)
	em := emitter{ops: pl.ops, srcs: pl.srcs}
	words := (u + 63) / 64
	pp.forward(&em, spec, words)
	nbr := pp.restRows(nb, words)
	h12 := pp.hdpcRows(u, words)
	ds, err := pp.solveDense(u, words, nbr, H)
	if err != nil {
		return nil, err
	}
	pp.emitDense(&em, pl, spec, &ds, h12, tz)
	pp.emitBack(&em, pl, spec, tz+1, words)
	var tb [40]int32
	for i, slot := range spec.fill {
		first := len(em.srcs)
		lt, _ := pp.ltRow(spec.fillISI[i], tb[:0])
		for _, c := range lt {
			em.srcs = append(em.srcs, pl.colSlot[c])
		}
		em.into(slot, first)
	}
	pl.ops, pl.srcs = em.fuse()
	return pl, nil
}

// slot returns the workspace slot of binary row r (LDPC rows, then LT
// rows after the H HDPC rows).
func (pp *planner) slot(r int32) int32 {
	if int(r) < pp.p.S {
		return r
	}
	return r + int32(pp.p.H)
}

// sym tells where binary row r's symbol survives (see planSpec).
func (pp *planner) sym(spec *planSpec, r int32) int32 {
	if int(r) < pp.p.S {
		return symZero
	}
	if spec.copyOf == nil {
		return symLost
	}
	return spec.copyOf[int(r)-pp.p.S]
}

// forward emits the forward substitution through the triangular pivot
// block: y_k, the pivot row's symbol minus the earlier pivots' y in its
// columns, and sets the inactive part Z_k. Each pivot row also gets its
// kind of back substitution: sparse (x = the row's symbol minus its other
// columns' final values, when the symbol survives somewhere) or dense
// (x = y_k + Z_k * x_U).
func (pp *planner) forward(em *emitter, spec *planSpec, words int) {
	order, pivCol, pivotIdx, uIdx := pp.order, pp.pivCol, pp.pivotIdx, pp.uIdx
	rowStart, cols := pp.rowStart, pp.cols
	nPiv := len(order)
	pp.z = growU64(pp.z, nPiv*words)
	pp.yslot = grow32(pp.yslot, nPiv)
	pp.sparse = growBool(pp.sparse, nPiv)
	Z, yslot, sparse := pp.z, pp.yslot, pp.sparse
	scratch := spec.scratch
	for k, row := range order {
		dst := pp.slot(row)
		first := len(em.srcs)
		rc := cols[rowStart[row]:rowStart[row+1]]
		piv := pivCol[k]
		ones := 0
		if words <= 2 {
			// Z_k in two registers.
			var z0, z1 uint64
			for _, c := range rc {
				if c == piv {
					continue
				}
				if j := pivotIdx[c]; j >= 0 {
					zj := Z[int(j)*words : int(j+1)*words]
					z0 ^= zj[0]
					if words == 2 {
						z1 ^= zj[1]
					}
					em.srcs = append(em.srcs, yslot[j])
				} else if b := uIdx[c]; b < 64 {
					z0 ^= 1 << b
				} else {
					z1 ^= 1 << (b - 64)
				}
			}
			z := Z[k*words : (k+1)*words]
			z[0] = z0
			if words == 2 {
				z[1] = z1
			}
			ones = bits.OnesCount64(z0) + bits.OnesCount64(z1)
		} else {
			z := Z[k*words : (k+1)*words]
			for _, c := range rc {
				if c == piv {
					continue
				}
				if j := pivotIdx[c]; j >= 0 {
					xorWords(z, Z[int(j)*words:int(j+1)*words])
					em.srcs = append(em.srcs, yslot[j])
				} else {
					z[uIdx[c]>>6] ^= 1 << (uIdx[c] & 63)
				}
			}
			for _, x := range z {
				ones += bits.OnesCount64(x)
			}
		}
		nsrc := len(em.srcs) - first
		sym := pp.sym(spec, row)
		cost := len(rc) - 1
		if sym >= 0 {
			cost++
		}
		sp := cost <= ones && (sym != symLost || nsrc == 0 || len(scratch) > 0)
		sparse[k] = sp
		yslot[k] = dst
		switch {
		case spec.unloaded && sym >= 0:
			// The symbol is only at sym: y_k is read from there when
			// nothing is subtracted and the row's slot is not needed
			// until its final value, else it is summed into the slot.
			if nsrc == 0 && sp {
				yslot[k] = sym
				break
			}
			em.srcs = append(em.srcs, sym)
			em.into(dst, first)
		case nsrc == 0:
		case sp && sym == symLost:
			// Keep the symbol for the back substitution; y goes to scratch.
			yslot[k] = scratch[0]
			scratch = scratch[1:]
			em.srcs = append(em.srcs, dst)
			em.into(yslot[k], first)
		case sym == symZero:
			em.into(dst, first)
		default:
			em.xors(dst, first)
		}
	}
}

// restRows lists the binary rows that took no pivot and reduces them to the
// inactive columns (pp.bin); it returns how many there are.
func (pp *planner) restRows(nb, words int) int {
	rowStart, cols, pivotIdx, uIdx, Z := pp.rowStart, pp.cols, pp.pivotIdx, pp.uIdx, pp.z
	rest := pp.rest[:0]
	for r := int32(0); int(r) < nb; r++ {
		if !pp.chosen[r] {
			rest = append(rest, r)
		}
	}
	pp.rest = rest
	pp.bin = growU64(pp.bin, len(rest)*words)
	bin := pp.bin
	for i, r := range rest {
		zw := bin[i*words : (i+1)*words]
		for _, c := range cols[rowStart[r]:rowStart[r+1]] {
			if j := pivotIdx[c]; j >= 0 {
				xorWords(zw, Z[int(j)*words:int(j+1)*words])
			} else {
				zw[uIdx[c]>>6] ^= 1 << (uIdx[c] & 63)
			}
		}
	}
	return len(rest)
}

// denseSlot returns the slot of dense row i: the remaining binary rows,
// then the HDPC rows.
func (pp *planner) denseSlot(i int32) int32 {
	if n := int32(len(pp.rest)); i < n {
		return pp.slot(pp.rest[i])
	}
	return int32(pp.p.S) + i - int32(len(pp.rest))
}

// emitDense emits the dense part: the remaining binary rows that the dense
// solve takes as pivots (their pivot columns' y, then the earlier dense
// pivots), the HDPC rows' right-hand sides and the solve ds. It sets the
// slots of the intermediate symbols in pl.colSlot, pivot rows' as their
// own slots.
func (pp *planner) emitDense(em *emitter, pl *plan, spec *planSpec, ds *denseSolution, h12 []uint16, tz int32) {
	p := pp.p
	S, H := p.S, p.H
	rowStart, cols, pivotIdx, yslot := pp.rowStart, pp.cols, pp.pivotIdx, pp.yslot
	for i, r := range pp.rest {
		if !ds.binPiv[i] {
			continue
		}
		first := len(em.srcs)
		for _, c := range cols[rowStart[r]:rowStart[r+1]] {
			if j := pivotIdx[c]; j >= 0 {
				em.srcs = append(em.srcs, yslot[j])
			}
		}
		for _, a := range ds.aList[ds.aStart[i]:ds.aStart[i+1]] {
			em.srcs = append(em.srcs, pp.denseSlot(a))
		}
		sym := pp.sym(spec, r)
		if spec.unloaded && sym >= 0 {
			em.srcs = append(em.srcs, sym)
		}
		if sym == symZero || spec.unloaded && sym >= 0 {
			em.into(pp.denseSlot(int32(i)), first)
		} else {
			em.xors(pp.denseSlot(int32(i)), first)
		}
	}
	// HDPC rows: MT * GAMMA applied to the forward-substituted pivot rows.
	usedH := false
	for _, u := range ds.usedH {
		usedH = usedH || u
	}
	if usedH {
		ks := p.Kp + S
		hr := hdpcRun{y: grow32(pl.hdpc.y, ks), h12: h12, out: grow32(pl.hdpc.out, H), tz: tz}
		for m := range hr.y {
			hr.y[m] = -1
			if j := pivotIdx[m]; j >= 0 {
				hr.y[m] = yslot[j]
			}
		}
		for h := range hr.out {
			hr.out[h] = -1
			if ds.usedH[h] {
				hr.out[h] = int32(S + h)
			}
		}
		pl.hdpc = hr
		em.ops = append(em.ops, op{kind: opHDPC})
	}
	for _, o := range ds.ops {
		o.dst = pp.denseSlot(o.dst)
		switch o.kind {
		case opXorMany:
			first := len(em.srcs)
			for _, a := range ds.aList[o.a : o.a+o.b] {
				em.srcs = append(em.srcs, pp.denseSlot(a))
			}
			em.xors(o.dst, first)
			continue
		case opScale:
		default:
			o.a = pp.denseSlot(o.a)
		}
		em.ops = append(em.ops, o)
	}
	pl.back.x = grow32(pl.back.x, len(ds.xs))
	for i, d := range ds.xs {
		pl.back.x[i] = pp.denseSlot(d)
	}
	pl.colSlot = grow32(pl.colSlot, p.L)
	for k, c := range pp.pivCol {
		pl.colSlot[c] = pp.slot(pp.order[k])
	}
	for i, c := range pp.inactive {
		pl.colSlot[c] = pl.back.x[i]
	}
}

// emitBack emits the back substitution: the dense rows first (they need
// only x_U), then the sparse ones in pivot order (they need the final
// values of their earlier pivot columns). Scratch slots start at tbase.
func (pp *planner) emitBack(em *emitter, pl *plan, spec *planSpec, tbase int32, words int) {
	order, pivCol, sparse, Z := pp.order, pp.pivCol, pp.sparse, pp.z
	rowStart, cols, colSlot := pp.rowStart, pp.cols, pl.colSlot
	u := len(pp.inactive)
	xslot := pl.back.x
	nDense := 0
	for _, sp := range sparse {
		if !sp {
			nDense++
		}
	}
	pl.back = backSub{u: u, words: words, bits: 4, z: pl.back.z, rows: pl.back.rows, x: xslot, tbase: tbase}
	pl.slots = int(tbase)
	if nDense >= frMinRows {
		pl.back.bits = frBitsFor(nDense)
		for k, row := range order {
			if !sparse[k] {
				pl.back.z = append(pl.back.z, Z[k*words:(k+1)*words]...)
				pl.back.rows = append(pl.back.rows, pp.slot(row))
			}
		}
		pl.slots += frGroup << pl.back.bits
		em.ops = append(em.ops, op{kind: opBack})
	} else {
		for k, row := range order {
			if sparse[k] {
				continue
			}
			first := len(em.srcs)
			for w, x := range Z[k*words : (k+1)*words] {
				for x != 0 {
					em.srcs = append(em.srcs, xslot[w*64+bits.TrailingZeros64(x)])
					x &= x - 1
				}
			}
			em.xors(pp.slot(row), first)
		}
	}
	for k, row := range order {
		if !sparse[k] {
			continue
		}
		dst := pp.slot(row)
		sym := pp.sym(spec, row)
		first := len(em.srcs)
		if sym >= 0 {
			em.srcs = append(em.srcs, sym)
		}
		piv := pivCol[k]
		for _, c := range cols[rowStart[row]:rowStart[row+1]] {
			if c != piv {
				em.srcs = append(em.srcs, colSlot[c])
			}
		}
		if sym == symLost {
			em.xors(dst, first)
		} else {
			em.into(dst, first)
		}
	}
}

// rows fills the CSR rows: the S LDPC rows, then the LT rows of isis.
func (pp *planner) rows(isis []uint32) {
	p := pp.p
	S := p.S
	kc := pp.kpData(p)
	nb := S + len(isis)
	pp.rowStart = grow32(pp.rowStart, nb+1)
	pp.wEnd = grow32(pp.wEnd, nb)
	rowStart, wEnd := pp.rowStart, pp.wEnd
	copy(rowStart, kc.ldpcStart)
	copy(wEnd, kc.ldpcWEnd)
	cols := append(pp.cols[:0], kc.ldpcCols...)
	var tb [40]int32
	for i, x := range isis {
		// An LT row never repeats a column: the LT part walks W (prime)
		// positions with d < W steps, the PI part likewise walks P1.
		start := int32(len(cols))
		lt, d := pp.ltRow(x, tb[:0])
		cols = append(cols, lt...)
		wEnd[S+i] = start + int32(d)
		rowStart[S+i+1] = int32(len(cols))
	}
	pp.cols = cols
}

// ltRow returns the columns of the LT row of ISI x, the first d of them
// below W, from the K' cache when x is in its range (else built in buf).
func (pp *planner) ltRow(x uint32, buf []int32) (cols []int32, d int) {
	p, kc := pp.p, &pp.kc
	if int(x) >= len(kc.ltOff) {
		t := p.tuple(x)
		return p.ltCols(buf, t), t.d
	}
	if kc.ltOff[x] == 0 {
		t := p.tuple(x)
		off := len(kc.ltCols)
		kc.ltCols = p.ltCols(kc.ltCols, t)
		kc.ltOff[x] = int32(off + 1)
		kc.ltLen[x] = uint8(len(kc.ltCols) - off)
		kc.ltD[x] = uint8(t.d)
	}
	off := kc.ltOff[x] - 1
	return kc.ltCols[off : off+int32(kc.ltLen[x])], int(kc.ltD[x])
}

// peel runs the peeling phase over the nb binary rows: rows with a single
// active column are taken as pivots of that column. When every row has
// r >= 2 active columns, r-1 columns of one row are inactivated, so that
// the row peels next; for r = 2 the row comes from the largest connected
// component of the graph of r=2 rows (RFC 6330 section 5.4.2.2), so that
// the whole component peels. It sets order, pivCol, pivotIdx and inactive.
func (pp *planner) peel(nb int) {
	p := pp.p
	W, L := p.W, p.L
	rowStart, wEnd, cols := pp.rowStart, pp.wEnd, pp.cols

	pp.colStart = grow32(pp.colStart, W+1)
	pp.rcount = grow32(pp.rcount, nb)
	colStart, rcount := pp.colStart, pp.rcount
	for r := 0; r < nb; r++ {
		rcount[r] = wEnd[r] - rowStart[r]
		for _, c := range cols[rowStart[r]:wEnd[r]] {
			colStart[c+1]++
		}
	}
	pp.cdeg = grow32(pp.cdeg, W)
	cdeg := pp.cdeg
	for c := 0; c < W; c++ {
		cdeg[c] = colStart[c+1]
		colStart[c+1] += colStart[c]
	}
	pp.colRows = grow32(pp.colRows, int(colStart[W]))
	colRows := pp.colRows
	// Fill every column's list from its end, using parent as the cursor.
	pp.parent = grow32(pp.parent, W)
	fill := pp.parent
	copy(fill, colStart[1:])
	for r := nb - 1; r >= 0; r-- {
		for _, c := range cols[rowStart[r]:wEnd[r]] {
			fill[c]--
			colRows[fill[c]] = int32(r)
		}
	}

	pp.done = growBool(pp.done, L)
	pp.chosen = growBool(pp.chosen, nb)
	done, chosen := pp.done, pp.chosen
	for c := W; c < L; c++ {
		done[c] = true
	}
	pp.pivotIdx = fill32(pp.pivotIdx, L, -1)
	pivotIdx := pp.pivotIdx
	order, pivCol := pp.order[:0], pp.pivCol[:0]
	inactive := pp.inactive[:0]
	for c := W; c < L; c++ {
		inactive = append(inactive, int32(c))
	}
	uf := components{
		parent: fill32(pp.parent, W, -1),
		size:   grow32(pp.csize, W),
		rep:    grow32(pp.rep, W),
		roots:  pp.roots[:0],
	}
	stack := pp.stack[:0]
	for r := int32(0); int(r) < nb; r++ {
		switch rcount[r] {
		case 1:
			stack = append(stack, r)
		case 2:
			uf.addRow(r, cols[rowStart[r]:wEnd[r]], done)
		}
	}
	// take removes column c from the active part of every row not chosen.
	take := func(c int32) {
		for _, r := range colRows[colStart[c]:colStart[c+1]] {
			if chosen[r] {
				continue
			}
			n := rcount[r] - 1
			rcount[r] = n
			if n == 1 {
				stack = append(stack, r)
			} else if n == 2 {
				uf.addRow(r, cols[rowStart[r]:wEnd[r]], done)
			}
		}
	}
	for {
		for len(stack) > 0 {
			r := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if chosen[r] || rcount[r] != 1 {
				continue
			}
			chosen[r] = true
			c := int32(-1)
			for _, cc := range cols[rowStart[r]:wEnd[r]] {
				cdeg[cc]--
				if !done[cc] {
					c = cc
				}
			}
			done[c] = true
			pivotIdx[c] = int32(len(order))
			order = append(order, r)
			pivCol = append(pivCol, c)
			take(c)
		}
		row := uf.largest(done)
		if row >= 0 && (chosen[row] || rcount[row] != 2) {
			row = -1
		}
		if row < 0 {
			// No row with two active columns: take one with the fewest.
			best := int32(0)
			for r := int32(0); int(r) < nb; r++ {
				if n := rcount[r]; !chosen[r] && n >= 2 && (row < 0 || n < best) {
					row, best = r, n
					if n == 2 {
						break
					}
				}
			}
			if row < 0 {
				break
			}
		}
		keep := int32(-1)
		for _, c := range cols[rowStart[row]:wEnd[row]] {
			if !done[c] && (keep < 0 || cdeg[c] < cdeg[keep]) {
				keep = c
			}
		}
		for _, c := range cols[rowStart[row]:wEnd[row]] {
			if !done[c] && c != keep {
				done[c] = true
				inactive = append(inactive, c)
				take(c)
			}
		}
	}
	for c := 0; c < W; c++ {
		if !done[c] {
			done[c] = true
			inactive = append(inactive, int32(c))
		}
	}
	pp.order, pp.pivCol, pp.inactive, pp.stack = order, pivCol, inactive, stack
	pp.parent, pp.csize, pp.rep, pp.roots = uf.parent, uf.size, uf.rep, uf.roots
}

// components is a union-find over the LT columns joined by the rows with
// two active columns: parent (-1: in no such row), size, a row of each
// component (rep), and the roots of components with two columns or more.
type components struct {
	parent, size, rep, roots []int32
}

// addRow joins the two active columns of row r (columns rc), which has
// just reached two active columns.
func (uf *components) addRow(r int32, rc []int32, done []bool) {
	var ab [2]int32
	n := 0
	for _, c := range rc {
		if !done[c] {
			ab[n&1] = c
			n++
		}
	}
	a, b := uf.root(ab[0]), uf.root(ab[1])
	if a == b {
		return
	}
	if uf.size[a] < uf.size[b] {
		a, b = b, a
	}
	if uf.size[a] == 1 {
		uf.roots = append(uf.roots, a)
	}
	uf.parent[b] = a
	uf.size[a] += uf.size[b]
	uf.rep[a] = r
}

func (uf *components) root(c int32) int32 {
	parent := uf.parent
	if parent[c] < 0 {
		parent[c] = c
		uf.size[c] = 1
		return c
	}
	for parent[c] != c {
		parent[c] = parent[parent[c]]
		c = parent[c]
	}
	return c
}

// largest returns a row of the largest component, or -1 when there is
// none. Called when no row has a single active column, so every component
// is either wholly active or wholly peeled (done).
func (uf *components) largest(done []bool) int32 {
	best, bestSize := int32(-1), int32(0)
	keep := uf.roots[:0]
	for _, c := range uf.roots {
		if uf.parent[c] != c || done[c] {
			continue
		}
		keep = append(keep, c)
		if uf.size[c] > bestSize {
			best, bestSize = c, uf.size[c]
		}
	}
	uf.roots = keep
	if best < 0 {
		return -1
	}
	return uf.rep[best]
}

// hdpcRows sets pp.hd to the H HDPC rows reduced to the inactive columns:
// MT * GAMMA applied to the pivot rows' Z and the inactive columns' unit
// rows, plus the identity part, bit-sliced (plane b of the coefficients of
// row h in columns 64w..64w+63 at hd[(h*words+w)*8+b]). It returns
// the two rows h1, h2 of MT's column m at 2m, 2m+1.
func (pp *planner) hdpcRows(u, words int) []uint16 {
	p := pp.p
	S, H := p.S, p.H
	ks := p.Kp + S
	pp.hd = growU64(pp.hd, H*words*8)
	pp.zv = growU64(pp.zv, words*8)
	pp.zt = growU64(pp.zt, words*8)
	hd, zv := pp.hd, pp.zv
	Z, uIdx := pp.z, pp.uIdx
	h12 := pp.kc.h12
	row := func(h int) []uint64 { return hd[h*words*8 : (h+1)*words*8] }
	for m := 0; m < ks; m++ {
		bsMul2(zv)
		if j := pp.pivotIdx[m]; j >= 0 {
			for w, x := range Z[int(j)*words : int(j+1)*words] {
				zv[w*8] ^= x
			}
		} else {
			i := uIdx[m]
			zv[int(i>>6)*8] ^= 1 << (i & 63)
		}
		if m < ks-1 {
			xorWords(row(int(h12[2*m])), zv)
			xorWords(row(int(h12[2*m+1])), zv)
			continue
		}
		for h := 0; h < H; h++ {
			bsMulAdd(row(h), zv, pp.zt, gfAlphaPow(h))
		}
	}
	for h := 0; h < H; h++ {
		i := uIdx[ks+h]
		hd[(h*words+int(i>>6))*8] ^= 1 << (i & 63)
	}
	return h12
}

// bsMul2 multiplies a bit-sliced vector (8 planes per word) by alpha.
func bsMul2(v []uint64) {
	for w := 0; w+8 <= len(v); w += 8 {
		x := (*[8]uint64)(v[w : w+8])
		p7 := x[7]
		x[7], x[6], x[5] = x[6], x[5], x[4]
		x[4], x[3], x[2] = x[3]^p7, x[2]^p7, x[1]^p7
		x[1], x[0] = x[0], p7
	}
}

// bsMulAdd adds c times the bit-sliced vector v to dst; t is scratch of
// v's size.
func bsMulAdd(dst, v, t []uint64, c byte) {
	copy(t, v)
	for c != 0 {
		if c&1 != 0 {
			xorWords(dst, t)
		}
		c >>= 1
		if c != 0 {
			bsMul2(t)
		}
	}
}

// bsGet returns the coefficient in column col of a bit-sliced row.
func bsGet(row []uint64, col int) byte {
	x := row[(col>>6)*8 : (col>>6)*8+8]
	s := uint(col & 63)
	var f byte
	for b := 0; b < 8; b++ {
		f |= byte(x[b]>>s&1) << b
	}
	return f
}

// denseSolution is the outcome of solveDense, in dense row indices (the
// nbr binary rows, then the H HDPC rows).
type denseSolution struct {
	// Binary row i is a pivot when binPiv[i]; it is first reduced by the
	// earlier pivots aList[aStart[i]:aStart[i+1]].
	binPiv []bool
	aStart []int32
	aList  []int32
	// ops run after the HDPC rows' right-hand sides: the HDPC rows'
	// reduction, their GF(256) solve and the binary pivots' back
	// substitution (opXorMany with sources aList[a:a+b]).
	ops   []op
	usedH []bool  // HDPC rows the solution needs
	xs    []int32 // row holding each inactive column's value
}

// solveDense eliminates the Schur complement on the u inactive columns: the
// nbr binary rows pp.bin (bit rows of words words) and the H HDPC rows
// pp.hd (bit-sliced). The binary rows are reduced one after the other by
// the pivots before them (each row's symbol operations are then one fused
// pass), the HDPC rows by all binary pivots; the columns no binary row took
// are solved in GF(256) with the HDPC rows; the binary pivots are then
// substituted back, the last one first. Rows that take no pivot are never
// touched.
func (pp *planner) solveDense(u, words, nbr, H int) (denseSolution, error) {
	bin, hd := pp.bin, pp.hd
	old := &pp.dense
	ds := denseSolution{binPiv: growBool(old.binPiv, nbr), aStart: grow32(old.aStart, nbr+1), usedH: growBool(old.usedH, H), xs: grow32(old.xs, u)}
	defer func() { pp.dense = ds }()
	row := func(i int32) []uint64 { return bin[int(i)*words : int(i+1)*words] }
	hrow := func(h int) []uint64 { return hd[h*words*8 : (h+1)*words*8] }
	colPiv := fill32(nil, u, -1) // pivot number of a column
	var pivRow, pivCol []int32
	aList := old.aList[:0]
	for i := int32(0); int(i) < nbr; i++ {
		r := row(i)
		for q, pr := range pivRow {
			c := pivCol[q]
			if r[c>>6]>>(c&63)&1 != 0 {
				xorWords(r, row(pr))
				aList = append(aList, pr)
			}
		}
		c := -1
		for w, x := range r {
			if x != 0 {
				c = w*64 + bits.TrailingZeros64(x)
				break
			}
		}
		if c < 0 {
			aList = aList[:ds.aStart[i]]
			ds.aStart[i+1] = ds.aStart[i]
			continue
		}
		ds.aStart[i+1] = int32(len(aList))
		ds.binPiv[i] = true
		colPiv[c] = int32(len(pivRow))
		pivRow = append(pivRow, i)
		pivCol = append(pivCol, int32(c))
		ds.xs[c] = i
	}

	// HDPC rows: eliminate the binary pivot columns.
	nd := u - len(pivRow)
	if nd > H {
		return ds, ErrNeedMore
	}
	ops := old.ops[:0]
	type hop struct {
		q int32
		f byte
	}
	hops := make([]hop, 0, len(pivRow))
	hstart := make([]int, H+1)
	for h := 0; h < H; h++ {
		hr := hrow(h)
		for q, pr := range pivRow {
			f := bsGet(hr, int(pivCol[q]))
			if f == 0 {
				continue
			}
			prow := row(pr)
			for b := 0; b < 8; b++ {
				if f>>b&1 != 0 {
					for wi, x := range prow {
						hr[wi*8+b] ^= x
					}
				}
			}
			hops = append(hops, hop{int32(q), f})
		}
		hstart[h+1] = len(hops)
	}

	// GF(256) part on the deferred columns, HDPC rows only (what is left
	// of the binary rows is zero).
	deferred := make([]int, 0, nd)
	for c := 0; c < u; c++ {
		if colPiv[c] < 0 {
			deferred = append(deferred, c)
		}
	}
	lm := make([]byte, H*nd)
	for h := 0; h < H; h++ {
		for d, col := range deferred {
			lm[h*nd+d] = bsGet(hrow(h), col)
		}
	}
	kern := newKernels(KernelsAuto)
	perm := make([]int, H)
	for i := range perm {
		perm[i] = i
	}
	type gop struct {
		dst, src int32
		c        byte
		scale    bool
	}
	var gops []gop
	for d := 0; d < nd; d++ {
		pr := -1
		for i := d; i < H; i++ {
			if lm[perm[i]*nd+d] != 0 {
				pr = i
				break
			}
		}
		if pr < 0 {
			return ds, ErrNeedMore
		}
		perm[d], perm[pr] = perm[pr], perm[d]
		ph := perm[d]
		prow := lm[ph*nd : (ph+1)*nd]
		if c := prow[d]; c != 1 {
			inv := gfInv(c)
			kern.scale(prow, inv)
			gops = append(gops, gop{dst: int32(ph), c: inv, scale: true})
		}
		for i, h := range perm {
			if i == d {
				continue
			}
			r := lm[h*nd : (h+1)*nd]
			if f := r[d]; f != 0 {
				kern.mulAdd(r, prow, f)
				gops = append(gops, gop{dst: int32(h), src: int32(ph), c: f})
			}
		}
		ds.xs[deferred[d]] = int32(nbr + ph)
	}
	for _, h := range perm[:nd] {
		ds.usedH[h] = true
	}

	// Symbol operations of the HDPC rows the solution needs.
	for h := 0; h < H; h++ {
		if !ds.usedH[h] {
			continue
		}
		for _, o := range hops[hstart[h]:hstart[h+1]] {
			a := pivRow[o.q]
			if o.f == 1 {
				ops = append(ops, op{kind: opXor, dst: int32(nbr + h), a: a})
			} else {
				ops = append(ops, op{kind: opMulAdd, dst: int32(nbr + h), a: a, c: o.f})
			}
		}
	}
	for _, g := range gops {
		if !ds.usedH[g.dst] {
			continue
		}
		switch {
		case g.scale:
			ops = append(ops, op{kind: opScale, dst: int32(nbr) + g.dst, c: g.c})
		case g.c == 1:
			ops = append(ops, op{kind: opXor, dst: int32(nbr) + g.dst, a: int32(nbr) + g.src})
		default:
			ops = append(ops, op{kind: opMulAdd, dst: int32(nbr) + g.dst, a: int32(nbr) + g.src, c: g.c})
		}
	}

	// Back substitution through the binary pivots, the last one first: a
	// pivot row holds, besides its pivot, only later pivots' columns and
	// deferred ones.
	for q := len(pivRow) - 1; q >= 0; q-- {
		r := row(pivRow[q])
		first := len(aList)
		for w, x := range r {
			for x != 0 {
				c := w*64 + bits.TrailingZeros64(x)
				x &= x - 1
				if int32(c) != pivCol[q] {
					aList = append(aList, ds.xs[c])
				}
			}
		}
		if n := len(aList) - first; n > 0 {
			ops = append(ops, op{kind: opXorMany, dst: pivRow[q], a: int32(first), b: int32(n)})
		}
	}
	ds.aList = aList
	ds.ops = ops
	return ds, nil
}

// emitter collects a plan's operations and their source lists.
type emitter struct {
	ops  []op
	srcs []int32
}

// xors appends the XOR of the sources srcs[first:] into slot dst as one
// operation (none when the list is empty).
func (em *emitter) xors(dst int32, first int) {
	switch n := len(em.srcs) - first; n {
	case 0:
	case 1:
		a := em.srcs[first]
		em.srcs = em.srcs[:first]
		em.ops = append(em.ops, op{kind: opXor, dst: dst, a: a})
	default:
		em.ops = append(em.ops, op{kind: opXorMany, dst: dst, a: int32(first), b: int32(n)})
	}
}

// into appends setting slot dst to the XOR of the sources srcs[first:]
// (none when the list is empty: dst holds zero already).
func (em *emitter) into(dst int32, first int) {
	switch n := len(em.srcs) - first; n {
	case 0:
	case 1:
		a := em.srcs[first]
		em.srcs = em.srcs[:first]
		em.ops = append(em.ops, op{kind: opCopy, dst: dst, a: a})
	case 2:
		a, b := em.srcs[first], em.srcs[first+1]
		em.srcs = em.srcs[:first]
		em.ops = append(em.ops, op{kind: opXor2, dst: dst, a: a, b: b})
	default:
		em.ops = append(em.ops, op{kind: opXorInto, dst: dst, a: int32(first), b: int32(n)})
	}
}

// fuse returns the operations and sources, with runs of XORs into the same
// slot turned into one opXorMany that reads and writes that slot once.
func (em *emitter) fuse() ([]op, []int32) {
	ops, srcs := em.ops, em.srcs
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
		fused := op{kind: opXorMany, dst: ops[i].dst, a: int32(len(srcs)), b: int32(j - i)}
		for _, o := range ops[i:j] {
			srcs = append(srcs, o.a)
		}
		out = append(out, fused)
		i = j
	}
	return out, srcs
}

// clone returns a copy of the plan that shares no memory with it but the
// immutable HDPC column rows.
func (pl *plan) clone() *plan {
	c := *pl
	c.ops = slices.Clone(pl.ops)
	c.srcs = slices.Clone(pl.srcs)
	c.colSlot = slices.Clone(pl.colSlot)
	c.back.z = slices.Clone(pl.back.z)
	c.back.rows = slices.Clone(pl.back.rows)
	c.back.x = slices.Clone(pl.back.x)
	c.hdpc.y = slices.Clone(pl.hdpc.y)
	c.hdpc.out = slices.Clone(pl.hdpc.out)
	return &c
}

func xorWords(dst, src []uint64) {
	for i, x := range src {
		dst[i] ^= x
	}
}

// run executes the plan on a workspace of pl.slots equally long slots.
func (pl *plan) run(k kernels, s [][]byte) {
	// The SIMD kernels read sources through their slot numbers; they need
	// every slot to be as long as the first.
	n := len(s[0])
	uniform := true
	for _, x := range s {
		uniform = uniform && len(x) == n
	}
	idx := k.idx && n >= 64 && uniform
	body := n &^ 63
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
		case opXorMany, opXorInto:
			list := pl.srcs[o.a : o.a+o.b]
			into := o.kind == opXorInto
			d := s[o.dst]
			if idx {
				if into {
					k.xorIntoIdxBlocks(&d[0], &s[0], &list[0], len(list), body)
				} else {
					k.xorManyIdxBlocks(&d[0], &s[0], &list[0], len(list), body)
				}
				if body == n {
					continue
				}
				// The bytes past the last multiple of 64.
				d = d[body:]
				if into {
					copy(d, s[list[0]][body:])
					list = list[1:]
				}
				for _, x := range list {
					subtle.XORBytes(d, d, s[x][body:])
				}
				continue
			}
			for len(list) > 0 {
				m := min(len(list), maxFused)
				for i, x := range list[:m] {
					srcs[i] = s[x]
				}
				if into {
					k.xorInto(d, srcs[:m])
					into = false
				} else {
					k.xorMany(d, srcs[:m])
				}
				list = list[m:]
			}
		case opBack:
			pl.back.run(k, s)
		case opHDPC:
			pl.hdpc.run(k, s, uniform)
		}
	}
}

// warm reads one word of every cache line of the scratch the planner
// reuses: one sequential pass brings it back into the cache much faster
// than the random accesses of the build would.
func (pp *planner) warm() {
	var x int32
	for _, s := range [...][]int32{pp.rowStart, pp.wEnd, pp.cols, pp.colStart, pp.colRows,
		pp.rcount, pp.cdeg, pp.parent, pp.csize, pp.rep, pp.pivotIdx, pp.order, pp.pivCol,
		pp.uIdx, pp.yslot, pp.kc.ltOff, pp.kc.ltCols, pp.kc.ldpcCols, pp.out.srcs,
		pp.out.colSlot, pp.out.hdpc.y} {
		s = s[:cap(s)]
		for i := 0; i < len(s); i += 16 {
			x += s[i]
		}
	}
	pp.sink = x
}
