package node

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/romap2p/romap2p/fountain"
	"github.com/romap2p/romap2p/protocol"
	"github.com/romap2p/romap2p/relay"
)

// AddOption configures Add.
type AddOption func(*addConfig)

type addConfig struct {
	symbolSize int
	name       string
	noName     bool
	blockHash  uint64
}

// BlockHash sets the hash function of the manifest's block hashes by its
// multihash code: protocol.BlockHashBLAKE3 (the default) or
// protocol.BlockHashSHA256, which peers of the first release also read.
func BlockHash(code uint64) AddOption { return func(c *addConfig) { c.blockHash = code } }

// SymbolSize sets T, the symbol size in bytes (default 4096).
func SymbolSize(t int) AddOption { return func(c *addConfig) { c.symbolSize = t } }

// Name sets the file name recorded in the manifest (default: the file's base
// name).
func Name(name string) AddOption { return func(c *addConfig) { c.name = name } }

// Anonymous records no file name in the manifest.
func Anonymous() AddOption { return func(c *addConfig) { c.noName = true } }

// DefaultSymbolSize is T unless SymbolSize says otherwise.
const DefaultSymbolSize = 4096

// Add prepares a file for serving: it partitions it, hashes every source
// block, builds the manifest and its CID, starts a source session that
// generates symbols for whoever subscribes, and announces the CID in the
// content router. The file must not change while it is served.
func (n *Node) Add(ctx context.Context, path string, opts ...AddOption) (cid.Cid, error) {
	cfg := addConfig{symbolSize: DefaultSymbolSize, blockHash: protocol.BlockHashBLAKE3}
	for _, o := range opts {
		o(&cfg)
	}
	f, err := os.Open(path)
	if err != nil {
		return cid.Undef, fmt.Errorf("add: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return cid.Undef, fmt.Errorf("add: %w", err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return cid.Undef, fmt.Errorf("add %s: not a regular file", path)
	}
	if st.Size() == 0 {
		f.Close()
		return cid.Undef, fmt.Errorf("add %s: empty file", path)
	}
	name := cfg.name
	if name == "" && !cfg.noName {
		name = filepath.Base(path)
	}
	m, oti, err := buildManifest(ctx, f, st.Size(), cfg.symbolSize, cfg.blockHash, protocol.SanitizeName(name))
	if err != nil {
		f.Close()
		return cid.Undef, fmt.Errorf("add %s: %w", path, err)
	}
	mb, err := m.Encode()
	if err != nil {
		f.Close()
		return cid.Undef, fmt.Errorf("add %s: %w", path, err)
	}
	c := protocol.ManifestCID(mb)
	if s := n.session(c); s != nil {
		f.Close()
		return c, nil // already served
	}
	s, err := newSession(n, c, m, mb)
	if err != nil {
		f.Close()
		return cid.Undef, err
	}
	_ = oti
	if err := s.becomeSource(f, 0); err != nil {
		f.Close()
		s.close()
		return cid.Undef, err
	}
	if err := n.addSession(s); err != nil {
		s.close()
		return cid.Undef, err
	}
	s.g.Go(s.watchSlowChildren)
	n.provide(c)
	log.Infow("serving", "cid", c, "file", path, "size", st.Size(), "blocks", s.blocks(), "T", s.t)
	return c, nil
}

// buildManifest partitions a file and hashes each source block.
func buildManifest(ctx context.Context, r io.ReaderAt, size int64, t int, hashFn uint64, name string) (*protocol.Manifest, fountain.OTI, error) {
	oti, err := fountain.NewOTI(size, t)
	if err != nil {
		return nil, oti, err
	}
	m := &protocol.Manifest{
		Version:    protocol.ManifestVersion,
		Size:       uint64(size),
		SymbolSize: oti.T,
		SubBlocks:  oti.N,
		Alignment:  oti.Al,
		BlockHash:  hashFn,
		Name:       name,
	}
	if hashFn != protocol.BlockHashSHA256 && hashFn != protocol.BlockHashBLAKE3 {
		return nil, oti, fmt.Errorf("unsupported block hash function 0x%x", hashFn)
	}
	buf := make([]byte, 1<<20)
	for b := 0; b < oti.Blocks(); b++ {
		if err := ctx.Err(); err != nil {
			return nil, oti, err
		}
		h := m.NewBlockHasher()
		off, end := oti.BlockOffset(b), oti.BlockOffset(b)+oti.BlockLen(b)
		for off < end {
			k := int(min(int64(len(buf)), end-off))
			if _, err := r.ReadAt(buf[:k], off); err != nil {
				return nil, oti, fmt.Errorf("read block %d: %w", b, err)
			}
			h.Write(buf[:k])
			off += int64(k)
		}
		var sum [32]byte
		h.Sum(sum[:0])
		m.BlockHashes = append(m.BlockHashes, sum)
	}
	if err := m.Validate(); err != nil {
		return nil, oti, err
	}
	return m, oti, nil
}

// becomeSource makes the session a source of the whole file in r (the
// original, or a completed download) with ESIs from startESI: 0 for the
// original source; completed peers start elsewhere in the 24-bit ESI space
// so that their symbols do not repeat the source's.
func (s *session) becomeSource(r io.ReaderAt, startESI uint32) error {
	s.markComplete()
	return s.startGenerator(r, startESI)
}

// markComplete records that the node has every block.
func (s *session) markComplete() {
	s.mu.Lock()
	for b := 0; b < s.blocks(); b++ {
		s.markFinishedLocked(b)
	}
	s.complete = true
	s.mu.Unlock()
	s.refreshDemand()
}

// startGenerator starts generating symbols of the blocks this node has, from
// r, for the children that need them. A relay runs it from the start of its
// download (over its partial output), so that a block it has decoded is
// served to its children from its own copy and no longer taken from its
// parent; once complete it serves every block.
func (s *session) startGenerator(r io.ReaderAt, startESI uint32) error {
	s.mu.Lock()
	if s.genStop != nil {
		s.mu.Unlock()
		return nil // already generating
	}
	s.mu.Unlock()
	// Intermediate symbols live in an unlinked scratch file: repair symbols
	// of any block cost a few page-cache reads, and memory stays flat
	// whatever the file size.
	scratch, err := os.CreateTemp(s.node.cfg.scratchDir, ".romap2p-intermediate-*")
	if err != nil {
		return fmt.Errorf("encoder scratch file: %w", err)
	}
	_ = os.Remove(scratch.Name())
	enc, err := fountain.NewEncoder(r, s.oti, fountain.WithStore(scratch), fountain.WithCacheBytes(s.node.cfg.encoderCache), fountain.WithReadAhead(16))
	if err != nil {
		scratch.Close()
		return fmt.Errorf("encoder: %w", err)
	}
	s.closers = append(s.closers, scratch.Close)
	s.mu.Lock()
	ctx, stop := context.WithCancel(s.ctx)
	s.genStop = stop
	s.mu.Unlock()
	s.refreshDemand()

	gen := newGenerator(s, enc, startESI)
	s.g.Go(func() {
		if err := gen.run(ctx); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, relay.ErrClosed) {
			log.Warnw("generator stopped", "cid", s.cid, "err", err)
		}
	})
	return nil
}

