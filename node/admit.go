package node

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/romap2p/romap2p/protocol"
	"github.com/romap2p/romap2p/treebuild"
)

// Admission of children (the policy is treebuild.AdmitPolicy):
//
//   - Every subscription stream has a deadline until the child has shown
//     life: its read deadline ends the subscription LifeGrace after it
//     began, and every write to it must complete by then. A child shows
//     life by reporting symbols received in a credit frame, or by taking
//     more bytes than a stream holds unread (lifeBytes). After that, each
//     write must still complete within writeStall.
//   - At the original source, a child that has not shown life after
//     Probation may be displaced by a newcomer, and every stripe has leaf
//     slots beside its relay slots: a newcomer always finds room, whatever
//     other identities hold, and is fed at once.
//   - A relay child too slow to carry its stripe for others (judged by
//     treebuild.AdmitPolicy.Judge against what the source offers it, never
//     only against its siblings) is told so and may come back as a leaf
//     only, for slowBan; it is never refused.
//   - "Full" replies redirect only to relay children that have shown life.

const (
	// lifeBytes is how much a child must have taken from its stream to
	// have shown life without a credit frame: more than a stream's initial
	// flow-control window, which a peer that reads nothing also takes.
	lifeBytes = 512 << 10
	// writeStall is how long one write to a live child may block.
	writeStall = 10 * time.Second
	// stallFor is how long a write to a child blocks, or a child gets
	// nothing, before its stream counts as taking nothing now.
	stallFor = 100 * time.Millisecond
	// linkAlpha weighs the latest check interval in a child's link-bound
	// share (about half a second of memory at slowCheck).
	linkAlpha = 0.2
)

// childAdmission is a child's standing at its parent.
type childAdmission struct {
	slot  treebuild.Slot // session mu
	alive atomic.Bool
	ip    string // the remote address, for the per-IP limit
	// lw is the child's stream below every wrapper: what it measures is
	// the child's link, not an upload limit of this node.
	lw *liveStream
	// link is the smoothed share of time blocked writing (session mu), and
	// linkMark/linkAt the blocked time and instant of the previous check.
	link     float64
	linkMark time.Duration
	linkAt   time.Time
}

// liveStream is a child's stream as its writer sees it: every write has a
// deadline, and it counts the bytes the stream took and the time writes
// spent blocked.
type liveStream struct {
	st       network.Stream
	c        *child
	grace    time.Duration
	written  atomic.Int64
	blocked  atomic.Int64 // nanoseconds spent in finished writes
	inSince  atomic.Int64 // unix nanoseconds the current write began, 0 when none
	deadline time.Time    // last write deadline set (writer goroutine only)
}

func (l *liveStream) Write(p []byte) (int, error) {
	now := time.Now()
	dl := l.c.started.Add(l.grace)
	if l.c.adm.alive.Load() {
		dl = now.Add(writeStall)
	}
	// Setting a deadline costs a timer reset: renew it only when it moved
	// by a noticeable amount.
	if d := dl.Sub(l.deadline); d < 0 || d > writeStall/10 {
		_ = l.st.SetWriteDeadline(dl)
		l.deadline = dl
	}
	l.inSince.Store(now.UnixNano())
	n, err := l.st.Write(p)
	end := time.Now()
	l.inSince.Store(0)
	l.blocked.Add(int64(end.Sub(now)))
	if l.written.Add(int64(n)) >= lifeBytes {
		l.c.showLife()
	}
	if err != nil {
		return n, fmt.Errorf("child stream: %w", err)
	}
	return n, nil
}

// blockedFor returns the total time writes have been blocked, the one in
// progress included.
func (l *liveStream) blockedFor(now time.Time) time.Duration {
	b := time.Duration(l.blocked.Load())
	if since := l.inSince.Load(); since != 0 {
		b += now.Sub(time.Unix(0, since))
	}
	return b
}

// remoteIP returns the IP address a stream comes from ("" when unknown).
func remoteIP(st network.Stream) string {
	ip, err := manet.ToIP(st.Conn().RemoteMultiaddr())
	if err != nil {
		return ""
	}
	return ip.String()
}

