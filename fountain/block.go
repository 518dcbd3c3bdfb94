package fountain

import (
	"fmt"
	"runtime"
	"sync"
)

// blockCode is what encoders and decoders of one source block share.
type blockCode struct {
	p       codeParams
	T       int
	blen    int   // source bytes of the block
	subSize []int // sub-symbol sizes (one entry when N = 1)
	subOff  []int
}

func newBlockCode(o OTI, sbn int) (blockCode, error) {
	if err := o.Validate(); err != nil {
		return blockCode{}, fmt.Errorf("invalid OTI: %w", err)
	}
	if sbn < 0 || sbn >= o.Blocks() {
		return blockCode{}, fmt.Errorf("source block %d outside 0..%d", sbn, o.Blocks()-1)
	}
	p, err := newCodeParams(o.BlockSymbols(sbn))
	if err != nil {
		return blockCode{}, fmt.Errorf("block %d: %w", sbn, err)
	}
	size, off := o.subSymbols()
	return blockCode{p: p, T: int(o.T), blen: int(o.BlockLen(sbn)), subSize: size, subOff: off}, nil
}

// interLen is the size of a block's intermediate symbols in bytes.
func (b *blockCode) interLen() int { return b.p.L * b.T }

// PlanCache keeps the elimination schedules of systematic encoding, one per
// padded block size K', so that encoding many blocks of the same size does
// the matrix work once. It is safe for concurrent use.
type PlanCache struct {
	mu    sync.Mutex
	plans map[int]*planEntry
}

type planEntry struct {
	once sync.Once
	pl   *plan
	err  error
}

// NewPlanCache returns an empty cache.
func NewPlanCache() *PlanCache { return &PlanCache{plans: make(map[int]*planEntry)} }

// systematic returns the plan for the rows of ISIs 0..K'-1 (see
// systematicPlan).
func (c *PlanCache) systematic(p *codeParams) (*plan, error) {
	if c == nil {
		return systematicPlan(p)
	}
	c.mu.Lock()
	e := c.plans[p.Kp]
	if e == nil {
		e = new(planEntry)
		c.plans[p.Kp] = e
	}
	c.mu.Unlock()
	e.once.Do(func() { e.pl, e.err = systematicPlan(p) })
	return e.pl, e.err
}

// systematicPlan builds the plan for the rows of ISIs 0..K'-1. It has K'
// external slots: slot rows+i holds source symbol i (zero padded), read in
// place. The rows' own slots start zero: the forward substitution reads
// the source symbols from the external slots, and the back substitution
// recomputes the pivot rows from them and their few other columns.
func systematicPlan(p *codeParams) (*plan, error) {
	rows := p.S + p.H + p.Kp
	spec := &planSpec{isis: seq(p.Kp), ext: p.Kp, copyOf: make([]int32, p.Kp), unloaded: true}
	for i := range spec.copyOf {
		spec.copyOf[i] = int32(rows + i)
	}
	return newPlan(p, spec)
}

func seq(n int) []uint32 {
	s := make([]uint32, n)
	for i := range s {
		s[i] = uint32(i)
	}
	return s
}

// BlockOption tunes NewBlockEncoder and NewBlockDecoder.
type BlockOption func(*blockConfig)

type blockConfig struct {
	plans   *PlanCache
	kernels Kernels
}

// WithPlanCache shares systematic encoding schedules between encoders.
func WithPlanCache(c *PlanCache) BlockOption {
	return func(b *blockConfig) { b.plans = c }
}

// WithPortableKernels forces the pure-Go symbol arithmetic even where SIMD
// kernels are available (for tests and comparisons); it is
// WithKernels(KernelsPortable).
func WithPortableKernels() BlockOption {
	return WithKernels(KernelsPortable)
}

// WithKernels chooses the tier of symbol-arithmetic kernels. A tier this
// CPU or build does not support, and KernelsAuto (the default), fall back
// to the tier named by the environment variable KernelsEnv, else the
// fastest one here (see ResolveKernels). Every tier yields the same bytes.
func WithKernels(k Kernels) BlockOption {
	return func(b *blockConfig) { b.kernels = k }
}

// BlockEncoder produces the encoding symbols of one source block from its
// intermediate symbols. It is safe for concurrent use.
type BlockEncoder struct {
	bc   blockCode
	kern kernels
	sub  [][][]byte // sub[j][c]: intermediate symbol c of sub-block j

	lent    int             // rowMemory buffer in use, -1 for none
	cleanup runtime.Cleanup // returns it once the encoder is unreachable
}

// Release gives the encoder's memory back at once for later encoders to
// reuse (otherwise that happens only after a garbage collection finds the
// encoder unreachable). The encoder must not be used afterwards: Symbol
// and Intermediate then fail or return nothing.
func (e *BlockEncoder) Release() {
	if e.lent >= 0 {
		e.cleanup.Stop()
		returnRowMemory(e.lent)
		e.lent = -1
	}
	e.sub = nil
}

