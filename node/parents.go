package node

import (
	"context"
	"errors"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/romap2p/romap2p/protocol"
	"github.com/romap2p/romap2p/treebuild"
)

// start starts the parent choice of a download: one stripe manager per
// stripe, the extra upstreams, discovery and the credit loop, all in the
// side's group, until the download completes or the session closes.
func (up *upside) start(cfg *getConfig) {
	s := up.s
	up.cfg = cfg
	up.book.learn(cfg.parents...)
	up.book.learn(cfg.peers...)
	up.book.learn(s.node.cfg.bootstrap...)
	up.g.Go(up.runCredits)
	if len(cfg.parents) == 0 && s.node.router != nil {
		up.g.Go(up.discover)
	}
	for i := 0; i < s.stripes; i++ {
		up.g.Go(func() { up.keepStripe(i) })
	}
	if s.stripes > 1 && len(cfg.parents) == 0 {
		up.g.Go(up.manageExtra)
	}
}

// discover learns providers of the content from the content router, now
// and then again while the download runs.
func (up *upside) discover() {
	s := up.s
	for {
		ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
		for ai := range s.node.router.FindProvidersAsync(ctx, s.cid, 0) {
			up.book.learn(ai)
		}
		cancel()
		t := time.NewTimer(s.tuning().DiscoverEvery)
		select {
		case <-s.ctx.Done():
		case <-s.blocks.done:
		case <-t.C:
		}
		t.Stop()
		if s.ctx.Err() != nil || s.fetch.completing.Load() {
			return
		}
	}
}

// keepStripe runs the decentralised parent choice for one stripe until the
// download completes: attach to the best candidate at once, probe other
// candidates now and then by receiving real symbols from them for a short
// window, move to a clearly better one (make-before-break, with hysteresis
// and a minimum dwell), and fail over at once when the parent dies or
// stalls.
func (up *upside) keepStripe(stripe int) {
	m := &stripeManager{up: up, stripe: stripe, cands: make(map[peer.ID]*treebuild.Candidate)}
	m.run()
}

// otherStripeDelay is how long a starting peer waits before it looks for
// parents in stripes other than its home stripe.
const otherStripeDelay = 300 * time.Millisecond

// joinEval is when a single tree's joiner first re-evaluates its parent.
const joinEval = time.Second

// stripeManager is the parent choice of one stripe.
type stripeManager struct {
	up         *upside
	stripe     int
	cands      map[peer.ID]*treebuild.Candidate
	cur        *upstream
	lastSwitch time.Time // last switch made on a measurement
	// starvedSince is when the current parent fell below
	// Tuning.StarveShare of the other stripes (zero: it is not).
	starvedSince time.Time
	evals        int
}

func (m *stripeManager) done() bool {
	return m.up.s.ctx.Err() != nil || m.up.s.fetch.completing.Load()
}

