package relay

import (
	"context"
	"fmt"
)

// Generator fills dst (T bytes) with a fresh symbol and returns its source
// block number and ESI. It is how a source, or a peer that has decoded the
// whole file, produces symbols on demand.
type Generator func(ctx context.Context, dst []byte) (sbn uint8, esi uint32, err error)

// GenerateOption configures Generate.
type GenerateOption func(*generateConfig)

type generateConfig struct {
	lead uint64
}

// WithLead sets how far, in symbols, Generate may run ahead of the fastest
// consumer. The default is half the ring; it is clamped to [1, Slots].
func WithLead(symbols int) GenerateOption {
	return func(c *generateConfig) { c.lead = uint64(max(symbols, 1)) }
}

// Generate fills the ring from gen, writing each symbol straight into its
// slot, but only while the fastest consumer that is not a sink is fewer than
// the lead behind the head. It thus spends CPU at the rate the fastest child
// actually takes; with no such consumer it idles. It returns when ctx ends
// (its error), the ring is closed (ErrClosed), or gen fails (gen's error,
// wrapped). Generate is an ordinary producer: it must not run alongside
// another producer on the same ring unless interleaving is intended.
func (r *Ring) Generate(ctx context.Context, gen Generator, opts ...GenerateOption) error {
	cfg := generateConfig{lead: r.held / 2}
	for _, o := range opts {
		o(&cfg)
	}
	cfg.lead = min(max(cfg.lead, 1), r.held)
	demand := func() bool { return r.demand(cfg.lead) }
	for {
		if !demand() {
			if err := r.waitProgress(ctx, demand); err != nil {
				return err
			}
		}
		dst, err := r.Reserve(ctx)
		if err != nil {
			return err
		}
		sbn, esi, err := gen(ctx, dst)
		if err != nil {
			r.Abort()
			return fmt.Errorf("relay: generate: %w", err)
		}
		r.Commit(sbn, esi)
	}
}

// WaitDemand blocks until some consumer that is not a sink is fewer than
// lead symbols behind the head (lead <= 0 means half the ring), or ctx ends,
// or the ring closes. A producer that picks what to generate itself uses it
// before Reserve, so that it never holds the producer slot while idle.
func (r *Ring) WaitDemand(ctx context.Context, lead int) error {
	l := r.held / 2
	if lead > 0 {
		l = uint64(lead)
	}
	l = min(max(l, 1), r.held)
	ready := func() bool { return r.demand(l) }
	if ready() {
		if r.isClosed.Load() {
			return ErrClosed
		}
		return nil
	}
	if err := r.waitProgress(ctx, ready); err != nil {
		return err
	}
	if r.isClosed.Load() {
		return ErrClosed
	}
	return nil
}

// HasRoom reports whether the consumer is fewer than lead symbols behind the
// head (lead <= 0 means half the ring) and its receiver may take more now
// (SetInFlight): a symbol committed now would reach it rather than be
// skipped. A producer that generates for particular
// consumers checks it for them, so it never runs at the pace of consumers
// that would not take what it makes.
func (c *Consumer) HasRoom(lead int) bool {
	r := c.r
	if l, ok := c.flightLimit(); ok {
		// What it has unconfirmed and what waits for it in the ring
		// together stay within what its receiver may have in flight:
		// more made for it now would wait, and be skipped.
		h := r.head.Load()
		if c.sent.Load()-c.ackAt.Load()+h-min(c.cursor.Load(), h) >= l {
			return false
		}
	}
	l := r.held / 2
	if lead > 0 {
		l = uint64(lead)
	}
	l = min(max(l, 1), r.held)
	h := r.head.Load()
	return h-min(c.cursor.Load(), h) < l
}

// demand reports whether some non-sink consumer is fewer than lead symbols
// behind the head, or the ring is closed (so the producer finds out).
func (r *Ring) demand(lead uint64) bool {
	if r.isClosed.Load() {
		return true
	}
	h := r.head.Load()
	for _, c := range *r.consumers.Load() {
		if !c.sink && h-min(c.cursor.Load(), h) < lead && !c.inFlightFull() {
			return true
		}
	}
	return false
}
