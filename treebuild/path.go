package treebuild

import (
	"hash/fnv"

	"github.com/libp2p/go-libp2p/core/peer"
)

// OnPath reports whether id appears on path.
func OnPath(path []peer.ID, id peer.ID) bool {
	for _, p := range path {
		if p == id {
			return true
		}
	}
	return false
}

// ExtendPath returns the path of a peer self placed under a parent whose
// path is parentPath: a fresh copy of parentPath with self appended. A peer
// that finds itself already on parentPath is in a loop and must leave that
// parent (see OnPath).
func ExtendPath(parentPath []peer.ID, self peer.ID) []peer.ID {
	p := make([]peer.ID, len(parentPath), len(parentPath)+1)
	copy(p, parentPath)
	return append(p, self)
}

// StripeOf returns the stripe of encoding symbol esi when the stream is cut
// into k stripes (k <= 1: one stripe, 0).
func StripeOf(esi uint32, k int) int {
	if k <= 1 {
		return 0
	}
	return int(esi % uint32(k))
}

// HomeStripe returns the stripe in which peer id spends its uplink: a hash
// of the ID, spread evenly over k stripes and the same on every peer.
func HomeStripe(id peer.ID, k int) int {
	if k <= 1 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(id))
	return int(h.Sum64() % uint64(k))
}

// FanOut is the per-stripe child limit of a peer: as in SplitStream, a peer
// is interior in its home stripe and (nearly) a leaf in the others.
type FanOut struct {
	// Home is the child limit in the peer's home stripe.
	Home int
	// Other is the child limit in every other stripe (usually 0).
	Other int
}

// MaxChildren returns the child limit in stripe for a peer whose home
// stripe is home. A complete peer generates fresh symbols of any stripe
// itself, so it serves every stripe at its home limit.
func (f FanOut) MaxChildren(stripe, home int, complete bool) int {
	if complete || stripe == home {
		return f.Home
	}
	return f.Other
}