func (m *stripeManager) run() {
	up, s := m.up, m.up.s
	ch := s.node.chooser
	backoff := 100 * time.Millisecond
	nextEval := time.Now().Add(time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	defer func() { m.up.setStripeParent(m.stripe, nil) }()
	if s.stripes > 1 && len(up.cfg.parents) == 0 && m.stripe != treebuild.HomeStripe(s.node.host.ID(), s.stripes) {
		// Home stripe first: peers starting together then take the
		// source's relay slots one stripe each, instead of the first one
		// taking every stripe and giving them up again as the others come.
		if !m.sleep(otherStripeDelay) {
			return
		}
	}
	for !m.done() {
		if m.cur != nil {
			select {
			case <-m.cur.done:
				log.Debugw("parent left", "stripe", m.stripe, "peer", m.cur.peer, "err", m.cur.err, "evicted", m.cur.evicted.Load())
				if !m.cur.evicted.Load() {
					m.failLocal(m.cur.peer)
				}
				m.clearCurrent()
			default:
				if ch.Stalled(time.Unix(0, m.cur.lastSym.Load()), time.Now()) && !s.allWantedDone() {
					log.Infow("parent stalled: failing over", "stripe", m.stripe, "peer", m.cur.peer)
					m.failLocal(m.cur.peer)
					m.cur.close()
					m.clearCurrent()
				} else if rate, median, starved := m.starved(); starved {
					log.Infow("parent starved: failing over", "stripe", m.stripe, "peer", m.cur.peer, "rate", rate, "others", median)
					m.failLocal(m.cur.peer)
					m.cur.close()
					m.clearCurrent()
				}
			}
		}
		if m.cur == nil {
			u, err := m.attach()
			if err != nil {
				log.Debugw("no parent yet", "stripe", m.stripe, "err", err)
				if !m.sleep(backoff) {
					return
				}
				backoff = min(backoff*2, time.Second)
				continue
			}
			backoff = 100 * time.Millisecond
			m.setCurrent(u)
			wait := ch.ProbeWindow() + 500*time.Millisecond
			if s.stripes <= 1 && m.evals == 0 {
				// A single tree's joiner starts under whoever took it,
				// usually the source, sharing its uplink with every other
				// newcomer: look around as soon as the meter has a second.
				wait = joinEval
			}
			nextEval = time.Now().Add(wait)
			continue
		}
		if len(up.cfg.parents) == 0 && time.Now().After(nextEval) {
			m.reevaluate()
			m.evals++
			// Look around quickly after joining, then at the normal pace.
			// With stripes, a peer starts right below the stripe's interior
			// node (the source redirects there), and every probe costs
			// duplicates: no quick rounds.
			interval := ch.ProbeInterval()
			if m.evals < 3 && s.stripes <= 1 {
				interval = min(interval, 2*time.Second)
			}
			nextEval = time.Now().Add(interval)
		}
		select {
		case <-tick.C:
		case <-m.cur.done:
		case <-s.ctx.Done():
			return
		case <-s.blocks.done:
			return
		}
	}
}

// starved reports whether the current parent, older than
// Tuning.StarveAfter, has delivered less than Tuning.StarveShare of the
// median rate of this node's other stripe parents for a second on end
// (with the rates it compared).
func (m *stripeManager) starved() (rate, median float64, starved bool) {
	up, s := m.up, m.up.s
	tu := s.tuning()
	now := time.Now()
	if s.stripes <= 1 || s.allWantedDone() {
		m.starvedSince = time.Time{}
		return 0, 0, false
	}
	rate = m.cur.rawMeter.rate()
	var others []float64
	for i := 0; i < s.stripes; i++ {
		if i == m.stripe {
			continue
		}
		if u := up.stripeParent(i); u != nil {
			others = append(others, u.rawMeter.rate())
		}
	}
	if len(others) == 0 {
		m.starvedSince = time.Time{}
		return rate, 0, false
	}
	slices.Sort(others)
	median = others[len(others)/2]
	if rate >= tu.StarveShare*median || now.Sub(m.cur.started) < tu.StarveAfter {
		m.starvedSince = time.Time{}
		return rate, median, false
	}
	if m.starvedSince.IsZero() {
		m.starvedSince = now
	}
	// Below the share for a second on end (the meters average over two).
	return rate, median, now.Sub(m.starvedSince) >= time.Second
}

func (m *stripeManager) sleep(d time.Duration) bool {
	s := m.up.s
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-s.ctx.Done():
		return false
	case <-s.blocks.done:
		return false
	case <-t.C:
		return true
	}
}

func (m *stripeManager) setCurrent(u *upstream) {
	m.cur = u
	m.up.setStripeParent(m.stripe, u)
	log.Debugw("parent", "cid", m.up.s.cid, "stripe", m.stripe, "peer", u.peer)
}

// clearCurrent forgets a parent that left: the stripe's width drops to zero
// at once, so that peers looking for a parent in this stripe do not take
// this node for a live branch while it has nothing to forward.
func (m *stripeManager) clearCurrent() {
	m.cur = nil
	m.starvedSince = time.Time{}
	m.up.setStripeParent(m.stripe, nil)
}

// fail marks a candidate as having failed us now, for every stripe: it
// could not be reached or spoke wrongly.
func (m *stripeManager) fail(p peer.ID) {
	m.up.book.markFailed(p)
	m.failLocal(p)
}

