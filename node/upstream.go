package node

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/romap2p/romap2p/protocol"
	"github.com/romap2p/romap2p/treebuild"
)

// upside is a session's upstream side: the parents and probes it
// subscribes to, the stripe managers that choose them, the extra
// upstreams, peer discovery and the credit loop. It owns every upstream it
// opens: an upstream is registered only while the side is open, and close
// (or stop, when the download completes) closes every registered one and
// waits for the side's goroutines. Its lock guards the upstream set, the
// ancestor paths and the last finished set reported.
type upside struct {
	s    *session
	g    group
	book *peerBook
	cfg  *getConfig // the download's options, set by start

	mu       sync.Mutex
	closed   bool
	set      map[*upstream]struct{}
	paths    [][]peer.ID       // per stripe: ancestors from the source down to this node
	reported protocol.BlockSet // the finished set last sent upstream

	stripeUp []atomic.Pointer[upstream] // current parent per stripe
}

func newUpside(s *session) *upside {
	return &upside{
		s: s,
		book: newPeerBook(s.node.host.ID(), func(ai peer.AddrInfo) {
			s.node.host.Peerstore().AddAddrs(ai.ID, ai.Addrs, time.Hour)
		}),
		set:      make(map[*upstream]struct{}),
		paths:    make([][]peer.ID, s.stripes),
		stripeUp: make([]atomic.Pointer[upstream], s.stripes),
	}
}

// list returns the registered upstreams.
func (up *upside) list() []*upstream {
	up.mu.Lock()
	defer up.mu.Unlock()
	out := make([]*upstream, 0, len(up.set))
	for u := range up.set {
		out = append(out, u)
	}
	return out
}

// count returns how many upstreams are registered.
func (up *upside) count() int {
	up.mu.Lock()
	defer up.mu.Unlock()
	return len(up.set)
}

// stop refuses new upstreams, closes every registered one and waits for
// their readers and for the side's goroutines. The session's context ends
// the managers; when the download completes they see it too.
func (up *upside) stop() {
	up.mu.Lock()
	up.closed = true
	ups := make([]*upstream, 0, len(up.set))
	for u := range up.set {
		ups = append(ups, u)
	}
	up.mu.Unlock()
	for _, u := range ups {
		u.close()
	}
	for _, u := range ups {
		<-u.done
	}
}

// close stops the side and waits for all its goroutines.
func (up *upside) close() {
	up.stop()
	up.g.closeAndWait()
}

// setStripeParent records the current parent of a stripe.
func (up *upside) setStripeParent(stripe int, u *upstream) {
	if stripe < len(up.stripeUp) {
		up.stripeUp[stripe].Store(u)
	}
}

// stripeParent returns the current parent of a stripe, or nil.
func (up *upside) stripeParent(stripe int) *upstream {
	if stripe < len(up.stripeUp) {
		return up.stripeUp[stripe].Load()
	}
	return nil
}

// isStripeParent reports whether p is the current parent of some stripe.
func (up *upside) isStripeParent(p peer.ID) bool {
	for i := range up.stripeUp {
		if u := up.stripeUp[i].Load(); u != nil && u.peer == p {
			return true
		}
	}
	return false
}

// path returns this node's ancestor path in stripe i, ending with itself.
func (up *upside) path(stripe int) []peer.ID {
	self := up.s.node.host.ID()
	if up.s.blocks.isComplete() {
		return []peer.ID{self}
	}
	up.mu.Lock()
	defer up.mu.Unlock()
	if stripe >= len(up.paths) {
		return []peer.ID{self}
	}
	p := up.paths[stripe]
	out := make([]peer.ID, 0, len(p)+1)
	out = append(out, p...)
	return append(out, self)
}

// setPath records the ancestor path of stripe i from a new parent, tells
// the children, and reports whether this node appears in it (a loop).
func (up *upside) setPath(stripe int, ancestors []peer.ID) bool {
	if slices.Contains(ancestors, up.s.node.host.ID()) {
		return true
	}
	up.mu.Lock()
	if stripe < len(up.paths) {
		up.paths[stripe] = slices.Clone(ancestors)
	}
	up.mu.Unlock()
	up.s.down.sendPath(stripe, up.path(stripe))
	return false
}