// NewBlockEncoder computes the intermediate symbols of block sbn from its
// source bytes src (BlockLen(sbn) bytes; anything up to K*T is accepted and
// bytes past BlockLen are taken as the zero padding).
func NewBlockEncoder(o OTI, sbn int, src []byte, opts ...BlockOption) (*BlockEncoder, error) {
	var cfg blockConfig
	for _, f := range opts {
		f(&cfg)
	}
	bc, err := newBlockCode(o, sbn)
	if err != nil {
		return nil, err
	}
	if len(src) < bc.blen || len(src) > bc.p.K*bc.T {
		return nil, fmt.Errorf("block %d: %d source bytes, want %d", sbn, len(src), bc.blen)
	}
	src = src[:bc.blen]
	pl, err := cfg.plans.systematic(&bc.p)
	if err != nil {
		return nil, fmt.Errorf("block %d: systematic plan: %w", sbn, err)
	}
	e := &BlockEncoder{bc: bc, kern: newKernels(cfg.kernels), sub: make([][][]byte, len(bc.subSize)), lent: -1}
	p := &bc.p
	slots := make([][]byte, pl.slots)
	tmp := pl.rows + pl.ext
	// Scratch slots, then a zero symbol and a zero-padded copy of the last,
	// short, source symbol for the external slots.
	scratch := getScratch((pl.slots - tmp + 2) * bc.subSize[0])
	defer scratchMemory.Put(scratch)
	temps := *scratch
	mem := takeRowMemory(e, pl.rows*bc.T)
	for j, ts := range bc.subSize {
		// The rows are the constraint rows then the K' systematic rows;
		// the solution stays where the plan leaves it. The plan writes
		// every systematic row before reading it; the constraint rows
		// start zero.
		buf := mem[:pl.rows*ts]
		mem = mem[pl.rows*ts:]
		clear(buf[:(p.S+p.H)*ts])
		sliceSlots(slots[:pl.rows], buf, ts)
		sliceSlots(slots[tmp:], temps, ts)
		zero := temps[(pl.slots-tmp)*ts : (pl.slots-tmp+1)*ts]
		clear(zero)
		for i := 0; i < p.Kp; i++ {
			ext := &slots[pl.rows+i]
			*ext = zero
			if lo := i*bc.T + bc.subOff[j]; i >= p.K || lo >= len(src) {
				continue
			} else if lo+ts <= len(src) {
				*ext = src[lo : lo+ts : lo+ts]
			} else {
				// The short last symbol, zero padded.
				*ext = temps[(pl.slots-tmp+1)*ts : (pl.slots-tmp+2)*ts]
				clear((*ext)[copy(*ext, src[lo:]):])
			}
		}
		pl.run(e.kern, slots)
		e.sub[j] = pickSlots(pl, slots)
	}
	return e, nil
}

// rowMemory lends block encoders the memory of their intermediate
// symbols, so that encoding block after block neither allocates, zeroes nor
// faults in ~L*T fresh bytes each time (measured: 0.3-0.5 ms of ~2.5 per
// block at K=1024, T=4096). It owns at most rowBuffers buffers of at most
// rowBufferBytes, which stay reachable from here: each is lent to one
// encoder at a time and taken back by a cleanup once that encoder is
// unreachable. (A sync.Pool refilled by cleanups would not do: the garbage
// collector counts every released buffer as live in the cycle that finds
// its encoder dead, and the heap goal grows without bound.) An encoder that
// finds no buffer free allocates its own.
var rowMemory struct {
	mu   sync.Mutex
	bufs [rowBuffers]struct {
		mem  []byte
		lent bool
	}
}

const (
	rowBuffers     = 2
	rowBufferBytes = 16 << 20
)

// takeRowMemory returns n bytes (contents undefined) for encoder e.
func takeRowMemory(e *BlockEncoder, n int) []byte {
	if n > rowBufferBytes {
		return make([]byte, n)
	}
	rm := &rowMemory
	rm.mu.Lock()
	defer rm.mu.Unlock()
	pick := -1
	for i := range rm.bufs {
		b := &rm.bufs[i]
		if b.lent {
			continue
		}
		if cap(b.mem) >= n && cap(b.mem) <= 2*n {
			pick = i
			break
		}
		if pick < 0 {
			pick = i
		}
	}
	if pick < 0 {
		return make([]byte, n)
	}
	b := &rm.bufs[pick]
	if cap(b.mem) < n || cap(b.mem) > 2*n {
		b.mem = make([]byte, n)
	}
	b.lent = true
	e.lent = pick
	e.cleanup = runtime.AddCleanup(e, returnRowMemory, pick)
	return b.mem[:n]
}

