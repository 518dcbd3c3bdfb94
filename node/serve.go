package node

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/romap2p/romap2p/protocol"
	"github.com/romap2p/romap2p/relay"
	"github.com/romap2p/romap2p/treebuild"
)

// handshakeTimeout bounds every request/response exchange on a new stream.
const handshakeTimeout = 10 * time.Second

// registerHandlers installs romap2p's stream handlers on the host.
func (n *Node) registerHandlers() {
	n.host.SetStreamHandler(protocol.ManifestID, n.owned(n.handleManifest))
	n.host.SetStreamHandler(protocol.StatusID, n.owned(n.handleStatus))
	n.host.SetStreamHandler(protocol.SymbolsID, n.owned(n.handleSymbols))
}

// owned makes a stream handler one of the node's goroutines, which Close
// waits for, and resets its stream when the node closes.
func (n *Node) owned(h network.StreamHandler) network.StreamHandler {
	return func(st network.Stream) {
		if !n.g.enter() {
			_ = st.Reset()
			return
		}
		defer n.g.leave()
		stop := context.AfterFunc(n.ctx, func() { _ = st.Reset() })
		defer stop()
		h(st)
	}
}

func (n *Node) removeHandlers() {
	n.host.RemoveStreamHandler(protocol.ManifestID)
	n.host.RemoveStreamHandler(protocol.StatusID)
	n.host.RemoveStreamHandler(protocol.SymbolsID)
}

// scopeStream attaches a stream to romap2p's resource-manager service and
// refuses streams that do not run over TCP (an embedding host may have other
// transports).
func scopeStream(s network.Stream) error {
	if err := s.Scope().SetService(ServiceName); err != nil {
		return fmt.Errorf("resource manager refused the stream: %w", err)
	}
	if tr := s.Conn().ConnState().Transport; tr != "" && tr != "tcp" {
		return fmt.Errorf("transport %q: romap2p runs over TCP only", tr)
	}
	return nil
}

func (n *Node) handleManifest(s network.Stream) {
	defer s.Close()
	if err := scopeStream(s); err != nil {
		log.Debugw("manifest stream refused", "peer", s.Conn().RemotePeer(), "err", err)
		_ = s.Reset()
		return
	}
	_ = s.SetDeadline(time.Now().Add(handshakeTimeout))
	c, err := protocol.ReadRequest(s)
	if err != nil {
		log.Debugw("bad manifest request", "peer", s.Conn().RemotePeer(), "err", err)
		_ = s.Reset()
		return
	}
	sess := n.session(c)
	if sess == nil {
		_ = protocol.WriteManifestError(s, protocol.ManifestNotFound, "content not held here")
		return
	}
	if err := protocol.WriteManifestResponse(s, sess.mbytes); err != nil {
		log.Debugw("manifest response", "peer", s.Conn().RemotePeer(), "err", err)
	}
}

func (n *Node) handleStatus(s network.Stream) {
	defer s.Close()
	if err := scopeStream(s); err != nil {
		_ = s.Reset()
		return
	}
	_ = s.SetDeadline(time.Now().Add(handshakeTimeout))
	c, err := protocol.ReadRequest(s)
	if err != nil {
		log.Debugw("bad status request", "peer", s.Conn().RemotePeer(), "err", err)
		_ = s.Reset()
		return
	}
	sess := n.session(c)
	if sess == nil {
		st := protocol.Status{Role: protocol.RoleNone}
		_ = protocol.WriteStatus(s, &st)
		return
	}
	st := sess.status(s.Conn().RemotePeer())
	if err := protocol.WriteStatus(s, &st); err != nil {
		log.Debugw("status response", "peer", s.Conn().RemotePeer(), "err", err)
	}
}

