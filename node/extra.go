package node

import (
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/romap2p/romap2p/treebuild"
)

// Extra upstreams. With stripes, a peer has one parent per stripe, and
// those parents forward what the source sent into their stripe. A complete
// peer (one that fetched the whole file) generates symbols from its own
// part of the ESI space instead, which the trees never carry. A fetching
// peer therefore subscribes to the whole stream of up to Tuning.MaxExtra
// complete peers while it still needs blocks. Its ring sends each symbol it makes to
// every child that wants it, so what an extra subscriber gets may also
// reach it through a stripe child of that peer: an extra upstream that
// delivers too many duplicates or nothing new for a while is dropped
// (treebuild.DropExtra). The original source is never taken as an extra:
// its symbols are exactly what its stripe children forward.

// manageExtra keeps up to MaxExtra whole-stream upstreams from peers that
// hold the whole file, until the download completes.
func (up *upside) manageExtra() {
	s := up.s
	tu := s.tuning()
	cur := map[peer.ID]*upstream{}
	defer func() {
		for _, u := range cur {
			u.close()
		}
	}()
	tick := time.NewTicker(tu.ExtraTick)
	defer tick.Stop()
	bound := false
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.blocks.done:
			return
		case <-tick.C:
		}
		if s.fetch.completing.Load() || s.allWantedDone() {
			return
		}
		// Drop the ones that ended, stalled or send duplicates.
		for p, u := range cur {
			select {
			case <-u.done:
				delete(cur, p)
				up.book.markExtraRefused(p)
				continue
			default:
			}
			n, fresh := u.symbols.Load(), u.fresh.Load()
			idle := time.Since(time.Unix(0, u.lastFresh.Load()))
			if treebuild.DropExtra(n, fresh, idle, tu.ExtraDrop) {
				log.Debugw("dropping extra upstream", "peer", p, "idle", idle, "symbols", n, "fresh", fresh)
				u.close()
				delete(cur, p)
				up.book.markExtraRefused(p)
			}
		}
		b := up.downlinkBound()
		if b != bound {
			bound = b
			log.Debugw("own downlink limits the download", "cid", s.cid, "bound", b)
		}
		if len(cur) >= tu.MaxExtra || bound {
			continue
		}
		for _, p := range up.book.seedList(s.node.chooser.FailBackoff(), tu.ExtraBackoff) {
			if len(cur) >= tu.MaxExtra {
				break
			}
			if _, ok := cur[p]; ok || up.isStripeParent(p) {
				continue
			}
			u, err := up.subscribe(s.node.addrInfo(p), 1, 0, false)
			if err != nil {
				up.book.markExtraRefused(p)
				continue
			}
			log.Debugw("extra upstream", "cid", s.cid, "peer", p)
			cur[p] = u
		}
	}
}
