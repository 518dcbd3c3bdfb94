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

// Verdict is a parent's answer to a peer asking to become its child.
type Verdict int

const (
	// Accept admits the child.
	Accept Verdict = iota
	// RefuseFull refuses because the parent has no free child slot; the
	// parent should offer its children as candidates instead.
	RefuseFull
	// RefuseLoop refuses because the child is the parent itself or one of
	// its ancestors: accepting it would close a loop.
	RefuseLoop
)

// String names the verdict.
func (v Verdict) String() string {
	switch v {
	case Accept:
		return "accept"
	case RefuseFull:
		return "full"
	case RefuseLoop:
		return "loop"
	}
	return "unknown"
}

// Admit decides whether a parent self, whose path from the source is
// myPath, takes child while it feeds children of at most maxChildren. A
// probe needs a slot like a child does, so that it measures what a child
// would get. Loops are checked first: a loop refusal is final, a full one
// comes with a redirection to the parent's children.
func Admit(self peer.ID, myPath []peer.ID, child peer.ID, children, maxChildren int) Verdict {
	if child == self || OnPath(myPath, child) {
		return RefuseLoop
	}
	if children >= maxChildren {
		return RefuseFull
	}
	return Accept
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
