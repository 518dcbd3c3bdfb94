package relay

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/romap2p/romap2p/protocol"
)

// ConsumerOption configures a Consumer.
type ConsumerOption func(*consumerConfig)

type consumerConfig struct {
	sink       bool
	fromOldest bool
	stripeK    uint32
	stripeI    uint32
}

// AsSink makes the consumer the node's lossless local sink: it is never
// skipped, the producer waits for it instead, and source pacing ignores it.
// A sink must be read quickly and continuously.
func AsSink() ConsumerOption { return func(c *consumerConfig) { c.sink = true } }

// FromOldest starts the consumer at the oldest symbol the ring still holds
// instead of at the head. A new child then gets a ring's worth of symbols at
// once; leave it off where the rate a child sees should reflect the live
// stream (a probe measuring a candidate parent's width).
func FromOldest() ConsumerOption { return func(c *consumerConfig) { c.fromOldest = true } }

// WithStripe passes only symbols whose ESI satisfies esi % k == i.
func WithStripe(k, i uint32) ConsumerOption {
	return func(c *consumerConfig) { c.stripeK, c.stripeI = k, i }
}

// Consumer reads the ring through its own cursor. One goroutine at a time may
// read from it (Next, NextView, or a Writer's Run); its filter, Close and
// Stats may be used from any goroutine.
type Consumer struct {
	r        *Ring
	sink     bool
	lossless bool

	cursor   atomic.Uint64 // next sequence to take; written under r.mu
	finished [4]atomic.Uint64
	stripe   atomic.Uint64 // k<<32 | i

	// Per-block budgets (SetBudget): passed counts the symbols of each
	// block the filter let through (written by the reader only), limit is
	// 1 + the most it may let through, 0 for no limit.
	budgeted atomic.Bool
	passed   [256]atomic.Uint32
	limit    [256]atomic.Uint64
	// queued counts, per block, the symbols of the consumer's stripe
	// committed but not yet taken, once budgets apply (Budget).
	queued [256]atomic.Int32
	// src records the source symbols passed (TrackSources), nil if off.
	src atomic.Pointer[sourceTrack]

	sleeping atomic.Bool
	wake     chan struct{}
	done     chan struct{}
	closed   bool // guarded by r.mu

	// rmu is held by whoever reads (Next, NextView, a Writer's Run); it
	// guards the reader state below, so Close can tell whether it may
	// release the reader's pin itself.
	rmu      sync.Mutex
	held     *chunk
	pos, end uint64 // sequences of the held run not yet handed out by Next
	local    struct{ sent, filtered, bytes uint64 }

	sent, skipped, filtered, bytes, control atomic.Uint64
	meter                                   *meter

	// In flight (SetInFlight): ackAt is the value of sent the receiver is
	// known to have taken, flightCap the most symbols it may have beyond
	// that (0: no limit).
	ackAt, flightCap atomic.Uint64
	flightWake       chan struct{}
	flightHeld       bool // the writer waits for half the limit (flightHold)
}

// flightRecheck is how often a writer held by the in-flight limit looks
// again without being woken.
const flightRecheck = 250 * time.Millisecond

// SetInFlight tells the consumer how many of the symbols it sent the
// receiver has not confirmed yet (inflight), and how many it may have
// unconfirmed at most (limit; 0 for no limit). A Writer sends nothing new
// while that many are unconfirmed: symbols then wait in the ring (and are
// skipped once the ring moves on) instead of in the stream's buffers, so
// forward-when-feasible sees what the receiver can take now, not what the
// buffers between the two can hold.
//
// It reports whether the limit held the consumer back and no longer does.
func (c *Consumer) SetInFlight(inflight, limit uint64) (opened bool) {
	was := c.inFlightFull()
	sent := c.sent.Load()
	c.ackAt.Store(sent - min(inflight, sent))
	c.flightCap.Store(limit)
	select {
	case c.flightWake <- struct{}{}:
	default:
	}
	return was && !c.inFlightFull()
}

// Sent returns how many symbols the consumer passed to its reader.
func (c *Consumer) Sent() uint64 { return c.sent.Load() }

