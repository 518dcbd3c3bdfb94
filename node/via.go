package node

import (
	"maps"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/romap2p/romap2p/protocol"
)

// Forwarded repair symbols (protocol/SPEC.md, "Repair symbols"): a repair
// symbol from a relay still fetching is stored without a sender's name,
// since the relay may have passed it on. Such a symbol that proves wrong
// blames no one, but it is not left to spoil decoding either: each one
// keeps the upstream that handed it over (its "via"), so that a block that
// fails can be decoded again without one via's symbols, and a via whose
// forwarded repair symbols proved wrong is distrusted for repair symbols:
// its later ones are neither stored nor passed on, and those held are left
// out of decoding. It is left as a parent and put aside like one that
// failed (its repair symbols would still take this node's downlink), but it
// is not blamed: an honest relay below a wrong one forwards wrong repair
// symbols too. The repair symbols of a blamed peer are left out the
// same way.

// repairSource is whom a block's repair symbols are attributed to when
// decoding: a named sender (peer set, via false), a relay that forwarded
// unnamed ones (via true), or none (records read back from local storage:
// peer empty, via false).
type repairSource struct {
	peer peer.ID
	via  bool
}

// viaBook keeps, per block, the upstream that handed over each unnamed
// repair symbol, and the peers distrusted for repair symbols.
type viaBook struct {
	mu         sync.Mutex
	blocks     []map[uint32]peer.ID
	distrusted map[peer.ID]string
}

func newViaBook(blocks int) *viaBook {
	return &viaBook{blocks: make([]map[uint32]peer.ID, blocks), distrusted: make(map[peer.ID]string)}
}

// note records that unnamed repair symbol esi of block b came from p.
func (v *viaBook) note(b int, esi uint32, p peer.ID) {
	v.mu.Lock()
	defer v.mu.Unlock()
	m := v.blocks[b]
	if m == nil {
		m = make(map[uint32]peer.ID)
		v.blocks[b] = m
	}
	m[esi] = p
}

// snapshot returns a copy of block b's vias (nil when there are none).
func (v *viaBook) snapshot(b int) map[uint32]peer.ID {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.blocks[b]) == 0 {
		return nil
	}
	return maps.Clone(v.blocks[b])
}

// has reports whether block b holds unnamed repair symbols from peers.
func (v *viaBook) has(b int) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.blocks[b]) > 0
}

// finish forgets block b's vias (the block is decoded).
func (v *viaBook) finish(b int) {
	v.mu.Lock()
	v.blocks[b] = nil
	v.mu.Unlock()
}

// distrust records that repair symbols p forwarded proved wrong; it
// reports whether p was trusted before.
func (v *viaBook) distrust(p peer.ID, reason string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.distrusted[p]; ok {
		return false
	}
	v.distrusted[p] = reason
	return true
}

// isDistrusted reports whether p's forwarded repair symbols are refused.
func (v *viaBook) isDistrusted(p peer.ID) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	_, ok := v.distrusted[p]
	return ok
}

// distrust stops using the unnamed repair symbols p forwards, for the rest
// of this download, without blaming it.
func (f *fetchState) distrust(p peer.ID, reason string) {
	if p == "" || !f.via.distrust(p, reason) {
		return
	}
	s := f.s
	log.Infow("repair symbols forwarded by this peer proved wrong: leaving it as a parent", "cid", s.cid, "peer", p, "reason", reason)
	// A parent whose repair symbols are refused still takes this node's
	// downlink with them: it is left and put aside like a parent that
	// failed. Taken again later, once complete, it names its repair
	// symbols, and a wrong one then blames it.
	s.up.book.markFailed(p)
	for _, u := range s.up.list() {
		if u.peer == p {
			u.closeWith(protocol.GoodbyeSwitch, "forwarded repair symbols that proved wrong")
		}
	}
}

// excluded reports whether repair symbols of src are left out of decoding:
// those of a blamed sender, and those forwarded by a blamed or distrusted
// relay.
func (f *fetchState) excluded(src repairSource) bool {
	if src.peer == "" {
		return false
	}
	if f.s.isBlamed(src.peer) {
		return true
	}
	return src.via && f.via.isDistrusted(src.peer)
}
