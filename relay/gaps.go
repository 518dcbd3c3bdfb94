package relay

import (
	"sync/atomic"
)

// Source symbols are the first K ESIs of a block (the code is systematic).
// A consumer that tracks them remembers which ones it let through, so that
// it never passes one twice and a producer that has the block can send the
// ones it missed (NextGap): the receiver then holds every source symbol and
// needs no decoding, and the producer reads them from its copy instead of
// computing repair symbols.

// sourceTrack is a consumer's record of the source symbols it passed.
type sourceTrack struct {
	k   uint32 // ESIs below k are tracked
	blk [256]atomic.Pointer[sourceBlock]
}

// sourceBlock is one block's record.
type sourceBlock struct {
	bits []atomic.Uint64
	// hi is 1 + the highest source ESI passed: below it, an ESI not passed
	// was skipped or never came, and is no longer on its way.
	hi atomic.Uint32
	// next is where NextGap resumes; only the producer moves it.
	next atomic.Uint32
}

// TrackSources makes the consumer record which of each block's first k
// ESIs (its source symbols) it passes. From then on it never passes one of
// them twice, and NextGap reports those it missed.
func (c *Consumer) TrackSources(k int) {
	if k <= 0 || c.src.Load() != nil {
		return
	}
	c.src.CompareAndSwap(nil, &sourceTrack{k: uint32(min(k, 1<<24))})
}

// block returns the record of block sbn, creating it if create is set.
func (t *sourceTrack) block(sbn uint32, create bool) *sourceBlock {
	b := t.blk[sbn].Load()
	if b == nil && create {
		b = &sourceBlock{bits: make([]atomic.Uint64, (t.k+63)/64)}
		if !t.blk[sbn].CompareAndSwap(nil, b) {
			b = t.blk[sbn].Load()
		}
	}
	return b
}

// seen reports whether source ESI esi of block sbn has passed.
func (t *sourceTrack) seen(sbn, esi uint32) bool {
	b := t.blk[sbn].Load()
	return b != nil && b.bits[esi>>6].Load()&(1<<(esi&63)) != 0
}

// mark records that source ESI esi of block sbn passed. Only the reader
// calls it (MarkHeld may set bits at the same time).
func (t *sourceTrack) mark(sbn, esi uint32) {
	b := t.block(sbn, true)
	w := &b.bits[esi>>6]
	for old := w.Load(); !w.CompareAndSwap(old, old|1<<(esi&63)); old = w.Load() {
	}
	if esi >= b.hi.Load() {
		b.hi.Store(esi + 1)
	}
}

// MarkHeld records that the reader already holds source ESI esi of block
// sbn from elsewhere: the consumer will not pass it, and NextGap does not
// report it. It does nothing unless the consumer tracks sources.
func (c *Consumer) MarkHeld(sbn uint8, esi uint32) {
	t := c.src.Load()
	if t == nil || esi >= t.k {
		return
	}
	w := &t.block(uint32(sbn), true).bits[esi>>6]
	for {
		old := w.Load()
		if w.CompareAndSwap(old, old|1<<(esi&63)) {
			return
		}
	}
}

// rewind makes NextGap look at every block's gaps again from the start.
func (t *sourceTrack) rewind() {
	for i := range t.blk {
		if b := t.blk[i].Load(); b != nil {
			b.next.Store(0)
		}
	}
}

// NextGap returns a source ESI of block sbn, in the consumer's stripe and
// below limit, that the consumer never passed although it passed a higher
// one (or, when it has a budget and nothing of the block waits for it in
// the ring, any it never passed), and moves past it: each gap is reported
// once. It returns false when the consumer tracks no sources or has no such
// gap. One producer at a time may call it.
func (c *Consumer) NextGap(sbn uint8, limit uint32) (uint32, bool) {
	t := c.src.Load()
	if t == nil {
		return 0, false
	}
	b := t.blk[sbn].Load()
	if b == nil {
		return 0, false
	}
	hi := min(b.hi.Load(), limit, t.k)
	if c.budgeted.Load() && c.queued[sbn].Load() == 0 {
		// Nothing of the block waits for us in the ring: what we did not
		// pass up to limit is not on its way either.
		hi = min(limit, t.k)
	}
	s := c.stripe.Load()
	k, i := uint32(s>>32), uint32(s)
	e := b.next.Load()
	if r := e % k; r != i {
		// First ESI at or after e in the stripe.
		e += (i + k - r) % k
	}
	for ; e < hi; e += k {
		if b.bits[e>>6].Load()&(1<<(e&63)) == 0 {
			b.next.Store(e + 1)
			return e, true
		}
	}
	if hi > b.next.Load() {
		b.next.Store(hi)
	}
	return 0, false
}