// seedStartESI picks where a completed peer's ESIs start: at a point of the
// upper half of the 24-bit ESI space (the source counts up from 0 and never
// gets there) chosen by a hash of the peer's ID. A peer uses a few thousand
// ESIs per block, so two peers' runs overlap with a probability of about
// 0.1 % (with 64 fixed regions, two of eight peers shared one a third of
// the time, and then repeated each other's symbols exactly).
func seedStartESI(id []byte) uint32 {
	h := fnv.New32a()
	h.Write(id)
	return upperESI + h.Sum32()%upperESI
}

// upperESI is where the upper half of the ESI space starts.
const upperESI = 1 << 23

// generator produces a node's own symbols: the original source's stream, a
// complete peer's, or a relay's for the blocks it has already decoded. Each
// block has its own ESI counter; the generator goes round the blocks that
// children want, one symbol each, so that a burst of drops falls evenly on
// them. Children want only a window of their first unfinished blocks (see
// demandSnap), so blocks complete one window after another: decoding overlaps
// the transfer and memory stays bounded.
type generator struct {
	s      *session
	enc    *fountain.Encoder
	start  uint32
	esi    []uint32 // next ESI per block
	cursor int      // next block to consider
	ready  []bool   // children with room in the ring (readyMask)
}

func newGenerator(s *session, enc *fountain.Encoder, start uint32) *generator {
	g := &generator{s: s, enc: enc, start: start, esi: make([]uint32, s.blocks())}
	for b := range g.esi {
		g.esi[b] = start
	}
	return g
}

