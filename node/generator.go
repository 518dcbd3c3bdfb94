package node

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"time"

	"github.com/romap2p/romap2p/fountain"
	"github.com/romap2p/romap2p/protocol"
	"github.com/romap2p/romap2p/relay"
)

// becomeSource makes the session the original source of the whole file
// in r, with ESIs from 0.
func (s *session) becomeSource(r io.ReaderAt) error {
	s.blocks.markComplete()
	s.trees.setSource(r)
	if err := s.startGenerator(r, 0); err != nil {
		return err
	}
	// The tree data of every block, made before the first requests, like
	// the block hashes (one more pass over the file).
	s.trees.precompute()
	// Nothing to wait for: the file is here.
	s.blocks.end(nil)
	return nil
}

// startGenerator starts generating symbols of the blocks this node has, from
// r, for the children that need them. A relay runs it from the start of its
// download (over its partial output), so that a block it has decoded is
// served to its children from its own copy and no longer taken from its
// parent; once complete it serves every block. It runs in the session's
// group until the session closes.
func (s *session) startGenerator(r io.ReaderAt, startESI uint32) error {
	var err error
	s.genOnce.Do(func() { err = s.runGenerator(r, startESI) })
	return err
}

func (s *session) runGenerator(r io.ReaderAt, startESI uint32) error {
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
	s.addCloser(scratch.Close)
	s.down.refreshDemand()
	gen := newGenerator(s, enc, startESI)
	s.g.Go(func() {
		if err := gen.run(s.ctx); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, relay.ErrClosed) {
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
	g := &generator{s: s, enc: enc, start: start, esi: make([]uint32, s.numBlocks())}
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

// readyMask marks the children whose readers are close to the ring's head:
// only for those is a symbol made now sent soon. A child whose writer waits
// on a full stream is left alone until it drains, even if it has room:
// symbols made for it meanwhile would sit in the ring while the other
// children's symbols go past them, until it is lapped, its queued symbols
// are forgotten and it is made new ones (measured before this rule on a
// three-receiver swarm: 38,500 symbols made to send 5,500).
func (g *generator) readyMask(d *demandSnap) []bool {
	g.ready = g.ready[:0]
	lead := g.lead()
	for i := range d.subs {
		c := d.subs[i].cons
		g.ready = append(g.ready, c == nil || c.HasRoom(lead))
	}
	return g.ready
}

// lead is how many symbols behind the ring's head a child may be and still
// be made symbols: an eighth of the ring.
func (g *generator) lead() int { return max(1, g.s.ring.Slots()/8) }

// run fills the ring while some child can take more. It waits for demand
// before claiming a ring slot, so an idle generator never holds up the
// upstream readers that share the ring.
func (g *generator) run(ctx context.Context) error {
	for {
		if err := g.s.ring.WaitDemand(ctx, g.lead()); err != nil {
			return err
		}
		d := g.s.down.demand()
		sbn, esi, ok := g.next(d, g.readyMask(d))
		if !ok {
			// No child with room needs anything we have: idle until that
			// changes (briefly when some child wants more but is busy).
			// A child held back by what it has in flight wakes the
			// generator when it confirms more (limitInFlight).
			wait := 100 * time.Millisecond
			if d.anyWanted(len(g.esi)) {
				wait = 10 * time.Millisecond
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-g.s.down.wake:
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