// flightLimit returns how many symbols the receiver may have unconfirmed,
// and false when nothing limits it. Producers call it per symbol.
func (c *Consumer) flightLimit() (uint64, bool) {
	l := c.flightCap.Load()
	return l, l != 0
}

// flightHold reports whether the writer must wait for the receiver to
// confirm more. Once held, it waits until half the limit is free, so that
// it writes in batches rather than a symbol per confirmation (each write
// costs a frame, a record and a system call). Writer goroutine only.
func (c *Consumer) flightHold() bool {
	l, ok := c.flightLimit()
	if !ok {
		c.flightHeld = false
		return false
	}
	inflight := c.sent.Load() - c.ackAt.Load()
	if c.flightHeld {
		c.flightHeld = inflight > l/2
		return c.flightHeld
	}
	c.flightHeld = inflight >= l
	return c.flightHeld
}

// inFlightFull reports whether the receiver has as many symbols
// unconfirmed as it may have.
func (c *Consumer) inFlightFull() bool {
	l, ok := c.flightLimit()
	return ok && c.sent.Load()-c.ackAt.Load() >= l
}

// waitFlight blocks until the receiver may have more in flight, a control
// frame arrives on ctrl, the consumer is closed (closed: the caller takes
// next, which tells it so), or ctx ends; it returns the frame, if any.
func (c *Consumer) waitFlight(ctx context.Context, ctrl <-chan []byte) (frame []byte, closed bool, err error) {
	t := time.NewTimer(flightRecheck)
	defer t.Stop()
	select {
	case <-c.flightWake:
	case <-c.done:
		return nil, true, nil
	case <-t.C:
	case frame := <-ctrl:
		return frame, false, nil
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
	return nil, false, nil
}

// Subscribe adds a consumer. By default it starts at the head: it sees the
// symbols committed from now on.
func (r *Ring) Subscribe(opts ...ConsumerOption) (*Consumer, error) {
	cfg := consumerConfig{stripeK: 1}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.stripeK == 0 || cfg.stripeI >= cfg.stripeK {
		return nil, fmt.Errorf("relay: subscribe: invalid stripe (k=%d, i=%d)", cfg.stripeK, cfg.stripeI)
	}
	c := &Consumer{
		r:          r,
		sink:       cfg.sink,
		lossless:   cfg.sink || r.backPressure,
		wake:       make(chan struct{}, 1),
		flightWake: make(chan struct{}, 1),
		done:       make(chan struct{}),
		meter:      newMeter(time.Now()),
	}
	c.stripe.Store(uint64(cfg.stripeK)<<32 | uint64(cfg.stripeI))
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, ErrClosed
	}
	if cfg.fromOldest {
		c.cursor.Store(r.tail.Load())
	} else {
		c.cursor.Store(r.head.Load())
	}
	old := *r.consumers.Load()
	next := append(slices.Clip(old), c)
	r.consumers.Store(&next)
	r.signalProducer()
	return c, nil
}

// Close removes the consumer from the ring. A reader blocked in Next or a
// Writer's Run returns; data returned by NextView becomes invalid. Close is
// idempotent.
func (c *Consumer) Close() error {
	r := c.r
	r.mu.Lock()
	if c.closed {
		r.mu.Unlock()
		return nil
	}
	c.closed = true
	close(c.done)
	old := *r.consumers.Load()
	next := make([]*Consumer, 0, len(old))
	for _, o := range old {
		if o != c {
			next = append(next, o)
		}
	}
	r.consumers.Store(&next)
	r.mu.Unlock()
	r.signalProducer()
	// With no read in progress, give the reader's memory back now; an
	// active reader gives it back when it sees the consumer closed.
	if c.rmu.TryLock() {
		c.release()
		c.rmu.Unlock()
	}
	return nil
}

// MarkFinished stops the consumer passing symbols of source block sbn.
func (c *Consumer) MarkFinished(sbn uint8) {
	c.finished[sbn>>6].Or(1 << (sbn & 63))
}

