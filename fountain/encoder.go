package fountain

import (
	"container/list"
	"errors"
	"fmt"
	"io"
	"sync"
)

// DefaultCacheBytes bounds the intermediate symbols an Encoder keeps.
const DefaultCacheBytes = 256 << 20

// EncoderOption tunes NewEncoder.
type EncoderOption func(*encoderConfig)

type encoderConfig struct {
	cacheBytes int64
	block      []BlockOption
	store      Store
	readAhead  int
}

// WithReadAhead makes the encoder read n source symbols of a block at once
// and serve the next requests for that block from them (n <= 1: one read
// per symbol). Memory: n*T bytes per block.
func WithReadAhead(n int) EncoderOption {
	return func(c *encoderConfig) { c.readAhead = n }
}

// WithCacheBytes bounds the memory of cached block encoders (their
// intermediate symbols). At least one block is always kept.
func WithCacheBytes(n int64) EncoderOption {
	return func(c *encoderConfig) { c.cacheBytes = n }
}

// WithBlockOptions passes options to the block encoders.
func WithBlockOptions(opts ...BlockOption) EncoderOption {
	return func(c *encoderConfig) { c.block = append(c.block, opts...) }
}

// Encoder produces encoding symbols of a whole object read through an
// io.ReaderAt. Source symbols are read straight from the object; repair
// symbols come from block encoders kept in a bounded LRU cache. It is safe
// for concurrent use.
type Encoder struct {
	r     io.ReaderAt
	o     OTI
	cfg   encoderConfig
	plans *PlanCache

	store *storeState // nil: cache block encoders in memory
	kern  kernels
	ahead []readAhead // per block, with WithReadAhead

	mu    sync.Mutex
	lru   *list.List // of *cacheEntry, most recent first
	byBlk map[int]*list.Element
	bytes int64
}

type cacheEntry struct {
	sbn   int
	ready chan struct{}
	enc   *BlockEncoder
	err   error
}

// NewEncoder returns an encoder for the object o read from r.
func NewEncoder(r io.ReaderAt, o OTI, opts ...EncoderOption) (*Encoder, error) {
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("invalid OTI: %w", err)
	}
	cfg := encoderConfig{cacheBytes: DefaultCacheBytes}
	for _, f := range opts {
		f(&cfg)
	}
	e := &Encoder{r: r, o: o, cfg: cfg, plans: NewPlanCache(), lru: list.New(), byBlk: make(map[int]*list.Element)}
	e.cfg.block = append([]BlockOption{WithPlanCache(e.plans)}, cfg.block...)
	var bcfg blockConfig
	for _, f := range e.cfg.block {
		f(&bcfg)
	}
	e.kern = newKernels(bcfg.kernels)
	if cfg.readAhead > 1 {
		e.ahead = make([]readAhead, o.Blocks())
	}
	if cfg.store != nil {
		st, err := newStoreState(cfg.store, o)
		if err != nil {
			return nil, err
		}
		e.store = st
	}
	return e, nil
}

// OTI returns the object transmission information the encoder works with.
func (e *Encoder) OTI() OTI { return e.o }

// Symbol writes encoding symbol esi of block sbn into dst (T bytes).
func (e *Encoder) Symbol(sbn int, esi uint32, dst []byte) error {
	if sbn < 0 || sbn >= e.o.Blocks() {
		return fmt.Errorf("source block %d outside 0..%d", sbn, e.o.Blocks()-1)
	}
	T := int(e.o.T)
	if len(dst) < T {
		return fmt.Errorf("symbol buffer of %d bytes, want %d", len(dst), T)
	}
	if int(esi) < e.o.BlockSymbols(sbn) {
		return e.readSource(sbn, esi, dst[:T])
	}
	if esi > MaxESI {
		return fmt.Errorf("ESI %d exceeds %d", esi, MaxESI)
	}
	if e.store != nil && e.store.stored[sbn].Load() {
		return e.storedSymbol(sbn, esi, dst[:T])
	}
	enc, err := e.block(sbn)
	if err != nil {
		return err
	}
	return enc.Symbol(esi, dst)
}

