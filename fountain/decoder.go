package fountain

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
)

// BlockDecoder collects encoding symbols of one source block and recovers
// the block's source bytes. It is not safe for concurrent use, and must not
// be copied (its memory is recycled once it is unreachable).
type BlockDecoder struct {
	bc      blockCode
	cfg     blockConfig
	err     error
	low     []bool              // ESI e < len(low) held: low[e]
	high    map[uint32]struct{} // ESIs >= len(low) held
	esis    []uint32
	buf     []byte // received symbols, T bytes each, in arrival order
	zero    []byte // the constraint and padding rows' symbols, zero until solved
	nsrc    int    // received source symbols
	limit   int    // most symbols stored
	decoded *BlockEncoder
	mem     *[]byte         // the recycled memory behind zero and buf
	cleanup runtime.Cleanup // gives mem back once the decoder is unreachable
}

// ErrReleased is returned by an encoder or decoder used after Release.
var ErrReleased = errors.New("fountain: decoder released")

// Release gives the decoder's memory back at once for later decoders to
// reuse (otherwise that happens only after a garbage collection finds the
// decoder unreachable, and until then new decoders fault in fresh memory).
// The decoder, and the bytes of any symbol it holds, must not be used
// afterwards: its methods return ErrReleased.
func (d *BlockDecoder) Release() {
	if d.mem != nil {
		d.cleanup.Stop()
		releaseSymbolMemory(d.mem)
		d.mem = nil
	}
	d.zero, d.buf, d.decoded, d.esis = nil, nil, nil, nil
	d.err = ErrReleased
}

// NewBlockDecoder returns a decoder for block sbn of the object o. An invalid
// OTI or block number makes every Add and Decode fail with that error.
func NewBlockDecoder(o OTI, sbn int, opts ...BlockOption) *BlockDecoder {
	d := &BlockDecoder{}
	for _, f := range opts {
		f(&d.cfg)
	}
	d.bc, d.err = newBlockCode(o, sbn)
	if d.err == nil {
		d.limit = d.bc.p.Kp + max(64, d.bc.p.Kp/4)
		// Most streams carry ESIs below K' plus the overhead the decoder
		// keeps; those are tracked in a flat table, any others in a map.
		d.low = make([]bool, d.bc.p.Kp+d.limit)
	}
	return d
}

// Add stores a copy of encoding symbol esi. Duplicates are ignored; past a
// bound of K' plus a quarter, further symbols are not stored. ready reports
// that at least K distinct symbols are held.
func (d *BlockDecoder) Add(esi uint32, sym []byte) (ready bool, err error) {
	if d.err != nil {
		return false, d.err
	}
	if esi > MaxESI {
		return false, fmt.Errorf("ESI %d exceeds %d", esi, MaxESI)
	}
	if len(sym) != d.bc.T {
		return false, fmt.Errorf("symbol of %d bytes, want %d", len(sym), d.bc.T)
	}
	if d.decoded != nil {
		return true, nil
	}
	if d.has(esi) || len(d.esis) >= d.limit {
		return len(d.esis) >= d.bc.p.K, nil
	}
	if d.buf == nil {
		// One block of memory for the symbols and the rows solving adds.
		p := &d.bc.p
		z := (p.S + p.H + p.Kp - p.K) * d.bc.T
		mem := d.newSymbolMemory(z + (p.K+16)*d.bc.T)
		clear(mem[:z])
		d.zero, d.buf = mem[:z:z], mem[z:z]
		if cap(d.esis) == 0 {
			// As much room as buf has: no regrowing while symbols arrive.
			d.esis = make([]uint32, 0, p.K+16)
		}
	}
	if int(esi) < len(d.low) {
		d.low[esi] = true
	} else {
		if d.high == nil {
			d.high = make(map[uint32]struct{})
		}
		d.high[esi] = struct{}{}
	}
	d.esis = append(d.esis, esi)
	d.buf = append(d.buf, sym...)
	if int(esi) < d.bc.p.K {
		d.nsrc++
	}
	return len(d.esis) >= d.bc.p.K, nil
}

// has reports whether symbol esi is held.
func (d *BlockDecoder) has(esi uint32) bool {
	if int(esi) < len(d.low) {
		return d.low[esi]
	}
	_, ok := d.high[esi]
	return ok
}

