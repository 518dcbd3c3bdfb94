package treebuild

import (
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

var slowPol = SlowPolicy{Share: 0.25, After: time.Second, Lag: 500 * time.Millisecond, ClearShare: 0.1, ClearLag: 200 * time.Millisecond}

func kid(p peer.ID, stripe int, rate float64) ChildStat {
	return ChildStat{Peer: p, Stripe: stripe, Striped: true, Rate: rate, Age: 5 * time.Second, Wants: true}
}

func TestAdmitTable(t *testing.T) {
	relay := AdmitState{Striped: true, Limit: 2, WholeLimit: 1, Slow: slowPol}
	origin := AdmitState{Origin: true, Complete: true, Striped: true, Limit: 1, WholeLimit: 1, Slow: slowPol}
	complete := AdmitState{Complete: true, Striped: true, Limit: 2, WholeLimit: 1, Slow: slowPol}
	whole := func(p peer.ID) ChildStat { c := kid(p, 0, 100); c.Whole, c.Striped = true, false; return c }
	probe := func(p peer.ID) ChildStat { c := kid(p, 0, 100); c.Probe = true; return c }
	slowKid := func(p peer.ID) ChildStat { return kid(p, 0, 1) }
	cases := []struct {
		name   string
		req    AdmitRequest
		st     AdmitState
		kids   []ChildStat
		refuse Refusal
		evict  int
	}{
		{"free slot", AdmitRequest{Peer: "n"}, relay, []ChildStat{kid("a", 0, 100)}, Accepted, -1},
		{"full", AdmitRequest{Peer: "n"}, relay, []ChildStat{kid("a", 0, 100), kid("b", 0, 100)}, RefuseFull, -1},
		{"other stripe's children take no slot", AdmitRequest{Peer: "n"}, relay, []ChildStat{kid("a", 1, 100), kid("b", 1, 100)}, Accepted, -1},
		{"probes and whole take no slot", AdmitRequest{Peer: "n"}, relay, []ChildStat{probe("a"), whole("b"), kid("c", 0, 100)}, Accepted, -1},
		{"own earlier subscription takes no slot", AdmitRequest{Peer: "a"}, relay, []ChildStat{kid("a", 0, 100), kid("b", 0, 100)}, Accepted, -1},
		{"a slow child at a relay takes no slot", AdmitRequest{Peer: "n"}, relay, []ChildStat{kid("a", 0, 100), slowKid("b")}, Accepted, -1},
		{"loop", AdmitRequest{Peer: "n", OnPath: true, Probe: true}, relay, nil, RefuseLoop, -1},
		{"probe always", AdmitRequest{Peer: "n", Probe: true}, relay, []ChildStat{kid("a", 0, 100), kid("b", 0, 100)}, Accepted, -1},
		{"whole at a relay", AdmitRequest{Peer: "n", Whole: true}, relay, nil, RefuseNotComplete, -1},
		{"whole at the origin", AdmitRequest{Peer: "n", Whole: true}, origin, nil, RefuseOrigin, -1},
		{"whole at a complete peer", AdmitRequest{Peer: "n", Whole: true}, complete, nil, Accepted, -1},
		{"whole at a full complete peer", AdmitRequest{Peer: "n", Whole: true}, complete, []ChildStat{whole("a")}, RefuseFull, -1},
		{"banned at the origin", AdmitRequest{Peer: "n", Banned: true}, origin, nil, RefuseFull, -1},
		{"banned at a relay is no matter", AdmitRequest{Peer: "n", Banned: true}, relay, nil, Accepted, -1},
		{"origin evicts a holder of many stripes", AdmitRequest{Peer: "n"}, origin,
			[]ChildStat{kid("a", 0, 100), kid("a", 1, 100), kid("b", 2, 100)}, Accepted, 0},
		{"origin full, nobody holds two more", AdmitRequest{Peer: "n"}, origin,
			[]ChildStat{kid("a", 0, 100), kid("b", 1, 100)}, RefuseFull, -1},
		{"origin counts slow children", AdmitRequest{Peer: "n", Stripe: 0}, origin,
			[]ChildStat{slowKid("a"), kid("b", 0, 100)}, RefuseFull, -1},
	}
	for _, c := range cases {
		got := Admit(c.req, c.st, c.kids)
		if got.Refusal != c.refuse || got.Evict != c.evict {
			t.Errorf("%s: got %v evict %d, want %v evict %d", c.name, got.Refusal, got.Evict, c.refuse, c.evict)
		}
	}
}

func TestEvictSlowTable(t *testing.T) {
	lag := func(c ChildStat, d time.Duration) ChildStat { c.Lagging = d; return c }
	behind := func(c ChildStat) ChildStat { c.Behind = true; return c }
	young := func(c ChildStat) ChildStat { c.Age = 100 * time.Millisecond; return c }
	cases := []struct {
		name string
		kids []ChildStat
		want []int
	}{
		{"alone", []ChildStat{behind(kid("a", 0, 1))}, nil},
		{"all fast", []ChildStat{behind(kid("a", 0, 100)), kid("b", 1, 100)}, nil},
		{"slow and behind", []ChildStat{kid("a", 0, 100), behind(kid("b", 1, 10)), kid("c", 2, 100)}, []int{1}},
		{"slow, not behind", []ChildStat{kid("a", 0, 100), kid("b", 1, 10), kid("c", 2, 100)}, nil},
		{"slow, behind, too young", []ChildStat{kid("a", 0, 100), young(behind(kid("b", 1, 10))), kid("c", 2, 100)}, nil},
		{"young but lagging long", []ChildStat{kid("a", 0, 100), young(lag(kid("b", 1, 10), time.Second)), kid("c", 2, 100)}, []int{1}},
		{"very slow, lagging briefly", []ChildStat{kid("a", 0, 100), young(lag(kid("b", 1, 5), 300*time.Millisecond)), kid("c", 2, 100)}, []int{1}},
		{"a probe is never evicted", []ChildStat{kid("a", 0, 100), func() ChildStat { c := behind(kid("b", 1, 1)); c.Probe = true; return c }()}, nil},
	}
	for _, c := range cases {
		if got := EvictSlow(c.kids, slowPol); !slices.Equal(got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}

func TestSlotUsersTable(t *testing.T) {
	kids := []ChildStat{kid("a", 0, 100), kid("b", 0, 1), kid("c", 1, 100)}
	if n := SlotUsers(kids, 0, "", false, slowPol); n != 2 {
		t.Errorf("counting slow: %d", n)
	}
	if n := SlotUsers(kids, 0, "", true, slowPol); n != 1 {
		t.Errorf("discounting slow: %d", n)
	}
	if n := SlotUsers(kids, 0, "a", true, slowPol); n != 1 {
		t.Errorf("without the asker: %d", n)
	}
}

func TestDropExtraTable(t *testing.T) {
	p := ExtraPolicy{Idle: 2 * time.Second, DupShare: 0.1, MinSymbols: 128}
	cases := []struct {
		symbols, fresh uint64
		idle           time.Duration
		want           bool
	}{
		{0, 0, time.Second, false},
		{0, 0, 3 * time.Second, true},
		{100, 50, 0, false}, // too few to judge
		{200, 190, 0, false},
		{200, 170, 0, true},
		{1000, 900, 0, false}, // exactly the share
	}
	for _, c := range cases {
		if got := DropExtra(c.symbols, c.fresh, c.idle, p); got != c.want {
			t.Errorf("DropExtra(%d, %d, %v) = %v", c.symbols, c.fresh, c.idle, got)
		}
	}
}

func TestSplitNeedTable(t *testing.T) {
	cases := []struct {
		need int
		w    []float64
		want []int
	}{
		{10, []float64{1, 1}, []int{5, 5}},
		{10, []float64{1, 2, 1}, []int{3, 5, 2}},
		{7, []float64{0, 0, 0}, []int{3, 2, 2}},
		{5, []float64{1, -1}, []int{5, 0}},
		{0, []float64{1, 1}, []int{0, 0}},
		{1, []float64{1, 1, 1}, []int{1, 0, 0}},
		{100, []float64{1}, []int{100}},
		{100, []float64{1, 1, 2}, []int{25, 25, 50}},
		{10, []float64{1, 1, 1}, []int{4, 3, 3}},
		{1, []float64{1, 5, 1}, []int{0, 1, 0}},
		{7, []float64{0, 0}, []int{4, 3}},
		{5, []float64{-1, 1}, []int{0, 5}},
		{0, []float64{3, 1}, []int{0, 0}},
	}
	for _, c := range cases {
		got := SplitNeed(c.need, c.w, nil)
		if !slices.Equal(got, c.want) {
			t.Errorf("SplitNeed(%d, %v) = %v, want %v", c.need, c.w, got, c.want)
		}
		sum := 0
		for _, x := range got {
			sum += x
		}
		if sum != c.need {
			t.Errorf("SplitNeed(%d, %v) adds up to %d", c.need, c.w, sum)
		}
	}
	// Whatever the weights, the shares add up to the need.
	w := []float64{0.3, 7, 1e-9, 2.5, 11}
	for need := 0; need < 300; need++ {
		sum := 0
		for _, n := range SplitNeed(need, w, nil) {
			if n < 0 {
				t.Fatalf("negative share for need %d", need)
			}
			sum += n
		}
		if sum != need {
			t.Fatalf("need %d split into %d", need, sum)
		}
	}
	// Appends after what dst holds.
	if got := SplitNeed(4, []float64{1, 1}, []int{9}); !slices.Equal(got, []int{9, 2, 2}) {
		t.Errorf("append: %v", got)
	}
}

func TestShareOfTable(t *testing.T) {
	cases := []struct {
		need          int
		mine, others  float64
		want          int
		wantAtMostAll bool
	}{
		{100, 1, 0, 100, true},
		{100, 1, 1, 50, true},
		{101, 1, 1, 50, true}, // the old ceil(101/2) gave 51 + 51 = 102
		{100, 1, 3, 25, true},
		{0, 1, 1, 0, true},
		{10, 0, 0, 5, true},
	}
	for _, c := range cases {
		got := ShareOf(c.need, c.mine, c.others)
		if got != c.want {
			t.Errorf("ShareOf(%d, %g, %g) = %d, want %d", c.need, c.mine, c.others, got, c.want)
		}
		if rest := SplitNeed(c.need, []float64{c.others, c.mine}, nil); c.need > 0 && rest[0]+got > c.need {
			t.Errorf("ShareOf(%d, %g, %g): grants exceed the need", c.need, c.mine, c.others)
		}
	}
}

func TestRefusalCodes(t *testing.T) {
	for r := Accepted + 1; r <= RefuseOther; r++ {
		if got := RefusalFromReason(r.Reason()); got != r {
			t.Errorf("%v: round trip gave %v", r, got)
		}
	}
	if RefusalFromReason("something new") != RefuseOther || RefusalFromReason("") != RefuseOther {
		t.Error("unknown reasons")
	}
	if Refusal(99).Reason() != "refused" || Accepted.String() != "accepted" {
		t.Error("names")
	}
}
