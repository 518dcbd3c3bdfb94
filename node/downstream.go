package node

import (
	"context"
	"io"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/romap2p/romap2p/protocol"
	"github.com/romap2p/romap2p/relay"
	"github.com/romap2p/romap2p/treebuild"
)

// downside is a session's downstream side: its children, their admission
// and eviction, the writers that feed them (each runs in the stream
// handler that took the child) and the demand snapshot the generator
// reads. Its group counts the handlers, the children's control readers,
// the goodbyes and the original source's slow-child watcher; close ends
// and waits for all of them.
type downside struct {
	s *session
	g group

	mu       sync.Mutex
	closed   bool
	children map[*child]struct{}
	// slow holds peers the original source found too slow to carry a
	// stripe, until when they may not take one again.
	slow map[peer.ID]time.Time
	// lifeless holds, per remote IP address, when its stripe children
	// ended without ever showing life (admit.go).
	lifeless map[string][]time.Time

	demandPtr atomic.Pointer[demandSnap]
	wake      chan struct{}
}

func newDownside(s *session) *downside {
	return &downside{s: s, children: make(map[*child]struct{}), slow: make(map[peer.ID]time.Time), lifeless: make(map[string][]time.Time), wake: make(chan struct{}, 1)}
}

// list returns the children.
func (d *downside) list() []*child {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]*child, 0, len(d.children))
	for c := range d.children {
		out = append(out, c)
	}
	return out
}

// remove forgets a child; it reports whether it was there.
func (d *downside) remove(c *child) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.children[c]
	delete(d.children, c)
	d.noteEndLocked(c)
	return ok
}

// close ends every subscription and waits for the side's goroutines.
func (d *downside) close() {
	d.mu.Lock()
	d.closed = true
	kids := make([]*child, 0, len(d.children))
	for c := range d.children {
		kids = append(kids, c)
	}
	clear(d.children)
	d.mu.Unlock()
	for _, c := range kids {
		c.close("session closed")
	}
	d.g.closeAndWait()
}

// spawn runs f as one of the side's goroutines, or at once when the side
// is closing (the session's context has ended then, so f does not wait).
func (d *downside) spawn(f func()) {
	if !d.g.Go(f) {
		f()
	}
}

// statsLocked describes the children for treebuild's decisions, in the
// order of kids (d.mu held; it only reads).
func (d *downside) statsLocked(kids []*child, now time.Time) []treebuild.ChildStat {
	out := make([]treebuild.ChildStat, len(kids))
	for i, c := range kids {
		out[i] = treebuild.ChildStat{
			Peer: c.peer, Stripe: c.stripe, Probe: c.probe,
			Whole:   d.s.isExtraSub(c.stripes),
			Striped: c.stripes == d.s.stripes,
			Rate:    c.cons.Stats().Rate,
			Age:     now.Sub(c.started),
		}
	}
	return out
}

func (d *downside) kidsLocked() []*child {
	kids := make([]*child, 0, len(d.children))
	for c := range d.children {
		kids = append(kids, c)
	}
	return kids
}

// slotUsers counts the children that take one of stripe's slots (see
// treebuild.SlotUsers).
func (d *downside) slotUsers(stripe int) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	kids := d.kidsLocked()
	return treebuild.SlotUsers(d.statsLocked(kids, time.Now()), stripe, "", !d.s.origin(), d.s.tuning().Slow)
}

