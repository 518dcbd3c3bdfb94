package node

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Stripe pacing at the original source. The source's uplink carries each
// stripe once, to the stripe's relay child, and forward-when-feasible lets
// every stripe go as fast as that child takes it. On real links that made
// stripes very unequal (Table I on the testbed: one stripe at 4.5 Mbit/s,
// two at about 1): a fat stripe cannot reach everyone through the tree
// below its child (the widest paths there are narrower), so much of what
// the source sent of it was dropped on the way, while the thin stripes
// left the receivers' downlinks idle. The source therefore paces each
// stripe child at Tuning.StripeCap times its share of the most the source
// has sent lately (its uplink, as far as it can tell).

// pacer is a token bucket in front of one child's stream. Its rate is set
// by the source's child check; 0 means no limit.
type pacer struct {
	ctx  context.Context
	w    io.Writer
	rate atomic.Uint64 // bytes per second, 0: none

	mu     sync.Mutex
	tokens float64
	last   time.Time
}

// pacerBurst is how much of its rate a pacer lets through at once.
const pacerBurst = 50 * time.Millisecond

func newPacer(ctx context.Context, w io.Writer) *pacer {
	return &pacer{ctx: ctx, w: w}
}

// setRate sets the limit (bytes/s, 0 for none).
func (p *pacer) setRate(r float64) { p.rate.Store(uint64(max(r, 0))) }

// Write waits until the bucket holds len(b) bytes, then writes b.
func (p *pacer) Write(b []byte) (int, error) {
	if r := float64(p.rate.Load()); r > 0 {
		if err := p.wait(r, len(b)); err != nil {
			return 0, err
		}
	}
	return p.w.Write(b)
}

func (p *pacer) wait(rate float64, n int) error {
	p.mu.Lock()
	now := time.Now()
	burst := max(rate*pacerBurst.Seconds(), float64(n))
	if p.last.IsZero() {
		p.tokens = burst
	} else {
		p.tokens = min(burst, p.tokens+rate*now.Sub(p.last).Seconds())
	}
	p.last = now
	p.tokens -= float64(n)
	short := -p.tokens
	p.mu.Unlock()
	if short <= 0 {
		return nil
	}
	t := time.NewTimer(time.Duration(short / rate * float64(time.Second)))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-p.ctx.Done():
		return p.ctx.Err()
	}
}

// stripeCapMeter follows the most the original source sent per second over
// its stripe children, for the stripe cap.
type stripeCapMeter struct {
	peak float64 // bytes/s, decays slowly
	at   time.Time
}

// stripePeakDecay is how fast the remembered peak fades (per second), so
// that a burst measured once does not set the cap for the whole run.
const stripePeakDecay = 0.02

// update folds the current total rate in and returns the peak.
func (m *stripeCapMeter) update(now time.Time, total float64) float64 {
	if !m.at.IsZero() {
		m.peak *= 1 - min(1, stripePeakDecay*now.Sub(m.at).Seconds())
	}
	m.at = now
	m.peak = max(m.peak, total)
	return m.peak
}
