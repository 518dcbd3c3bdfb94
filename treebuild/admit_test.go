package treebuild

import (
	"testing"
	"time"
)

func TestAdmitPolicyValidate(t *testing.T) {
	if err := DefaultAdmitPolicy().Validate(); err != nil {
		t.Fatalf("default policy: %v", err)
	}
	bad := []func(*AdmitPolicy){
		func(p *AdmitPolicy) { p.LifeGrace = 0 },
		func(p *AdmitPolicy) { p.Probation = 3 * time.Second },
		func(p *AdmitPolicy) { p.SlowAfter = 0 },
		func(p *AdmitPolicy) { p.SlowShare = 2 },
		func(p *AdmitPolicy) { p.MinRelayRate = -1 },
		func(p *AdmitPolicy) { p.LinkBoundShare = 0 },
		func(p *AdmitPolicy) { p.LeafSlots = 0 },
		func(p *AdmitPolicy) { p.ProbeSlots = -1 },
		func(p *AdmitPolicy) { p.UnprovenPerIP = 0 },
	}
	for i, f := range bad {
		p := DefaultAdmitPolicy()
		f(&p)
		if p.Validate() == nil {
			t.Errorf("case %d: bad policy accepted", i)
		}
	}
}

func TestJudge(t *testing.T) {
	p := DefaultAdmitPolicy()
	const mb = 1 << 20
	cases := []struct {
		name string
		c    ChildView
		ref  float64
		want ChildVerdict
	}{
		{"unproven within grace", ChildView{Age: time.Second}, mb, KeepChild},
		{"unproven past grace", ChildView{Age: 2 * time.Second}, mb, DropChild},
		// Siblings that read nothing give a median of 0: the child that
		// reads nothing is still dropped.
		{"non-reader among non-readers", ChildView{Age: 3 * time.Second, LinkBound: 1}, 0, DropChild},
		{"young relay", ChildView{Alive: true, Age: 500 * time.Millisecond, LinkBound: 1}, mb, KeepChild},
		{"fast relay", ChildView{Alive: true, Age: 5 * time.Second, Rate: mb, LinkBound: 1}, mb, KeepChild},
		{"slow link-bound relay", ChildView{Alive: true, Age: 5 * time.Second, Rate: 0.1 * mb, LinkBound: 0.9}, mb, DemoteChild},
		// A rate-limited parent, or one with a single receiver: the child
		// takes all it is offered, so it is never too slow.
		{"slow, parent-bound", ChildView{Alive: true, Age: 5 * time.Second, Rate: 0.01 * mb, LinkBound: 0.1}, mb, KeepChild},
		// Every sibling as slow as it (1 KiB/s readers): the floor judges.
		{"1 KiB/s reader among equals", ChildView{Alive: true, Age: 5 * time.Second, Rate: 1024, LinkBound: 1}, 1024, DemoteChild},
		{"leaf is never demoted", ChildView{Slot: SlotLeaf, Alive: true, Age: 5 * time.Second, Rate: 1, LinkBound: 1}, mb, KeepChild},
		{"dead leaf is dropped", ChildView{Slot: SlotLeaf, Age: 5 * time.Second}, mb, DropChild},
	}
	for _, tc := range cases {
		if got := p.Judge(tc.c, tc.ref); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestReference(t *testing.T) {
	cases := []struct {
		sib      []float64
		capacity float64
		relays   int
		want     float64
	}{
		{nil, 0, 0, 0},
		{[]float64{0, 0, 0}, 0, 4, 0},
		{[]float64{0, 0, 0}, 8e6, 4, 2e6},
		{[]float64{1, 3, 2}, 0, 4, 2},
		{[]float64{5e6, 4e6}, 8e6, 8, 5e6},
	}
	for i, tc := range cases {
		if got := Reference(tc.sib, tc.capacity, tc.relays); got != tc.want {
			t.Errorf("case %d: got %v, want %v", i, got, tc.want)
		}
	}
}

func TestAdmitNewcomer(t *testing.T) {
	p := DefaultAdmitPolicy()
	p.LeafSlots = 2
	p.ProbeSlots = 1
	young := 100 * time.Millisecond
	old := time.Second
	// A child that has not shown life is taken as stalled here; see
	// TestAdmitSparesReadingNewcomer for one that is not.
	relay := func(alive bool, age time.Duration) ChildView {
		return ChildView{Slot: SlotRelay, Alive: alive, Age: age, Stalled: !alive}
	}
	live := ChildView{Slot: SlotRelay, Alive: true, Age: old, Rate: 2 * p.MinRelayRate}
	leaf := func(alive bool, age time.Duration) ChildView {
		return ChildView{Slot: SlotLeaf, Alive: alive, Age: age, Stalled: !alive}
	}
	cases := []struct {
		name    string
		kids    []ChildView
		relays  int
		probe   bool
		demoted bool
		want    SlotDecision
	}{
		{"empty", nil, 1, false, false, SlotDecision{true, SlotRelay, -1}},
		{"relay taken: leaf", []ChildView{relay(true, old)}, 1, false, false, SlotDecision{true, SlotLeaf, -1}},
		// The lock-out of the issue: the relay slot held by a non-reader.
		// The newcomer does not wait for it: a leaf slot is free.
		{"relay held by non-reader", []ChildView{relay(false, young)}, 1, false, false, SlotDecision{true, SlotLeaf, -1}},
		{"demoted never relays", nil, 1, false, true, SlotDecision{true, SlotLeaf, -1}},
		{"all full of young non-readers", []ChildView{relay(false, young), leaf(false, young), leaf(false, young)}, 1, false, false, SlotDecision{Displace: -1}},
		{"displace old non-reader relay first", []ChildView{leaf(false, old), relay(false, old), leaf(false, old)}, 1, false, false, SlotDecision{true, SlotRelay, 1}},
		{"displace the oldest non-reader leaf", []ChildView{relay(true, old), leaf(false, old), leaf(false, 2*old)}, 1, false, false, SlotDecision{true, SlotLeaf, 2}},
		{"readers are never displaced", []ChildView{relay(true, old), leaf(true, old), leaf(true, old)}, 1, false, false, SlotDecision{Displace: -1}},
		// A demoted peer goes below a live relay child instead of costing
		// the parent a copy of the stripe as a leaf.
		{"demoted with a live relay: refused", []ChildView{live}, 1, false, true, SlotDecision{Displace: -1}},
		{"demoted with a relay not live yet: leaf", []ChildView{relay(true, old)}, 1, false, true, SlotDecision{true, SlotLeaf, -1}},
		{"demoted does not take a relay slot by displacement", []ChildView{relay(false, old), leaf(true, old), leaf(true, old)}, 1, false, true, SlotDecision{Displace: -1}},
		{"probe free", []ChildView{relay(true, old)}, 1, true, false, SlotDecision{true, SlotProbe, -1}},
		{"probe full", []ChildView{{Slot: SlotProbe, Alive: true, Age: old}}, 1, true, false, SlotDecision{Displace: -1}},
		{"probe displaces dead probe", []ChildView{{Slot: SlotProbe, Age: old, Stalled: true}}, 1, true, false, SlotDecision{true, SlotProbe, 0}},
	}
	for _, tc := range cases {
		if got := p.Admit(tc.kids, tc.relays, tc.probe, tc.demoted); got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestOffered(t *testing.T) {
	if Offered(ChildView{Slot: SlotRelay}) || Offered(ChildView{Slot: SlotLeaf, Alive: true}) || !Offered(ChildView{Slot: SlotRelay, Alive: true}) {
		t.Fatal("only a live relay child is offered to others")
	}
}

func TestIPAllows(t *testing.T) {
	p := DefaultAdmitPolicy()
	p.UnprovenPerIP = 2
	for n, want := range []bool{true, true, false, false} {
		if got := p.IPAllows(n, 0); got != want {
			t.Errorf("%d unproven: got %v, want %v", n, got, want)
		}
	}
	// An address whose children keep ending without showing life gets one
	// unproven child at a time.
	for n, want := range []bool{true, false, false} {
		if got := p.IPAllows(n, p.LifelessAfter); got != want {
			t.Errorf("%d unproven after %d lifeless: got %v, want %v", n, p.LifelessAfter, got, want)
		}
	}
	if !p.IPAllows(0, p.LifelessAfter-1) || !p.IPAllows(1, p.LifelessAfter-1) {
		t.Error("an address below the lifeless threshold is limited")
	}
}

func TestAdmitSparesReadingNewcomer(t *testing.T) {
	p := DefaultAdmitPolicy()
	p.LeafSlots = 1
	// Old enough, no sign of life yet, but its stream takes what it is
	// sent: not displaced.
	reading := []ChildView{
		{Slot: SlotRelay, Age: time.Second},
		{Slot: SlotLeaf, Age: time.Second},
	}
	if got := p.Admit(reading, 1, false, false); got.Accept {
		t.Fatalf("a reading newcomer was displaced: %+v", got)
	}
	reading[1].Stalled = true
	if got := p.Admit(reading, 1, false, false); !got.Accept || got.Displace != 1 {
		t.Fatalf("a stalled one was not: %+v", got)
	}
}