// UnmarkFinished lets symbols of source block sbn through again (the child
// turned out to need more of that block).
func (c *Consumer) UnmarkFinished(sbn uint8) {
	c.finished[sbn>>6].And(^uint64(1 << (sbn & 63)))
}

// Finished reports whether source block sbn is marked finished.
func (c *Consumer) Finished(sbn uint8) bool {
	return c.finished[sbn>>6].Load()&(1<<(sbn&63)) != 0
}

// SetStripe changes the consumer's stripe: it passes only symbols whose ESI
// satisfies esi % k == i; k = 1 passes every ESI.
func (c *Consumer) SetStripe(k, i uint32) error {
	if k == 0 || i >= k {
		return fmt.Errorf("relay: invalid stripe (k=%d, i=%d)", k, i)
	}
	c.stripe.Store(uint64(k)<<32 | uint64(i))
	return nil
}

// SetBudget lets at most total symbols of source block sbn through this
// consumer, counted from its first symbol (Passed): a child that has what it
// needs of a block from its other parents is not sent more of it.
func (c *Consumer) SetBudget(sbn uint8, total uint32) {
	c.limit[sbn].Store(uint64(total) + 1)
	c.budgeted.Store(true)
}

// Passed returns how many symbols of source block sbn the consumer has let
// through so far.
func (c *Consumer) Passed(sbn uint8) uint32 { return c.passed[sbn].Load() }

// Budget returns how many more symbols of source block sbn the consumer may
// let through beyond those already waiting for it in the ring, and false
// when the block has no budget. A producer that makes symbols for this
// consumer makes no more of a block than that.
func (c *Consumer) Budget(sbn uint8) (int, bool) {
	n, ok := c.Allowance(sbn)
	return max(0, n-int(c.queued[sbn].Load())), ok
}

// Allowance returns how many more symbols of source block sbn the budget
// lets through, counting only those already let through (not those
// waiting), and false when the block has no budget.
func (c *Consumer) Allowance(sbn uint8) (int, bool) {
	l := c.limit[sbn].Load()
	if l == 0 {
		return 0, false
	}
	return max(0, int(l-1)-int(c.passed[sbn].Load())), true
}

// inStripe reports whether the consumer's stripe holds esi.
func (c *Consumer) inStripe(esi uint32) bool {
	s := c.stripe.Load()
	k := uint32(s >> 32)
	return k == 1 || esi%k == uint32(s)
}

// noteQueued counts a symbol committed to the ring against the consumers
// with budgets. Called by the producer before the symbol is published.
func (r *Ring) noteQueued(sbn uint8, esi uint32) {
	for _, c := range *r.consumers.Load() {
		if c.budgeted.Load() && c.inStripe(esi) {
			c.queued[sbn].Add(1)
		}
	}
}

// unqueue counts a symbol of block sbn as taken. Only the reader calls it.
func (c *Consumer) unqueue(sbn uint32) {
	if c.queued[sbn].Load() > 0 {
		c.queued[sbn].Add(-1)
	}
}

// filter is a snapshot of the consumer's filter for one run of frames. The
// budgets are read live: they count what passes.
type filter struct {
	finished [4]uint64
	k, i     uint32
	c        *Consumer    // non-nil when budgets apply
	src      *sourceTrack // non-nil when source symbols are tracked
}

func (c *Consumer) loadFilter() (f filter, active bool) {
	var any uint64
	for j := range f.finished {
		f.finished[j] = c.finished[j].Load()
		any |= f.finished[j]
	}
	s := c.stripe.Load()
	f.k, f.i = uint32(s>>32), uint32(s)
	if c.budgeted.Load() {
		f.c = c
	}
	f.src = c.src.Load()
	return f, any != 0 || f.k != 1 || f.c != nil || f.src != nil
}

