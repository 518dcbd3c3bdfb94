package node

import (
	"context"
	"math"
	"time"

	"github.com/romap2p/romap2p/protocol"
)

// Widths. A child learns its parent's width in a stripe (the rate at which
// the parent receives that stripe) in the subscribe reply. A relay still
// fetching repeats it in a width frame whenever it moved by more than a
// quarter, so that a child can compare what it gets with what its parent
// has: a peer whose stripe parents mostly pass it a small share of what
// they receive is limited by its own downlink (downlinkBound).

// widthTick is how often a relay reviews the widths its children last
// heard.
const widthTick = time.Second

// widthSendWait bounds the wait for room in a child's control queue: a
// width frame that does not fit now is sent on a later tick.
const widthSendWait = 10 * time.Millisecond

// tellWidths sends each stripe child of a striped session its stripe's
// width when it moved, every widthTick, until the session ends.
func (d *downside) tellWidths() {
	s := d.s
	d.every(widthTick, func() {
		for _, c := range d.list() {
			if c.probe || c.stripes != s.stripes {
				continue
			}
			w := s.wireWidth(c.stripe % s.stripes)
			if !widthMoved(c.toldWidth.Load(), w) {
				continue
			}
			ctx, cancel := context.WithTimeout(s.ctx, widthSendWait)
			err := c.w.SendControl(ctx, protocol.AppendWidthFrame(nil, w))
			cancel()
			if err == nil {
				c.toldWidth.Store(w)
			}
		}
	})
}

// widthMoved reports whether width now differs from the one last told by
// more than a quarter (any change to or from unbounded counts).
func widthMoved(told, now uint64) bool {
	if told == now {
		return false
	}
	if told == protocol.WidthUnbounded || now == protocol.WidthUnbounded || told == 0 {
		return true
	}
	r := float64(now) / float64(told)
	return r < 0.8 || r > 1.25
}

// boundGain and boundHold: when a probe stood in for a stripe parent and
// the peer's total intake during it was under boundGain times the total
// before, the peer counts as limited by its own downlink for boundHold.
const (
	boundGain = 1.05
	boundHold = 15 * time.Second
)

// downlinkBound reports whether this peer's own downlink limits it: a
// probe found so within boundHold, or, of its stripe parents older than
// Tuning.StarveAfter with a bounded width (at least three), three quarters
// or more pass it less than Tuning.BoundShare of their width. Complete
// parents have no bounded width: the probe test covers them.
func (up *upside) downlinkBound() bool {
	s := up.s
	if s.stripes <= 1 {
		return false
	}
	if time.Now().UnixNano() < up.boundUntil.Load() {
		return true
	}
	tu := s.tuning()
	now := time.Now()
	judged, below := 0, 0
	for i := 0; i < s.stripes; i++ {
		u := up.stripeParent(i)
		if u == nil || now.Sub(u.started) < tu.StarveAfter {
			continue
		}
		w := widthOf(u.width.Load())
		if math.IsInf(w, 1) || w <= 0 {
			continue
		}
		judged++
		if u.rawMeter.rate() < tu.BoundShare*w {
			below++
		}
	}
	return judged >= 3 && 4*below >= 3*judged
}