// status describes this session for a peer's status request.
func (s *session) status(asker peer.ID) protocol.Status {
	widths := make([]uint64, s.stripes)
	for i := range widths {
		widths[i] = s.wireWidth(i)
	}
	s.mu.Lock()
	st := protocol.Status{
		Role:        protocol.RoleRelaying,
		StripeCount: s.stripes,
		Have:        s.finished,
	}
	if s.complete {
		st.Role = protocol.RoleComplete
		if s.fetch == nil {
			st.Role = protocol.RoleSource
		}
	} else if len(s.upstreams) == 0 {
		st.Role = protocol.RoleSeeking
	}
	perStripe := make([]int, s.stripes)
	for i := range perStripe {
		perStripe[i] = s.slotUsersLocked(i, "")
	}
	for i := 0; i < s.stripes; i++ {
		path := s.pathLocked(i)
		ss := protocol.StripeStatus{
			Index:       i,
			Width:       widths[i],
			Depth:       len(path) - 1,
			Path:        path,
			Children:    perStripe[i],
			MaxChildren: s.maxChildrenLocked(i),
		}
		if len(path) > 1 {
			ss.Parent = path[len(path)-2]
		}
		if s.fetch == nil && ss.Children >= ss.MaxChildren && (s.sourceRoomLocked(asker, i) || s.stripes > 1 && s.victimLocked(asker, i) != nil) {
			// A leaf slot is free, or the asker holds fewer of the
			// source's stripes than this stripe's holder: the source
			// takes it (admit.go).
			ss.Children = ss.MaxChildren - 1
		}
		st.Stripes = append(st.Stripes, ss)
	}
	s.mu.Unlock()
	st.Peers = s.node.peerSample(s, asker, protocol.MaxPeers)
	st.UploadRate = uint64(s.uploadRate())
	st.DownloadRate = uint64(s.goodput.rate())
	return st
}

// upperMedian returns the middle value of xs (the upper one of the two
// middle values when their number is even); xs is not modified.
func upperMedian(xs []float64) float64 {
	sorted := slices.Clone(xs)
	slices.Sort(sorted)
	return sorted[len(sorted)/2]
}

// slotUsersLocked counts the children that take one of stripe's slots
// (not probes, not whole-stream extras, not who). At a relay, a child that
// has been there for slowAfter and takes less than slowShare of the median
// rate of its stripe's siblings takes no slot: the fan-out limit guards the
// uplink, which such a child hardly uses, and a receiver behind a slow
// link would otherwise hold slots that others need. (The original source
// evicts such children instead: see evictSlowLocked.)
func (s *session) slotUsersLocked(stripe int, who peer.ID) int {
	var kids []*child
	var rates []float64
	for c := range s.children {
		if !c.probe && c.stripe == stripe && c.peer != who && !s.isExtraSub(c.stripes) {
			kids = append(kids, c)
			rates = append(rates, c.cons.Stats().Rate)
		}
	}
	if s.fetch == nil {
		return s.relayUsersLocked(stripe, who)
	}
	if len(kids) < 2 {
		return len(kids)
	}
	median := upperMedian(rates)
	n := 0
	for i, c := range kids {
		if time.Since(c.started) >= slowAfter && rates[i] < slowShare*median {
			continue
		}
		n++
	}
	return n
}

// maxChildrenLocked is this node's fan-out limit in stripe i: the full
// limit in its home stripe (and in every stripe once it has the whole file),
// a small one elsewhere, so each peer spends its uplink mostly in one stripe.
func (s *session) maxChildrenLocked(stripe int) int {
	if s.stripes <= 1 {
		return s.node.cfg.maxChildren
	}
	if s.complete && s.fetch == nil {
		// The original source sends each stripe to a few interior nodes
		// only, so its uplink carries each symbol about once and the
		// stripes' trees spread the relaying over every peer.
		return max(1, (s.node.cfg.maxChildren+s.stripes-1)/s.stripes)
	}
	f := treebuild.FanOut{Home: s.node.cfg.maxChildren, Other: s.node.cfg.otherChildren}
	home := stripe
	if !s.homeLocked(stripe) {
		home = -1
	}
	return f.MaxChildren(stripe, home, s.complete)
}

// homeLocked reports whether stripe is one in which this node spends its
// uplink. A node that receives a stripe straight from a source is that
// stripe's interior node: the source sends each stripe to a few children
// only, so they must pass it on to everyone else. A node fed by no source
// directly takes the stripe its ID hashes to (treebuild.HomeStripe).
func (s *session) homeLocked(stripe int) bool {
	fed := false
	for i, p := range s.paths {
		if len(p) == 1 && s.stripeUp[i].Load() != nil {
			if i == stripe {
				return true
			}
			fed = true
		}
	}
	return !fed && treebuild.HomeStripe(s.node.host.ID(), s.stripes) == stripe
}

// uploadRate sums the current rates of the children.
func (s *session) uploadRate() float64 {
	s.mu.Lock()
	kids := s.childrenLocked()
	s.mu.Unlock()
	sum := 0.0
	for _, c := range kids {
		sum += c.cons.Stats().Rate
	}
	return sum
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
	adm     childAdmission    // slot, sign of life, link measure (admit.go)

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
	ctx, cancel := context.WithTimeout(c.s.ctx, time.Second)
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
			ctx, cancel := context.WithTimeout(c.s.ctx, time.Second)
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
		ctx, cancel := context.WithTimeout(c.s.ctx, time.Second)
		_ = c.w.SendControl(ctx, protocol.AppendGoodbyeFrame(nil, code, reason))
		cancel()
		_ = c.cons.Close()
		select {
		case <-c.w.Done():
			_ = c.stream.Close()
		case <-time.After(2 * time.Second):
			_ = c.stream.Reset()
		case <-c.s.ctx.Done():
			_ = c.stream.Reset()
		}
	})
}

