package fountain

import "fmt"

// BlockDecoder collects encoding symbols of one source block and recovers
// the block's source bytes. It is not safe for concurrent use.
type BlockDecoder struct {
	bc      blockCode
	cfg     blockConfig
	err     error
	low     []bool              // ESI e < len(low) held: low[e]
	high    map[uint32]struct{} // ESIs >= len(low) held
	esis    []uint32
	buf     []byte // received symbols, T bytes each, in arrival order
	nsrc    int    // received source symbols
	limit   int    // most symbols stored
	decoded *BlockEncoder
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
		d.buf = make([]byte, 0, (d.bc.p.K+16)*d.bc.T)
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
		var pl *plan
		if d.nsrc < K {
			var err error
			if pl, err = buildPlan(&bc.p, d.isis()); err != nil {
				return err
			}
		}
		// Received source symbols first: solving works in place.
		for i, e := range d.esis {
			if lo := int(e) * T; int(e) < K && lo < len(dst) {
				copy(dst[lo:], d.buf[i*T:(i+1)*T])
			}
		}
		if pl == nil {
			return nil
		}
		d.solve(pl)
	}
	var sym []byte
	for i := 0; i < K; i++ {
		lo := i * T
		if lo >= len(dst) {
			break
		}
		if fresh && d.has(uint32(i)) {
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

// isis lists the rows to solve with: the padding symbols, then the
// received symbols in arrival order.
func (d *BlockDecoder) isis() []uint32 {
	p := &d.bc.p
	isis := make([]uint32, 0, p.Kp-p.K+len(d.esis))
	for i := p.K; i < p.Kp; i++ {
		isis = append(isis, uint32(i))
	}
	for _, e := range d.esis {
		isis = append(isis, p.isi(e))
	}
	return isis
}

// solve runs the plan and keeps the intermediate symbols. With a single
// sub-block it works in place on the received symbols.
func (d *BlockDecoder) solve(pl *plan) {
	bc := &d.bc
	p := &bc.p
	enc := &BlockEncoder{bc: *bc, kern: newKernels(d.cfg.portable), sub: make([][][]byte, len(bc.subSize))}
	zeros := p.S + p.H + p.Kp - p.K
	slots := make([][]byte, pl.slots)
	temps := make([]byte, (pl.slots-pl.rows)*bc.subSize[0])
	for j, ts := range bc.subSize {
		sliceSlots(slots[:zeros], make([]byte, zeros*ts), ts)
		sliceSlots(slots[pl.rows:], temps, ts)
		off := bc.subOff[j]
		if len(bc.subSize) == 1 {
			sliceSlots(slots[zeros:pl.rows], d.buf, ts)
		} else {
			rows := sliceSlots(slots[zeros:pl.rows], make([]byte, len(d.esis)*ts), ts)
			for i := range d.esis {
				copy(rows[i], d.buf[i*bc.T+off:])
			}
		}
		pl.run(enc.kern, slots)
		enc.sub[j] = pickSlots(pl, slots)
	}
	d.decoded = enc
}
