package node

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/romap2p/romap2p/protocol"
)

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
	reason   string
	redirect []peer.AddrInfo
}

func (e *errRefused) Error() string {
	return fmt.Sprintf("%s refused: %s", e.peer, e.reason)
}

// subscribe opens a symbols stream to p for stripe (stripes, stripe) and
// completes the handshake. The returned upstream is not yet reading.
func (s *session) subscribe(ctx context.Context, ai peer.AddrInfo, stripes, stripe int, probe bool) (*upstream, error) {
	n := s.node
	if len(ai.Addrs) > 0 {
		n.host.Peerstore().AddAddrs(ai.ID, ai.Addrs, time.Hour)
	}
	hctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	st, err := n.host.NewStream(hctx, ai.ID, protocol.SymbolsID)
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
	_ = st.SetDeadline(time.Now().Add(handshakeTimeout))
	sub := protocol.Subscribe{CID: s.cid, Stripes: stripes, Stripe: stripe, Probe: probe, Finished: s.upstreamFinished()}
	var buf bytes.Buffer
	if err := protocol.WriteSubscribe(&buf, &sub); err != nil {
		_ = st.Reset()
		return nil, fmt.Errorf("subscribe to %s: %w", ai.ID, err)
	}
	msg := buf.Bytes()
	if f := s.fetch; f != nil {
		// The first credits go with the subscription.
		if cr := f.initialCredits(stripes, stripe, probe); len(cr) > 0 {
			var err error
			if msg, err = protocol.AppendCreditFrame(msg, cr); err != nil {
				_ = st.Reset()
				return nil, fmt.Errorf("subscribe to %s: %w", ai.ID, err)
			}
			// And which of their source symbols we hold already, so
			// that the parent neither sends them again nor takes them
			// for symbols we missed. (Not for a probe: it measures what
			// the parent sends.)
			for _, c := range cr {
				if h, ok := f.spill.held(int(c.SBN), max(1, stripes), stripe); ok && !probe {
					if msg, err = protocol.AppendHeldFrame(msg, h); err != nil {
						_ = st.Reset()
						return nil, fmt.Errorf("subscribe to %s: %w", ai.ID, err)
					}
				}
			}
		}
	}
	if _, err := st.Write(msg); err != nil {
		_ = st.Reset()
		return nil, fmt.Errorf("subscribe to %s: %w", ai.ID, err)
	}
	br := bufio.NewReaderSize(st, 128<<10)
	reply, err := protocol.ReadSubscribeReply(br)
	if err != nil {
		_ = st.Reset()
		return nil, fmt.Errorf("subscribe reply from %s: %w", ai.ID, err)
	}
	if !reply.Accepted {
		_ = st.Close()
		return nil, &errRefused{peer: ai.ID, reason: reply.Reason, redirect: reply.Redirect}
	}
	_ = st.SetDeadline(time.Time{})
	if !probe && !s.isExtraSub(stripes) && s.setPath(stripe%max(1, s.stripes), reply.Path) {
		_ = st.Reset()
		return nil, &errRefused{peer: ai.ID, reason: "its path contains this node"}
	}
	u := &upstream{
		s: s, peer: ai.ID, stripes: stripes, stripe: stripe, probe: probe,
		stream: st, reply: reply, started: time.Now(), stopReset: stopReset,
		meter: newRateMeter(), rawMeter: newRateMeter(), done: make(chan struct{}),
	}
	u.width.Store(reply.Width)
	u.lastSym.Store(time.Now().UnixNano())
	u.lastFresh.Store(time.Now().UnixNano())
	// Registration and the check that the session still takes upstreams
	// are one step: close and stopUpstreams set upClosed under the same
	// lock before they copy the set, so an upstream is either in their
	// copy or refused here.
	s.mu.Lock()
	if s.upClosed {
		s.mu.Unlock()
		_ = st.Reset()
		return nil, errNoUpstreams
	}
	s.upstreams[u] = struct{}{}
	s.mu.Unlock()
	registered = true
	n.host.ConnManager().Protect(ai.ID, "roma-parent")
	if !s.g.Go(func() { u.run(br) }) {
		u.finish()
		return nil, errNoUpstreams
	}
	if s.fetch != nil {
		s.fetch.kickCredits()
	}
	return u, nil
}