// ipAllowsLocked reports whether c's address may have one more child that
// has not shown life yet: fewer when children from it lately ended
// without ever showing life (identities that subscribe, read nothing and
// subscribe again).
func (d *downside) ipAllowsLocked(c *child) bool {
	if c.adm.ip == "" {
		return true
	}
	n := 0
	for o := range d.children {
		if o.adm.ip == c.adm.ip && !o.adm.alive.Load() {
			n++
		}
	}
	return d.s.tuning().Admit.IPAllows(n, d.lifelessLocked(c.adm.ip, time.Now()))
}

// noteEndLocked records a stripe child that ends without having shown life.
func (d *downside) noteEndLocked(c *child) {
	if c.probe || c.adm.ip == "" || c.adm.alive.Load() {
		return
	}
	now := time.Now()
	d.lifelessLocked(c.adm.ip, now) // drops old entries
	d.lifeless[c.adm.ip] = append(d.lifeless[c.adm.ip], now)
	if len(d.lifeless) > maxLifelessIPs {
		// Bounded memory: forget the address with the oldest record.
		var oldest string
		var at time.Time
		for ip, ts := range d.lifeless {
			if len(ts) > 0 && (oldest == "" || ts[len(ts)-1].Before(at)) {
				oldest, at = ip, ts[len(ts)-1]
			}
		}
		delete(d.lifeless, oldest)
	}
}

// lifelessLocked returns how many stripe children from ip ended without
// showing life within the policy's window.
func (d *downside) lifelessLocked(ip string, now time.Time) int {
	ts := d.lifeless[ip]
	win := d.s.tuning().Admit.LifelessWindow
	i := 0
	for i < len(ts) && now.Sub(ts[i]) > win {
		i++
	}
	if i == len(ts) {
		delete(d.lifeless, ip)
		return 0
	}
	ts = ts[i:]
	if len(ts) > maxLifelessPerIP {
		ts = ts[len(ts)-maxLifelessPerIP:]
	}
	d.lifeless[ip] = ts
	return len(ts)
}

// Bounds of the per-address record of lifeless children.
const (
	maxLifelessIPs   = 1024
	maxLifelessPerIP = 256
)

// liveStream wraps the child's stream for its writer.
func (c *child) liveStream() *liveStream {
	c.adm.ip = remoteIP(c.stream)
	c.adm.lw = &liveStream{st: c.stream, c: c, grace: c.s.tuning().Admit.LifeGrace}
	return c.adm.lw
}

// armLife replaces the handshake deadline: the child has LifeGrace from its
// subscription to show life, or its stream ends.
func (c *child) armLife() {
	if c.adm.alive.Load() {
		_ = c.stream.SetReadDeadline(time.Time{})
		return
	}
	_ = c.stream.SetReadDeadline(c.started.Add(c.s.tuning().Admit.LifeGrace))
}

// showLife records that the child reads: its read deadline goes.
func (c *child) showLife() {
	if c.adm.alive.CompareAndSwap(false, true) {
		_ = c.stream.SetReadDeadline(time.Time{})
	}
}

// creditShowsLife reports whether a credit frame says the child received
// symbols on this stream.
func creditShowsLife(cr []protocol.Credit) bool {
	for _, x := range cr {
		if x.Base > 0 {
			return true
		}
	}
	return false
}

// viewLocked describes c for the admission policy.
func (c *child) viewLocked(now time.Time) treebuild.ChildView {
	v := treebuild.ChildView{
		Slot:      c.adm.slot,
		Age:       now.Sub(c.started),
		Alive:     c.adm.alive.Load(),
		Rate:      c.cons.Stats().Rate,
		LinkBound: c.adm.link,
	}
	if c.probe {
		v.Slot = treebuild.SlotProbe
	}
	if lw := c.adm.lw; lw != nil {
		since := lw.inSince.Load()
		v.Stalled = since != 0 && now.Sub(time.Unix(0, since)) >= stallFor ||
			lw.written.Load() == 0 && v.Age >= stallFor
	}
	return v
}

// sampleLinkLocked updates c's link-bound share from its stream's blocked
// time since the previous sample.
func (c *child) sampleLinkLocked(now time.Time) {
	if c.adm.lw == nil {
		return
	}
	b := c.adm.lw.blockedFor(now)
	if !c.adm.linkAt.IsZero() {
		if dt := now.Sub(c.adm.linkAt); dt > 0 {
			share := min(1, float64(b-c.adm.linkMark)/float64(dt))
			c.adm.link = (1-linkAlpha)*c.adm.link + linkAlpha*share
		}
	}
	c.adm.linkMark, c.adm.linkAt = b, now
}