// Received returns the number of distinct symbols held.
func (d *BlockDecoder) Received() int { return len(d.esis) }

// Reset forgets all symbols, keeping the memory for the next use.
func (d *BlockDecoder) Reset() {
	if d.err != nil {
		return
	}
	if d.decoded != nil {
		clear(d.zero)
	}
	clear(d.low)
	clear(d.high)
	d.esis = d.esis[:0]
	d.buf = d.buf[:0]
	d.nsrc = 0
	d.decoded = nil
}

// Decode writes the block's source bytes into dst (at least BlockLen bytes).
// It returns ErrNeedMore when the symbols held do not determine the block.
// Once it succeeded, the block stays decoded (until Reset) and later calls
// rebuild the bytes from the intermediate symbols.
func (d *BlockDecoder) Decode(dst []byte) error {
	if d.err != nil {
		return d.err
	}
	// The symbol memory is recycled once d is unreachable: keep d alive
	// while it is in use.
	defer runtime.KeepAlive(d)
	bc := &d.bc
	if len(dst) < bc.blen {
		return fmt.Errorf("destination of %d bytes, want %d", len(dst), bc.blen)
	}
	dst = dst[:bc.blen]
	T, K := bc.T, bc.p.K
	fresh := d.decoded == nil
	if fresh {
		if d.nsrc < K && len(d.esis) < K {
			return ErrNeedMore
		}
		if d.nsrc >= K {
			d.copySources(dst)
			return nil
		}
		pp := getPlanner()
		pl, err := pp.build(&bc.p, d.spec(&pp.spec, len(dst)))
		if err == nil {
			// Received source symbols first: the plan reads them there.
			d.copySources(dst)
			d.solve(pl, pp, dst)
		}
		planners.Put(pp)
		if err != nil {
			return err
		}
	}
	var sym []byte
	for i := 0; i < K; i++ {
		lo := i * T
		if lo >= len(dst) {
			break
		}
		if fresh && (d.has(uint32(i)) || lo+T <= len(dst)) {
			// Received, or rebuilt by the plan.
			continue
		}
		out := dst[lo:min(lo+T, len(dst))]
		if len(out) < T {
			if sym == nil {
				sym = make([]byte, T)
			}
			out = sym
		}
		if err := d.decoded.Symbol(uint32(i), out); err != nil {
			return err
		}
		if len(dst)-lo < T {
			copy(dst[lo:], sym)
		}
	}
	return nil
}

// ErrNotSolved is returned by Symbol when the decoder holds no
// intermediate symbols: Decode has not succeeded, or it needed none (every
// source symbol was received).
var ErrNotSolved = errors.New("fountain: block not solved")

// Symbol writes encoding symbol esi of the decoded block into dst (T
// bytes), from the intermediate symbols Decode solved for: a receiver
// compares the repair symbols it received with the block's own. It returns
// ErrNotSolved when there are none (use NewBlockEncoder on the block).
func (d *BlockDecoder) Symbol(esi uint32, dst []byte) error {
	if d.err != nil {
		return d.err
	}
	if d.decoded == nil {
		return ErrNotSolved
	}
	defer runtime.KeepAlive(d)
	return d.decoded.Symbol(esi, dst)
}

// copySources writes the received source symbols to their places in dst.
func (d *BlockDecoder) copySources(dst []byte) {
	T, K := d.bc.T, d.bc.p.K
	for i, e := range d.esis {
		if lo := int(e) * T; int(e) < K && lo < len(dst) {
			copy(dst[lo:], d.buf[i*T:(i+1)*T])
		}
	}
}