// failLocal marks a candidate as having failed this stripe only: it
// stalled, left, refused or proved slow here, which says nothing of what
// it does for the other stripes (a stall of one stripe used to put the
// original source aside for all of them for the whole backoff).
func (m *stripeManager) failLocal(p peer.ID) {
	if c, ok := m.cands[p]; ok {
		c.Failed = time.Now()
	}
}

// attach finds a parent: the given one when the tree is explicit, otherwise
// the best-ranked candidate that accepts, following the redirects of full
// parents down the tree.
func (m *stripeManager) attach() (*upstream, error) {
	up, s := m.up, m.up.s
	if len(up.cfg.parents) > 0 {
		p := up.cfg.parents[m.stripe%len(up.cfg.parents)]
		return up.subscribe(p, s.stripes, m.stripe, false)
	}
	m.refresh(up.book.candidates(s.node.chooser.FailBackoff()))
	order := m.ranked("")
	if len(order) == 0 {
		return nil, ErrNoPeers
	}
	var lastErr error
	tried := map[peer.ID]bool{}
	for len(order) > 0 {
		id := order[0]
		order = order[1:]
		if tried[id] {
			continue
		}
		tried[id] = true
		u, err := up.subscribe(s.node.addrInfo(id), s.stripes, m.stripe, false)
		if err == nil {
			return u, nil
		}
		lastErr = err
		var ref *errRefused
		if errors.As(err, &ref) {
			up.book.learn(ref.redirect...)
			m.refresh(ref.redirect)
			var ids []peer.ID
			for _, ai := range ref.redirect {
				ids = append(ids, ai.ID)
			}
			order = append(m.rankOnly(ids), order...)
			if ref.code != treebuild.RefuseFull {
				m.failLocal(id)
			}
			continue
		}
		m.fail(id)
	}
	return nil, lastErr
}

// ranked returns the eligible candidates, best first.
func (m *stripeManager) ranked(current peer.ID) []peer.ID {
	s := m.up.s
	list := m.candList()
	var out []peer.ID
	for _, c := range s.node.chooser.Rank(s.node.host.ID(), current, list, time.Now()) {
		out = append(out, c.ID)
	}
	return out
}

// rankOnly ranks the given candidates among themselves.
func (m *stripeManager) rankOnly(ids []peer.ID) []peer.ID {
	s := m.up.s
	var list []treebuild.Candidate
	for _, id := range ids {
		if c, ok := m.cands[id]; ok {
			list = append(list, *c)
		}
	}
	var out []peer.ID
	for _, c := range s.node.chooser.Rank(s.node.host.ID(), "", list, time.Now()) {
		out = append(out, c.ID)
	}
	return out
}

func (m *stripeManager) candList() []treebuild.Candidate {
	list := make([]treebuild.Candidate, 0, len(m.cands))
	for _, c := range m.cands {
		list = append(list, *c)
	}
	return list
}

// refresh asks the given peers for their status and updates the candidates.
func (m *stripeManager) refresh(peers []peer.AddrInfo) {
	up, s := m.up, m.up.s
	self := s.node.host.ID()
	type answer struct {
		id peer.ID
		st *protocol.Status
	}
	var wg sync.WaitGroup
	answers := make(chan answer, len(peers))
	for _, ai := range peers {
		if ai.ID == self {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := up.status.get(s.ctx, ai)
			if err != nil {
				return
			}
			answers <- answer{ai.ID, st}
		}()
	}
	wg.Wait()
	close(answers)
	for a := range answers {
		up.book.learn(a.st.Peers...)
		up.book.noteComplete(a.id, a.st.Role == protocol.RoleSource || a.st.Role == protocol.RoleComplete, a.st.Role == protocol.RoleSource)
		if a.st.Role == protocol.RoleNone {
			delete(m.cands, a.id)
			continue
		}
		c, ok := m.cands[a.id]
		if !ok {
			c = &treebuild.Candidate{ID: a.id}
			m.cands[a.id] = c
		}
		c.Carried = float64(a.st.UploadRate)
		if a.st.Role == protocol.RoleSource || a.st.Role == protocol.RoleComplete {
			c.Width, c.Depth, c.Path = math.Inf(1), 0, []peer.ID{a.id}
			c.Children, c.MaxChildren = 0, protocol.MaxChildren
			for _, ss := range a.st.Stripes {
				if ss.Index == m.stripe%max(1, a.st.StripeCount) {
					c.Children, c.MaxChildren = ss.Children, ss.MaxChildren
				}
			}
			continue
		}
		c.Width, c.MaxChildren = 0, 0
		for _, ss := range a.st.Stripes {
			if ss.Index == m.stripe%max(1, a.st.StripeCount) {
				c.Width = widthOf(ss.Width)
				c.Depth = ss.Depth
				c.Path = ss.Path
				c.Children, c.MaxChildren = ss.Children, ss.MaxChildren
			}
		}
	}
}