// home reports whether stripe is one in which this node spends its
// uplink. A node that receives a stripe straight from a source is that
// stripe's interior node: the source sends each stripe to a few children
// only, so they must pass it on to everyone else. A node fed by no source
// directly takes the stripe its ID hashes to (treebuild.HomeStripe).
func (up *upside) home(stripe int) bool {
	up.mu.Lock()
	defer up.mu.Unlock()
	fed := false
	for i, p := range up.paths {
		if len(p) == 1 && up.stripeUp[i].Load() != nil {
			if i == stripe {
				return true
			}
			fed = true
		}
	}
	return !fed && treebuild.HomeStripe(up.s.node.host.ID(), up.s.stripes) == stripe
}

// reportFinished tells every upstream the current finished set, if it
// changed.
func (up *upside) reportFinished() {
	set := up.s.blocks.wanted()
	up.mu.Lock()
	if set == up.reported {
		up.mu.Unlock()
		return
	}
	up.reported = set
	ups := make([]*upstream, 0, len(up.set))
	for u := range up.set {
		ups = append(ups, u)
	}
	up.mu.Unlock()
	for _, u := range ups {
		u.sendFinished(set)
	}
}

// distrust marks the current upstreams as bad and drops them (a block they
// fed failed its hash).
func (up *upside) distrust() {
	ups := up.list()
	for _, u := range ups {
		up.book.markFailed(u.peer)
	}
	for _, u := range ups {
		u.close()
	}
}

// upstream is one subscription to a parent: a symbols stream whose symbols
// this node puts into its ring.
type upstream struct {
	s       *session
	peer    peer.ID
	stripes int
	stripe  int
	probe   bool
	stream  network.Stream
	reply   *protocol.SubscribeReply
	started time.Time
	// stopReset cancels the reset of the stream at the session's end.
	stopReset func() bool

	wmu sync.Mutex // serialises our control frames on the stream

	symbols   atomic.Uint64                           // symbols received
	recv      [protocol.MaxSourceBlocks]atomic.Uint32 // symbols received per block (credits count from these)
	fresh     atomic.Uint64                           // of which new to this node
	lastSym   atomic.Int64                            // unix nanoseconds of the last symbol
	lastFresh atomic.Int64                            // unix nanoseconds of the last new symbol
	width     atomic.Uint64                           // the parent's width, as it last told
	meter     *rateMeter                              // new bytes per second from this parent
	rawMeter  *rateMeter                              // all symbol bytes per second from this parent

	done       chan struct{}
	err        error
	evicted    atomic.Bool // the parent made room for another child; it is healthy
	redirected atomic.Bool // the parent named peers to go to before it left
	closeOnce  sync.Once
}

// errRefused is returned when a parent refuses a subscription.
type errRefused struct {
	peer     peer.ID
	code     treebuild.Refusal
	reason   string
	redirect []peer.AddrInfo
}

func (e *errRefused) Error() string {
	return fmt.Sprintf("%s refused: %s", e.peer, e.reason)
}

// errNoUpstreams is returned by subscribe once the session takes no more
// upstreams (its download is complete, or it is closing).
var errNoUpstreams = errors.New("session takes no more upstreams")

