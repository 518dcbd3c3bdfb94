package node

import (
	"slices"
	"time"

	"github.com/romap2p/romap2p/protocol"
	"github.com/romap2p/romap2p/treebuild"
)

// Credits: a receiver tells each parent how many more symbols of each block
// it wants from that parent (protocol.FrameCredit), so that its parents
// together send about what it still needs instead of whatever is in flight
// when it reports a block finished. Each block's remaining need is split
// among the upstreams in proportion to the rate they deliver, and a credit
// counts from what the receiver has already received on that stream, so
// symbols in flight are never granted twice.

// creditState is what the credit loop remembers about one upstream.
type creditState struct {
	prevRecv  [protocol.MaxSourceBlocks]uint32    // recv at the previous round
	gotAt     [protocol.MaxSourceBlocks]time.Time // when recv last grew
	prevTotal uint64                              // symbols at the previous round
	totalAt   time.Time                           // when symbols last grew
	told      [protocol.MaxSourceBlocks]uint64    // limit last sent, +1 (0: none)
	toldAt    time.Time
	// held: source symbols of the stripe in each block last told held
	// (heldFrames).
	held   [protocol.MaxSourceBlocks]int
	heldAt time.Time
}

// heldMore is how many more source symbols of its stripe in a block a peer
// must hold before it tells a parent again.
const heldMore = 8

// heldFrames appends held frames for the credited blocks of which this node
// now holds at least heldMore source symbols of the upstream's stripe more
// than it last told that parent, at most once per credit refresh. A parent
// that has decoded a block fills in the source symbols it takes for missed
// (relay.Consumer.NextGap); what it learned at subscription grows stale as
// the other upstreams deliver (the stripe parents to an extra whole-stream
// upstream, the extras to a stripe parent), and it sent those symbols again:
// 3-11 % of a slow receiver's symbols were repeats.
func heldFrames(dst []byte, u *upstream, st *creditState, credits []protocol.Credit, now time.Time, every time.Duration) []byte {
	if u.probe || now.Sub(st.heldAt) < every {
		return dst
	}
	for _, c := range credits {
		h, some := u.s.fetch.spill.held(int(c.SBN), max(1, u.stripes), u.stripe)
		if !some {
			continue
		}
		n := h.Count()
		if n < st.held[c.SBN]+heldMore {
			continue
		}
		frame, err := protocol.AppendHeldFrame(dst, h)
		if err != nil {
			continue
		}
		dst, st.held[c.SBN] = frame, n
	}
	st.heldAt = now
	return dst
}

// runCredits grants credits until the session ends or the download
// completes.
func (up *upside) runCredits() {
	s, f := up.s, up.s.fetch
	tu := s.tuning()
	t := time.NewTicker(tu.CreditInterval)
	defer t.Stop()
	states := map[*upstream]*creditState{}
	var (
		ups    []*upstream
		blocks []int
		frame  []protocol.Credit
		held   []byte
		rates  []float64
		shares []int
	)
	for {
		// A block that now holds enough symbols, or failed to decode,
		// changes the need at once.
		changed := s.blocks.changes()
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		case <-f.creditKick:
		case <-changed:
		}
		if f.completing.Load() {
			return
		}
		ups = up.creditUpstreams(ups[:0])
		for u := range states {
			if !slices.Contains(ups, u) {
				delete(states, u)
			}
		}
		if len(ups) == 0 {
			continue
		}
		blocks = up.creditBlocks(blocks[:0])
		rates = creditRates(ups, rates[:0], tu.CreditWarmup)
		probeSwap(ups, rates)
		// Per upstream and block: the base (symbols received on the stream
		// so far) first, then the need, so that a symbol arriving in
		// between lowers the credit rather than being granted twice.
		grants := make([][]protocol.Credit, len(ups))
		for i, u := range ups {
			st := states[u]
			if st == nil {
				st = &creditState{}
				states[u] = st
			}
			g := make([]protocol.Credit, len(blocks))
			for j, b := range blocks {
				g[j] = protocol.Credit{SBN: uint8(b), Base: u.recv[b].Load()}
			}
			grants[i] = g
		}
		now := time.Now()
		for j, b := range blocks {
			need := int(f.need[b].Load()) - f.spill.seenCount(b)
			if need <= 0 {
				continue
			}
			w := make([]float64, len(ups))
			for i, u := range ups {
				w[i] = rates[i]
				st := states[u]
				if st.told[b] > uint64(grants[i][j].Base)+1 && now.Sub(st.gotAt[b]) > tu.CreditStuckAfter && now.Sub(st.totalAt) < tu.CreditStuckAfter {
					w[i] *= tu.CreditStuck
				}
			}
			shares = treebuild.SplitNeed(need, w, shares[:0])
			for i := range ups {
				grants[i][j].Allow = uint32(shares[i])
			}
		}
		for i, u := range ups {
			st := states[u]
			changed := now.Sub(st.toldAt) >= tu.CreditRefresh
			for _, c := range grants[i] {
				if lim := uint64(c.Base) + uint64(c.Allow) + 1; st.told[c.SBN] != lim {
					changed = true
				}
			}
			for _, b := range blocks {
				if r := u.recv[b].Load(); r != st.prevRecv[b] || st.gotAt[b].IsZero() {
					st.prevRecv[b], st.gotAt[b] = r, now
				}
			}
			if t := u.symbols.Load(); t != st.prevTotal || st.totalAt.IsZero() {
				st.prevTotal, st.totalAt = t, now
			}
			if !changed {
				continue
			}
			// Held frames, if any, go out in the same write as the credits.
			held = heldFrames(held[:0], u, st, grants[i], now, tu.CreditRefresh)
			frame = append(frame[:0], grants[i]...)
			if u.sendCredits(held, frame) {
				for _, c := range grants[i] {
					st.told[c.SBN] = uint64(c.Base) + uint64(c.Allow) + 1
				}
				st.toldAt = now
			}
		}
	}
}