// reevaluate probes one or two candidates and switches to a clearly better
// one, make-before-break.
func (m *stripeManager) reevaluate() {
	up, s := m.up, m.up.s
	ch := s.node.chooser
	self := s.node.host.ID()
	if up.downlinkBound() {
		// Another parent would pass us the same share: a probe or a
		// switch would only cost duplicates and what is in flight.
		return
	}
	m.refresh(up.book.candidates(s.node.chooser.FailBackoff()))
	cur := m.cur
	curRate := cur.rawMeter.rate()
	if c, ok := m.cands[cur.peer]; ok {
		c.Measured, c.MeasuredAt, c.MeasuredWidth = curRate, time.Now(), c.Width
	}
	// A probe receives real symbols, and a relay in the same stripe forwards
	// the same ones our parent does: every probe costs duplicates. So probe
	// only when it can pay: when we get nearly all our parent receives, only
	// a candidate wider than the parent can do better; near the end of the
	// download a switch no longer pays for its probe.
	base := curRate
	if c, ok := m.cands[cur.peer]; ok && c.Width > 0 && curRate >= s.tuning().ProbeShare*c.Width {
		base = c.Width
	}
	var probes []peer.ID
	if float64(s.symbolsNew.Load()) < s.tuning().TailShare*float64(s.neededSymbols()) {
		probes = ch.NextProbe(self, cur.peer, base, m.candList(), time.Now())
		if s.stripes > 1 && len(probes) > 1 {
			// A probe stands in for the stripe's parent (probeSwap): one
			// at a time, or their overlap comes back as duplicates.
			probes = probes[:1]
		}
	}
	before := s.inRate.rate()
	inStart, probeStart := s.inRate.total.Load(), time.Now()
	if len(probes) > 0 {
		var wg sync.WaitGroup
		results := make([]float64, len(probes))
		errs := make([]error, len(probes))
		for i, id := range probes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i], errs[i] = m.probe(id)
			}()
		}
		wg.Wait()
		now := time.Now()
		for i, id := range probes {
			c, ok := m.cands[id]
			if !ok {
				continue
			}
			if errs[i] != nil {
				var ref *errRefused
				if errors.As(errs[i], &ref) {
					up.book.learn(ref.redirect...)
				}
				c.Failed = now
				continue
			}
			c.Measured, c.MeasuredAt, c.MeasuredWidth = results[i], now, c.Width
			log.Debugw("probed", "stripe", m.stripe, "peer", id, "rate", results[i], "current", curRate)
		}
		if s.stripes == 1 {
			// With stripes the parent had no credit during the probe
			// (probeSwap): its rate from before the probe stands.
			curRate = cur.rawMeter.rate()
		}
		if el := time.Since(probeStart).Seconds(); s.stripes > 1 && errs[0] == nil && !math.IsInf(results[0], 1) && el > 0 {
			// The probe stood in for the parent: if it looks faster than
			// the parent but everything we received meanwhile came no
			// faster than before, our own downlink is what limits us, and
			// no parent can change that.
			during := float64(s.inRate.total.Load()-inStart) / el
			if results[0] > curRate && during < boundGain*before {
				up.boundUntil.Store(time.Now().Add(boundHold).UnixNano())
				log.Debugw("a probe added nothing to the total: own downlink limits", "stripe", m.stripe,
					"before", before, "during", during, "probe", results[0], "current", curRate)
				return
			}
		}
	}
	choice, sw := ch.Reevaluate(self, cur.peer, curRate, m.candList(), time.Now(), m.lastSwitch)
	if !sw {
		return
	}
	nu, err := up.subscribe(s.node.addrInfo(choice.ID), s.stripes, m.stripe, false)
	if err != nil {
		var ref *errRefused
		if errors.As(err, &ref) && ref.code == treebuild.RefuseFull {
			// Its slot went to someone else meanwhile: no fault of its own.
			if c, ok := m.cands[choice.ID]; ok {
				c.Measured, c.MeasuredAt = 0, time.Time{}
			}
			return
		}
		if errors.As(err, &ref) {
			m.failLocal(choice.ID)
		} else {
			m.fail(choice.ID)
		}
		return
	}
	// Make before break: keep the old parent until the new one delivers.
	deadline := time.Now().Add(s.tuning().SwitchWait)
	for nu.symbols.Load() == 0 && time.Now().Before(deadline) && !m.done() {
		time.Sleep(20 * time.Millisecond)
	}
	if nu.symbols.Load() == 0 {
		nu.close()
		m.failLocal(choice.ID)
		return
	}
	log.Infow("switching parent", "cid", s.cid, "stripe", m.stripe, "from", cur.peer, "to", choice.ID,
		"old_rate", curRate, "new_score", choice.Score)
	s.reparents.Add(1)
	cur.close()
	m.lastSwitch = time.Now()
	m.setCurrent(nu)
}