func (e *Encoder) readSource(sbn int, esi uint32, dst []byte) error {
	if e.ahead != nil {
		return e.ahead[sbn].read(e, sbn, esi, dst)
	}
	return e.readSymbols(sbn, esi, dst)
}

// readSymbols reads source symbols esi, esi+1, ... of block sbn into dst (a
// multiple of T bytes), zero padding past the end of the block.
func (e *Encoder) readSymbols(sbn int, esi uint32, dst []byte) error {
	T := int64(e.o.T)
	blen := e.o.BlockLen(sbn)
	lo := int64(esi) * T
	n := max(0, min(int64(len(dst)), blen-lo))
	got, err := e.r.ReadAt(dst[:n], e.o.BlockOffset(sbn)+lo)
	if int64(got) == n {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("read block %d symbol %d: %w", sbn, esi, err)
	}
	clear(dst[n:])
	return nil
}

// readAhead keeps the next few source symbols of one block, read in one
// call: a sender that goes round the blocks asks for one symbol of each in
// turn, and one read per symbol would cost a system call each.
type readAhead struct {
	mu    sync.Mutex
	first uint32 // ESI of buf's first symbol
	n     int    // symbols in buf
	buf   []byte
}

func (ra *readAhead) read(e *Encoder, sbn int, esi uint32, dst []byte) error {
	T := int(e.o.T)
	ra.mu.Lock()
	defer ra.mu.Unlock()
	if ra.n == 0 || esi < ra.first || esi >= ra.first+uint32(ra.n) {
		if ra.buf == nil {
			ra.buf = make([]byte, e.cfg.readAhead*T)
		}
		k := e.o.BlockSymbols(sbn)
		ra.first, ra.n = esi, min(e.cfg.readAhead, k-int(esi))
		if err := e.readSymbols(sbn, esi, ra.buf[:ra.n*T]); err != nil {
			ra.n = 0
			return err
		}
	}
	off := int(esi-ra.first) * T
	copy(dst[:T], ra.buf[off:off+T])
	return nil
}

// block returns the cached encoder of block sbn, building it if needed.
func (e *Encoder) block(sbn int) (*BlockEncoder, error) {
	e.mu.Lock()
	if el, ok := e.byBlk[sbn]; ok {
		e.lru.MoveToFront(el)
		ce := el.Value.(*cacheEntry)
		e.mu.Unlock()
		<-ce.ready
		return ce.enc, ce.err
	}
	ce := &cacheEntry{sbn: sbn, ready: make(chan struct{})}
	e.byBlk[sbn] = e.lru.PushFront(ce)
	e.mu.Unlock()

	ce.enc, ce.err = e.build(sbn)
	close(ce.ready)

	e.mu.Lock()
	defer e.mu.Unlock()
	if ce.err != nil {
		if el, ok := e.byBlk[sbn]; ok && el.Value == ce {
			e.lru.Remove(el)
			delete(e.byBlk, sbn)
		}
		return nil, ce.err
	}
	e.bytes += ce.enc.memBytes()
	// Evict least recently used blocks that are built, never the new one.
	for el := e.lru.Back(); el != nil && e.bytes > e.cfg.cacheBytes; {
		prev := el.Prev()
		old := el.Value.(*cacheEntry)
		if old != ce && isClosed(old.ready) && old.enc != nil {
			if e.store != nil {
				if err := e.store.spill(old.sbn, old.enc); err != nil {
					el = prev
					continue // keep it in memory rather than lose it
				}
			}
			e.lru.Remove(el)
			delete(e.byBlk, old.sbn)
			e.bytes -= old.enc.memBytes()
		}
		el = prev
	}
	return ce.enc, nil
}

func (e *Encoder) build(sbn int) (*BlockEncoder, error) {
	src := make([]byte, e.o.BlockLen(sbn))
	n, err := e.r.ReadAt(src, e.o.BlockOffset(sbn))
	if n == len(src) {
		err = nil
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read block %d: %w", sbn, err)
	}
	if n < len(src) {
		return nil, fmt.Errorf("read block %d: short object (%d of %d bytes)", sbn, n, len(src))
	}
	enc, err := NewBlockEncoder(e.o, sbn, src, e.cfg.block...)
	if err != nil {
		return nil, fmt.Errorf("encode block %d: %w", sbn, err)
	}
	return enc, nil
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
