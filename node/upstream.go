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
	// status shares candidates' status answers among the stripes.
	status *statusCache
	// boundUntil (unix nanoseconds): until then a probe has shown that
	// this peer's own downlink limits it (width.go).
	boundUntil atomic.Int64

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
		status: newStatusCache(s.tuning().StatusMaxAge, func(ctx context.Context, ai peer.AddrInfo) (*protocol.Status, error) {
			return s.node.queryStatus(ctx, ai, s)
		}),
		book: newPeerBook(s.node.host.ID(), func(ai peer.AddrInfo) {
			s.node.host.Peerstore().AddAddrs(ai.ID, ai.Addrs, time.Hour)
		}, s.isBlamed),
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
	// own: the parent was complete when it took us (unbounded width), so
	// every symbol on this stream is one it made itself: a wrong repair
	// symbol from it names it (see keep).
	own bool
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

	// Repair symbols from this parent to pass on wait here until a source
	// symbol from it checks out (see holdRepair); guarded by heldMu.
	heldMu sync.Mutex
	held   []heldRepair
	spare  [][]byte
	nheld  atomic.Int32 // len(held), read without heldMu by releaseHeld
}

// heldRepair is a repair symbol waiting to be passed on.
type heldRepair struct {
	sbn  uint8
	esi  uint32
	data []byte
}