// admit decides whether to take child c (treebuild.Admit), builds the
// reply and, when it accepts, adds c to the children; admission and
// joining are one step, so concurrent subscriptions cannot all take the
// same free slot. Children it drops to make room are told after the lock
// is released.
func (d *downside) admit(c *child) protocol.SubscribeReply {
	s := d.s
	stripe := c.stripe % max(1, s.stripes)
	path := s.up.path(stripe)
	reply := protocol.SubscribeReply{Path: path, Width: s.wireWidth(stripe), Depth: len(path) - 1}
	complete := s.blocks.isComplete()
	limit := s.maxChildren(c.stripe, complete)
	req := treebuild.AdmitRequest{Peer: c.peer, Stripe: c.stripe, Whole: s.isExtraSub(c.stripes), Probe: c.probe, OnPath: treebuild.OnPath(path, c.peer)}
	state := treebuild.AdmitState{
		Origin: s.origin(), Complete: complete, Striped: s.stripes > 1,
		Limit: limit, WholeLimit: s.node.cfg.maxChildren, Slow: s.tuning().Slow,
	}
	var victim *child
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		reply.Reason = treebuild.RefuseClosing.Reason()
		return reply
	}
	// Probes, and stripe children of the original source: admit.go.
	if handled, gone := d.admitOwnLocked(c, req.OnPath, req.Whole, &reply); handled {
		d.mu.Unlock()
		d.tellAdmission(gone)
		return reply
	}
	kids := d.kidsLocked()
	a := treebuild.Admit(req, state, d.statsLocked(kids, time.Now()))
	if a.Evict >= 0 {
		victim = kids[a.Evict]
		delete(d.children, victim)
	}
	if a.Refusal == treebuild.Accepted {
		reply.Accepted = true
		c.toldWidth.Store(reply.Width)
		d.children[c] = struct{}{}
	} else {
		reply.Reason = a.Refusal.Reason()
		if a.Refusal == treebuild.RefuseFull && !req.Whole {
			// One level down the stripe's tree.
			now := time.Now()
			for o := range d.children {
				if o.probe || o.stripe != c.stripe || !treebuild.Offered(o.viewLocked(now)) {
					continue
				}
				if len(reply.Redirect) == protocol.MaxPeers {
					break
				}
				reply.Redirect = append(reply.Redirect, s.node.addrInfo(o.peer))
			}
		}
	}
	d.mu.Unlock()
	if victim != nil {
		d.spawn(func() { victim.closeWith(protocol.GoodbyeEvicted, "the source spreads its stripes over more peers") })
	}
	return reply
}

// dropSlow tells children removed by evictSlowLocked why they go.
func (d *downside) dropSlow(gone []*child) {
	for _, c := range gone {
		d.spawn(func() { c.leave(protocol.GoodbyeTooSlow, "too slow to carry a stripe for the others") })
	}
	if len(gone) > 0 {
		d.refreshDemand()
	}
}

// watchSlow checks the original source's stripe children for slow ones
// every SlowCheck, so that a slow child is dropped soon even when nobody
// asks for a slot.
func (d *downside) watchSlow() {
	d.every(d.s.tuning().SlowCheck, func() {
		d.mu.Lock()
		dead, gone, moved := d.judgeChildrenLocked() // admit.go
		d.mu.Unlock()
		d.dropDead(dead)
		d.dropSlow(gone)
		d.moveLeaves(moved)
	})
}

// every runs f each period until the session ends (on the calling
// goroutine, which the side's group owns).
func (d *downside) every(period time.Duration, f func()) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-d.s.ctx.Done():
			return
		case <-t.C:
		}
		f()
	}
}

// shed drops the children in one stripe: this node's own branch of that
// stripe proved too slow (its parent said so), and they find a faster one
// at once instead of after the stall timeout.
func (d *downside) shed(stripe int) {
	s := d.s
	d.mu.Lock()
	var shed []*child
	for c := range d.children {
		if c.stripes == s.stripes && c.stripe == stripe {
			shed = append(shed, c)
			delete(d.children, c)
		}
	}
	d.mu.Unlock()
	for _, c := range shed {
		d.spawn(func() { c.closeWith(protocol.GoodbyeEvicted, "this node's branch of the stripe is too slow") })
	}
	if len(shed) > 0 {
		log.Infow("dropped as too slow for a stripe: its children there look elsewhere", "cid", s.cid, "stripe", stripe, "children", len(shed))
		d.refreshDemand()
	}
}

// sendPath tells the children of stripe (and those with another stripe
// count) this node's new path in it.
func (d *downside) sendPath(stripe int, path []peer.ID) {
	for _, c := range d.list() {
		if c.stripe == stripe || c.stripes != d.s.stripes {
			c.sendPath(path)
		}
	}
}

// uploadRate sums the current rates of the children.
func (d *downside) uploadRate() float64 {
	sum := 0.0
	for _, c := range d.list() {
		sum += c.cons.Stats().Rate
	}
	return sum
}

// maxChildren is this node's fan-out limit in stripe i: the full limit in
// its home stripe (and in every stripe once it has the whole file), a
// small one elsewhere, so each peer spends its uplink mostly in one stripe.
func (s *session) maxChildren(stripe int, complete bool) int {
	if s.stripes <= 1 {
		return s.node.cfg.maxChildren
	}
	if s.origin() {
		// The original source sends each stripe to a few interior nodes
		// only, so its uplink carries each symbol about once and the
		// stripes' trees spread the relaying over every peer.
		return max(1, (s.node.cfg.maxChildren+s.stripes-1)/s.stripes)
	}
	f := treebuild.FanOut{Home: s.node.cfg.maxChildren, Other: s.node.cfg.otherChildren}
	home := stripe
	if !s.up.home(stripe) {
		home = -1
	}
	return f.MaxChildren(stripe, home, complete)
}

