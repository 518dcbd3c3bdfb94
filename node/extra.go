package node

import (
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Extra upstreams. With stripes, a peer has one parent per stripe, and
// those parents forward what the source sent into their stripe. A complete
// peer (one that fetched the whole file) generates symbols from its own
// part of the ESI space instead, which the trees never carry. A fetching
// peer therefore subscribes to the whole stream of up to maxExtra complete
// peers while it still needs blocks. Its ring sends each symbol it makes to
// every child that wants it, so what an extra subscriber gets may also
// reach it through a stripe child of that peer: an extra upstream that
// delivers more than extraDupShare duplicates, or nothing new for
// extraIdle, is dropped. The original source is never taken as an extra:
// its symbols are exactly what its stripe children forward.

const (
	// maxExtra bounds the whole-stream upstreams a peer keeps beside its
	// stripe parents.
	maxExtra = 2
	// extraTick is how often the extra upstreams are reconsidered.
	extraTick = 250 * time.Millisecond
	// extraIdle is how long an extra upstream may deliver nothing new
	// before it is dropped.
	extraIdle = 2 * time.Second
	// extraDupShare drops an extra upstream whose symbols were more than
	// this share duplicates (measured once it has sent extraMinSymbols).
	extraDupShare   = 0.1
	extraMinSymbols = 128
)

// noteComplete records that p holds the whole file (status role source or
// complete), for the extra-upstream manager.
func (f *fetchState) noteComplete(p peer.ID, complete, original bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if complete {
		f.seeds[p] = time.Now()
	} else {
		delete(f.seeds, p)
	}
	if original {
		f.origins[p] = true
	}
}

// isOrigin reports whether p announced itself as an original source (one
// that added the file rather than fetched it).
func (f *fetchState) isOrigin(p peer.ID) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.origins[p]
}

// seedList returns the peers known to hold the whole file that have not
// failed us lately.
func (f *fetchState) seedList() []peer.ID {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]peer.ID, 0, len(f.seeds))
	for p := range f.seeds {
		if t, bad := f.bad[p]; bad && time.Since(t) < 10*time.Second {
			continue
		}
		if t, bad := f.extraRefused[p]; bad && time.Since(t) < 2*time.Second {
			continue
		}
		if f.origins[p] {
			// The original source's symbols are the ones its stripe
			// children forward: as an extra it would mostly repeat them.
			continue
		}
		out = append(out, p)
	}
	return out
}

// manageExtra keeps up to maxExtra whole-stream upstreams from peers that
// hold the whole file, until the download completes.
func (f *fetchState) manageExtra() {
	s := f.s
	cur := map[peer.ID]*upstream{}
	defer func() {
		for _, u := range cur {
			u.close()
		}
	}()
	tick := time.NewTicker(extraTick)
	defer tick.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.doneCh:
			return
		case <-tick.C:
		}
		if f.completing.Load() || f.allWantedDone() {
			return
		}
		// Drop the ones that ended, stalled or send duplicates.
		for p, u := range cur {
			select {
			case <-u.done:
				delete(cur, p)
				f.mu.Lock()
				f.extraRefused[p] = time.Now()
				f.mu.Unlock()
				continue
			default:
			}
			n, fresh := u.symbols.Load(), u.fresh.Load()
			idle := time.Since(time.Unix(0, u.lastFresh.Load())) > extraIdle
			dup := n >= extraMinSymbols && float64(n-fresh) > extraDupShare*float64(n)
			if idle || dup {
				log.Debugw("dropping extra upstream", "peer", p, "idle", idle, "symbols", n, "fresh", fresh)
				u.close()
				delete(cur, p)
				f.mu.Lock()
				f.extraRefused[p] = time.Now()
				f.mu.Unlock()
			}
		}
		if len(cur) >= maxExtra {
			continue
		}
		for _, p := range f.seedList() {
			if len(cur) >= maxExtra {
				break
			}
			if _, ok := cur[p]; ok || s.isStripeParent(p) {
				continue
			}
			u, err := s.subscribe(s.ctx, s.node.addrInfo(p), 1, 0, false)
			if err != nil {
				f.mu.Lock()
				f.extraRefused[p] = time.Now()
				f.mu.Unlock()
				continue
			}
			log.Debugw("extra upstream", "cid", s.cid, "peer", p)
			cur[p] = u
		}
	}
}

// isStripeParent reports whether p is the current parent of some stripe.
func (s *session) isStripeParent(p peer.ID) bool {
	for i := range s.stripeUp {
		if u := s.stripeUp[i].Load(); u != nil && u.peer == p {
			return true
		}
	}
	return false
}

// isExtraSub reports whether a subscription of (stripes, stripe) to this
// session is an extra, whole-stream one beside a peer's stripe parents.
func (s *session) isExtraSub(stripes int) bool {
	return s.stripes > 1 && stripes == 1
}
