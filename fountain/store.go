package fountain

import (
	"fmt"
	"io"
	"sync"
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

// WithStore makes the encoder keep intermediate symbols in s instead of
// caching whole block encoders in memory. Block b occupies MaxIntermediateLen
// bytes from offset b*MaxIntermediateLen(o).
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

// storedBlock tracks one block's intermediate symbols in the store.
type storedBlock struct {
	once sync.Once
	bc   blockCode
	err  error
}

// storeState is the encoder's bookkeeping for a Store.
type storeState struct {
	s       Store
	stride  int64
	blocks  []storedBlock
	scratch sync.Pool // *[]byte of T bytes
}

func newStoreState(s Store, o OTI) (*storeState, error) {
	stride, err := MaxIntermediateLen(o)
	if err != nil {
		return nil, err
	}
	st := &storeState{s: s, stride: stride, blocks: make([]storedBlock, o.Blocks())}
	t := int(o.T)
	st.scratch.New = func() any { b := make([]byte, t); return &b }
	return st, nil
}

// ensure computes block sbn's intermediate symbols and writes them to the
// store, once.
func (e *Encoder) ensureStored(sbn int) (*storedBlock, error) {
	sb := &e.store.blocks[sbn]
	sb.once.Do(func() {
		enc, err := e.build(sbn)
		if err != nil {
			sb.err = err
			return
		}
		sb.bc = enc.bc
		if _, err := e.store.s.WriteAt(enc.Intermediate(), int64(sbn)*e.store.stride); err != nil {
			sb.err = fmt.Errorf("store block %d: %w", sbn, err)
		}
	})
	return sb, sb.err
}

// storedSymbol builds repair symbol esi of block sbn from the store.
func (e *Encoder) storedSymbol(sbn int, esi uint32, dst []byte) error {
	sb, err := e.ensureStored(sbn)
	if err != nil {
		return err
	}
	bc := &sb.bc
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