// admitOwnLocked decides, under d.mu, on the subscriptions this file's
// rules cover: probes everywhere, and stripe subscriptions at the original
// source. It reports false for the others (treebuild.Admit decides those).
// The children it removes are returned for tellAdmission.
func (d *downside) admitOwnLocked(c *child, onPath, whole bool, reply *protocol.SubscribeReply) (handled bool, gone admissionGone) {
	if onPath || whole {
		return false, gone
	}
	if c.probe {
		var v *child
		*reply, v = d.admitProbeLocked(c, *reply)
		if v != nil {
			gone.displaced = append(gone.displaced, v)
		}
		return true, gone
	}
	if !d.s.origin() {
		return false, gone
	}
	gone.dead, gone.slow, gone.moved = d.judgeChildrenLocked()
	var out []*child
	*reply, out = d.admitSourceLocked(c, *reply)
	gone.displaced = append(gone.displaced, out...)
	return true, gone
}

// admissionGone are the children an admission removed.
type admissionGone struct {
	dead, slow, displaced []*child
	moved                 []movedLeaf
}

// movedLeaf is a leaf of the original source that moves below its
// stripe's relay child.
type movedLeaf struct {
	c  *child
	to peer.ID
}

// tellAdmission tells the children an admission removed why they go (after
// d.mu is released).
func (d *downside) tellAdmission(g admissionGone) {
	d.dropDead(g.dead)
	d.dropSlow(g.slow)
	d.moveLeaves(g.moved)
	for _, v := range g.displaced {
		d.spawn(func() { v.closeWith(protocol.GoodbyeEvicted, "the slot goes to another subscriber") })
	}
}

// admitProbeLocked takes a probe if a probe slot is free or held by a probe
// that has shown no life after probation.
func (d *downside) admitProbeLocked(c *child, reply protocol.SubscribeReply) (protocol.SubscribeReply, *child) {
	if !d.ipAllowsLocked(c) {
		reply.Reason = treebuild.RefuseFull.Reason()
		return reply, nil
	}
	now := time.Now()
	var probes []*child
	var views []treebuild.ChildView
	for o := range d.children {
		if o.probe {
			probes = append(probes, o)
			views = append(views, o.viewLocked(now))
		}
	}
	a := d.s.tuning().Admit.Admit(views, 0, true, false)
	if !a.Accept {
		reply.Reason = treebuild.RefuseFull.Reason()
		return reply, nil
	}
	var gone *child
	if a.Displace >= 0 {
		gone = probes[a.Displace]
		delete(d.children, gone)
	}
	c.adm.slot = treebuild.SlotProbe
	reply.Accepted = true
	d.children[c] = struct{}{}
	return reply, gone
}

// demotedLocked reports whether who lately proved too slow to relay a
// stripe of the original source: it may take a leaf slot there only.
func (d *downside) demotedLocked(who peer.ID) bool {
	until, ok := d.slow[who]
	if ok && time.Now().After(until) {
		delete(d.slow, who)
		return false
	}
	return ok
}

// admitSourceLocked decides, at the original source, on a stripe child.
// It returns the reply and the children that leave to make room (told
// after the lock is released).
func (d *downside) admitSourceLocked(c *child, reply protocol.SubscribeReply) (protocol.SubscribeReply, []*child) {
	s := d.s
	who, stripe := c.peer, c.stripe
	now := time.Now()
	var out []*child
	// A new subscription of a peer to a stripe replaces its older one.
	for o := range d.children {
		if !o.probe && o.peer == who && o.stripe == stripe && o.stripes == c.stripes {
			delete(d.children, o)
			out = append(out, o)
		}
	}
	if !d.ipAllowsLocked(c) {
		return d.refuseFullLocked(reply, stripe), out
	}
	var kids []*child
	var views []treebuild.ChildView
	for o := range d.children {
		if !o.probe && o.stripe == stripe && o.stripes == c.stripes {
			kids = append(kids, o)
			views = append(views, o.viewLocked(now))
		}
	}
	limit := s.maxChildren(stripe, true)
	demoted := d.demotedLocked(who)
	a := s.tuning().Admit.Admit(views, limit, false, demoted)
	relays := 0
	for _, v := range views {
		if v.Slot == treebuild.SlotRelay {
			relays++
		}
	}
	// The source spreads its stripes over peers: a peer holding two more
	// of them than the newcomer gives one up (it re-attaches below the
	// newcomer).
	if !demoted && s.stripes > 1 && relays >= limit && (!a.Accept || a.Slot != treebuild.SlotRelay) {
		all := d.kidsLocked()
		if i := treebuild.Victim(d.relayStatsLocked(all, now), who, stripe); i >= 0 {
			v := all[i]
			delete(d.children, v)
			out = append(out, v)
			a = treebuild.SlotDecision{Accept: true, Slot: treebuild.SlotRelay, Displace: -1}
		}
	}
	if !a.Accept {
		return d.refuseFullLocked(reply, stripe), out
	}
	if a.Displace >= 0 {
		delete(d.children, kids[a.Displace])
		out = append(out, kids[a.Displace])
	}
	c.adm.slot = a.Slot
	reply.Accepted = true
	d.children[c] = struct{}{}
	return reply, out
}