// returnRowMemory takes buffer i back from an unreachable encoder.
func returnRowMemory(i int) {
	rowMemory.mu.Lock()
	rowMemory.bufs[i].lent = false
	rowMemory.mu.Unlock()
}

// scratchMemory keeps the scratch slots of plan runs (the back
// substitution's tables, a zero symbol) from one encoder to the next;
// nothing refers to them after the run.
var scratchMemory sync.Pool // of *[]byte

// getScratch returns at least n bytes of scratch (contents undefined);
// give them back to scratchMemory after use.
func getScratch(n int) *[]byte {
	for range 4 {
		m, _ := scratchMemory.Get().(*[]byte)
		if m == nil {
			break
		}
		if cap(*m) >= n && cap(*m) <= 2*n {
			*m = (*m)[:n]
			return m
		}
	}
	m := make([]byte, n)
	return &m
}

// sliceSlots cuts buf into consecutive slots of size bytes.
func sliceSlots(slots [][]byte, buf []byte, size int) [][]byte {
	for i := range slots {
		slots[i] = buf[i*size : (i+1)*size : (i+1)*size]
	}
	return slots
}

// pickSlots returns the intermediate symbols in column order.
func pickSlots(pl *plan, slots [][]byte) [][]byte {
	c := make([][]byte, len(pl.colSlot))
	for i, s := range pl.colSlot {
		c[i] = slots[s]
	}
	return c
}

// NewBlockEncoderFromIntermediate restores an encoder from the bytes that
// Intermediate returned.
func NewBlockEncoderFromIntermediate(o OTI, sbn int, inter []byte, opts ...BlockOption) (*BlockEncoder, error) {
	var cfg blockConfig
	for _, f := range opts {
		f(&cfg)
	}
	bc, err := newBlockCode(o, sbn)
	if err != nil {
		return nil, err
	}
	if len(inter) != bc.interLen() {
		return nil, fmt.Errorf("block %d: %d intermediate bytes, want %d", sbn, len(inter), bc.interLen())
	}
	inter = append([]byte(nil), inter...)
	e := &BlockEncoder{bc: bc, kern: newKernels(cfg.kernels), sub: make([][][]byte, len(bc.subSize)), lent: -1}
	for j, ts := range bc.subSize {
		base := bc.p.L * bc.subOff[j]
		e.sub[j] = sliceSlots(make([][]byte, bc.p.L), inter[base:base+bc.p.L*ts], ts)
	}
	return e, nil
}

// Intermediate returns a copy of the block's intermediate symbols (L*T
// bytes: for each sub-block, its L intermediate symbols in order), from which
// NewBlockEncoderFromIntermediate rebuilds the encoder.
func (e *BlockEncoder) Intermediate() []byte {
	// The symbol memory may be lent (rowMemory): keep e alive while it is
	// read.
	defer runtime.KeepAlive(e)
	out := make([]byte, 0, e.bc.interLen())
	for _, syms := range e.sub {
		for _, s := range syms {
			out = append(out, s...)
		}
	}
	return out
}

// SourceSymbols returns K, the number of source symbols of the block.
func (e *BlockEncoder) SourceSymbols() int { return e.bc.p.K }

// Symbol writes the encoding symbol esi into dst, which must hold T bytes.
// Source symbols (esi < K) come out as the source bytes, zero padded.
func (e *BlockEncoder) Symbol(esi uint32, dst []byte) error {
	if esi > MaxESI {
		return fmt.Errorf("ESI %d exceeds %d", esi, MaxESI)
	}
	if len(dst) < e.bc.T {
		return fmt.Errorf("symbol buffer of %d bytes, want %d", len(dst), e.bc.T)
	}
	if e.sub == nil {
		return ErrReleased
	}
	// The symbol memory may be lent (rowMemory): keep e alive while it is
	// read.
	defer runtime.KeepAlive(e)
	p := &e.bc.p
	var buf [40]int32
	var srcs [40][]byte
	cols := p.ltCols(buf[:0], p.tuple(p.isi(esi)))
	for j, ts := range e.bc.subSize {
		out := dst[e.bc.subOff[j] : e.bc.subOff[j]+ts]
		syms := e.sub[j]
		for i, c := range cols {
			srcs[i] = syms[c]
		}
		e.kern.xorInto(out, srcs[:len(cols)])
	}
	return nil
}

// workspace is the scratch memory a plan runs on.
type workspace struct {
	buf  []byte
	slot [][]byte
}

func newWorkspace(n, size int) *workspace {
	w := &workspace{buf: make([]byte, n*size), slot: make([][]byte, n)}
	for i := range w.slot {
		w.slot[i] = w.buf[i*size : (i+1)*size : (i+1)*size]
	}
	return w
}

// memBytes is the memory the encoder's intermediate symbols take.
func (e *BlockEncoder) memBytes() int64 { return int64(e.bc.interLen()) }