// maxHeldRepair bounds the repair symbols held per parent: past it they
// are passed on anyway (a parent that sends few source symbols).
const maxHeldRepair = 32

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
	if s.isBlamed(ai.ID) {
		return nil, &errRefused{peer: ai.ID, code: treebuild.RefuseOther, reason: "it sent bad data"}
	}
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
	u.own = reply.Width == protocol.WidthUnbounded
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
	// Runs after the runs below are flushed: held repair symbols are
	// passed on unless the parent proved wrong.
	defer func() {
		if s.isBlamed(u.peer) {
			u.dropHeld()
		} else {
			u.releaseHeld()
		}
	}()
	// From a whole-stream parent, consecutive source symbols of a block are
	// checked together.
	var runs *symbolRuns
	if leaf, err := protocol.TreeLeafSize(s.manifest); err == nil && u.stripes == 1 && leaf == s.t && protocol.RunBytes/s.t >= 2 {
		runs = &symbolRuns{}
		defer func() {
			// What the runs still hold when the parent leaves is checked
			// and kept (the parent counted it against our credit).
			runs.stopTimer()
			runs.mu.Lock()
			defer runs.mu.Unlock()
			runs.closed = true
			if runs.err == nil && s.ctx.Err() == nil {
				_ = u.flushRuns(f, runs)
			}
		}()
	}
	for {
		if runs != nil {
			// While the reader waits for the next frame, a timer checks
			// what the runs hold (a read deadline would do it on this
			// goroutine, but yamux sends its window updates under the read
			// deadline: one that expired lost an update now and then, and
			// the parent's writer waited for window for ever).
			runs.armTimer(func() { u.flushRunsLater(f, runs) }, br.Buffered() == 0)
		}
		fm, err := fr.Next()
		if runs != nil {
			runs.stopTimer()
		}
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
			u.lastSym.Store(time.Now().UnixNano())
			u.rawMeter.add(len(fm.Payload))
			s.inRate.add(len(fm.Payload))
			b := int(fm.SBN)
			if b >= s.numBlocks() {
				u.err = fmt.Errorf("symbol for block %d of %d", b, s.numBlocks())
				log.Infow("parent sent a symbol of a block outside the manifest: leaving it", "cid", s.cid, "peer", u.peer, "block", b)
				return
			}
			u.recv[b].Add(1)
			if runs != nil {
				runs.mu.Lock()
				held, err := false, runs.err
				if err == nil {
					held, err = u.addToRun(f, runs, fm)
				}
				runs.mu.Unlock()
				if err != nil {
					u.err = err
					return
				}
				if held {
					continue
				}
			}
			if !u.take(f, fm) {
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

// take handles one symbol from the parent. A source symbol is checked
// against its block's tree first (fetched from this parent if need be),
// then, if new, put into the ring: the sink stores it, children get it. A
// repair symbol is stored with its sender's name, or unnamed with the relay
// it came from, and passed on only when named and not strict: it is
// checked once its block decodes (protocol/SPEC.md, "Repair symbols").
// take reports false when the subscription must end: bad data (the parent
// is blamed), a parent that cannot show the tree of a block it sends, or
// the session's end.
func (u *upstream) take(f *fetchState, fm protocol.Frame) bool {
	s := u.s
	if !u.wanted(f, fm) {
		// A source symbol not needed is still checked when its tree is
		// here (one hash): a wrong one proves its sender wrong all the
		// same, and a parent that sends wrong duplicates is not kept.
		if fm.ESI < s.ks[fm.SBN] && s.trees.ok {
			if t := s.trees.get(fm.SBN); t != nil {
				if err := t.VerifySymbol(fm.ESI, fm.Payload); err != nil {
					u.bad(fm.SBN, fm.ESI, err)
					return false
				}
				return u.releaseHeld()
			}
		}
		return true
	}
	if fm.ESI < s.ks[fm.SBN] && s.trees.ok {
		t, ok := u.tree(fm.SBN)
		if !ok {
			return false
		}
		if err := t.VerifySymbol(fm.ESI, fm.Payload); err != nil {
			u.bad(fm.SBN, fm.ESI, err)
			return false
		}
	}
	return u.keep(f, fm.SBN, fm.ESI, fm.Payload)
}

// wanted reports whether a symbol is worth checking: its block is not
// decoded and its ESI not held (counting it as waste otherwise).
func (u *upstream) wanted(f *fetchState, fm protocol.Frame) bool {
	s := u.s
	if s.isFinished(fm.SBN) {
		// In flight when we said we had it; our own generator
		// serves this block to our children.
		if u.probe {
			s.dupProbe.Add(1)
		} else {
			s.dupDone.Add(1)
		}
		return false
	}
	if f == nil {
		return false
	}
	if f.spill.isSeen(int(fm.SBN), fm.ESI) {
		u.countDup()
		return false // duplicate: neither stored nor forwarded
	}
	return true
}

// tree returns the checked tree of block b, fetching it from this parent
// when need be; false means the subscription ends (the parent is blamed
// when it has no tree for a block whose source symbols it sends).
func (u *upstream) tree(b uint8) (*protocol.BlockTree, bool) {
	s := u.s
	if t := s.trees.get(b); t != nil {
		return t, true
	}
	start := time.Now()
	t, err := s.trees.await(s.ctx, b, u.peer)
	if d := time.Since(start); d > 50*time.Millisecond {
		log.Debugw("waited for a block's tree data", "peer", u.peer, "block", b, "seconds", d.Seconds(), "err", err)
	}
	if errors.Is(err, errTreeUnavailable) {
		s.badSymbols.Add(1)
		s.blame(u.peer, fmt.Sprintf("sent source symbols of block %d without its tree data", b))
		u.err = err
		return nil, false
	}
	if err != nil {
		if s.ctx.Err() == nil {
			log.Infow("no tree data from the parent: leaving it", "cid", s.cid, "peer", u.peer, "block", b, "err", err)
		}
		u.err = err
		return nil, false
	}
	return t, true
}

// bad blames the parent for source symbol esi of block sbn, which failed
// its tree, and ends the subscription with err (reader goroutine only).
func (u *upstream) bad(sbn uint8, esi uint32, err error) {
	u.blameSymbol(sbn, esi, err)
	u.err = err
}

// blameSymbol blames the parent for source symbol esi of block sbn, which
// failed its tree. It leaves u.err to the reader: the runs' timer calls it
// too.
func (u *upstream) blameSymbol(sbn uint8, esi uint32, err error) {
	u.dropHeld()
	u.s.badSymbols.Add(1)
	u.s.blameFor(u.peer, err.Error(), &SymbolRef{Block: sbn, ESI: esi})
}

// keep stores a checked (or repair) symbol if it is new: a source symbol
// goes into the ring, a repair symbol to the spill file with its sender.
func (u *upstream) keep(f *fetchState, sbn uint8, esi uint32, payload []byte) bool {
	s := u.s
	b := int(sbn)
	if esi < s.ks[b] && !u.releaseHeld() {
		return false
	}
	if s.isFinished(sbn) {
		s.dupDone.Add(1)
		return true
	}
	unnamed := esi >= s.ks[b] && !s.tuning().StrictRepair && !u.own
	if unnamed && f.via.isDistrusted(u.peer) {
		// Repair symbols this relay forwarded proved wrong: its later
		// ones are neither stored nor passed on (the ESI stays open).
		u.countDup()
		return true
	}
	if !f.spill.markSeen(b, esi) {
		u.countDup()
		return true
	}
	u.fresh.Add(1)
	u.lastFresh.Store(time.Now().UnixNano())
	s.symbolsNew.Add(1)
	u.meter.add(len(payload))
	s.goodput.add(len(payload))
	if esi >= s.ks[b] {
		// Stored here (the sink leaves repair symbols alone) with its
		// sender's name when the sender made it: always with strict
		// repair symbols (Tuning.StrictRepair), otherwise only from a
		// parent that was complete when it took us; a relay still
		// fetching may have forwarded it, and a wrong one must not be
		// blamed on it (it keeps the relay as its via). Passed on only
		// when named and not strict: an unnamed one stops here, so a
		// wrong relay's repair symbols reach its own children only, where
		// they all share one via (passed on, they spoiled blocks two and
		// three hops down under several honest vias at once).
		from := u.peer
		if unnamed {
			from = ""
			f.via.note(b, esi, u.peer)
		}
		n, err := f.spill.addFrom(b, esi, payload, from)
		if err != nil {
			f.fail(err)
			return false
		}
		if n >= int(f.need[b].Load()) {
			f.scheduleDecode(b)
		}
		if s.tuning().StrictRepair || unnamed {
			return true
		}
		return u.holdRepair(sbn, esi, payload)
	}
	return s.ring.Put(s.ctx, sbn, esi, payload) == nil
}

// holdRepair keeps a repair symbol to pass on until the next source symbol
// from the same parent checks out (keep releases it then), so that a
// parent that turns wrong, whose wrong source symbols are caught at once,
// has its repair symbols of the same moment dropped with it rather than
// passed on to this node's children, where they would spoil decoding
// without naming anyone. Past maxHeldRepair they are passed on anyway.
func (u *upstream) holdRepair(sbn uint8, esi uint32, payload []byte) bool {
	u.heldMu.Lock()
	var buf []byte
	if n := len(u.spare); n > 0 {
		buf, u.spare = u.spare[n-1][:0], u.spare[:n-1]
	}
	u.held = append(u.held, heldRepair{sbn, esi, append(buf, payload...)})
	u.nheld.Store(int32(len(u.held)))
	full := len(u.held) >= maxHeldRepair
	u.heldMu.Unlock()
	if full {
		return u.releaseHeld()
	}
	return true
}

// releaseHeld passes on the held repair symbols; false means the ring is
// closed (the session ends).
func (u *upstream) releaseHeld() bool {
	if u.nheld.Load() == 0 {
		return true // the common case: it runs for every source symbol
	}
	u.heldMu.Lock()
	defer u.heldMu.Unlock()
	if len(u.held) == 0 {
		return true
	}
	s := u.s
	ok := true
	for _, h := range u.held {
		if ok && s.ring.Put(s.ctx, h.sbn, h.esi, h.data) != nil {
			ok = false
		}
		u.spare = append(u.spare, h.data)
	}
	u.held = u.held[:0]
	u.nheld.Store(0)
	return ok
}

// dropHeld forgets the held repair symbols (the parent proved wrong).
func (u *upstream) dropHeld() {
	u.heldMu.Lock()
	defer u.heldMu.Unlock()
	for _, h := range u.held {
		u.spare = append(u.spare, h.data)
	}
	u.held = u.held[:0]
	u.nheld.Store(0)
}

// symbolRun gathers consecutive source symbols of one block from a
// whole-stream parent until they form a run that one BLAKE3 pass checks
// (protocol.BlockTree.VerifyRun): the SIMD kernels hash 16 KiB at once, a
// 4 KiB symbol alone leaves three quarters of them idle. Runs hold symbols
// only while the next frame is already arriving, so nothing waits for
// them.
type symbolRun struct {
	buf   [protocol.RunBytes]byte
	tree  *protocol.BlockTree
	sbn   uint8
	first uint32
	n     int // symbols held
	size  int // symbols in a run
}

// symbolRuns are the runs of one upstream, one per block (the sender goes
// round the blocks of a window, one symbol each). The reader uses them; a
// timer armed while the reader waits for a frame checks what they hold.
type symbolRuns struct {
	mu     sync.Mutex
	by     [protocol.MaxSourceBlocks]*symbolRun
	active []*symbolRun // runs holding symbols
	free   []*symbolRun
	err    error // a wrong symbol found by the timer: the subscription ends
	closed bool  // the reader has left

	timer *time.Timer // the reader's only
}

// runWait is how long runs wait for the next frame before they are
// checked as they are.
const runWait = 2 * time.Millisecond

// armTimer makes flush run after runWait when the runs hold symbols and
// nothing of the next frame is here yet (a parent writes whole frames, so
// part of one means the rest is on its way).
func (rs *symbolRuns) armTimer(flush func(), idle bool) {
	rs.mu.Lock()
	arm := idle && len(rs.active) > 0
	rs.mu.Unlock()
	if arm {
		rs.timer = time.AfterFunc(runWait, flush)
	}
}

// stopTimer disarms the timer; a flush already started finishes under mu,
// which the reader takes next.
func (rs *symbolRuns) stopTimer() {
	if rs.timer != nil {
		rs.timer.Stop()
		rs.timer = nil
	}
}

// flushRunsLater is the timer's check of the runs.
func (u *upstream) flushRunsLater(f *fetchState, rs *symbolRuns) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.closed || rs.err != nil {
		return
	}
	if err := u.flushRuns(f, rs); err != nil {
		rs.err = err
		// The reader ends the subscription at its next symbol; the stream
		// ends now.
		u.closeWith(protocol.GoodbyeBadData, err.Error())
	}
}

// addToRun puts source symbol fm into its block's run when it continues
// it or can start one; held reports that the run holds it now. An error
// means the subscription ends (a wrong symbol: the parent is blamed).
func (u *upstream) addToRun(f *fetchState, rs *symbolRuns, fm protocol.Frame) (held bool, err error) {
	s := u.s
	T := len(fm.Payload)
	if r := rs.by[fm.SBN]; r != nil {
		if fm.ESI == r.first+uint32(r.n) {
			copy(r.buf[r.n*T:(r.n+1)*T], fm.Payload)
			r.n++
			if r.n == r.size {
				return true, u.flushRun(f, rs, r)
			}
			return true, nil
		}
		if err := u.flushRun(f, rs, r); err != nil {
			return false, err
		}
	}
	if fm.ESI >= s.ks[fm.SBN] || !u.wanted(f, fm) {
		return false, nil
	}
	t := s.trees.get(fm.SBN)
	if t == nil {
		return false, nil
	}
	n := t.RunSymbols()
	if n < 2 || fm.ESI%uint32(n) != 0 || (uint64(fm.ESI)+uint64(n))*uint64(T) > t.Layout().Length {
		return false, nil
	}
	var r *symbolRun
	if k := len(rs.free); k > 0 {
		r, rs.free = rs.free[k-1], rs.free[:k-1]
	} else {
		r = new(symbolRun)
	}
	r.tree, r.sbn, r.first, r.n, r.size = t, fm.SBN, fm.ESI, 1, n
	copy(r.buf[:T], fm.Payload)
	rs.by[fm.SBN] = r
	rs.active = append(rs.active, r)
	return true, nil
}

// flushRuns checks and keeps what every run holds (rs.mu held).
func (u *upstream) flushRuns(f *fetchState, rs *symbolRuns) error {
	for len(rs.active) > 0 {
		if err := u.flushRun(f, rs, rs.active[0]); err != nil {
			return err
		}
	}
	return nil
}

// flushRun checks the symbols run r holds (in one pass when it is whole),
// keeps the right ones and retires the run (rs.mu held). A wrong symbol
// blames the parent and returns its error.
func (u *upstream) flushRun(f *fetchState, rs *symbolRuns, r *symbolRun) error {
	n := r.n
	rs.by[r.sbn] = nil
	rs.active = slices.DeleteFunc(rs.active, func(x *symbolRun) bool { return x == r })
	defer func() {
		r.n, r.tree = 0, nil
		rs.free = append(rs.free, r)
	}()
	T := u.s.t
	good, err := n, error(nil)
	if n == r.size {
		if bad, e := r.tree.VerifyRun(r.first, &r.buf); bad >= 0 {
			good, err = bad, e
		}
	} else {
		for i := 0; i < n; i++ {
			if e := r.tree.VerifySymbol(r.first+uint32(i), r.buf[i*T:(i+1)*T]); e != nil {
				good, err = i, e
				break
			}
		}
	}
	for i := 0; i < good; i++ {
		if !u.keep(f, r.sbn, r.first+uint32(i), r.buf[i*T:(i+1)*T]) {
			return errSubscriptionEnded
		}
	}
	if err != nil {
		u.blameSymbol(r.sbn, r.first+uint32(good), err)
		return err
	}
	return nil
}

// errSubscriptionEnded ends a subscription whose symbols can no longer be
// kept (the session is ending, or its spill file failed).
var errSubscriptionEnded = errors.New("subscription ended")

// countDup counts a symbol already held.
func (u *upstream) countDup() {
	if u.probe {
		u.s.dupProbe.Add(1)
	} else {
		u.s.dupRepeat.Add(1)
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

// sendCredits sends a credit frame after the frames in before, in one
// write; it reports whether they went out.
func (u *upstream) sendCredits(before []byte, credits []protocol.Credit) bool {
	frame, err := protocol.AppendCreditFrame(before, credits)
	if err != nil {
		log.Debugw("credit frame", "err", err)
		return false
	}
	return u.write(frame, "credit frame")
}

// close ends the subscription.
func (u *upstream) close() { u.closeWith(protocol.GoodbyeNormal, "") }

// closeWith ends the subscription with a goodbye of the given code.
func (u *upstream) closeWith(code protocol.GoodbyeCode, text string) {
	u.closeOnce.Do(func() {
		u.wmu.Lock()
		_ = u.stream.SetWriteDeadline(time.Now().Add(u.s.tuning().GoodbyeTimeout))
		_, _ = u.stream.Write(protocol.AppendGoodbyeFrame(nil, code, text))
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
