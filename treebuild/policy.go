package treebuild

import (
	"math"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// This file holds a parent's decisions about its children and a receiver's
// decisions about its upstreams as pure functions of what the caller
// measured: who is admitted, who is evicted, which extra upstream is
// dropped, how a block's need is split into credits. The node gathers the
// figures, calls these, and carries out the result.

// Refusal says why a subscription was refused. The wire carries a reason
// text; RefusalFromReason maps it back.
type Refusal int

const (
	// Accepted: not refused.
	Accepted Refusal = iota
	// RefuseFull: no slot in the stripe; the reply redirects to children.
	RefuseFull
	// RefuseLoop: the subscriber is on the parent's path.
	RefuseLoop
	// RefuseNotHeld: the parent has no session for the content.
	RefuseNotHeld
	// RefuseClosing: the parent's session is closing.
	RefuseClosing
	// RefuseNotComplete: a whole-stream subscription to a peer that does
	// not hold the whole file.
	RefuseNotComplete
	// RefuseOrigin: a whole-stream subscription to the original source.
	RefuseOrigin
	// RefuseOther: a reason this version does not know.
	RefuseOther
)

// reasons are the texts each refusal goes on the wire with.
var reasons = [...]string{
	Accepted:          "",
	RefuseFull:        "full",
	RefuseLoop:        "you are on my path: loop",
	RefuseNotHeld:     "content not held here",
	RefuseClosing:     "closing",
	RefuseNotComplete: "not complete: subscribe to a stripe",
	RefuseOrigin:      "original source: subscribe to a stripe",
	RefuseOther:       "refused",
}

// Reason is the text a refusal is sent with.
func (r Refusal) Reason() string {
	if r < 0 || int(r) >= len(reasons) {
		return reasons[RefuseOther]
	}
	return reasons[r]
}

func (r Refusal) String() string {
	if r == Accepted {
		return "accepted"
	}
	return r.Reason()
}

// RefusalFromReason maps a reason text received on the wire to its code.
func RefusalFromReason(reason string) Refusal {
	for r, s := range reasons {
		if r != int(Accepted) && s == reason {
			return Refusal(r)
		}
	}
	return RefuseOther
}

// ChildStat is what a parent measured of one child for its decisions.
type ChildStat struct {
	Peer   peer.ID
	Stripe int
	// Whole marks a whole-stream (extra) subscription of a striped peer;
	// Probe a short measurement subscription. Neither takes a slot.
	Whole, Probe bool
	// Striped marks a subscription with the parent's own stripe count.
	Striped bool
	Rate    float64       // bytes/s sent to it lately
	Age     time.Duration // since it joined
	// Wants: it still has credit for some block of its window (or sent
	// none); Behind: it fell behind the ring since the last check while it
	// wanted more; Lagging: how long it has stayed half a ring behind while
	// it wanted more (0: not lagging).
	Wants, Behind bool
	Lagging       time.Duration
}

// SlowPolicy is when a child counts as too slow.
type SlowPolicy struct {
	// Share of the median rate below which a child measured for After
	// (or lagging for Lag) is slow.
	Share float64
	After time.Duration
	Lag   time.Duration
	// ClearShare of the median below which a child lagging for ClearLag is
	// slow however long it has been there.
	ClearShare float64
	ClearLag   time.Duration
}

// upperMedian returns the middle value of xs (the upper one of the two
// middle values when their number is even); xs is not modified.
func upperMedian(xs []float64) float64 {
	sorted := slices.Clone(xs)
	slices.Sort(sorted)
	return sorted[len(sorted)/2]
}

// SlotUsers counts the children that take one of stripe's slots: not
// probes, not whole-stream subscriptions, not who. With discountSlow (a
// relay), a child there for p.After that takes less than p.Share of the
// median rate of its stripe's siblings takes no slot: the fan-out limit
// guards the uplink, which such a child hardly uses.
func SlotUsers(children []ChildStat, stripe int, who peer.ID, discountSlow bool, p SlowPolicy) int {
	var rates []float64
	var ages []time.Duration
	for _, c := range children {
		if !c.Probe && !c.Whole && c.Stripe == stripe && c.Peer != who {
			rates = append(rates, c.Rate)
			ages = append(ages, c.Age)
		}
	}
	if !discountSlow || len(rates) < 2 {
		return len(rates)
	}
	median := upperMedian(rates)
	n := 0
	for i := range rates {
		if ages[i] >= p.After && rates[i] < p.Share*median {
			continue
		}
		n++
	}
	return n
}

// Victim picks, at the original source, the index of a child of stripe to
// make room for who, or -1: a peer that holds at least two more of the
// source's stripes than who gives one up (the one holding the most).
func Victim(children []ChildStat, who peer.ID, stripe int) int {
	held := map[peer.ID]int{}
	for _, c := range children {
		if !c.Probe && c.Striped {
			held[c.Peer]++
		}
	}
	victim := -1
	for i, c := range children {
		if c.Probe || c.Stripe != stripe || !c.Striped {
			continue
		}
		if held[c.Peer] >= held[who]+2 && (victim < 0 || held[c.Peer] > held[children[victim].Peer]) {
			victim = i
		}
	}
	return victim
}

// EvictSlow returns the indexes of the original source's stripe children
// to drop as too slow: one below s.Share of the median rate that lagged
// for s.Lag, or was there for s.After and fell behind; or one below
// s.ClearShare that lagged for s.ClearLag. Every other peer receives the
// stripe through such a child, so a slow link there starves the stripe.
func EvictSlow(children []ChildStat, s SlowPolicy) []int {
	var idx []int
	var rates []float64
	for i, c := range children {
		if !c.Probe && c.Striped {
			idx = append(idx, i)
			rates = append(rates, c.Rate)
		}
	}
	if len(idx) < 2 {
		return nil
	}
	median := upperMedian(rates)
	var out []int
	for j, i := range idx {
		c := children[i]
		early := c.Lagging > 0 && c.Lagging >= s.Lag
		cleared := c.Lagging > 0 && c.Lagging >= s.ClearLag
		slow := rates[j] < s.Share*median && (early || c.Age >= s.After && c.Behind)
		if slow || rates[j] < s.ClearShare*median && cleared {
			out = append(out, i)
		}
	}
	return out
}

// AdmitRequest is one subscription to decide on.
type AdmitRequest struct {
	Peer   peer.ID
	Stripe int
	Whole  bool // a whole-stream subscription of a striped peer
	Probe  bool
	OnPath bool // the subscriber is on this node's path in the stripe
	Banned bool // the subscriber lately proved too slow to carry a stripe
}

// AdmitState is the parent's side of the decision.
type AdmitState struct {
	Origin   bool // the original source
	Complete bool // holds the whole file
	Striped  bool // more than one stripe
	Limit    int  // fan-out limit in the request's stripe
	// WholeLimit bounds whole-stream subscriptions (a complete peer's).
	WholeLimit int
	Slow       SlowPolicy
}

// Admission is the decision: accept or a refusal, and the index of a child
// to evict first (-1: none).
type Admission struct {
	Refusal Refusal
	Evict   int
}

// Admit decides on a subscription given the current children: probes are
// always taken; a whole-stream subscription only by a complete peer that
// is not the original source, up to WholeLimit; a stripe subscription
// while the stripe has a slot, where the original source refuses banned
// peers and makes a slot by evicting a peer that holds too many stripes.
func Admit(req AdmitRequest, st AdmitState, children []ChildStat) Admission {
	no := Admission{Evict: -1}
	if req.OnPath {
		no.Refusal = RefuseLoop
		return no
	}
	if req.Probe {
		return no
	}
	if req.Whole {
		n := 0
		for _, c := range children {
			if !c.Probe && c.Whole && c.Peer != req.Peer {
				n++
			}
		}
		switch {
		case !st.Complete:
			no.Refusal = RefuseNotComplete
		case n >= st.WholeLimit:
			no.Refusal = RefuseFull
		case st.Origin:
			no.Refusal = RefuseOrigin
		}
		return no
	}
	sourceStripes := st.Origin && st.Striped
	if sourceStripes && req.Banned {
		no.Refusal = RefuseFull
		return no
	}
	n := SlotUsers(children, req.Stripe, req.Peer, !st.Origin, st.Slow)
	if n >= st.Limit && sourceStripes {
		if v := Victim(children, req.Peer, req.Stripe); v >= 0 {
			return Admission{Evict: v}
		}
	}
	if n < st.Limit {
		return no
	}
	no.Refusal = RefuseFull
	return no
}

// ExtraPolicy is when an extra (whole-stream) upstream is dropped.
type ExtraPolicy struct {
	// Idle: it delivered nothing new for this long.
	Idle time.Duration
	// DupShare of its symbols were duplicates, measured once it sent
	// MinSymbols.
	DupShare   float64
	MinSymbols uint64
}

// DropExtra reports whether an extra upstream that sent symbols, fresh of
// them new, and nothing new for idle, should be dropped.
func DropExtra(symbols, fresh uint64, idle time.Duration, p ExtraPolicy) bool {
	if idle > p.Idle {
		return true
	}
	return symbols >= p.MinSymbols && float64(symbols-fresh) > p.DupShare*float64(symbols)
}

// SplitNeed splits need symbols over weights w in proportion, in whole
// symbols that add up to need (largest remainders round up); with no
// positive weight, evenly. It appends to dst.
func SplitNeed(need int, w []float64, dst []int) []int {
	if len(w) == 0 {
		return dst
	}
	base := len(dst)
	total := 0.0
	for _, x := range w {
		total += max(x, 0)
	}
	if total <= 0 {
		for i := range w {
			dst = append(dst, need/len(w))
			if i < need%len(w) {
				dst[base+i]++
			}
		}
		return dst
	}
	rem := make([]float64, len(w))
	left := need
	for i, x := range w {
		exact := float64(need) * max(x, 0) / total
		n := int(exact)
		dst = append(dst, n)
		rem[i] = exact - float64(n)
		left -= n
	}
	for ; left > 0; left-- {
		best := 0
		for i := range rem {
			if rem[i] > rem[best] {
				best = i
			}
		}
		dst[base+best]++
		rem[best] = -1
	}
	return dst
}

// ShareOf returns the credit a new upstream of weight mine starts with for
// a block that still needs need symbols, when the existing upstreams weigh
// others in total: its part of SplitNeed over {others, mine}, so that the
// first grants never add up to more than the need.
func ShareOf(need int, mine, others float64) int {
	if need <= 0 {
		return 0
	}
	if math.IsInf(mine, 1) {
		return need
	}
	s := SplitNeed(need, []float64{max(others, 0), max(mine, 0)}, nil)
	return s[1]
}
