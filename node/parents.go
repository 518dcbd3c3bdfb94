package node

import (
	"context"
	"errors"
	"math"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/romap2p/romap2p/protocol"
)

// stallTimeout is how long a parent may send nothing before it is replaced.
const stallTimeout = 3 * time.Second

// manageParents keeps one parent per stripe until the download completes.
func (f *fetchState) manageParents() {
	s := f.s
	f.learn(f.cfg.parents...)
	f.learn(f.cfg.peers...)
	f.learn(s.node.cfg.bootstrap...)
	var wg sync.WaitGroup
	if len(f.cfg.parents) == 0 && s.node.router != nil {
		wg.Add(1)
		go func() { defer wg.Done(); f.discover() }()
	}
	for i := 0; i < s.stripes; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); f.keepStripe(i) }()
	}
	wg.Wait()
}

// discover learns providers of the content from the content router, now
// and then again while the download runs.
func (f *fetchState) discover() {
	s := f.s
	for {
		ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
		for ai := range s.node.router.FindProvidersAsync(ctx, s.cid, 0) {
			f.learn(ai)
		}
		cancel()
		select {
		case <-s.ctx.Done():
			return
		case <-s.doneCh:
			return
		case <-time.After(20 * time.Second):
		}
	}
}

// keepStripe attaches stripe i to a parent and replaces the parent whenever
// it fails or stalls.
func (f *fetchState) keepStripe(stripe int) {
	s := f.s
	backoff := 100 * time.Millisecond
	for s.ctx.Err() == nil && !f.completing.Load() {
		u, err := f.attach(stripe)
		if err != nil {
			log.Debugw("no parent yet", "stripe", stripe, "err", err)
			select {
			case <-s.ctx.Done():
				return
			case <-s.doneCh:
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 2*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		log.Debugw("parent", "cid", s.cid, "stripe", stripe, "peer", u.peer)
		f.watch(u)
	}
}

// watch returns when the upstream ends, or closes it when it stalls.
func (f *fetchState) watch(u *upstream) {
	s := f.s
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-u.done:
			return
		case <-s.ctx.Done():
			return
		case <-s.doneCh:
			return
		case <-t.C:
			if u.stalled(stallTimeout) && !f.allWantedDone(u) {
				log.Infow("parent stalled: replacing it", "peer", u.peer)
				f.markFailed(u.peer)
				u.close()
			}
		}
	}
}

// allWantedDone reports whether the parent has nothing left to send us.
func (f *fetchState) allWantedDone(u *upstream) bool {
	set := f.s.upstreamFinished()
	return set.HasAll(f.s.blocks())
}

func (f *fetchState) markFailed(p peer.ID) {
	f.mu.Lock()
	f.bad[p] = time.Now()
	f.mu.Unlock()
}

// attach finds a parent for a stripe: the given parent when the tree is
// explicit, otherwise the best candidate that accepts, following redirects
// of full parents down the tree.
func (f *fetchState) attach(stripe int) (*upstream, error) {
	s := f.s
	if len(f.cfg.parents) > 0 {
		p := f.cfg.parents[stripe%len(f.cfg.parents)]
		return s.subscribe(s.ctx, p, s.stripes, stripe, false)
	}
	cands := f.rank(stripe, f.candidates())
	if len(cands) == 0 {
		return nil, ErrNoPeers
	}
	var lastErr error
	tried := map[peer.ID]bool{}
	for len(cands) > 0 {
		c := cands[0]
		cands = cands[1:]
		if tried[c.ID] {
			continue
		}
		tried[c.ID] = true
		u, err := s.subscribe(s.ctx, c, s.stripes, stripe, false)
		if err == nil {
			return u, nil
		}
		lastErr = err
		var ref *errRefused
		if errors.As(err, &ref) {
			f.learn(ref.redirect...)
			cands = append(f.rank(stripe, ref.redirect), cands...)
			continue
		}
		f.markFailed(c.ID)
	}
	return nil, lastErr
}

// candidates returns the known peers that have not recently failed.
func (f *fetchState) candidates() []peer.AddrInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]peer.AddrInfo, 0, len(f.known))
	for id, ai := range f.known {
		if t, bad := f.bad[id]; bad && time.Since(t) < 10*time.Second {
			continue
		}
		out = append(out, ai)
	}
	return out
}

// candidate is a peer's answer to a status request, for ranking.
type candidate struct {
	ai       peer.AddrInfo
	width    float64
	depth    int
	children int
	full     bool
}

// rank asks each peer for its status and orders them: widest first, then
// shallower, then less loaded. Peers whose path contains this node, and
// peers without the content, are left out.
func (f *fetchState) rank(stripe int, peers []peer.AddrInfo) []peer.AddrInfo {
	s := f.s
	self := s.node.host.ID()
	var mu sync.Mutex
	var cands []candidate
	var wg sync.WaitGroup
	for _, ai := range peers {
		if ai.ID == self {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := s.node.queryStatus(s.ctx, ai, s)
			if err != nil || st.Role == protocol.RoleNone {
				return
			}
			f.learn(st.Peers...)
			c := candidate{ai: ai, width: math.Inf(1)}
			if st.Role != protocol.RoleSource && st.Role != protocol.RoleComplete {
				c.width = 0
				for _, ss := range st.Stripes {
					if ss.Index == stripe%max(1, st.StripeCount) {
						if slices.Contains(ss.Path, self) {
							return // would loop
						}
						c.width = widthOf(ss.Width)
						c.depth = ss.Depth
						c.children = ss.Children
						c.full = ss.MaxChildren > 0 && ss.Children >= ss.MaxChildren
					}
				}
			}
			mu.Lock()
			cands = append(cands, c)
			mu.Unlock()
		}()
	}
	wg.Wait()
	sort.SliceStable(cands, func(i, j int) bool {
		a, b := cands[i], cands[j]
		if a.width != b.width {
			return a.width > b.width
		}
		if a.depth != b.depth {
			return a.depth < b.depth
		}
		return a.children < b.children
	})
	out := make([]peer.AddrInfo, len(cands))
	for i, c := range cands {
		out[i] = c.ai
	}
	return out
}

// queryStatus asks a peer for its status for the session's content.
func (n *Node) queryStatus(ctx context.Context, ai peer.AddrInfo, s *session) (*protocol.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if len(ai.Addrs) > 0 {
		n.host.Peerstore().AddAddrs(ai.ID, ai.Addrs, time.Hour)
	}
	st, err := n.host.NewStream(ctx, ai.ID, protocol.StatusID)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	if err := scopeStream(st); err != nil {
		_ = st.Reset()
		return nil, err
	}
	dl, _ := ctx.Deadline()
	_ = st.SetDeadline(dl)
	if err := protocol.WriteRequest(st, s.cid); err != nil {
		return nil, err
	}
	_ = st.CloseWrite()
	return protocol.ReadStatus(st)
}
