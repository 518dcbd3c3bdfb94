package node

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/romap2p/romap2p/fountain"
	"github.com/romap2p/romap2p/protocol"
	"github.com/romap2p/romap2p/relay"
)

// session is one CID on this node: the manifest, the ring every symbol goes
// through, the children fed from it and, while fetching, the upstreams that
// fill it and the sink that decodes.
type session struct {
	node     *Node
	cid      cid.Cid
	manifest *protocol.Manifest
	mbytes   []byte
	oti      fountain.OTI
	t        int
	maxK     int // the most source symbols of a block
	stripes  int
	ring     *relay.Ring
	created  time.Time

	ctx    context.Context
	cancel context.CancelFunc
	// g runs every goroutine of the session; close waits for them.
	g group

	mu       sync.Mutex
	complete bool // the original source, or a finished download
	finished protocol.BlockSet
	pending  protocol.BlockSet // enough symbols held, decode pending
	// finishedBits mirrors finished for lock-free reads on the symbol path.
	finishedBits [protocol.MaxSourceBlocks / 64]atomic.Uint64
	finishedAt   [protocol.MaxSourceBlocks]time.Time
	children     map[*child]struct{}
	upstreams    map[*upstream]struct{}
	// upClosed is set once the session stops taking upstreams (download
	// complete, or closing): an upstream whose handshake ends after that
	// is reset instead of registered.
	upClosed bool
	paths    []([]peer.ID) // per stripe: ancestors from the source down to this node
	genStop  context.CancelFunc
	doneCh   chan struct{} // closed when the whole file is here and verified
	doneErr  error
	lastGood time.Time // last time a new symbol arrived

	// slow holds peers the original source found too slow to carry a
	// stripe, until when they may not take one again.
	slow map[peer.ID]time.Time
	// reported is the finished set last sent upstream.
	reported protocol.BlockSet

	fetch *fetchState // nil for the original source

	// counters
	symbolsIn  atomic.Uint64              // symbols that arrived from upstreams
	symbolsNew atomic.Uint64              // of which new to this node (not duplicates, not finished blocks)
	dupProbe   atomic.Uint64              // symbols wasted: from probes,
	dupDone    atomic.Uint64              // of blocks already held in full,
	dupRepeat  atomic.Uint64              // already held (same ESI)
	uploaded   atomic.Uint64              // bytes written to children (symbol frames)
	reparents  atomic.Uint64              // parent switches made on measurements
	stripeUp   []atomic.Pointer[upstream] // current parent per stripe
	goodput    *rateMeter                 // new symbol bytes per second

	closers []func() error // files to close with the session

	demandPtr atomic.Pointer[demandSnap]
	wake      chan struct{}
}