// pass reports whether the frame with header hdr gets through the filter,
// and counts it against its block's budget if it does.
func (f *filter) pass(hdr []byte) bool {
	v := binary.BigEndian.Uint32(hdr[1:protocol.SymbolHeaderLen])
	sbn := v >> 24
	if f.k != 1 && (v&protocol.MaxESI)%f.k != f.i {
		return false
	}
	if f.c != nil {
		f.c.unqueue(sbn)
	}
	if f.finished[sbn>>6]&(1<<(sbn&63)) != 0 {
		return false
	}
	esi := v & protocol.MaxESI
	src := f.src != nil && esi < f.src.k
	if src && f.src.seen(sbn, esi) {
		return false // passed before
	}
	if c := f.c; c != nil {
		n := c.passed[sbn].Load()
		if l := c.limit[sbn].Load(); l != 0 && uint64(n)+1 >= l {
			return false
		}
		c.passed[sbn].Store(n + 1)
	}
	if src {
		f.src.mark(sbn, esi)
	}
	return true
}

// countPassed counts the frames of an unfiltered run against their blocks,
// so that a budget set later starts from the right number.
func (c *Consumer) countPassed(run []byte, stride int) {
	for off := 0; off < len(run); off += stride {
		sbn := run[off+1]
		c.passed[sbn].Store(c.passed[sbn].Load() + 1)
	}
}

// takeResult says what take found.
type takeResult int

const (
	takeData   takeResult = iota // a run was claimed
	takeEmpty                    // nothing new yet
	takeClosed                   // the consumer was closed
	takeEOF                      // the ring was closed and drained
)

// take releases the run held from the previous take and claims the next run
// of committed symbols, up to the end of one chunk. Only the reading
// goroutine calls it.
func (c *Consumer) take() (ch *chunk, from, to uint64, res takeResult) {
	r := c.r
	r.mu.Lock()
	if c.held != nil {
		r.unpin(c.held)
		c.held = nil
	}
	if c.closed {
		r.mu.Unlock()
		return nil, 0, 0, takeClosed
	}
	cur := c.cursor.Load()
	if tail := r.tail.Load(); cur < tail {
		c.skipped.Add(tail - cur)
		cur = tail
		// What was skipped can no longer be told apart by block.
		for i := range c.queued {
			c.queued[i].Store(0)
		}
		if t := c.src.Load(); t != nil {
			t.rewind() // gaps sent for us may have been skipped too
		}
	}
	h := r.head.Load()
	if cur >= h {
		c.cursor.Store(cur)
		closed := r.closed
		r.mu.Unlock()
		if closed {
			return nil, 0, 0, takeEOF
		}
		// A consumer waiting at the head is demand: a producer that went
		// idle while this one was held (SetInFlight) must hear of it.
		r.signalProducer()
		return nil, 0, 0, takeEmpty
	}
	per := uint64(r.per)
	end := min(h, (cur/per+1)*per)
	ch = r.chunks[(cur/per)%uint64(r.nchunk)]
	ch.pins++
	c.held = ch
	c.cursor.Store(end)
	r.mu.Unlock()
	r.signalProducer()
	return ch, cur, end, takeData
}

// release drops the reader's pin, if any. Called with rmu held.
func (c *Consumer) release() {
	if c.held == nil {
		return
	}
	c.r.mu.Lock()
	c.r.unpin(c.held)
	c.held = nil
	c.pos, c.end = 0, 0
	c.r.mu.Unlock()
}

// sleep blocks until the producer may have committed something new, the
// consumer or ring is closed, ctx ends, or a frame arrives on ctrl (which may
// be nil). It returns a received control frame, if any.
func (c *Consumer) sleep(ctx context.Context, ctrl <-chan []byte) ([]byte, error) {
	c.sleeping.Store(true)
	if c.r.head.Load() > c.cursor.Load() || c.r.isClosed.Load() {
		c.sleeping.Store(false)
		return nil, nil
	}
	var frame []byte
	var err error
	select {
	case <-c.wake:
	case <-c.done:
	case frame = <-ctrl:
	case <-ctx.Done():
		err = ctx.Err()
	}
	c.sleeping.Store(false)
	return frame, err
}