// relayStatsLocked is statsLocked with every child outside a relay slot
// marked a probe, so that treebuild.Victim counts relay slots only.
func (d *downside) relayStatsLocked(kids []*child, now time.Time) []treebuild.ChildStat {
	st := d.statsLocked(kids, now)
	for i, c := range kids {
		if c.adm.slot != treebuild.SlotRelay {
			st[i].Probe = true
		}
	}
	return st
}

// refuseFullLocked turns reply into a "full" refusal that redirects the
// subscriber to this node's children in stripe that may be offered as
// parents (treebuild.Offered): relay children that have shown life.
func (d *downside) refuseFullLocked(reply protocol.SubscribeReply, stripe int) protocol.SubscribeReply {
	reply.Reason = treebuild.RefuseFull.Reason()
	now := time.Now()
	for o := range d.children {
		if o.probe || o.stripe != stripe || !treebuild.Offered(o.viewLocked(now)) {
			continue
		}
		if len(reply.Redirect) == protocol.MaxPeers {
			break
		}
		reply.Redirect = append(reply.Redirect, d.s.node.addrInfo(o.peer))
	}
	return reply
}

// originSlots returns, for a status reply at the original source, how many
// relay children stripe has other than asker's and whether the source
// would take asker there now (in a relay or a leaf slot). It only reads
// (an expired demotion is left for admission to clear).
func (d *downside) originSlots(asker peer.ID, stripe int) (relays int, room bool) {
	s := d.s
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	var views []treebuild.ChildView
	for o := range d.children {
		if o.probe || o.stripe != stripe || o.stripes != s.stripes || o.peer == asker {
			continue
		}
		v := o.viewLocked(now)
		views = append(views, v)
		if v.Slot == treebuild.SlotRelay {
			relays++
		}
	}
	until, demoted := d.slow[asker]
	demoted = demoted && now.Before(until)
	limit := s.maxChildren(stripe, true)
	room = s.tuning().Admit.Admit(views, limit, false, demoted).Accept
	if !room && !demoted && s.stripes > 1 && relays >= limit {
		// A holder of two more stripes than asker would give one up.
		room = treebuild.Victim(d.relayStatsLocked(d.kidsLocked(), now), asker, stripe) >= 0
	}
	return relays, room
}

