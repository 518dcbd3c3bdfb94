package node

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"

	"github.com/romap2p/romap2p/fountain"
	"github.com/romap2p/romap2p/protocol"
	"github.com/romap2p/romap2p/relay"
)

// role is what a session does with its content.
type role int

const (
	// roleOrigin serves a file added on this node (the original source).
	roleOrigin role = iota
	// roleFetcher downloads the content, relays it while it does, and
	// serves it as a complete peer afterwards.
	roleFetcher
)

// session is one CID on this node. It is made of parts with one owner
// each (see the package documentation): the block state, the downstream
// side (children), the upstream side (parents), the fetcher (for a
// download) and the generator. Its context ends every part's work; close
// waits for all of them.
type session struct {
	node     *Node
	cid      cid.Cid
	manifest *protocol.Manifest
	mbytes   []byte
	oti      fountain.OTI
	t        int
	maxK     int // the most source symbols of a block
	stripes  int
	role     role
	ring     *relay.Ring
	mem      *sessionMemory // the session's share of the resource manager
	created  time.Time

	ctx    context.Context
	cancel context.CancelFunc
	// g runs the generator; close waits for it.
	g group

	blocks *blockState
	trees  *treeCache // checked tree data per block (verify.go)
	blamed *blameBook // peers proven to have sent bad data (blame.go)
	ks     []uint32   // K per block
	down   *downside
	up     *upside
	fetch  *fetchState // nil for the original source

	genOnce sync.Once

	// counters
	symbolsNew atomic.Uint64 // of which new to this node (not duplicates, not finished blocks)
	dupProbe   atomic.Uint64 // symbols wasted: from probes,
	dupDone    atomic.Uint64 // of blocks already held in full,
	dupRepeat  atomic.Uint64 // already held (same ESI)
	badSymbols atomic.Uint64 // symbols dropped as wrong (failed their tree, or a re-encoding)
	uploaded   atomic.Uint64 // bytes written to children (symbol frames)
	reparents  atomic.Uint64 // parent switches made on measurements
	goodput    *rateMeter    // new symbol bytes per second
	// inRate counts all symbol bytes from every upstream (each symbol is
	// T bytes, so its total over T is the symbols that arrived).
	inRate *rateMeter

	closersMu sync.Mutex
	closers   []func() error // files to close with the session
}

// newSession builds a session for a verified manifest.
func newSession(n *Node, c cid.Cid, m *protocol.Manifest, mbytes []byte, r role) (*session, error) {
	o := m.OTI()
	oti := fountain.OTI{F: o.F, T: o.T, Z: o.Z, N: o.N, Al: o.Al}
	mem, err := newSessionMemory(n.host.Network().ResourceManager())
	if err != nil {
		return nil, fmt.Errorf("session %s: %w", c, err)
	}
	if err := mem.reserve(n.cfg.ringBytes, network.ReservationPriorityAlways); err != nil {
		mem.done()
		return nil, fmt.Errorf("session %s: relay buffer: %w", c, err)
	}
	ring, err := relay.New(int(o.T), n.cfg.ringOptions()...)
	if err != nil {
		mem.done()
		return nil, fmt.Errorf("session %s: %w", c, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &session{
		node:     n,
		cid:      c,
		manifest: m,
		mbytes:   mbytes,
		oti:      oti,
		t:        int(o.T),
		stripes:  n.cfg.stripes,
		role:     r,
		ring:     ring,
		mem:      mem,
		created:  time.Now(),
		ctx:      ctx,
		cancel:   cancel,
		blocks:   newBlockState(len(m.BlockHashes)),
		blamed:   newBlameBook(),
		goodput:  newRateMeter(),
		inRate:   newRateMeter(),
	}
	s.trees = newTreeCache(s)
	s.ks = make([]uint32, oti.Blocks())
	for b := range s.ks {
		s.ks[b] = uint32(oti.BlockSymbols(b))
	}
	s.down = newDownside(s)
	s.up = newUpside(s)
	for b := 0; b < oti.Blocks(); b++ {
		s.maxK = max(s.maxK, oti.BlockSymbols(b))
	}
	return s, nil
}

// origin reports whether the session serves a file added on this node.
func (s *session) origin() bool { return s.role == roleOrigin }

// tuning is the node's tuning.
func (s *session) tuning() *Tuning { return &s.node.cfg.tuning }

// neededSymbols is K summed over the blocks.
func (s *session) neededSymbols() int {
	n := 0
	for b := 0; b < s.numBlocks(); b++ {
		n += s.oti.BlockSymbols(b)
	}
	return n
}

// numBlocks returns Z, the number of source blocks.
func (s *session) numBlocks() int { return len(s.manifest.BlockHashes) }

// isFinished reports whether block sbn is decoded (lock-free).
func (s *session) isFinished(sbn uint8) bool { return s.blocks.isFinished(sbn) }

// stripeWidth is the rate at which this node receives the symbols of one
// stripe (bytes/s): what a child would get under it at best. +Inf when the
// node generates every symbol itself.
func (s *session) stripeWidth(stripe int) float64 {
	if s.blocks.isComplete() {
		return math.Inf(1)
	}
	if u := s.up.stripeParent(stripe); u != nil {
		return u.rawMeter.rate()
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

// addCloser registers a file to close with the session.
func (s *session) addCloser(c func() error) {
	s.closersMu.Lock()
	defer s.closersMu.Unlock()
	s.closers = append(s.closers, c)
}

// close stops everything the session runs and waits for it: first the
// parts that bring symbols in (upstream side, fetcher), then those that
// send them out (downstream side, generator), then the files.
func (s *session) close() {
	s.cancel()
	_ = s.ring.Close()
	s.up.close()
	if s.fetch != nil {
		s.fetch.g.closeAndWait()
	}
	s.down.close()
	s.g.closeAndWait()
	s.blocks.end(ErrClosed)
	if s.fetch != nil {
		s.fetch.close()
	}
	s.closersMu.Lock()
	closers := s.closers
	s.closers = nil
	s.closersMu.Unlock()
	for _, c := range closers {
		_ = c()
	}
	s.mem.done()
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