// next picks the next (sbn, esi) that some child selected by ready (nil:
// every child) still needs.
func (g *generator) next(d *demandSnap, ready []bool) (int, uint32, bool) {
	z := len(g.esi)
	for tries := 0; tries < z; tries++ {
		b := g.cursor
		g.cursor++
		if g.cursor == z {
			g.cursor = 0
		}
		if !d.wantsBlock(b, ready) {
			continue
		}
		if esi, ok := g.gap(d, b, ready); ok {
			return b, esi, true
		}
		if !d.mine.Has(uint8(b)) {
			continue // decoded too recently for repair symbols
		}
		// Find an ESI of this block in a stripe a ready child wants. The
		// ESIs passed over are never sent: the ESI space is far larger than
		// a block needs, and waiting for them would pace every stripe at
		// its slowest child's rate. (Tried: waiting for children of at
		// least half the median rate cut the source's copies from ~1.37 to
		// ~1.22 on Table I but left its uplink idle, 1-2 s slower.)
		for n := 0; n < protocol.MaxStripes; n++ {
			esi := g.esi[b]
			g.advance(b)
			if d.wants(b, esi, ready) {
				return b, esi, true
			}
		}
	}
	return 0, 0, false
}

// gap returns a source symbol of block b that a ready child wanting the
// block missed (relay.Consumer.NextGap). Sending it costs a read of our
// copy, where a repair symbol needs the block's intermediate symbols, and
// the child, holding every source symbol, needs no decoding. ESIs the
// counter has not reached yet are not gaps (the original source sends its
// source symbols in order).
func (g *generator) gap(d *demandSnap, b int, ready []bool) (uint32, bool) {
	limit := uint32(g.s.oti.BlockSymbols(b))
	if g.esi[b] < limit {
		limit = g.esi[b]
	}
	for i := range d.subs {
		w := &d.subs[i]
		// Only a credited child: its credit bounds the gaps sent to what
		// it still needs, and it told us at subscription which source
		// symbols it held then. Not a probe: it holds from its parent what
		// it missed here.
		if w.cons == nil || w.probe || (ready != nil && !ready[i]) || !w.win.Has(uint8(b)) {
			continue
		}
		if left, credited := w.budget(b); !left || !credited {
			continue
		}
		if esi, ok := w.cons.NextGap(uint8(b), limit); ok {
			return esi, true
		}
	}
	return 0, false
}

// advance moves block b's ESI counter on; past the last ESI it wraps to
// the start of this node's half of the space (0 for the original source).
func (g *generator) advance(b int) {
	g.esi[b]++
	if g.esi[b] > protocol.MaxESI {
		g.esi[b] = min(g.start, upperESI)
	}
}

// readyMask marks the children whose readers have room in the ring: a
// symbol made only for children without room would be skipped unread.
func (g *generator) readyMask(d *demandSnap) []bool {
	g.ready = g.ready[:0]
	for i := range d.subs {
		c := d.subs[i].cons
		g.ready = append(g.ready, c == nil || c.HasRoom(0))
	}
	return g.ready
}

// run fills the ring while some child can take more. It waits for demand
// before claiming a ring slot, so an idle generator never holds up the
// upstream readers that share the ring.
func (g *generator) run(ctx context.Context) error {
	for {
		if err := g.s.ring.WaitDemand(ctx, 0); err != nil {
			return err
		}
		d := g.s.demand()
		sbn, esi, ok := g.next(d, g.readyMask(d))
		if !ok {
			// No child with room needs anything we have: idle until that
			// changes (briefly when some child wants more but is busy).
			wait := 100 * time.Millisecond
			if d.anyWanted(len(g.esi)) {
				wait = 2 * time.Millisecond
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-g.s.genWake():
			case <-time.After(wait):
			}
			continue
		}
		dst, err := g.s.ring.Reserve(ctx)
		if err != nil {
			return err
		}
		if err := g.enc.Symbol(sbn, esi, dst); err != nil {
			g.s.ring.Abort()
			return fmt.Errorf("encode block %d esi %d: %w", sbn, esi, err)
		}
		g.s.ring.Commit(uint8(sbn), esi)
	}
}