// spec fills sp with the rows to solve with: the padding symbols, then the
// received symbols in arrival order. The external slots are the K source
// symbols' places in the destination (of n bytes), where the received ones
// are kept unmodified and the missing ones may serve as scratch.
func (d *BlockDecoder) spec(sp *planSpec, n int) *planSpec {
	p := &d.bc.p
	T := d.bc.T
	rows := p.S + p.H + p.Kp - p.K + len(d.esis)
	sp.isis = sp.isis[:0]
	sp.copyOf = sp.copyOf[:0]
	sp.scratch = sp.scratch[:0]
	sp.ext = p.K
	for i := p.K; i < p.Kp; i++ {
		sp.isis = append(sp.isis, uint32(i))
		sp.copyOf = append(sp.copyOf, symZero)
	}
	for _, e := range d.esis {
		sp.isis = append(sp.isis, p.isi(e))
		c := int32(symLost)
		if int(e) < p.K && (int(e)+1)*T <= n {
			c = int32(rows) + int32(e)
		}
		sp.copyOf = append(sp.copyOf, c)
	}
	// The missing source symbols' places serve as scratch, then receive
	// those symbols.
	sp.fillISI = sp.fillISI[:0]
	for i := 0; i < p.K && (i+1)*T <= n; i++ {
		if !d.has(uint32(i)) {
			sp.scratch = append(sp.scratch, int32(rows+i))
			sp.fillISI = append(sp.fillISI, uint32(i))
		}
	}
	sp.fill = sp.scratch
	return sp
}

// solve runs the plan (built by pp, whose scratch it uses) and keeps the
// intermediate symbols. With a single sub-block it works in place on the
// received symbols. dst holds the received source symbols at their places.
func (d *BlockDecoder) solve(pl *plan, pp *planner, dst []byte) {
	bc := &d.bc
	p := &bc.p
	enc := &BlockEncoder{bc: *bc, kern: newKernels(d.cfg.kernels), sub: make([][][]byte, len(bc.subSize)), lent: -1}
	zeros := p.S + p.H + p.Kp - p.K
	if cap(pp.slots) < pl.slots {
		pp.slots = make([][]byte, pl.slots)
	}
	slots := pp.slots[:pl.slots]
	defer clear(slots)
	tmp := pl.rows + pl.ext
	// Scratch slots, and one for the places in dst too short for a symbol
	// (the plan never uses them).
	temps := make([]byte, (pl.slots-tmp+1)*bc.subSize[0])
	for j, ts := range bc.subSize {
		off := bc.subOff[j]
		sliceSlots(slots[:zeros], d.zero[zeros*off:zeros*(off+ts)], ts)
		sliceSlots(slots[tmp:], temps, ts)
		spare := temps[(pl.slots-tmp)*ts : (pl.slots-tmp+1)*ts]
		if len(bc.subSize) == 1 {
			sliceSlots(slots[zeros:pl.rows], d.buf, ts)
		} else {
			rows := sliceSlots(slots[zeros:pl.rows], make([]byte, len(d.esis)*ts), ts)
			for i := range d.esis {
				copy(rows[i], d.buf[i*bc.T+off:])
			}
		}
		for i := range slots[pl.rows:tmp] {
			if lo := i*bc.T + off; lo+ts <= len(dst) {
				slots[pl.rows+i] = dst[lo : lo+ts : lo+ts]
			} else {
				slots[pl.rows+i] = spare
			}
		}
		pl.run(enc.kern, slots)
		enc.sub[j] = pickSlots(pl, slots)
	}
	d.decoded = enc
}

// symbolMemory recycles the symbol memory of decoders that are no longer
// reachable (a decoder's intermediate symbols live in it, and nothing
// outside the decoder refers to them), so that a stream of short-lived
// decoders does not allocate, zero and fault in a fresh block of memory
// each.
var symbolMemory sync.Pool // of *[]byte

// newSymbolMemory returns n bytes (contents undefined) that return to
// symbolMemory on Release or once d is unreachable.
func (d *BlockDecoder) newSymbolMemory(n int) []byte {
	var mem []byte
	for range 4 {
		m, _ := symbolMemory.Get().(*[]byte)
		if m == nil {
			break
		}
		if cap(*m) >= n && cap(*m) <= 2*n {
			mem = (*m)[:n]
			break
		}
	}
	if mem == nil {
		mem = make([]byte, n)
	}
	d.mem = &mem
	d.cleanup = runtime.AddCleanup(d, releaseSymbolMemory, d.mem)
	return mem
}

// noMemory holds the place that sync.Pool keeps out of other Ps' reach
// (one object per P), so that released memory goes where any P finds it.
var noMemory = new([]byte)

// releaseSymbolMemory gives the memory of an unreachable decoder back.
func releaseSymbolMemory(m *[]byte) {
	symbolMemory.Put(noMemory)
	symbolMemory.Put(m)
}