// isExtraSub reports whether a subscription of (stripes, stripe) to this
// session is an extra, whole-stream one beside a peer's stripe parents.
func (s *session) isExtraSub(stripes int) bool {
	return s.stripes > 1 && stripes == 1
}

// child is one downstream subscription: a consumer of the session's ring and
// a writer that feeds it to the child's stream.
type child struct {
	s       *session
	peer    peer.ID
	stream  network.Stream
	stripe  int
	stripes int
	probe   bool
	cons    *relay.Consumer
	w       *relay.Writer
	started time.Time

	mu  sync.Mutex
	fin protocol.BlockSet

	credits []protocol.Credit // scratch of the control reader
	acks    ackMeter          // confirmed symbols, for the in-flight window (control reader)
	// toldWidth is the stripe width the child heard last (width.go).
	toldWidth atomic.Uint64
	adm       childAdmission // slot, sign of life, link measure (admit.go)

	closeOnce sync.Once
}

func (c *child) finished() protocol.BlockSet {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fin
}

// setFinished applies the child's finished set to its consumer's filter.
func (c *child) setFinished(set protocol.BlockSet) {
	c.mu.Lock()
	c.fin = set
	c.mu.Unlock()
	for b := 0; b < protocol.MaxSourceBlocks; b++ {
		if set.Has(uint8(b)) {
			c.cons.MarkFinished(uint8(b))
		} else if c.cons.Finished(uint8(b)) {
			c.cons.UnmarkFinished(uint8(b))
		}
	}
}