// probe receives from a candidate for the probe window and returns the rate
// at which its symbols arrived (bytes/s): min(its width, the link to us).
func (m *stripeManager) probe(id peer.ID) (float64, error) {
	up, s := m.up, m.up.s
	if up.book.isOrigin(id) && s.stripes > 1 {
		// Nothing is wider than the original source, and a probe of it
		// would take symbols its stripe child forwards to us anyway (they
		// share its generator): a slot it offers is taken without a probe.
		return math.Inf(1), nil
	}
	u, err := up.subscribe(s.node.addrInfo(id), s.stripes, m.stripe, true)
	if err != nil {
		return 0, err
	}
	defer u.close()
	start := time.Now()
	window := s.node.chooser.ProbeWindow()
	if s.stripes > 1 || m.evals == 0 {
		// A stripe carries a fraction of the stream: half the window
		// still sees enough symbols, and brings half the duplicates. A
		// single tree's first round is short too: a joiner under the
		// crowded source gains more from moving early than from a
		// precise figure (later rounds refine it).
		window /= 2
	}
	t := time.NewTimer(window)
	defer t.Stop()
	select {
	case <-t.C:
	case <-u.done:
	case <-s.ctx.Done():
	}
	el := time.Since(start).Seconds()
	return float64(u.rawMeter.total.Load()) / el, nil
}

// queryStatus asks a peer for its status for the session's content.
func (n *Node) queryStatus(ctx context.Context, ai peer.AddrInfo, s *session) (*protocol.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.tuning.StatusTimeout)
	defer cancel()
	if len(ai.Addrs) > 0 {
		n.host.Peerstore().AddAddrs(ai.ID, ai.Addrs, time.Hour)
	}
	st, err := n.newStream(ctx, ai.ID, protocol.StatusID)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	if err := scopeStream(st); err != nil {
		_ = st.Reset()
		return nil, err
	}
	dl, _ := ctx.Deadline()
	_ = st.SetDeadline(dl)
	if err := protocol.WriteRequest(st, s.cid); err != nil {
		return nil, err
	}
	_ = st.CloseWrite()
	return protocol.ReadStatus(st)
}

// allWantedDone reports whether parents have nothing left to send us.
func (s *session) allWantedDone() bool {
	set := s.blocks.wanted()
	return set.HasAll(s.numBlocks())
}