// shedStripe drops this node's children in one stripe: its own branch of
// that stripe proved too slow (its parent said so), and they find a faster
// one at once instead of after the stall timeout.
func (s *session) shedStripe(stripe int) {
	s.mu.Lock()
	var shed []*child
	for c := range s.children {
		if c.stripes == s.stripes && c.stripe == stripe {
			shed = append(shed, c)
			delete(s.children, c)
		}
	}
	s.mu.Unlock()
	for _, c := range shed {
		s.spawn(func() { c.closeWith(protocol.GoodbyeEvicted, "this node's branch of the stripe is too slow") })
	}
	if len(shed) > 0 {
		log.Infow("dropped as too slow for a stripe: its children there look elsewhere", "cid", s.cid, "stripe", stripe, "children", len(shed))
		s.refreshDemand()
	}
}

// control applies one control frame from the child; false means the
// subscription ends (a goodbye or a malformed frame).
func (c *child) control(f protocol.Frame) bool {
	switch f.Type {
	case protocol.FrameFinished:
		set, err := f.Finished()
		if err != nil {
			log.Debugw("bad finished frame", "peer", c.peer, "err", err)
			return false
		}
		c.setFinished(set)
		c.s.refreshDemand()
	case protocol.FrameCredit:
		var err error
		c.credits, err = f.Credits(c.credits[:0])
		if err != nil {
			log.Debugw("bad credit frame", "peer", c.peer, "err", err)
			return false
		}
		if creditShowsLife(c.credits) {
			c.showLife()
		}
		wake := false
		d := c.s.demand()
		for _, cr := range c.credits {
			before, _ := c.cons.Budget(cr.SBN)
			c.cons.SetBudget(cr.SBN, uint32(min(uint64(cr.Base)+uint64(cr.Allow), math.MaxUint32)))
			if after, _ := c.cons.Budget(cr.SBN); before <= 0 && after > 0 && (d.mine.Has(cr.SBN) || d.fresh.Has(cr.SBN)) {
				wake = true
			}
		}
		if wake {
			// Only credit for a block we generate that had none left
			// gives an idle generator something new to do.
			c.s.wakeGenerator()
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

// handleSymbols serves one subscription from a child.
func (n *Node) handleSymbols(st network.Stream) {
	remote := st.Conn().RemotePeer()
	if err := scopeStream(st); err != nil {
		log.Debugw("symbols stream refused", "peer", remote, "err", err)
		_ = st.Reset()
		return
	}
	_ = st.SetDeadline(time.Now().Add(handshakeTimeout))
	br := bufio.NewReaderSize(st, 32<<10)
	sub, err := protocol.ReadSubscribe(br)
	if err != nil {
		log.Debugw("bad subscribe", "peer", remote, "err", err)
		_ = st.Reset()
		return
	}
	sess := n.session(sub.CID)
	if sess == nil {
		_ = protocol.WriteSubscribeReply(st, &protocol.SubscribeReply{Reason: "content not held here"})
		_ = st.Close()
		return
	}
	// The subscription is one of the session's goroutines, and its stream
	// ends with the session.
	if !sess.g.enter() {
		_ = protocol.WriteSubscribeReply(st, &protocol.SubscribeReply{Reason: "closing"})
		_ = st.Close()
		return
	}
	defer sess.g.leave()
	stopReset := context.AfterFunc(sess.ctx, func() { _ = st.Reset() })
	defer stopReset()
	stripes, stripe := sub.Stripes, sub.Stripe
	if stripes != sess.stripes && stripes != 1 {
		// A subscriber with another stripe count still gets a valid share:
		// its own (k, i) filter is applied as asked.
		log.Debugw("subscriber uses a different stripe count", "peer", remote, "theirs", stripes, "ours", sess.stripes)
	}
	cons, err := sess.ring.Subscribe(relay.WithStripe(uint32(stripes), uint32(stripe)))
	if err != nil {
		_ = protocol.WriteSubscribeReply(st, &protocol.SubscribeReply{Reason: "closing"})
		_ = st.Close()
		return
	}
	cons.TrackSources(sess.maxK)
	c := &child{s: sess, peer: remote, stream: st, stripe: stripe, stripes: stripes, probe: sub.Probe, cons: cons, started: time.Now()}
	c.w = relay.NewWriter(cons, sess.counting(c.liveStream(), remote))
	c.setFinished(sub.Finished)
	// Admission and joining the children are one step, so that concurrent
	// subscriptions cannot all take the same free slot.
	reply, ok := sess.admit(c)
	if !ok {
		_ = cons.Close()
		_ = protocol.WriteSubscribeReply(st, &reply)
		_ = st.Close()
		return
	}
	if err := protocol.WriteSubscribeReply(st, &reply); err != nil {
		sess.mu.Lock()
		delete(sess.children, c)
		sess.mu.Unlock()
		_ = cons.Close()
		_ = st.Reset()
		return
	}
	// Until it shows life the stream keeps a deadline (admit.go).
	_ = st.SetWriteDeadline(time.Time{})
	c.armLife()

	n.host.ConnManager().Protect(remote, "roma-child")
	log.Debugw("child joined", "cid", sess.cid, "peer", remote, "stripe", stripe, "of", stripes, "probe", sub.Probe)
	sess.refreshDemand()

	// The child's control frames: finished-block updates, credits and
	// goodbye. Those that came with the subscription (its first credits)
	// apply before the first symbol goes out.
	fr := protocol.NewFrameReader(br, 0)
	for br.Buffered() > 0 {
		f, err := fr.Next()
		if err != nil || !c.control(f) {
			c.close("")
			break
		}
	}
	sess.spawn(func() {
		defer c.close("")
		for {
			f, err := fr.Next()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					log.Debugw("child stream", "peer", remote, "err", err)
				}
				return
			}
			if !c.control(f) {
				return
			}
		}
	})

	err = c.w.Run(sess.ctx)
	c.close("")
	sess.mu.Lock()
	delete(sess.children, c)
	sess.mu.Unlock()
	n.host.ConnManager().Unprotect(remote, "roma-child")
	sess.refreshDemand()
	if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, relay.ErrClosed) {
		log.Debugw("child left", "peer", remote, "err", err)
	}
}