// errNoUpstreams is returned by subscribe once the session takes no more
// upstreams (its download is complete, or it is closing).
var errNoUpstreams = errors.New("session takes no more upstreams")

// finish closes the stream and forgets the upstream.
func (u *upstream) finish() {
	s := u.s
	u.close()
	u.stopReset()
	s.mu.Lock()
	delete(s.upstreams, u)
	s.mu.Unlock()
	s.node.host.ConnManager().Unprotect(u.peer, "roma-parent")
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
			if b >= s.blocks() {
				u.err = fmt.Errorf("symbol for block %d of %d", b, s.blocks())
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
			if s.setPath(u.stripe, path) {
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
			if ais, err := fm.Redirect(); err == nil && f != nil {
				f.learn(ais...)
				u.redirected.Store(true)
			}
		case protocol.FrameGoodbye:
			g, _ := fm.Goodbye()
			u.evicted.Store(g.Code == protocol.GoodbyeEvicted || g.Code == protocol.GoodbyeTooSlow)
			if g.Code == protocol.GoodbyeTooSlow && !u.probe {
				s.shedStripe(u.stripe)
			}
			log.Debugw("parent said goodbye", "peer", u.peer, "code", g.Code, "text", g.Text)
			return
		}
	}
}

// sendFinished tells the parent which blocks to skip for this node.
func (u *upstream) sendFinished(set protocol.BlockSet) {
	u.wmu.Lock()
	defer u.wmu.Unlock()
	_ = u.stream.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := u.stream.Write(protocol.AppendFinishedFrame(nil, set)); err != nil {
		log.Debugw("finished frame", "peer", u.peer, "err", err)
	}
	_ = u.stream.SetWriteDeadline(time.Time{})
}

// sendCredits sends a credit frame; it reports whether the frame went out.
func (u *upstream) sendCredits(credits []protocol.Credit) bool {
	frame, err := protocol.AppendCreditFrame(nil, credits)
	if err != nil {
		log.Debugw("credit frame", "err", err)
		return false
	}
	u.wmu.Lock()
	defer u.wmu.Unlock()
	_ = u.stream.SetWriteDeadline(time.Now().Add(5 * time.Second))
	defer func() { _ = u.stream.SetWriteDeadline(time.Time{}) }()
	if _, err := u.stream.Write(frame); err != nil {
		log.Debugw("credit frame", "peer", u.peer, "err", err)
		return false
	}
	return true
}

// close ends the subscription.
func (u *upstream) close() {
	u.closeOnce.Do(func() {
		u.wmu.Lock()
		_ = u.stream.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = u.stream.Write(protocol.AppendGoodbyeFrame(nil, protocol.GoodbyeNormal, ""))
		u.wmu.Unlock()
		_ = u.stream.Reset()
	})
}

// rate returns the goodput (new symbols) this parent delivers, bytes/s.
func (u *upstream) rate() float64 { return u.meter.rate() }

// stopUpstreams closes every upstream and takes no new ones (the node no
// longer needs parents).
func (s *session) stopUpstreams() {
	s.mu.Lock()
	s.upClosed = true
	ups := make([]*upstream, 0, len(s.upstreams))
	for u := range s.upstreams {
		ups = append(ups, u)
	}
	s.mu.Unlock()
	for _, u := range ups {
		u.close()
	}
	for _, u := range ups {
		<-u.done
	}
}

// widthOf converts a wire width into bytes/s (+Inf when unbounded).
func widthOf(w uint64) float64 {
	if w == protocol.WidthUnbounded {
		return math.Inf(1)
	}
	return float64(w)
}