func (c *child) sendPath(path []peer.ID) {
	f, err := protocol.AppendPathFrame(nil, path)
	if err != nil {
		log.Debugw("path frame", "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(c.s.ctx, c.s.tuning().GoodbyeTimeout)
	defer cancel()
	_ = c.w.SendControl(ctx, f)
}

func (c *child) close(reason string) {
	c.closeWith(protocol.GoodbyeShutdown, reason)
}

// closeWith ends the subscription, telling the child why when reason is set.
func (c *child) closeWith(code protocol.GoodbyeCode, reason string) {
	c.closeOnce.Do(func() {
		if reason != "" {
			ctx, cancel := context.WithTimeout(c.s.ctx, c.s.tuning().GoodbyeTimeout)
			_ = c.w.SendControl(ctx, protocol.AppendGoodbyeFrame(nil, code, reason))
			cancel()
		}
		_ = c.cons.Close()
		_ = c.stream.Reset()
	})
}

// leave ends the subscription after the child has been told why: the
// consumer is closed, the writer writes the goodbye queued before that and
// returns, and only then is the stream closed. (closeWith resets the stream
// at once, and the reset may overtake the goodbye.)
func (c *child) leave(code protocol.GoodbyeCode, reason string) {
	c.closeOnce.Do(func() {
		tu := c.s.tuning()
		ctx, cancel := context.WithTimeout(c.s.ctx, tu.GoodbyeTimeout)
		_ = c.w.SendControl(ctx, protocol.AppendGoodbyeFrame(nil, code, reason))
		cancel()
		_ = c.cons.Close()
		t := time.NewTimer(tu.LeaveTimeout)
		defer t.Stop()
		select {
		case <-c.w.Done():
			_ = c.stream.Close()
		case <-t.C:
			_ = c.stream.Reset()
		case <-c.s.ctx.Done():
			_ = c.stream.Reset()
		}
	})
}

// In flight: a parent keeps at most about inFlightWindow of a child's
// recent rate (and at least minInFlight symbols) written to its stream and
// not yet confirmed by its credits, from the first symbol on. Without it,
// the stream's and the connection's buffers take hundreds of KiB per
// stream at once: on real links those sit in the bottleneck's queue for
// seconds (the original source of Table I at 20 Mbit/s took 64 stream
// windows at the start, and its children saw their first symbols after
// more than the stall timeout). The window is a few credit rounds
// (Tuning.CreditInterval) plus a round trip: the rate can grow while
// it is longer than the time a symbol takes to be confirmed. A single tree
// keeps a second: there a child has one parent, and on the testbed (Table
// I, 32 MiB at 0.2) the single tree took 77-79 s with a second against
// 88-102 s with 300 ms, while 8 stripes took 23.1-23.8 s with 300 ms
// against 23.4-28.4 s with a second.
const (
	inFlightWindow     = 300 * time.Millisecond
	inFlightWindowTree = time.Second
	minInFlight        = 8
)

// limitInFlight tells the child's consumer what the child's latest credit
// frame confirms: symbols passed to its stream beyond what it reports
// received are in flight, and it may have about inFlightWindow (a single
// tree: inFlightWindowTree) of the rate it confirms in flight. (The rate
// the consumer sends at is no measure: the first symbols of a stream go
// into its buffers at memory speed.)
func (c *child) limitInFlight() {
	var inflight uint64
	for _, cr := range c.credits {
		if p := c.cons.Passed(cr.SBN); p > cr.Base {
			inflight += uint64(p - cr.Base)
		}
	}
	sent := c.cons.Sent()
	rate := c.acks.rate(time.Now(), sent-min(inflight, sent))
	window := inFlightWindow
	if c.s.stripes <= 1 {
		window = inFlightWindowTree
	}
	limit := max(minInFlight, uint64(rate*window.Seconds()))
	if c.cons.SetInFlight(inflight, limit) {
		// It may take more now: the generator makes symbols for it again.
		c.s.down.wakeGenerator()
	}
}

// ackMeter turns the count of symbols a child confirmed into a rate
// (symbols/s) over about the last second. A young stream's rate is
// measured over a whole second too, so that its first confirmations do not
// look like a fast link.
type ackMeter struct {
	start   time.Time
	samples [ackSamples]ackSample
	n, next int
}

type ackSample struct {
	at    time.Time
	acked uint64
}

const (
	ackSamples = 12
	ackEvery   = 125 * time.Millisecond
	ackWindow  = time.Second
)

func (m *ackMeter) rate(now time.Time, acked uint64) float64 {
	if m.start.IsZero() {
		m.start = now
	}
	ref := ackSample{at: m.start}
	for i := 1; i <= m.n; i++ {
		if s := m.samples[(m.next-i+ackSamples)%ackSamples]; now.Sub(s.at) >= ackWindow {
			ref = s
			break
		}
	}
	if m.n == 0 || now.Sub(m.samples[(m.next-1+ackSamples)%ackSamples].at) >= ackEvery {
		m.samples[m.next] = ackSample{at: now, acked: acked}
		m.next = (m.next + 1) % ackSamples
		m.n = min(m.n+1, ackSamples)
	}
	if acked < ref.acked {
		return 0
	}
	return float64(acked-ref.acked) / max(now.Sub(ref.at).Seconds(), ackWindow.Seconds())
}

// control applies one control frame from the child; false means the
// subscription ends (a goodbye or a malformed frame).
func (c *child) control(f protocol.Frame) bool {
	d := c.s.down
	switch f.Type {
	case protocol.FrameFinished:
		set, err := f.Finished()
		if err != nil {
			log.Debugw("bad finished frame", "peer", c.peer, "err", err)
			return false
		}
		c.setFinished(set)
		d.refreshDemand()
	case protocol.FrameCredit:
		var err error
		c.credits, err = f.Credits(c.credits[:0])
		if err != nil {
			log.Debugw("bad credit frame", "peer", c.peer, "err", err)
			return false
		}
		for _, cr := range c.credits {
			// A child receives only what passed to its stream: a credit
			// that claims more proves it lies about reading (identities
			// that read nothing and claim receipt, to look alive).
			if sent := c.cons.Passed(cr.SBN); cr.Base > sent {
				log.Infow("child claims symbols it was never sent: dropped", "peer", c.peer, "block", cr.SBN, "claimed", cr.Base, "sent", sent)
				return false
			}
		}
		if creditShowsLife(c.credits) {
			c.showLife()
		}
		c.limitInFlight()
		wake := false
		dem := d.demand()
		for _, cr := range c.credits {
			before, _ := c.cons.Budget(cr.SBN)
			c.cons.SetBudget(cr.SBN, uint32(min(uint64(cr.Base)+uint64(cr.Allow), math.MaxUint32)))
			if after, _ := c.cons.Budget(cr.SBN); before <= 0 && after > 0 && (dem.mine.Has(cr.SBN) || dem.fresh.Has(cr.SBN)) {
				wake = true
			}
		}
		if wake {
			// Only credit for a block we generate that had none left
			// gives an idle generator something new to do.
			d.wakeGenerator()
		}
	case protocol.FrameHeld:
		h, err := f.Held()
		if err != nil {
			log.Debugw("bad held frame", "peer", c.peer, "err", err)
			return false
		}
		k := max(1, c.stripes)
		for j := 0; j < h.N; j++ {
			if h.Has(j) {
				c.cons.MarkHeld(h.SBN, uint32(c.stripe+j*k))
			}
		}
	case protocol.FrameGoodbye:
		return false
	default:
		// Children send nothing else; ignore what a newer version may add.
	}
	return true
}

// counting wraps a child's stream so uploaded bytes are counted.
func (s *session) counting(w io.Writer, to peer.ID) io.Writer {
	if s.node.cfg.shape != nil {
		w = s.node.cfg.shape(s.node.host.ID(), to, w)
	}
	return &countingWriter{w: w, n: &s.uploaded}
}

type countingWriter struct {
	w io.Writer
	n interface{ Add(uint64) uint64 }
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(uint64(n))
	return n, err
}

// demandSnap is what the children of a session want, for the generator: a
// snapshot rebuilt whenever a child joins, leaves or finishes a block.
type demandSnap struct {
	mine protocol.BlockSet // blocks this node can generate symbols for
	// fresh are blocks decoded too recently for mine: the generator sends
	// their children only the source symbols they missed (see gap), and
	// only to children whose credit says they need more.
	fresh protocol.BlockSet
	subs  []childWant
}

type childWant struct {
	stripes, stripe uint32
	probe           bool
	win             protocol.BlockSet // the child's window of wanted blocks
	cons            *relay.Consumer   // the child's reader of the ring
}

// window returns the first n blocks of 0..z-1 not in fin.
func window(fin protocol.BlockSet, z, n int) protocol.BlockSet {
	var w protocol.BlockSet
	for b := 0; b < z && n > 0; b++ {
		if !fin.Has(uint8(b)) {
			w.Add(uint8(b))
			n--
		}
	}
	return w
}

// wantsBlock reports whether some child selected by ready (nil: every
// child) wants block sbn and this node can generate it.
func (d *demandSnap) wantsBlock(sbn int, ready []bool) bool {
	mine := d.mine.Has(uint8(sbn))
	if !mine && !d.fresh.Has(uint8(sbn)) {
		return false
	}
	for i := range d.subs {
		w := &d.subs[i]
		if (ready == nil || ready[i]) && w.win.Has(uint8(sbn)) {
			if left, credited := w.budget(sbn); left && (mine || credited) {
				return true
			}
		}
	}
	return false
}

// budget reads the child's budget for block sbn once: whether it may still
// be sent symbols of the block (it has no budget for it, or some left), and
// whether it has a budget for it at all.
func (w *childWant) budget(sbn int) (left, credited bool) {
	if w.cons == nil {
		return true, false
	}
	n, ok := w.cons.Budget(uint8(sbn))
	return !ok || n > 0, ok
}

// budgetLeft reports whether the child may still be sent symbols of block
// sbn.
func (w *childWant) budgetLeft(sbn int) bool {
	left, _ := w.budget(sbn)
	return left
}

// anyWanted reports whether some child wants one of the first z blocks that
// this node can generate.
func (d *demandSnap) anyWanted(z int) bool {
	for b := 0; b < z; b++ {
		if d.wantsBlock(b, nil) {
			return true
		}
	}
	return false
}

// wants reports whether some child selected by ready (nil: every child)
// still needs symbol (sbn, esi).
func (d *demandSnap) wants(sbn int, esi uint32, ready []bool) bool {
	if !d.mine.Has(uint8(sbn)) {
		return false
	}
	for i := range d.subs {
		w := &d.subs[i]
		if (ready == nil || ready[i]) && w.win.Has(uint8(sbn)) && esi%w.stripes == w.stripe && w.budgetLeft(sbn) {
			return true
		}
	}
	return false
}

// demand returns the current demand snapshot.
func (d *downside) demand() *demandSnap {
	if dm := d.demandPtr.Load(); dm != nil {
		return dm
	}
	return &demandSnap{}
}

// refreshDemand rebuilds the demand snapshot and wakes the generator.
func (d *downside) refreshDemand() {
	s := d.s
	mine, fresh := s.blocks.servable(s.tuning().ServeGrace)
	z, win := s.numBlocks(), s.tuning().WindowBlocks
	d.mu.Lock()
	dm := &demandSnap{mine: mine, fresh: fresh, subs: make([]childWant, 0, len(d.children))}
	for c := range d.children {
		dm.subs = append(dm.subs, childWant{stripes: uint32(max(1, c.stripes)), stripe: uint32(c.stripe), probe: c.probe, win: window(c.finished(), z, win), cons: c.cons})
	}
	d.mu.Unlock()
	d.demandPtr.Store(dm)
	d.wakeGenerator()
}

// wakeGenerator nudges an idle generator to look at the demand again.
func (d *downside) wakeGenerator() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}
