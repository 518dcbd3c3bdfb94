package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/romap2p/romap2p/protocol"
)

// Seeding. A peer that completes a download keeps serving, as BitTorrent
// users seed: its children (and peers that take it as an extra upstream)
// still need what it relays or generates. It leaves when the SeedPolicy says
// so, and then hands its children over: each gets a redirect frame naming
// the peers it may attach to instead (the peers that hold the whole file
// first), then a goodbye, so that it reattaches at once rather than after a
// stall.

// SeedPolicy says how long a completed download keeps serving. It leaves at
// the first bound reached; a zero field sets no bound of its kind.
type SeedPolicy struct {
	// Ratio: leave once this node has uploaded Ratio times the file's size
	// (counting what it uploaded while it was still fetching).
	Ratio float64
	// Time: leave after serving this long past completion.
	Time time.Duration
	// Idle: leave once no peer has taken a symbol from this node for this
	// long.
	Idle time.Duration
}

// DefaultSeedPolicy is what `romap2p get` does without flags: serve until
// this node has uploaded as much as it downloaded, for at most 10 minutes,
// and not a moment longer than peers take symbols from it.
func DefaultSeedPolicy() SeedPolicy {
	return SeedPolicy{Ratio: 1, Time: 10 * time.Minute, Idle: 5 * time.Second}
}

// Validate reports a policy that cannot be met.
func (p SeedPolicy) Validate() error {
	switch {
	case p.Ratio < 0:
		return fmt.Errorf("seed ratio %v is negative", p.Ratio)
	case p.Time < 0:
		return fmt.Errorf("seed time %v is negative", p.Time)
	case p.Idle < 0:
		return fmt.Errorf("seed idle time %v is negative", p.Idle)
	}
	return nil
}

// SeedResult tells how seeding ended.
type SeedResult struct {
	// Uploaded is what this node uploaded for the content in all, in bytes.
	Uploaded uint64
	// Seeded is how long it served after Seed was called.
	Seeded time.Duration
	// Reason says which bound ended it: "ratio", "time", "idle" or
	// "interrupted" (the context ended).
	Reason string
}

// seedPoll is how often Seed looks at its bounds.
const seedPoll = 100 * time.Millisecond

// Seed serves c, which this node must hold in full, until the policy's first
// bound is reached or ctx ends, and then leaves c's swarm, handing its
// children over to other peers. A node that keeps serving c for good needs
// no Seed call: the session serves until Drop or Close.
func (n *Node) Seed(ctx context.Context, c cid.Cid, p SeedPolicy) (SeedResult, error) {
	if err := p.Validate(); err != nil {
		return SeedResult{}, err
	}
	s := n.session(c)
	if s == nil {
		return SeedResult{}, fmt.Errorf("seed %s: no such content on this node", c)
	}
	if !s.blocks.isComplete() {
		return SeedResult{}, fmt.Errorf("seed %s: the download is not complete", c)
	}
	start := time.Now()
	size := s.manifest.Size
	last, lastAt := s.uploaded.Load(), start
	t := time.NewTicker(seedPoll)
	defer t.Stop()
	res := SeedResult{}
	for res.Reason == "" {
		select {
		case <-ctx.Done():
			res.Reason = "interrupted"
			continue
		case <-s.ctx.Done():
			res.Uploaded, res.Seeded = s.uploaded.Load(), time.Since(start)
			return res, ErrClosed
		case <-t.C:
		}
		now, up := time.Now(), s.uploaded.Load()
		if up != last {
			last, lastAt = up, now
		}
		switch {
		case p.Ratio > 0 && float64(up) >= p.Ratio*float64(size):
			res.Reason = "ratio"
		case p.Time > 0 && now.Sub(start) >= p.Time:
			res.Reason = "time"
		case p.Idle > 0 && now.Sub(lastAt) >= p.Idle && !s.hasChildren():
			res.Reason = "idle"
		}
	}
	res.Uploaded, res.Seeded = s.uploaded.Load(), time.Since(start)
	n.leave(s)
	return res, nil
}