// subscribe opens a symbols stream to p for stripe (stripes, stripe) and
// completes the handshake; the upstream then reads in the side's group.
func (up *upside) subscribe(ai peer.AddrInfo, stripes, stripe int, probe bool) (*upstream, error) {
	s := up.s
	n := s.node
	tu := s.tuning()
	if len(ai.Addrs) > 0 {
		n.host.Peerstore().AddAddrs(ai.ID, ai.Addrs, time.Hour)
	}
	hctx, cancel := context.WithTimeout(s.ctx, tu.HandshakeTimeout)
	defer cancel()
	st, err := n.newStream(hctx, ai.ID, protocol.SymbolsID)
	if err != nil {
		return nil, fmt.Errorf("open symbols stream to %s: %w", ai.ID, err)
	}
	// The stream ends with the session, whatever it is waiting for.
	stopReset := context.AfterFunc(s.ctx, func() { _ = st.Reset() })
	registered := false
	defer func() {
		if !registered {
			stopReset()
		}
	}()
	if err := scopeStream(st); err != nil {
		_ = st.Reset()
		return nil, err
	}
	_ = st.SetDeadline(time.Now().Add(tu.HandshakeTimeout))
	msg, err := up.subscribeMessage(stripes, stripe, probe)
	if err != nil {
		_ = st.Reset()
		return nil, fmt.Errorf("subscribe to %s: %w", ai.ID, err)
	}
	if _, err := st.Write(msg); err != nil {
		_ = st.Reset()
		return nil, fmt.Errorf("subscribe to %s: %w", ai.ID, err)
	}
	br := bufio.NewReaderSize(st, tu.UpstreamBuffer)
	reply, err := protocol.ReadSubscribeReply(br)
	if err != nil {
		_ = st.Reset()
		return nil, fmt.Errorf("subscribe reply from %s: %w", ai.ID, err)
	}
	if !reply.Accepted {
		_ = st.Close()
		return nil, &errRefused{peer: ai.ID, code: treebuild.RefusalFromReason(reply.Reason), reason: reply.Reason, redirect: reply.Redirect}
	}
	_ = st.SetDeadline(time.Time{})
	if !probe && !s.isExtraSub(stripes) && up.setPath(stripe%max(1, s.stripes), reply.Path) {
		_ = st.Reset()
		return nil, &errRefused{peer: ai.ID, code: treebuild.RefuseLoop, reason: "its path contains this node"}
	}
	u := &upstream{
		s: s, peer: ai.ID, stripes: stripes, stripe: stripe, probe: probe,
		stream: st, reply: reply, started: time.Now(), stopReset: stopReset,
		meter: newRateMeter(), rawMeter: newRateMeter(), done: make(chan struct{}),
	}
	u.width.Store(reply.Width)
	u.lastSym.Store(time.Now().UnixNano())
	u.lastFresh.Store(time.Now().UnixNano())
	// Registration and the check that the side is open are one step: stop
	// sets closed under the same lock before it copies the set, so an
	// upstream is either in its copy or refused here.
	up.mu.Lock()
	if up.closed {
		up.mu.Unlock()
		_ = st.Reset()
		return nil, errNoUpstreams
	}
	up.set[u] = struct{}{}
	up.mu.Unlock()
	registered = true
	n.host.ConnManager().Protect(ai.ID, "roma-parent")
	if !up.g.Go(func() { u.run(br) }) {
		u.finish()
		return nil, errNoUpstreams
	}
	if s.fetch != nil {
		s.fetch.kickCredits()
	}
	return u, nil
}

// subscribeMessage encodes the subscription with its first credits and,
// for a parent (not a probe: it measures what the parent sends), which of
// their source symbols this node holds already, so that the parent neither
// sends them again nor takes them for symbols we missed.
func (up *upside) subscribeMessage(stripes, stripe int, probe bool) ([]byte, error) {
	s := up.s
	sub := protocol.Subscribe{CID: s.cid, Stripes: stripes, Stripe: stripe, Probe: probe, Finished: s.blocks.wanted()}
	var buf bytes.Buffer
	if err := protocol.WriteSubscribe(&buf, &sub); err != nil {
		return nil, err
	}
	msg := buf.Bytes()
	f := s.fetch
	if f == nil {
		return msg, nil
	}
	cr := up.initialCredits(stripes, stripe, probe)
	if len(cr) == 0 {
		return msg, nil
	}
	msg, err := protocol.AppendCreditFrame(msg, cr)
	if err != nil {
		return nil, err
	}
	for _, c := range cr {
		if h, ok := f.spill.held(int(c.SBN), max(1, stripes), stripe); ok && !probe {
			if msg, err = protocol.AppendHeldFrame(msg, h); err != nil {
				return nil, err
			}
		}
	}
	return msg, nil
}

// finish closes the stream and forgets the upstream.
func (u *upstream) finish() {
	up := u.s.up
	u.close()
	u.stopReset()
	up.mu.Lock()
	delete(up.set, u)
	up.mu.Unlock()
	u.s.node.host.ConnManager().Unprotect(u.peer, "roma-parent")
	close(u.done)
}

