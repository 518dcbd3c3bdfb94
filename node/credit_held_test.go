package node

import (
	"bytes"
	"testing"
	"time"

	"github.com/romap2p/romap2p/protocol"
)

// TestHeldFramesTellParentsWhatOthersDelivered: a parent is told again
// which source symbols of its stripe this node holds once it holds
// heldMore more of a credited block, at most once per refresh, and a probe
// is never told.
func TestHeldFramesTellParentsWhatOthersDelivered(t *testing.T) {
	const T, K, every = 16, 64, 250 * time.Millisecond
	sp, err := openSpill(t.TempDir(), T, []int{K, K}, func(int) bool { return false }, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	s := &session{fetch: &fetchState{spill: sp}}
	stripe := &upstream{s: s, stripes: 4, stripe: 1}
	whole := &upstream{s: s, stripes: 1}
	probe := &upstream{s: s, stripes: 4, stripe: 1, probe: true}
	credits := []protocol.Credit{{SBN: 0}, {SBN: 1}}
	hold := func(sbn int, esis ...uint32) {
		for _, e := range esis {
			sp.markSeen(sbn, e)
		}
	}
	decode := func(b []byte) map[uint8]protocol.Held {
		t.Helper()
		out := map[uint8]protocol.Held{}
		fr := protocol.NewFrameReader(bytes.NewReader(b), T)
		for {
			fm, err := fr.Next()
			if err != nil {
				if len(out) == 0 && len(b) > 0 {
					t.Logf("read: %v", err)
				}
				return out
			}
			h, err := fm.Held()
			if err != nil {
				t.Fatal(err)
			}
			out[h.SBN] = protocol.Held{SBN: h.SBN, N: h.N, Bits: append([]byte(nil), h.Bits...)}
		}
	}
	now := time.Now()
	var stS, stW, stP creditState
	// Block 0: source symbols 1, 5, ..., 29 of stripe 1 (eight) and seven
	// of other stripes; block 1: three of stripe 1 (too few to tell).
	for e := uint32(1); e < 32; e += 4 {
		hold(0, e)
	}
	hold(0, 0, 2, 3, 4, 6, 7, 8)
	hold(1, 1, 5, 9)
	got := decode(heldFrames(nil, stripe, &stS, credits, now, every))
	if h, ok := got[0]; !ok || h.N != K/4 || h.Count() != 8 || !h.Has(0) || !h.Has(7) || h.Has(8) {
		t.Fatalf("stripe parent, block 0: %+v", got[0])
	}
	if _, ok := got[1]; ok {
		t.Fatal("told the stripe parent of block 1, which holds only 3 of its stripe")
	}
	if h := decode(heldFrames(nil, whole, &stW, credits, now, every))[0]; h.N != K || h.Count() != 15 {
		t.Fatalf("whole-stream parent, block 0: %d of %d held", h.Count(), h.N)
	}
	if b := heldFrames(nil, probe, &stP, credits, now, every); len(b) != 0 {
		t.Fatal("told a probe")
	}
	// Seven more of stripe 1 in block 0 and two repair symbols: not enough.
	for e := uint32(33); e < 60; e += 4 {
		hold(0, e)
	}
	hold(0, 65, 69)
	if b := heldFrames(nil, stripe, &stS, credits, now.Add(every), every); len(b) != 0 {
		t.Fatalf("told after 7 more: %v", decode(b))
	}
	// The eighth: not within the refresh interval, then once.
	hold(0, 61)
	if b := heldFrames(nil, stripe, &stS, credits, now.Add(every+every/2), every); len(b) != 0 {
		t.Fatal("told again within the refresh interval")
	}
	if h := decode(heldFrames(nil, stripe, &stS, credits, now.Add(2*every), every))[0]; h.Count() != 16 {
		t.Fatalf("after 8 more of stripe 1: told %d held, want 16", h.Count())
	}
	if b := heldFrames(nil, stripe, &stS, credits, now.Add(3*every), every); len(b) != 0 {
		t.Fatal("told twice of the same symbols")
	}
}