// hasChildren reports whether any peer subscribes to this session.
func (s *session) hasChildren() bool {
	s.down.mu.Lock()
	defer s.down.mu.Unlock()
	return len(s.down.children) > 0
}

// leave hands the session's children over and then drops the session.
func (n *Node) leave(s *session) {
	s.handOver()
	n.mu.Lock()
	if n.sessions[s.cid] == s {
		delete(n.sessions, s.cid)
	}
	n.mu.Unlock()
	s.close()
}

// handOverTimeout bounds how long a leaving node waits for its children to
// take their redirect and goodbye; Close waits no longer than that.
const handOverTimeout = 300 * time.Millisecond

// handOver tells every child where to go instead (a redirect frame) and
// that this node leaves (a goodbye), and waits up to handOverTimeout for the
// frames to go out.
func (s *session) handOver() {
	kids := s.down.list()
	if len(kids) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, handOverTimeout)
	defer cancel()
	done := make(chan struct{}, len(kids))
	for _, c := range kids {
		to := s.redirectFor(c.peer)
		s.down.spawn(func() {
			defer func() { done <- struct{}{} }()
			c.handOver(ctx, to)
		})
	}
	for range kids {
		select {
		case <-done:
		case <-ctx.Done():
			return
		}
	}
}

// redirectFor lists the peers a child of this node may attach to instead:
// the peers known to hold the whole file, then the others this node knows
// (its parents, its children, the peers it learnt of).
func (s *session) redirectFor(child peer.ID) []peer.AddrInfo {
	n := s.node
	seen := map[peer.ID]bool{child: true, n.host.ID(): true}
	var out []peer.AddrInfo
	if s.up != nil {
		for _, p := range s.up.book.completePeers() {
			if len(out) == protocol.MaxPeers || seen[p] {
				continue
			}
			seen[p] = true
			if ai := n.addrInfo(p); len(ai.Addrs) > 0 {
				out = append(out, ai)
			}
		}
	}
	for _, ai := range n.peerSample(s, child, protocol.MaxPeers) {
		if len(out) == protocol.MaxPeers {
			break
		}
		if !seen[ai.ID] {
			seen[ai.ID] = true
			out = append(out, ai)
		}
	}
	return out
}

// completePeers lists the peers known to hold the whole file, the original
// sources first.
func (b *peerBook) completePeers() []peer.ID {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]peer.ID, 0, len(b.seeds))
	for p := range b.seeds {
		if b.origins[p] {
			out = append([]peer.ID{p}, out...)
		} else {
			out = append(out, p)
		}
	}
	return out
}

// handOver sends the child its redirect and a goodbye, lets the writer
// write them, and ends the subscription; it gives up when ctx ends.
func (c *child) handOver(ctx context.Context, to []peer.AddrInfo) {
	c.redirectAndLeave(ctx, to, protocol.GoodbyeShutdown, "leaving the swarm")
}

// redirectAndLeave sends the child a redirect to the peers in to and a
// goodbye, lets the writer write them, and ends the subscription; it gives
// up when ctx ends.
func (c *child) redirectAndLeave(ctx context.Context, to []peer.AddrInfo, code protocol.GoodbyeCode, reason string) {
	c.closeOnce.Do(func() {
		var frames []byte
		if len(to) > 0 {
			if f, err := protocol.AppendRedirectFrame(nil, to); err == nil {
				frames = f
			}
		}
		frames = protocol.AppendGoodbyeFrame(frames, code, reason)
		if err := c.w.SendControl(ctx, frames); err != nil && !errors.Is(err, context.Canceled) {
			log.Debugw("hand-over", "peer", c.peer, "err", err)
		}
		_ = c.cons.Close()
		select {
		case <-c.w.Done():
			_ = c.stream.Close()
		case <-ctx.Done():
			_ = c.stream.Reset()
		}
	})
}