// creditBlocks appends the blocks that get credits: the first ones
// (twice a parent's window, so that a block entering that window already
// has a credit) neither decoded nor holding enough symbols.
func (up *upside) creditBlocks(dst []int) []int {
	s := up.s
	fin := s.blocks.wanted()
	limit := 2 * s.tuning().WindowBlocks
	for b := 0; b < s.numBlocks() && len(dst) < limit; b++ {
		if !fin.Has(uint8(b)) {
			dst = append(dst, b)
		}
	}
	return dst
}

// initialCredits returns the credits a new subscription in stripe (stripes,
// stripe) starts with, sent with the subscription itself so that the parent
// never sends without them: the share of each block's need that the credit
// loop would give an upstream as fast as the others (a probe: as its
// stripe's parents and half as much again), split as the loop splits
// (treebuild.ShareOf). Nil when the subscription gets no credits.
func (up *upside) initialCredits(stripes, stripe int, probe bool) []protocol.Credit {
	s, f := up.s, up.s.fetch
	if probe && s.stripes == 1 {
		return nil
	}
	ups := up.creditUpstreams(nil)
	rates := creditRates(ups, nil, s.tuning().CreditWarmup)
	probeSwap(ups, rates)
	mine, total, mean := 0.0, 0.0, 0.0
	for i, u := range ups {
		total += rates[i]
		mean += rates[i] / float64(len(ups))
		if probe && !u.probe && u.stripes == stripes && u.stripe == stripe {
			mine += rates[i]
			total -= rates[i] // paused while the probe runs
		}
	}
	switch {
	case len(ups) == 0:
		mine, total = 1, 0
	case probe && mine > 0:
		mine *= 1.5
	default:
		mine = max(mean, 1)
	}
	var out []protocol.Credit
	for _, b := range up.creditBlocks(nil) {
		need := max(0, int(f.need[b].Load())-f.spill.seenCount(b))
		out = append(out, protocol.Credit{SBN: uint8(b), Allow: uint32(treebuild.ShareOf(need, mine, total))})
	}
	return out
}

// kickCredits makes the credit loop run now (a new upstream).
func (f *fetchState) kickCredits() {
	select {
	case f.creditKick <- struct{}{}:
	default:
	}
}

// creditUpstreams appends the upstreams that get credits: all, but probes
// only when the stream is striped.
func (up *upside) creditUpstreams(dst []*upstream) []*upstream {
	up.mu.Lock()
	defer up.mu.Unlock()
	for u := range up.set {
		if !u.probe || up.s.stripes > 1 {
			dst = append(dst, u)
		}
	}
	return dst
}

// probeSwap lets a probe stand in for the parents of its stripe: they get no
// credit while it runs and it gets their share and half as much again. A
// probe of a relay in the same stripe would otherwise bring the symbols our
// parent sends us anyway (every one a duplicate, as a probe or later from
// the parent); this way the probe carries the stripe for its window and
// shows up to 1.5 times the parent's rate.
func probeSwap(ups []*upstream, rates []float64) {
	for i, u := range ups {
		if !u.probe {
			continue
		}
		share := 0.0
		for j, p := range ups {
			if !p.probe && p.stripes == u.stripes && p.stripe == u.stripe {
				share += rates[j]
			}
		}
		if share > 0 {
			rates[i] = 1.5 * max(share, rates[i])
		}
	}
	for i, u := range ups {
		if u.probe {
			continue
		}
		for _, p := range ups {
			if p.probe && p.stripes == u.stripes && p.stripe == u.stripe {
				rates[i] = 0
				break
			}
		}
	}
}

// creditRates appends each upstream's delivery rate (all symbols, bytes/s);
// one younger than warmup counts at least as the mean of the others.
func creditRates(ups []*upstream, dst []float64, warmup time.Duration) []float64 {
	now := time.Now()
	sum, n := 0.0, 0
	for _, u := range ups {
		r := u.rawMeter.rate()
		dst = append(dst, r)
		if now.Sub(u.started) >= warmup {
			sum += r
			n++
		}
	}
	mean := 1.0
	if n > 0 && sum > 0 {
		mean = sum / float64(n)
	}
	for i, u := range ups {
		if now.Sub(u.started) < warmup || dst[i] <= 0 {
			dst[i] = max(dst[i], mean)
		}
	}
	return dst
}