// judgeChildrenLocked checks the original source's children: those that
// showed no life in time are dropped, relay children too slow to carry
// their stripe are demoted (they may come back as leaves only, for
// SlowBan), and leaves whose stripe has a live relay child now move below
// it. It returns the three, for the caller to tell once the lock is
// released.
func (d *downside) judgeChildrenLocked() (dead, slow []*child, moved []movedLeaf) {
	s := d.s
	if !s.origin() {
		return nil, nil, nil
	}
	p := s.tuning().Admit
	now := time.Now()
	capacity := 0.0
	var relays []*child
	for c := range d.children {
		c.sampleLinkLocked(now)
		capacity += c.cons.Stats().Rate
		if !c.probe && c.adm.slot == treebuild.SlotRelay {
			relays = append(relays, c)
		}
	}
	var rates []float64
	for c := range d.children {
		var ref float64
		if !c.probe && c.adm.slot == treebuild.SlotRelay && s.stripes > 1 {
			rates = rates[:0]
			for _, o := range relays {
				if o != c {
					rates = append(rates, o.cons.Stats().Rate)
				}
			}
			ref = treebuild.Reference(rates, capacity, len(relays))
		}
		v := c.viewLocked(now)
		if s.stripes <= 1 && v.Slot == treebuild.SlotRelay {
			// A single tree has no leaf slots to demote to.
			v.Slot = treebuild.SlotLeaf
		}
		switch p.Judge(v, ref) {
		case treebuild.DropChild:
			log.Infow("source drops a child that showed no life", "peer", c.peer, "stripe", c.stripe, "age", v.Age)
			delete(d.children, c)
			dead = append(dead, c)
		case treebuild.DemoteChild:
			log.Infow("source demotes a stripe child too slow to relay", "peer", c.peer, "stripe", c.stripe, "rate", v.Rate, "ref", ref, "link", v.LinkBound)
			delete(d.children, c)
			d.slow[c.peer] = now.Add(s.tuning().SlowBan)
			slow = append(slow, c)
		}
	}
	d.promoteLeavesLocked(now)
	// Leaves given while no relay child of their stripe was live move
	// below the relay child once one is: the source's uplink then carries
	// the stripe once.
	liveStripe := map[int]peer.ID{}
	for c := range d.children {
		if !c.probe && p.LiveRelay(c.viewLocked(now)) {
			liveStripe[c.stripe] = c.peer
		}
	}
	for c := range d.children {
		relay, live := liveStripe[c.stripe]
		if c.probe || c.adm.slot != treebuild.SlotLeaf || !live || c.stripes != s.stripes {
			continue
		}
		if until, ok := d.slow[c.peer]; ok && now.Before(until) {
			continue // demoted: it stays a leaf
		}
		log.Debugw("a leaf moves below its stripe's relay child", "peer", c.peer, "stripe", c.stripe, "relay", relay)
		delete(d.children, c)
		moved = append(moved, movedLeaf{c: c, to: relay})
	}
	return dead, slow, moved
}

// moveLeaves tells leaves of the original source to go below their
// stripe's relay child: a redirect naming it, then a goodbye that does not
// count as a failure of this node. (A reset alone reached the child behind
// the data queued for it, up to a second later on a narrow path, and made
// it count the source as failed.)
func (d *downside) moveLeaves(moved []movedLeaf) {
	for _, m := range moved {
		to := []peer.AddrInfo{d.s.node.addrInfo(m.to)}
		d.spawn(func() {
			ctx, cancel := context.WithTimeout(d.s.ctx, d.s.tuning().LeaveTimeout)
			defer cancel()
			m.c.redirectAndLeave(ctx, to, protocol.GoodbyeEvicted, "the stripe's relay child serves you")
		})
	}
	if len(moved) > 0 {
		d.refreshDemand()
	}
}

// dropDead ends the subscriptions of children that showed no life.
func (d *downside) dropDead(dead []*child) {
	for _, c := range dead {
		d.spawn(func() { c.closeWith(protocol.GoodbyeEvicted, "no sign of life") })
	}
	if len(dead) > 0 {
		d.refreshDemand()
	}
}

// promoteLeavesLocked gives a stripe that has leaves at the original source
// but no relay child (it left, or was demoted) a relay child again: the
// fastest leaf that has shown life and is not demoted. The other leaves
// then move below it (judgeChildrenLocked), so that the source's uplink
// carries the stripe once instead of once per leaf.
func (d *downside) promoteLeavesLocked(now time.Time) {
	s := d.s
	if s.stripes <= 1 {
		return
	}
	hasRelay := make([]bool, s.stripes)
	best := make([]*child, s.stripes)
	bestRate := make([]float64, s.stripes)
	for c := range d.children {
		if c.probe || c.stripes != s.stripes || c.stripe < 0 || c.stripe >= s.stripes {
			continue
		}
		if c.adm.slot == treebuild.SlotRelay {
			hasRelay[c.stripe] = true
			continue
		}
		if c.adm.slot != treebuild.SlotLeaf || !c.adm.alive.Load() {
			continue
		}
		if until, ok := d.slow[c.peer]; ok && now.Before(until) {
			continue
		}
		if r := c.cons.Stats().Rate; best[c.stripe] == nil || r > bestRate[c.stripe] {
			best[c.stripe], bestRate[c.stripe] = c, r
		}
	}
	for i, c := range best {
		if c != nil && !hasRelay[i] {
			c.adm.slot = treebuild.SlotRelay
			log.Debugw("a leaf becomes its stripe's relay child", "peer", c.peer, "stripe", i)
		}
	}
}
