package node

import (
	"sort"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/romap2p/romap2p/protocol"
)

// Blame rests on proof only (protocol/SPEC.md, "Repair symbols"): a
// source symbol that fails its block's tree, tree data that fails its block
// hash, "unavailable" tree data for a block whose source symbols the peer
// sent, or a repair symbol that differs from the checked block's own and
// was named for its sender. Every honest hop checks the source symbols it
// passes on, and a repair symbol is named only when its sender made it (a
// parent complete when it took the child, or strict mode); those a relay
// still fetching sends may be passed on, so a wrong one blames no one and
// only sets its relay aside (via.go). A blamed peer is dropped as a parent
// and refused as a child for the rest of the session.

// Blame records one peer proven to have sent bad data in a session.
type Blame struct {
	Peer   peer.ID
	Reason string
	At     time.Time
	// Symbol is the source symbol that failed its block's tree, when that
	// is the proof (nil for the other kinds).
	Symbol *SymbolRef
}

// SymbolRef names one symbol of a session: its source block and ESI.
type SymbolRef struct {
	Block uint8
	ESI   uint32
}

// blameBook is a session's blamed peers. It has its own lock and takes no
// other while holding it.
type blameBook struct {
	mu    sync.Mutex
	peers map[peer.ID]Blame
}

func newBlameBook() *blameBook {
	return &blameBook{peers: make(map[peer.ID]Blame)}
}

// add records a blame; it reports whether p was not blamed before.
func (bb *blameBook) add(p peer.ID, reason string, sym *SymbolRef) bool {
	bb.mu.Lock()
	defer bb.mu.Unlock()
	if _, ok := bb.peers[p]; ok {
		return false
	}
	bb.peers[p] = Blame{Peer: p, Reason: reason, At: time.Now(), Symbol: sym}
	return true
}

// has reports whether p is blamed.
func (bb *blameBook) has(p peer.ID) bool {
	bb.mu.Lock()
	defer bb.mu.Unlock()
	_, ok := bb.peers[p]
	return ok
}

// list returns the blames, oldest first.
func (bb *blameBook) list() []Blame {
	bb.mu.Lock()
	out := make([]Blame, 0, len(bb.peers))
	for _, b := range bb.peers {
		out = append(out, b)
	}
	bb.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out
}

// blame names p as a sender of bad data for this session: it is logged
// once, its subscriptions in both directions end with goodbye code 6, and
// it is never taken as a parent or a child again in this session. The empty
// ID (data read back from local storage) and this node are never blamed.
func (s *session) blame(p peer.ID, reason string) { s.blameFor(p, reason, nil) }

// blameFor is blame with the source symbol that proved p wrong, if one did.
func (s *session) blameFor(p peer.ID, reason string, sym *SymbolRef) {
	if p == "" || p == s.node.host.ID() {
		return
	}
	if !s.blamed.add(p, reason, sym) {
		return
	}
	log.Warnw("peer sent bad data: dropped for this session", "cid", s.cid, "peer", p, "reason", reason)
	s.up.book.forget(p)
	for _, u := range s.up.list() {
		if u.peer == p {
			u.closeWith(protocol.GoodbyeBadData, reason)
		}
	}
	for _, c := range s.down.list() {
		if c.peer == p {
			if s.down.remove(c) {
				s.down.spawn(func() { c.closeWith(protocol.GoodbyeBadData, "this peer sent bad data") })
			}
		}
	}
}

// isBlamed reports whether p is blamed in this session.
func (s *session) isBlamed(p peer.ID) bool { return s.blamed.has(p) }