// run reads the parent's frames until the stream ends.
func (u *upstream) run(br *bufio.Reader) {
	s := u.s
	defer u.finish()
	fr := protocol.NewFrameReader(br, s.t)
	f := s.fetch
	for {
		fm, err := fr.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) && s.ctx.Err() == nil {
				u.err = err
				log.Debugw("upstream ended", "peer", u.peer, "err", err)
			}
			return
		}
		switch fm.Type {
		case protocol.FrameSymbol:
			u.symbols.Add(1)
			s.symbolsIn.Add(1)
			u.lastSym.Store(time.Now().UnixNano())
			u.rawMeter.add(len(fm.Payload))
			b := int(fm.SBN)
			if b >= s.numBlocks() {
				u.err = fmt.Errorf("symbol for block %d of %d", b, s.numBlocks())
				return
			}
			u.recv[b].Add(1)
			if s.isFinished(fm.SBN) {
				// In flight when we said we had it; our own generator
				// serves this block to our children.
				if u.probe {
					s.dupProbe.Add(1)
				} else {
					s.dupDone.Add(1)
				}
				continue
			}
			if f == nil || !f.spill.markSeen(b, fm.ESI) {
				if u.probe {
					s.dupProbe.Add(1)
				} else {
					s.dupRepeat.Add(1)
				}
				continue // duplicate: neither stored nor forwarded
			}
			u.fresh.Add(1)
			u.lastFresh.Store(time.Now().UnixNano())
			s.symbolsNew.Add(1)
			u.meter.add(len(fm.Payload))
			s.goodput.add(len(fm.Payload))
			if err := s.ring.Put(s.ctx, fm.SBN, fm.ESI, fm.Payload); err != nil {
				return
			}
		case protocol.FramePath:
			path, err := fm.Path()
			if err != nil {
				u.err = err
				return
			}
			if s.up.setPath(u.stripe, path) {
				log.Infow("loop: this node is on its new path; leaving the parent", "peer", u.peer)
				u.err = errors.New("loop in ancestor path")
				return
			}
		case protocol.FrameWidth:
			if w, err := fm.Width(); err == nil {
				u.width.Store(w)
			}
		case protocol.FrameRedirect:
			// The parent is about to leave and names peers to go to.
			if ais, err := fm.Redirect(); err == nil {
				s.up.book.learn(ais...)
				u.redirected.Store(true)
			}
		case protocol.FrameGoodbye:
			g, _ := fm.Goodbye()
			u.evicted.Store(g.Code == protocol.GoodbyeEvicted || g.Code == protocol.GoodbyeTooSlow)
			if g.Code == protocol.GoodbyeTooSlow && !u.probe {
				s.down.shed(u.stripe)
			}
			log.Debugw("parent said goodbye", "peer", u.peer, "code", g.Code, "text", g.Text)
			return
		}
	}
}

// write sends a control frame to the parent; it reports whether it went
// out.
func (u *upstream) write(frame []byte, what string) bool {
	u.wmu.Lock()
	defer u.wmu.Unlock()
	_ = u.stream.SetWriteDeadline(time.Now().Add(u.s.tuning().ControlTimeout))
	defer func() { _ = u.stream.SetWriteDeadline(time.Time{}) }()
	if _, err := u.stream.Write(frame); err != nil {
		log.Debugw(what, "peer", u.peer, "err", err)
		return false
	}
	return true
}

// sendFinished tells the parent which blocks to skip for this node.
func (u *upstream) sendFinished(set protocol.BlockSet) {
	u.write(protocol.AppendFinishedFrame(nil, set), "finished frame")
}

// sendCredits sends a credit frame; it reports whether the frame went out.
func (u *upstream) sendCredits(credits []protocol.Credit) bool {
	frame, err := protocol.AppendCreditFrame(nil, credits)
	if err != nil {
		log.Debugw("credit frame", "err", err)
		return false
	}
	return u.write(frame, "credit frame")
}

// close ends the subscription.
func (u *upstream) close() {
	u.closeOnce.Do(func() {
		u.wmu.Lock()
		_ = u.stream.SetWriteDeadline(time.Now().Add(u.s.tuning().GoodbyeTimeout))
		_, _ = u.stream.Write(protocol.AppendGoodbyeFrame(nil, protocol.GoodbyeNormal, ""))
		u.wmu.Unlock()
		_ = u.stream.Reset()
	})
}

// rate returns the goodput (new symbols) this parent delivers, bytes/s.
func (u *upstream) rate() float64 { return u.meter.rate() }

// widthOf converts a wire width into bytes/s (+Inf when unbounded).
func widthOf(w uint64) float64 {
	if w == protocol.WidthUnbounded {
		return math.Inf(1)
	}
	return float64(w)
}
