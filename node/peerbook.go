package node

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// peerBook is what a download learnt of the peers that take part in its
// content: their addresses, which of them failed it lately, which hold the
// whole file and which are original sources. The upstream side owns it.
type peerBook struct {
	self peer.ID
	// remember gives the addresses of a peer learnt to the peerstore.
	remember func(peer.AddrInfo)
	// blamed reports peers proven to have sent bad data: never learnt.
	blamed func(peer.ID) bool

	mu    sync.Mutex
	known map[peer.ID]peer.AddrInfo // peers seen for this content
	bad   map[peer.ID]time.Time     // peers that failed us, and when
	// seeds are peers known to hold the whole file; extraRefused those
	// that refused or dropped an extra subscription lately.
	seeds        map[peer.ID]time.Time
	extraRefused map[peer.ID]time.Time
	origins      map[peer.ID]bool // peers that announced role source
}

func newPeerBook(self peer.ID, remember func(peer.AddrInfo), blamed func(peer.ID) bool) *peerBook {
	return &peerBook{
		self:         self,
		remember:     remember,
		blamed:       blamed,
		known:        make(map[peer.ID]peer.AddrInfo),
		bad:          make(map[peer.ID]time.Time),
		seeds:        make(map[peer.ID]time.Time),
		extraRefused: make(map[peer.ID]time.Time),
		origins:      make(map[peer.ID]bool),
	}
}

// learn records peers that take part in this content.
func (b *peerBook) learn(ais ...peer.AddrInfo) {
	b.mu.Lock()
	for _, ai := range ais {
		if ai.ID == b.self || ai.ID == "" || b.blamed(ai.ID) {
			continue
		}
		if _, ok := b.known[ai.ID]; !ok || len(ai.Addrs) > 0 {
			b.known[ai.ID] = ai
		}
	}
	b.mu.Unlock()
	for _, ai := range ais {
		if ai.ID != b.self && ai.ID != "" && len(ai.Addrs) > 0 {
			b.remember(ai)
		}
	}
}

// knownPeers lists the peers learnt so far.
func (b *peerBook) knownPeers() []peer.ID {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]peer.ID, 0, len(b.known))
	for p := range b.known {
		out = append(out, p)
	}
	return out
}

// forget drops p from every list (it was blamed: learn refuses it from
// now on).
func (b *peerBook) forget(p peer.ID) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.known, p)
	delete(b.seeds, p)
}

// markFailed records that p failed us now.
func (b *peerBook) markFailed(p peer.ID) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.bad[p] = time.Now()
}

// markExtraRefused records that p refused or lost an extra subscription.
func (b *peerBook) markExtraRefused(p peer.ID) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.extraRefused[p] = time.Now()
}

// candidates returns the known peers that have not failed us within
// backoff (the chooser's backoff after a failure); all of them when every
// one has.
func (b *peerBook) candidates(backoff time.Duration) []peer.AddrInfo {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]peer.AddrInfo, 0, len(b.known))
	var bad []peer.AddrInfo
	for id, ai := range b.known {
		if t, ok := b.bad[id]; ok && time.Since(t) < backoff {
			bad = append(bad, ai)
			continue
		}
		out = append(out, ai)
	}
	if len(out) == 0 {
		// Every known peer failed us lately: trying them again beats
		// waiting with no parent at all.
		return bad
	}
	return out
}

// noteComplete records whether p holds the whole file (status role source
// or complete) and whether it is an original source.
func (b *peerBook) noteComplete(p peer.ID, complete, original bool) {
	if b.blamed(p) {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if complete {
		b.seeds[p] = time.Now()
	} else {
		delete(b.seeds, p)
	}
	if original {
		b.origins[p] = true
	}
}

// isOrigin reports whether p announced itself as an original source (one
// that added the file rather than fetched it).
func (b *peerBook) isOrigin(p peer.ID) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.origins[p]
}

// seedList returns the peers known to hold the whole file that have not
// failed us within backoff, nor refused an extra subscription within
// extraBackoff, leaving out original sources: their symbols are the ones
// their stripe children forward, so as an extra one would mostly repeat
// them.
func (b *peerBook) seedList(backoff, extraBackoff time.Duration) []peer.ID {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]peer.ID, 0, len(b.seeds))
	for p := range b.seeds {
		if t, bad := b.bad[p]; bad && time.Since(t) < backoff {
			continue
		}
		if t, bad := b.extraRefused[p]; bad && time.Since(t) < extraBackoff {
			continue
		}
		if b.origins[p] {
			continue
		}
		out = append(out, p)
	}
	return out
}
