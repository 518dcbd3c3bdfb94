package node

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/romap2p/romap2p/protocol"
	"github.com/romap2p/romap2p/relay"
	"github.com/romap2p/romap2p/treebuild"
)

// registerHandlers installs romap2p's stream handlers on the host.
func (n *Node) registerHandlers() {
	n.host.SetStreamHandler(protocol.ManifestID, n.owned(n.handleManifest))
	n.host.SetStreamHandler(protocol.StatusID, n.owned(n.handleStatus))
	n.host.SetStreamHandler(protocol.SymbolsID, n.owned(n.handleSymbols))
	n.host.SetStreamHandler(protocol.TreeID, n.owned(n.handleTree))
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
	n.host.RemoveStreamHandler(protocol.TreeID)
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
	_ = s.SetDeadline(time.Now().Add(n.cfg.tuning.HandshakeTimeout))
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
	_ = s.SetDeadline(time.Now().Add(n.cfg.tuning.HandshakeTimeout))
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

// status describes this session for a peer's status request. It only
// reads: each part is asked in turn, none under another's lock.
func (s *session) status(asker peer.ID) protocol.Status {
	have, complete := s.blocks.snapshot()
	st := protocol.Status{
		Role:        protocol.RoleRelaying,
		StripeCount: s.stripes,
		Have:        have,
	}
	switch {
	case complete && s.origin():
		st.Role = protocol.RoleSource
	case complete:
		st.Role = protocol.RoleComplete
	case s.up.count() == 0:
		st.Role = protocol.RoleSeeking
	}
	for i := 0; i < s.stripes; i++ {
		path := s.up.path(i)
		ss := protocol.StripeStatus{
			Index:       i,
			Width:       s.wireWidth(i),
			Depth:       len(path) - 1,
			Path:        path,
			Children:    s.down.slotUsers(i),
			MaxChildren: s.maxChildren(i, complete),
		}
		if len(path) > 1 {
			ss.Parent = path[len(path)-2]
		}
		if s.origin() {
			// Relay slots, and room in a leaf slot (admit.go).
			relays, room := s.down.originSlots(asker, i)
			ss.Children = relays
			if room && ss.Children >= ss.MaxChildren {
				ss.Children = ss.MaxChildren - 1
			} else if !room {
				ss.Children = max(ss.Children, ss.MaxChildren)
			}
		}
		st.Stripes = append(st.Stripes, ss)
	}
	st.Peers = s.node.peerSample(s, asker, protocol.MaxPeers)
	st.UploadRate = uint64(s.down.uploadRate())
	st.DownloadRate = uint64(s.goodput.rate())
	return st
}

// refuse answers a subscription with a refusal and ends the stream.
func refuse(st network.Stream, r treebuild.Refusal) {
	_ = protocol.WriteSubscribeReply(st, &protocol.SubscribeReply{Reason: r.Reason()})
	_ = st.Close()
}

// handleSymbols serves one subscription from a child: it admits the child
// (downside.admit) and then runs its writer until the child leaves or the
// session closes. The handler counts in the downstream side's group.
func (n *Node) handleSymbols(st network.Stream) {
	remote := st.Conn().RemotePeer()
	if err := scopeStream(st); err != nil {
		log.Debugw("symbols stream refused", "peer", remote, "err", err)
		_ = st.Reset()
		return
	}
	_ = st.SetDeadline(time.Now().Add(n.cfg.tuning.HandshakeTimeout))
	br := bufio.NewReaderSize(st, n.cfg.tuning.ChildBuffer)
	sub, err := protocol.ReadSubscribe(br)
	if err != nil {
		log.Debugw("bad subscribe", "peer", remote, "err", err)
		_ = st.Reset()
		return
	}
	sess := n.session(sub.CID)
	if sess == nil {
		refuse(st, treebuild.RefuseNotHeld)
		return
	}
	if sess.isBlamed(remote) {
		log.Debugw("subscription refused: the peer sent bad data", "cid", sess.cid, "peer", remote)
		_ = protocol.WriteSubscribeReply(st, &protocol.SubscribeReply{Reason: "this peer sent bad data"})
		_ = st.Close()
		return
	}
	d := sess.down
	// The subscription is one of the downstream side's goroutines, and its
	// stream ends with the session.
	if !d.g.enter() {
		refuse(st, treebuild.RefuseClosing)
		return
	}
	defer d.g.leave()
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
		refuse(st, treebuild.RefuseClosing)
		return
	}
	cons.TrackSources(sess.maxK)
	if !sub.Probe || stripes > 1 {
		// A child that sends credits starts with a small window in
		// flight; its credits widen it as it shows what it takes.
		cons.SetInFlight(0, minInFlight)
	}
	c := &child{s: sess, peer: remote, stream: st, stripe: stripe, stripes: stripes, probe: sub.Probe, cons: cons, started: time.Now()}
	c.w = relay.NewWriter(cons, sess.counting(c.liveStream(), remote))
	c.setFinished(sub.Finished)
	reply := d.admit(c)
	if !reply.Accepted {
		_ = cons.Close()
		_ = protocol.WriteSubscribeReply(st, &reply)
		_ = st.Close()
		return
	}
	if err := protocol.WriteSubscribeReply(st, &reply); err != nil {
		d.remove(c)
		_ = cons.Close()
		_ = st.Reset()
		return
	}
	// Until it shows life the stream keeps a deadline (admit.go).
	_ = st.SetWriteDeadline(time.Time{})
	c.armLife()

	n.host.ConnManager().Protect(remote, "roma-child")
	log.Debugw("child joined", "cid", sess.cid, "peer", remote, "stripe", stripe, "of", stripes, "probe", sub.Probe)
	d.refreshDemand()

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
	d.spawn(func() {
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
	d.remove(c)
	n.host.ConnManager().Unprotect(remote, "roma-child")
	d.refreshDemand()
	cs := c.cons.Stats()
	log.Debugw("child ended", "peer", remote, "stripe", c.stripe, "of", c.stripes, "probe", c.probe,
		"sent", cs.Sent, "skipped", cs.Skipped, "seconds", time.Since(c.started).Seconds())
	if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, relay.ErrClosed) {
		log.Debugw("child left", "peer", remote, "err", err)
	}
}

// addrInfo returns what the peerstore knows of a peer's addresses.
func (n *Node) addrInfo(p peer.ID) peer.AddrInfo {
	addrs := n.host.Peerstore().Addrs(p)
	if len(addrs) > protocol.MaxAddrs {
		addrs = addrs[:protocol.MaxAddrs]
	}
	return peer.AddrInfo{ID: p, Addrs: addrs}
}

// peerSample returns up to limit other participants of a session, for peer
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
	for _, u := range s.up.list() {
		addp(u.peer)
	}
	for _, c := range s.down.list() {
		addp(c.peer)
	}
	for _, p := range s.up.book.knownPeers() {
		addp(p)
	}
	return out
}