// newSession builds a session for a verified manifest.
func newSession(n *Node, c cid.Cid, m *protocol.Manifest, mbytes []byte) (*session, error) {
	o := m.OTI()
	oti := fountain.OTI{F: o.F, T: o.T, Z: o.Z, N: o.N, Al: o.Al}
	ring, err := relay.New(int(o.T), n.cfg.ringOptions()...)
	if err != nil {
		return nil, fmt.Errorf("session %s: %w", c, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &session{
		node:      n,
		cid:       c,
		manifest:  m,
		mbytes:    mbytes,
		oti:       oti,
		t:         int(o.T),
		stripes:   n.cfg.stripes,
		ring:      ring,
		created:   time.Now(),
		ctx:       ctx,
		cancel:    cancel,
		children:  make(map[*child]struct{}),
		slow:      make(map[peer.ID]time.Time),
		upstreams: make(map[*upstream]struct{}),
		paths:     make([][]peer.ID, n.cfg.stripes),
		doneCh:    make(chan struct{}),
		goodput:   newRateMeter(),
		wake:      make(chan struct{}, 1),
		stripeUp:  make([]atomic.Pointer[upstream], n.cfg.stripes),
	}
	for b := 0; b < oti.Blocks(); b++ {
		s.maxK = max(s.maxK, oti.BlockSymbols(b))
	}
	return s, nil
}

// neededSymbols is K summed over the blocks.
func (s *session) neededSymbols() int {
	n := 0
	for b := 0; b < s.blocks(); b++ {
		n += s.oti.BlockSymbols(b)
	}
	return n
}

// blocks returns Z, the number of source blocks.
func (s *session) blocks() int { return len(s.manifest.BlockHashes) }

// setStripeUpstream records the current parent of a stripe.
func (s *session) setStripeUpstream(stripe int, u *upstream) {
	if stripe < len(s.stripeUp) {
		s.stripeUp[stripe].Store(u)
	}
}

// stripeWidth is the rate at which this node receives the symbols of one
// stripe (bytes/s): what a child would get under it at best. +Inf when the
// node generates every symbol itself.
func (s *session) stripeWidth(stripe int) float64 {
	if s.isComplete() {
		return math.Inf(1)
	}
	if stripe < len(s.stripeUp) {
		if u := s.stripeUp[stripe].Load(); u != nil {
			return u.rawMeter.rate()
		}
	}
	return 0
}

// wireWidth is stripeWidth in the protocol's encoding.
func (s *session) wireWidth(stripe int) uint64 {
	w := s.stripeWidth(stripe)
	if math.IsInf(w, 1) {
		return protocol.WidthUnbounded
	}
	return uint64(w)
}

// path returns this node's ancestor path in stripe i, ending with itself.
func (s *session) path(stripe int) []peer.ID {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pathLocked(stripe)
}

func (s *session) pathLocked(stripe int) []peer.ID {
	self := s.node.host.ID()
	if s.complete || stripe >= len(s.paths) {
		return []peer.ID{self}
	}
	p := s.paths[stripe]
	out := make([]peer.ID, 0, len(p)+1)
	out = append(out, p...)
	return append(out, self)
}

// setPath records the ancestor path of stripe i from a new parent, and
// reports whether this node appears in it (a loop).
func (s *session) setPath(stripe int, ancestors []peer.ID) bool {
	self := s.node.host.ID()
	loop := slices.Contains(ancestors, self)
	s.mu.Lock()
	if stripe < len(s.paths) && !loop {
		s.paths[stripe] = slices.Clone(ancestors)
	}
	kids := s.childrenLocked()
	s.mu.Unlock()
	if !loop {
		for _, c := range kids {
			if c.stripe == stripe || c.stripes != s.stripes {
				c.sendPath(s.path(stripe))
			}
		}
	}
	return loop
}

func (s *session) childrenLocked() []*child {
	out := make([]*child, 0, len(s.children))
	for c := range s.children {
		out = append(out, c)
	}
	return out
}

// isComplete reports whether the node has the whole file.
func (s *session) isComplete() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.complete
}

// finishedSet returns the blocks this node has.
func (s *session) finishedSet() protocol.BlockSet {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.finished
}

// upstreamFinished is the set to report to parents: the blocks this node
// has decoded, and those that hold enough symbols to decode. A relay does not
// need a parent's symbols of a block it has: it generates fresh ones for its
// children from its own copy.
func (s *session) upstreamFinished() protocol.BlockSet {
	s.mu.Lock()
	defer s.mu.Unlock()
	set := s.finished
	for i := range set {
		set[i] |= s.pending[i]
	}
	return set
}

// setPending marks or clears "enough symbols held" for block b and tells the
// parents when that changes what they should send.
func (s *session) setPending(b int, on bool) {
	s.mu.Lock()
	if on {
		s.pending.Add(uint8(b))
	} else {
		s.pending.Remove(uint8(b))
	}
	s.mu.Unlock()
	s.reportFinished()
}

// reportFinished tells every upstream the current finished set, if it
// changed.
func (s *session) reportFinished() {
	set := s.upstreamFinished()
	s.mu.Lock()
	if set == s.reported {
		s.mu.Unlock()
		return
	}
	s.reported = set
	ups := make([]*upstream, 0, len(s.upstreams))
	for u := range s.upstreams {
		ups = append(ups, u)
	}
	s.mu.Unlock()
	for _, u := range ups {
		u.sendFinished(set)
	}
}

// close stops everything the session runs and waits for it.
func (s *session) close() {
	s.cancel()
	_ = s.ring.Close()
	s.mu.Lock()
	s.upClosed = true
	kids := s.childrenLocked()
	ups := make([]*upstream, 0, len(s.upstreams))
	for u := range s.upstreams {
		ups = append(ups, u)
	}
	s.mu.Unlock()
	for _, c := range kids {
		c.close("session closed")
	}
	for _, u := range ups {
		u.close()
	}
	s.g.closeAndWait()
	if s.fetch != nil {
		s.fetch.abort(ErrClosed)
		s.fetch.close()
	}
	for _, c := range s.closers {
		_ = c()
	}
}

// rateMeter measures a rate in bytes per second. Adding is one atomic
// increment (it runs for every symbol); the rate is worked out when read,
// from samples of the running total taken by the readers, over roughly the
// last window (or since the previous read, when reads are further apart).
type rateMeter struct {
	total  atomic.Uint64
	window time.Duration

	mu      sync.Mutex
	samples []rateSample // oldest first, guarded by mu
}

type rateSample struct {
	at    time.Time
	total uint64
}

func newRateMeter() *rateMeter {
	m := &rateMeter{window: 2 * time.Second}
	m.samples = append(m.samples, rateSample{at: time.Now()})
	return m
}

// add records n bytes.
func (m *rateMeter) add(n int) { m.total.Add(uint64(n)) }

// rate returns bytes per second since the newest sample at least a window
// old (or the oldest sample there is).
func (m *rateMeter) rate() float64 {
	now, total := time.Now(), m.total.Load()
	m.mu.Lock()
	defer m.mu.Unlock()
	// Keep one sample older than the window as the base, drop the rest.
	for len(m.samples) > 1 && now.Sub(m.samples[1].at) >= m.window {
		m.samples = m.samples[1:]
	}
	base := m.samples[0]
	if last := m.samples[len(m.samples)-1]; now.Sub(last.at) >= m.window/8 {
		m.samples = append(m.samples, rateSample{at: now, total: total})
	}
	el := now.Sub(base.at)
	if el <= 0 {
		return 0
	}
	return float64(total-base.total) / el.Seconds()
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

// windowBlocks is how many of its first unfinished blocks a child is sent
// at a time. A small window lets blocks complete early (relays then serve
// them from their own copy), keeps a receiver's pending symbols within its
// in-memory budget and a generator's blocks within its encoder cache. (On
// Table I, 8 stripes, 256 MiB: 8 blocks took 27.8-28.2 s, 32 blocks
// 28.8-33.9 s with a third more system time for spill and scratch I/O.)
const windowBlocks = 8

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

// stripeWant returns the most symbols of block sbn that one of the
// children in stripe (stripes, stripe) may still be sent beyond those
// waiting for it in the ring: what this node's parent in that stripe must
// still send for them. Probes, whole-stream extras of a striped session and
// children without budgets do not count.
func (d *demandSnap) stripeWant(stripes, stripe, sbn int) int {
	want := 0
	for i := range d.subs {
		w := &d.subs[i]
		if w.probe || w.cons == nil || int(w.stripes) != stripes || int(w.stripe) != stripe || !w.win.Has(uint8(sbn)) {
			continue
		}
		if n, ok := w.cons.Budget(uint8(sbn)); ok && n > want {
			want = n
		}
	}
	return want
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
func (s *session) demand() *demandSnap {
	if d := s.demandPtr.Load(); d != nil {
		return d
	}
	return &demandSnap{}
}

// refreshDemand rebuilds the demand snapshot and wakes the generator.
func (s *session) refreshDemand() {
	s.mu.Lock()
	mine, fresh := s.servableLocked()
	d := &demandSnap{mine: mine, fresh: fresh, subs: make([]childWant, 0, len(s.children))}
	for c := range s.children {
		d.subs = append(d.subs, childWant{stripes: uint32(max(1, c.stripes)), stripe: uint32(c.stripe), probe: c.probe, win: window(c.finished(), s.blocks(), windowBlocks), cons: c.cons})
	}
	s.mu.Unlock()
	s.demandPtr.Store(d)
	s.wakeGenerator()
}

// serveGrace is how long a relay waits after decoding a block before it
// generates repair symbols of that block for its children: the symbols it
// already forwarded are usually enough for them, and repair symbols need
// the block's intermediate symbols, which cost about as much as decoding
// it. Source symbols a child missed cost only a read and are sent at once.
const serveGrace = 500 * time.Millisecond

// servableLocked returns the blocks the generator may serve now (every
// block for a complete node, otherwise the blocks decoded at least
// serveGrace ago) and those decoded more recently.
func (s *session) servableLocked() (mine, fresh protocol.BlockSet) {
	if s.complete {
		return s.finished, fresh
	}
	now := time.Now()
	for b, at := range s.finishedAt {
		switch {
		case at.IsZero():
		case now.Sub(at) >= serveGrace:
			mine.Add(uint8(b))
		default:
			fresh.Add(uint8(b))
		}
	}
	return mine, fresh
}

// wakeGenerator nudges an idle generator to look at the demand again.
func (s *session) wakeGenerator() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *session) genWake() <-chan struct{} { return s.wake }