// admit decides whether to take child c in its stripe, builds the reply and,
// when it accepts, adds c to the session's children. Children it drops to
// make room are told so after the lock is released.
func (s *session) admit(c *child) (protocol.SubscribeReply, bool) {
	who, stripe := c.peer, c.stripe
	path := s.path(stripe % max(1, s.stripes))
	w := s.wireWidth(stripe % max(1, s.stripes))
	reply := protocol.SubscribeReply{Path: path, Width: w, Depth: len(path) - 1}
	if slices.Contains(path, who) {
		reply.Reason = "you are on my path: loop"
		return reply, false
	}
	var slow, dead, gone []*child
	s.mu.Lock()
	reply, ok := s.admitLocked(c, reply, &slow, &dead, &gone)
	s.mu.Unlock()
	s.dropSlow(slow)
	s.dropDead(dead)
	for _, v := range gone {
		s.spawn(func() { v.closeWith(protocol.GoodbyeEvicted, "the slot goes to another subscriber") })
	}
	return reply, ok
}

func (s *session) admitLocked(c *child, reply protocol.SubscribeReply, slow, dead, gone *[]*child) (protocol.SubscribeReply, bool) {
	who, stripe := c.peer, c.stripe
	if c.probe {
		reply, v, ok := s.admitProbeLocked(c, reply)
		if v != nil {
			*gone = append(*gone, v)
		}
		return reply, ok
	}
	if s.isExtraSub(c.stripes) {
		return s.admitExtraLocked(c, reply)
	}
	if s.fetch == nil {
		*dead, *slow = s.judgeChildrenLocked()
		reply, out, ok := s.admitSourceLocked(c, reply)
		*gone = append(*gone, out...)
		return reply, ok
	}
	if s.slotUsersLocked(stripe, who) < s.maxChildrenLocked(stripe) {
		reply.Accepted = true
		s.children[c] = struct{}{}
		return reply, true
	}
	return s.refuseFullLocked(reply, stripe), false
}

// refuseFullLocked turns reply into a "full" refusal that redirects the
// subscriber to this node's children in stripe, one level down its tree.
func (s *session) refuseFullLocked(reply protocol.SubscribeReply, stripe int) protocol.SubscribeReply {
	reply.Reason = "full"
	for o := range s.children {
		if o.probe || o.stripe != stripe || !treebuild.Offered(o.viewLocked(time.Now())) {
			continue
		}
		if len(reply.Redirect) == protocol.MaxPeers {
			break
		}
		reply.Redirect = append(reply.Redirect, s.node.addrInfo(o.peer))
	}
	return reply
}

