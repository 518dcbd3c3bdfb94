package treebuild

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Admission at a parent. A parent gives each stripe a few relay slots (the
// children through which the stripe reaches everyone else) and beside them
// a few leaf slots: a leaf is fed like any child but is never offered to
// others as a parent. A child must show life (prove that it reads) within
// a grace period or it loses its slot; one that proves too slow to carry a
// stripe for others is demoted: it may hold a leaf slot only while the
// stripe has no live relay child, and otherwise goes below one; a newcomer
// may take the slot of a child that has not shown life after a short
// probation. Whether a child is too slow is judged against what the parent
// could send it: a child whose stream accepts everything the parent offers
// is never slow, however little that is (a rate-limited parent, or one
// that has a single receiver).

// Slot says where a child sits at its parent.
type Slot uint8

const (
	// SlotRelay is one of a stripe's relay slots: the child is offered to
	// other peers as a parent (redirects) and counts against the fan-out.
	SlotRelay Slot = iota
	// SlotLeaf is a leaf slot: the child is fed but never offered to
	// others.
	SlotLeaf
	// SlotProbe is a short trial subscription.
	SlotProbe
)

func (s Slot) String() string {
	switch s {
	case SlotRelay:
		return "relay"
	case SlotLeaf:
		return "leaf"
	case SlotProbe:
		return "probe"
	}
	return fmt.Sprintf("slot(%d)", uint8(s))
}

// ChildView is what a parent knows of one child of a stripe when it
// decides on it.
type ChildView struct {
	Slot Slot
	// Age is the time since the child subscribed.
	Age time.Duration
	// Alive reports whether the child has shown life: it reported symbols
	// received in a credit frame, or it took more bytes than a stream can
	// hold unread.
	Alive bool
	// Rate is what the child took over about the last second, bytes/s.
	Rate float64
	// LinkBound is the share of the last second the parent spent blocked
	// writing to the child's stream: near 1 when the child (or its link)
	// is what limits the rate, near 0 when the parent (its generator or an
	// upload limit) is.
	LinkBound float64
	// Stalled reports that the child's stream takes nothing now: a write
	// to it has been blocked for a while, or nothing was written to it.
	Stalled bool
}

// AdmitPolicy holds the admission rules of a parent.
type AdmitPolicy struct {
	// LifeGrace is how long a child may hold a slot without showing life.
	LifeGrace time.Duration
	// Probation is the age after which a child that has not shown life may
	// be displaced by a newcomer.
	Probation time.Duration
	// SlowAfter is how long a relay child is measured before it can be
	// judged too slow.
	SlowAfter time.Duration
	// SlowShare: a relay child taking less than this share of the
	// reference rate (see Judge) while its link limits it is too slow to
	// relay.
	SlowShare float64
	// MinRelayRate is the least rate (bytes/s) a link-bound relay child
	// must take to keep a relay slot, whatever its siblings take.
	MinRelayRate float64
	// LinkBoundShare is the share of time blocked on the child's stream
	// above which the child, not the parent, limits the rate.
	LinkBoundShare float64
	// LeafSlots is the number of leaf slots per stripe.
	LeafSlots int
	// ProbeSlots is the number of probe subscriptions a parent takes at
	// once.
	ProbeSlots int
	// UnprovenPerIP is how many children that have not shown life yet one
	// IP address may have at a parent: identities behind one address
	// cannot fill the slots kept for newcomers. (An honest peer subscribes
	// to every stripe at once, so this is a few times the stripe count.)
	UnprovenPerIP int
	// LifelessAfter: an address whose children ended this many times
	// without showing life within LifelessWindow may have one unproven
	// child at a time only (identities that subscribe, read nothing and
	// subscribe again).
	LifelessAfter  int
	LifelessWindow time.Duration
}

// DefaultAdmitPolicy returns the default admission rules.
func DefaultAdmitPolicy() AdmitPolicy {
	return AdmitPolicy{
		LifeGrace:      2 * time.Second,
		Probation:      250 * time.Millisecond,
		SlowAfter:      time.Second,
		SlowShare:      0.25,
		MinRelayRate:   64 << 10,
		LinkBoundShare: 0.5,
		LeafSlots:      4,
		ProbeSlots:     8,
		UnprovenPerIP:  24,
		LifelessAfter:  8,
		LifelessWindow: 30 * time.Second,
	}
}

// Validate reports an unusable policy.
func (p AdmitPolicy) Validate() error {
	var errs []error
	if p.LifeGrace <= 0 {
		errs = append(errs, errors.New("life grace must be positive"))
	}
	if p.Probation <= 0 || p.Probation > p.LifeGrace {
		errs = append(errs, errors.New("probation must be positive and at most the life grace"))
	}
	if p.SlowAfter <= 0 {
		errs = append(errs, errors.New("slow-after must be positive"))
	}
	if p.SlowShare < 0 || p.SlowShare > 1 {
		errs = append(errs, errors.New("slow share must be in [0, 1]"))
	}
	if p.MinRelayRate < 0 {
		errs = append(errs, errors.New("minimum relay rate is negative"))
	}
	if p.LinkBoundShare <= 0 || p.LinkBoundShare > 1 {
		errs = append(errs, errors.New("link-bound share must be in (0, 1]"))
	}
	if p.LeafSlots < 1 {
		errs = append(errs, errors.New("a parent needs at least one leaf slot for newcomers"))
	}
	if p.LifelessAfter < 1 || p.LifelessWindow <= 0 {
		errs = append(errs, errors.New("lifeless-after must be at least 1 and its window positive"))
	}
	if p.UnprovenPerIP < 1 {
		errs = append(errs, errors.New("unproven children per IP must be at least 1"))
	}
	if p.ProbeSlots < 0 {
		errs = append(errs, errors.New("probe slots is negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("admission policy: %w", err)
	}
	return nil
}

// ChildVerdict is what a parent does with a child it checks.
type ChildVerdict uint8

const (
	// KeepChild leaves the child where it is.
	KeepChild ChildVerdict = iota
	// DropChild ends the subscription: the child showed no life in time. It is
	// not a ban; the child may subscribe again.
	DropChild
	// DemoteChild moves a relay child that proved too slow to carry its stripe
	// for others to a leaf slot.
	DemoteChild
)

func (v ChildVerdict) String() string {
	switch v {
	case KeepChild:
		return "keep"
	case DropChild:
		return "drop"
	case DemoteChild:
		return "demote"
	}
	return fmt.Sprintf("verdict(%d)", uint8(v))
}

// Judge decides on one child. ref is the rate the child is measured
// against: what the parent sends its siblings of the same kind (their
// median) or could send (its capacity per relay slot), whichever is more.
// A child is too slow only when its own stream is what holds it back
// (LinkBound): a child that takes all the parent offers is never judged,
// however slow the parent.
func (p AdmitPolicy) Judge(c ChildView, ref float64) ChildVerdict {
	if !c.Alive {
		if c.Age >= p.LifeGrace {
			return DropChild
		}
		return KeepChild
	}
	if c.Slot != SlotRelay || c.Age < p.SlowAfter || c.LinkBound < p.LinkBoundShare {
		return KeepChild
	}
	if c.Rate < p.MinRelayRate || c.Rate < p.SlowShare*ref {
		return DemoteChild
	}
	return KeepChild
}

// Reference returns the rate a relay child is judged against: the upper
// median of its relay siblings' rates (the child itself excluded) or the
// parent's capacity shared over its relay children, whichever is more.
func Reference(siblings []float64, capacity float64, relayChildren int) float64 {
	ref := 0.0
	if len(siblings) > 0 {
		s := slices.Clone(siblings)
		slices.Sort(s)
		ref = s[len(s)/2]
	}
	if relayChildren > 0 && capacity/float64(relayChildren) > ref {
		ref = capacity / float64(relayChildren)
	}
	return ref
}

// SlotDecision is the decision on a newcomer: the slot it gets, if any.
type SlotDecision struct {
	// Accept reports whether the newcomer gets a slot.
	Accept bool
	// Slot is the slot it gets.
	Slot Slot
	// Displace is the index (in the children passed to Admit) of the child
	// that leaves to make room, or -1.
	Displace int
}

// Admit decides on a newcomer of one stripe (or a probe). kids are the
// parent's current children of that stripe of the same kind (relay and
// leaf children for a stripe subscription; probes for a probe); relaySlots
// is the stripe's fan-out. A newcomer that lately proved too slow to relay
// (demoted) gets a leaf slot at most; any other gets a leaf slot only while
// no relay child of the stripe is live (LiveRelay). When every slot is taken, the
// newcomer takes the slot of the oldest child that has not shown life
// after Probation. A child that has shown life is never displaced: whoever
// reads keeps what it has, and identities that read nothing hold a slot
// against a newcomer for Probation at most.
func (p AdmitPolicy) Admit(kids []ChildView, relaySlots int, probe, demoted bool) SlotDecision {
	if probe {
		n := 0
		for _, k := range kids {
			if k.Slot == SlotProbe {
				n++
			}
		}
		if n < p.ProbeSlots {
			return SlotDecision{Accept: true, Slot: SlotProbe, Displace: -1}
		}
		if i := p.displaceable(kids, SlotProbe); i >= 0 {
			return SlotDecision{Accept: true, Slot: SlotProbe, Displace: i}
		}
		return SlotDecision{Displace: -1}
	}
	relays, leaves, live := 0, 0, false
	for _, k := range kids {
		switch k.Slot {
		case SlotRelay:
			relays++
			live = live || p.LiveRelay(k)
		case SlotLeaf:
			leaves++
		}
	}
	if !demoted && relays < relaySlots {
		return SlotDecision{Accept: true, Slot: SlotRelay, Displace: -1}
	}
	// A leaf slot is only for a peer that has no live relay child to be
	// sent to instead: the stripe's relay children pass it on to everyone
	// else, while a leaf of the parent costs the parent's uplink a copy of
	// the stripe of its own. (A peer demoted as too slow to relay goes
	// below the relay child too: on the testbed, leaves given to demoted
	// peers took half of the source's uplink with copies.)
	leaf := !live
	if leaf && leaves < p.LeafSlots {
		return SlotDecision{Accept: true, Slot: SlotLeaf, Displace: -1}
	}
	if !demoted && relaySlots > 0 {
		if i := p.displaceable(kids, SlotRelay); i >= 0 {
			return SlotDecision{Accept: true, Slot: SlotRelay, Displace: i}
		}
	}
	if leaf {
		if i := p.displaceable(kids, SlotLeaf); i >= 0 {
			return SlotDecision{Accept: true, Slot: SlotLeaf, Displace: i}
		}
	}
	return SlotDecision{Displace: -1}
}

// LiveRelay reports whether a relay child carries its stripe on: it said it
// reads and it takes at least MinRelayRate now. (Identities that send
// credits and read nothing are not live.) A stripe with a live relay child
// gives no leaf slots to peers that can relay, and the leaves it gave
// before move below that child.
func (p AdmitPolicy) LiveRelay(k ChildView) bool {
	return k.Slot == SlotRelay && k.Alive && k.Rate >= p.MinRelayRate
}

// displaceable returns the oldest child in slot that has not shown life
// after Probation and whose stream takes nothing now, or -1. (A newcomer
// that reads but has not said so yet, on a slow or loaded path, keeps its
// slot until LifeGrace.)
func (p AdmitPolicy) displaceable(kids []ChildView, slot Slot) int {
	best := -1
	for i, k := range kids {
		if k.Slot != slot || k.Alive || k.Age < p.Probation || !k.Stalled {
			continue
		}
		if best < 0 || k.Age > kids[best].Age {
			best = i
		}
	}
	return best
}

// Offered reports whether a child in this state may be offered to other
// peers as a parent (in a "full" reply's redirects): a relay child that has
// shown life.
func Offered(c ChildView) bool { return c.Slot == SlotRelay && c.Alive }

// IPAllows reports whether an address that has unproven children (not
// shown life yet) at a parent may add one more; lifeless is how many of its
// children ended lately without ever showing life.
func (p AdmitPolicy) IPAllows(unproven, lifeless int) bool {
	if lifeless >= p.LifelessAfter {
		return unproven < 1
	}
	return unproven < p.UnprovenPerIP
}
