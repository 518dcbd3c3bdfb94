package fountain

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
)

// Store holds the intermediate symbols of an object's blocks outside the
// heap, typically in a temporary file. An Encoder with a Store computes each
// block's intermediate symbols once, writes them there, and builds every
// repair symbol by reading just the few intermediate symbols it adds up, so a
// sender's memory does not grow with the object however the symbols it is
// asked for are spread over the blocks.
type Store interface {
	io.ReaderAt
	io.WriterAt
}

// WithStore gives the encoder a place for intermediate symbols beyond its
// in-memory cache (WithCacheBytes): a block encoder evicted from the cache is
// written there once, and later repair symbols of that block are built from
// the few intermediate symbols they add up. Block b occupies
// MaxIntermediateLen bytes from offset b*MaxIntermediateLen(o).
func WithStore(s Store) EncoderOption {
	return func(c *encoderConfig) { c.store = s }
}

// MaxIntermediateLen is the space one block's intermediate symbols take in a
// Store: L*T bytes for the largest block of the object.
func MaxIntermediateLen(o OTI) (int64, error) {
	var m int64
	for b := 0; b < o.Blocks(); b++ {
		bc, err := newBlockCode(o, b)
		if err != nil {
			return 0, err
		}
		m = max(m, int64(bc.interLen()))
	}
	return m, nil
}

// storeState is the encoder's bookkeeping for a Store: which blocks have
// been written there (when they left the in-memory cache) and their codes.
type storeState struct {
	s       Store
	stride  int64
	stored  []atomic.Bool
	codes   []blockCode
	scratch sync.Pool // *[]byte of T bytes
}

func newStoreState(s Store, o OTI) (*storeState, error) {
	stride, err := MaxIntermediateLen(o)
	if err != nil {
		return nil, err
	}
	st := &storeState{s: s, stride: stride, stored: make([]atomic.Bool, o.Blocks()), codes: make([]blockCode, o.Blocks())}
	for b := range st.codes {
		if st.codes[b], err = newBlockCode(o, b); err != nil {
			return nil, err
		}
	}
	t := int(o.T)
	st.scratch.New = func() any { b := make([]byte, t); return &b }
	return st, nil
}

// spill writes an evicted block encoder's intermediate symbols to the store
// so its repair symbols stay cheap without keeping it in memory.
func (st *storeState) spill(sbn int, enc *BlockEncoder) error {
	if st.stored[sbn].Load() {
		return nil
	}
	if _, err := st.s.WriteAt(enc.Intermediate(), int64(sbn)*st.stride); err != nil {
		return fmt.Errorf("store block %d: %w", sbn, err)
	}
	st.stored[sbn].Store(true)
	return nil
}

// storedSymbol builds repair symbol esi of block sbn from the store.
func (e *Encoder) storedSymbol(sbn int, esi uint32, dst []byte) error {
	bc := &e.store.codes[sbn]
	p := &bc.p
	var buf [40]int32
	cols := p.ltCols(buf[:0], p.tuple(p.isi(esi)))
	sp := e.store.scratch.Get().(*[]byte)
	defer e.store.scratch.Put(sp)
	base := int64(sbn) * e.store.stride
	for j, ts := range bc.subSize {
		out := dst[bc.subOff[j] : bc.subOff[j]+ts]
		sub := base + int64(p.L*bc.subOff[j])
		for n, c := range cols {
			tgt := out
			if n > 0 {
				tgt = (*sp)[:ts]
			}
			if _, err := e.store.s.ReadAt(tgt, sub+int64(c)*int64(ts)); err != nil {
				return fmt.Errorf("read stored block %d: %w", sbn, err)
			}
			if n > 0 {
				e.kern.xor(out, tgt)
			}
		}
	}
	return nil
}