// admitExtraLocked decides on an extra, whole-stream subscription (see
// extra.go): a complete peer takes up to its fan-out limit of them; the
// original source (whose symbols its stripe children forward anyway) and a
// peer still fetching (which would only forward what its parents send)
// take none.
func (s *session) admitExtraLocked(c *child, reply protocol.SubscribeReply) (protocol.SubscribeReply, bool) {
	n := 0
	for o := range s.children {
		if !o.probe && s.isExtraSub(o.stripes) && o.peer != c.peer {
			n++
		}
	}
	switch {
	case !s.complete:
		reply.Reason = "not complete: subscribe to a stripe"
	case n >= s.node.cfg.maxChildren:
		reply.Reason = "full"
	case s.fetch == nil:
		reply.Reason = "original source: subscribe to a stripe"
	default:
		reply.Accepted = true
		s.children[c] = struct{}{}
		return reply, true
	}
	return reply, false
}

// victimLocked picks, at the original source, a child of stripe to make
// room for who: the source's stripes are spread so that no peer holds two
// more of them than another. A peer that holds several stripes straight
// from the source gives one up to a peer that holds none; it re-attaches
// below the newcomer, which relays that stripe to everyone.
func (s *session) victimLocked(who peer.ID, stripe int) *child {
	held := map[peer.ID]int{}
	for c := range s.children {
		if !c.probe && c.stripes == s.stripes {
			held[c.peer]++
		}
	}
	var victim *child
	for c := range s.children {
		if c.probe || c.stripe != stripe || c.stripes != s.stripes || c.adm.slot != treebuild.SlotRelay {
			continue
		}
		if held[c.peer] >= held[who]+2 && (victim == nil || held[c.peer] > held[victim.peer]) {
			victim = c
		}
	}
	return victim
}

// dropSlow tells children removed by evictSlowLocked why they go.
func (s *session) dropSlow(gone []*child) {
	for _, c := range gone {
		s.spawn(func() { c.leave(protocol.GoodbyeTooSlow, "too slow to carry a stripe for the others") })
	}
	if len(gone) > 0 {
		s.refreshDemand()
	}
}

// spawn runs f as one of the session's goroutines, or at once when the
// session is closing (its context has ended then, so f does not wait).
func (s *session) spawn(f func()) {
	if !s.g.Go(f) {
		f()
	}
}

// watchSlowChildren checks the original source's stripe children for slow
// ones every slowCheck, so that a slow child is dropped soon after slowAfter
// even when nobody asks for a slot.
func (s *session) watchSlowChildren() {
	t := time.NewTicker(slowCheck)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		dead, slow := s.judgeChildrenLocked()
		s.mu.Unlock()
		s.dropDead(dead)
		s.dropSlow(slow)
	}
}

// bannedLocked reports whether who lately proved too slow to carry a
// stripe from the original source: it may take a leaf slot there only.
func (s *session) bannedLocked(who peer.ID) bool {
	until, ok := s.slow[who]
	if ok && time.Now().After(until) {
		delete(s.slow, who)
		return false
	}
	return ok
}

const (
	slowShare = 0.25
	slowAfter = time.Second
	slowCheck = 100 * time.Millisecond
	slowBan   = 30 * time.Second
)

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

// addrInfo returns what the peerstore knows of a peer's addresses.
func (n *Node) addrInfo(p peer.ID) peer.AddrInfo {
	addrs := n.host.Peerstore().Addrs(p)
	if len(addrs) > protocol.MaxAddrs {
		addrs = addrs[:protocol.MaxAddrs]
	}
	return peer.AddrInfo{ID: p, Addrs: addrs}
}

// peerSample returns up to max other participants of a session, for peer
// exchange: parents, children and known candidates.
func (n *Node) peerSample(s *session, asker peer.ID, limit int) []peer.AddrInfo {
	seen := map[peer.ID]bool{asker: true, n.host.ID(): true}
	var out []peer.AddrInfo
	addp := func(p peer.ID) {
		if len(out) >= limit || seen[p] {
			return
		}
		seen[p] = true
		ai := n.addrInfo(p)
		if len(ai.Addrs) > 0 {
			out = append(out, ai)
		}
	}
	s.mu.Lock()
	for u := range s.upstreams {
		addp(u.peer)
	}
	for c := range s.children {
		addp(c.peer)
	}
	var known []peer.ID
	if s.fetch != nil {
		known = s.fetch.knownPeers()
	}
	s.mu.Unlock()
	for _, p := range known {
		addp(p)
	}
	return out
}