// poke wakes the consumer's reader if it sleeps.
func (c *Consumer) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// flushLocal publishes counters the reader accumulated since the last take.
func (c *Consumer) flushLocal() {
	if c.local.sent != 0 {
		c.sent.Add(c.local.sent)
	}
	if c.local.filtered != 0 {
		c.filtered.Add(c.local.filtered)
	}
	if c.local.bytes != 0 {
		c.meter.tick(time.Now(), c.bytes.Add(c.local.bytes))
	}
	c.local.sent, c.local.filtered, c.local.bytes = 0, 0, 0
}

// NextView returns the next symbol that passes the consumer's filter. data
// aliases the ring and stays valid until the next call to Next, NextView or
// Close. At the end of a closed ring it returns io.EOF; on a closed consumer,
// ErrClosed.
func (c *Consumer) NextView(ctx context.Context) (sbn uint8, esi uint32, data []byte, err error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	return c.nextView(ctx)
}

// nextView is NextView with rmu held.
func (c *Consumer) nextView(ctx context.Context) (sbn uint8, esi uint32, data []byte, err error) {
	r := c.r
	for {
		if c.pos < c.end {
			f, active := c.loadFilter()
			for c.pos < c.end {
				off := int(c.pos%uint64(r.per)) * r.stride
				c.pos++
				frame := c.held.buf[off : off+r.stride]
				if active && !f.pass(frame) {
					c.local.filtered++
					continue
				}
				if !active && !c.sink {
					// (A sink never gets a budget.)
					c.countPassed(frame, r.stride)
				}
				v := binary.BigEndian.Uint32(frame[1:protocol.SymbolHeaderLen])
				c.local.sent++
				c.local.bytes += uint64(r.stride)
				return uint8(v >> 24), v & protocol.MaxESI, frame[protocol.SymbolHeaderLen:], nil
			}
		}
		c.flushLocal()
		_, from, to, res := c.take()
		switch res {
		case takeData:
			c.pos, c.end = from, to
		case takeEmpty:
			if _, err := c.sleep(ctx, nil); err != nil {
				return 0, 0, nil, err
			}
		case takeClosed:
			return 0, 0, nil, ErrClosed
		case takeEOF:
			return 0, 0, nil, io.EOF
		}
	}
}

// Next copies the next symbol that passes the consumer's filter into dst,
// which must hold T bytes, and returns its IDs. Errors as NextView.
func (c *Consumer) Next(ctx context.Context, dst []byte) (sbn uint8, esi uint32, err error) {
	if len(dst) < c.r.t {
		return 0, 0, fmt.Errorf("relay: next: buffer of %d bytes, symbols are %d", len(dst), c.r.t)
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	sbn, esi, data, err := c.nextView(ctx)
	if err != nil {
		return 0, 0, err
	}
	copy(dst, data)
	return sbn, esi, nil
}

// ConsumerStats is a snapshot of one consumer's counters.
type ConsumerStats struct {
	// Sent counts symbols delivered (written, or handed out by Next).
	Sent uint64
	// Skipped counts symbols lost because the consumer fell more than the
	// ring's capacity behind.
	Skipped uint64
	// Filtered counts symbols withheld by the finished-block or stripe filter.
	Filtered uint64
	// Bytes counts bytes delivered: symbol frames (header included) and
	// control frames.
	Bytes uint64
	// Control counts control frames written.
	Control uint64
	// Behind is how many committed symbols the consumer has not yet taken.
	Behind uint64
	// Rate is bytes per second delivered over about the last second.
	Rate float64
	// Lossless reports a consumer the producer waits for.
	Lossless bool
}

// Stats returns the consumer's counters. It is cheap and safe to call from
// any goroutine.
func (c *Consumer) Stats() ConsumerStats {
	b := c.bytes.Load()
	s := ConsumerStats{
		Sent:     c.sent.Load(),
		Skipped:  c.skipped.Load(),
		Filtered: c.filtered.Load(),
		Bytes:    b,
		Control:  c.control.Load(),
		Rate:     c.meter.rate(time.Now(), b),
		Lossless: c.lossless,
	}
	if h, cur := c.r.head.Load(), c.cursor.Load(); h > cur {
		s.Behind = h - cur
	}
	return s
}
