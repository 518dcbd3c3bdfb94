package treebuild

import (
	"math"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

var t0 = time.Unix(2_000_000, 0)

func cand(id string, width float64, path ...string) Candidate {
	p := make([]peer.ID, 0, len(path)+1)
	for _, x := range path {
		p = append(p, peer.ID(x))
	}
	p = append(p, peer.ID(id))
	return Candidate{ID: peer.ID(id), Width: width, Depth: len(p) - 1, Path: p, MaxChildren: 4}
}

func measured(c Candidate, goodput float64, at time.Time) Candidate {
	c.Measured, c.MeasuredAt, c.MeasuredWidth = goodput, at, c.Width
	return c
}

func TestRankSkipsLoopsFailedAndFull(t *testing.T) {
	ch := newTestChooser(t)
	full := cand("full", 90, "src")
	full.Children = 4
	failed := cand("failed", 80, "src")
	failed.Failed = t0.Add(-time.Second)
	oldFail := cand("oldfail", 70, "src")
	oldFail.Failed = t0.Add(-time.Hour)
	cands := []Candidate{
		cand("me", 100, "src"),
		cand("desc", 100, "src", "me"), // a descendant of me: loop
		full, failed, oldFail,
		cand("zero", 0, "src"),
	}
	r := ch.Rank("me", "", cands, t0)
	if len(r) != 1 || r[0].ID != "oldfail" {
		t.Fatalf("ranked %v, want only oldfail", ids(r))
	}
	// The current parent stays eligible although it reports itself full.
	r = ch.Rank("me", "full", cands, t0)
	if len(r) != 2 || r[0].ID != "full" {
		t.Fatalf("ranked %v, want full first", ids(r))
	}
}

func ids(r []Choice) []peer.ID {
	var out []peer.ID
	for _, c := range r {
		out = append(out, c.ID)
	}
	return out
}

func TestRankMeasuredAndTies(t *testing.T) {
	ch := newTestChooser(t)
	deep := measured(cand("deep", 100, "src", "x"), 50, t0)
	shallow := measured(cand("shallow", 100, "src"), 49, t0) // within 3 %: tie, smaller depth wins
	busy := measured(cand("busy", 100, "src"), 49.5, t0)
	busy.Children = 3
	link := measured(cand("linklimited", 100, "src"), 20, t0)
	fresh := cand("unmeasured", 45, "src")
	r := ch.Rank("me", "", []Candidate{deep, busy, link, fresh, shallow}, t0)
	want := []peer.ID{"shallow", "busy", "deep", "unmeasured", "linklimited"}
	for i := range want {
		if r[i].ID != want[i] {
			t.Fatalf("rank %v, want %v", ids(r), want)
		}
	}
	if r[0].NeedsProbe || !r[3].NeedsProbe {
		t.Error("NeedsProbe flags wrong")
	}
	// A measurement is bounded by what the candidate reports now.
	drop := measured(cand("drop", 100, "src"), 60, t0)
	drop.Width = 30
	if b, _ := ch.Best("me", "", []Candidate{drop}, t0); b.Score != 30 {
		t.Errorf("score %g, want 30", b.Score)
	}
	// Stale measurements need a probe.
	if b, _ := ch.Best("me", "", []Candidate{measured(cand("old", 100, "src"), 60, t0.Add(-2*time.Minute))}, t0); !b.NeedsProbe {
		t.Error("stale measurement not flagged")
	}
	// A width-limited measurement is outgrown when the width rises.
	grown := measured(cand("grown", 40, "src"), 40, t0)
	grown.Width = 80
	if b, _ := ch.Best("me", "", []Candidate{grown}, t0); !b.NeedsProbe || b.Score != 40 {
		t.Errorf("outgrown measurement: %+v", b)
	}
	// A link-limited one is not.
	linked := measured(cand("linked", 40, "src"), 20, t0)
	linked.Width = 80
	if b, _ := ch.Best("me", "", []Candidate{linked}, t0); b.NeedsProbe {
		t.Error("link-limited measurement flagged")
	}
	if _, ok := ch.Best("me", "", nil, t0); ok {
		t.Error("best of nothing")
	}
}

func TestEstimateUplink(t *testing.T) {
	c := cand("c", 100, "src")
	if c.Estimate() != 100 {
		t.Fatal("unknown uplink should not bound the estimate")
	}
	c.Uplink, c.Carried, c.Children = 120, 90, 3
	if got := c.Estimate(); got != 30 { // spare 30 >= fair share 120/4 = 30
		t.Errorf("estimate %g, want 30", got)
	}
	c.Carried = 115
	if got := c.Estimate(); got != 30 { // spare 5, fair share 30
		t.Errorf("estimate %g, want the fair share 30", got)
	}
	src := cand("src", math.Inf(1))
	src.Uplink = 50
	if src.Estimate() != 50 {
		t.Errorf("source estimate %g, want its uplink", src.Estimate())
	}
}

func TestShouldSwitch(t *testing.T) {
	ch := newTestChooser(t)
	best := Choice{Candidate: cand("b", 100, "src"), Score: 30}
	probe := best
	probe.NeedsProbe = true
	recent := t0.Add(-5 * time.Second)
	long := t0.Add(-time.Minute)
	for _, c := range []struct {
		name    string
		current peer.ID
		goodput float64
		best    Choice
		last    time.Time
		want    bool
	}{
		{"no parent takes anything", "", 0, probe, recent, true},
		{"same parent", "b", 10, best, long, false},
		{"unprobed", "a", 10, probe, long, false},
		{"silent parent", "a", 0, best, recent, true},
		{"below hysteresis", "a", 28, best, long, false},
		{"above hysteresis", "a", 25, best, long, true},
		{"above hysteresis, inside dwell", "a", 25, best, recent, false},
		{"urgent inside dwell", "a", 15, best, recent, true},
		{"first measured switch", "a", 25, best, time.Time{}, true},
		{"nothing", "a", 25, Choice{}, long, false},
	} {
		if got := ch.ShouldSwitch(c.current, c.goodput, c.best, t0, c.last); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func TestReevaluateSkipsUnprobed(t *testing.T) {
	ch := newTestChooser(t)
	cands := []Candidate{
		cand("big", 500, "src"), // unmeasured: ranks first but cannot be switched to
		measured(cand("good", 100, "src"), 40, t0),
		measured(cand("cur", 100, "src"), 20, t0),
	}
	b, ok := ch.Reevaluate("me", "cur", 20, cands, t0, time.Time{})
	if !ok || b.ID != "good" {
		t.Errorf("reevaluate: %v %v, want a switch to good", b.ID, ok)
	}
	b, ok = ch.Reevaluate("me", "", 0, cands, t0, time.Time{})
	if !ok || b.ID != "big" {
		t.Errorf("without parent: %v %v, want big", b.ID, ok)
	}
}

func TestNextProbe(t *testing.T) {
	ch := newTestChooser(t)
	oldA := measured(cand("oldA", 100, "src"), 50, t0.Add(-3*time.Minute))
	oldB := measured(cand("oldB", 100, "src"), 50, t0.Add(-2*time.Minute))
	cands := []Candidate{
		oldB, oldA,
		cand("newLow", 60, "src"),
		cand("newHigh", 90, "src"),
		measured(cand("fresh", 100, "src"), 50, t0),
		cand("useless", 21, "src"), // cannot beat 20 by 10 %
		cand("cur", 100, "src"),
	}
	got := ch.NextProbe("me", "cur", 20, cands, t0)
	if len(got) != 2 || got[0] != "newHigh" || got[1] != "newLow" {
		t.Fatalf("probe %v, want [newHigh newLow]", got)
	}
	ch3, _ := NewChooser(WithProbesPerRound(4))
	got = ch3.NextProbe("me", "cur", 20, cands, t0)
	if len(got) != 4 || got[2] != "oldA" || got[3] != "oldB" {
		t.Fatalf("probe %v, want unmeasured then stalest", got)
	}
	if got := ch.NextProbe("me", "cur", 200, cands, t0); len(got) != 0 {
		t.Errorf("nothing can beat 200, probed %v", got)
	}
}

func TestStalled(t *testing.T) {
	ch := newTestChooser(t)
	if ch.Stalled(t0.Add(-time.Second), t0) || !ch.Stalled(t0.Add(-3*time.Second), t0) {
		t.Error("stall threshold")
	}
}

func TestNewChooserValidates(t *testing.T) {
	for _, o := range []Option{
		WithHysteresis(-1), WithHysteresis(0.9), WithTieTolerance(1), WithProbeWindow(0),
		WithProbesPerRound(0), WithStallTimeout(-1),
	} {
		if _, err := NewChooser(o); err == nil {
			t.Error("invalid option accepted")
		}
	}
	ch, err := NewChooser(WithHysteresis(0.2), WithMinDwell(30*time.Second), WithProbeWindow(2*time.Second),
		WithProbeInterval(3*time.Second), WithStaleAge(time.Minute), WithFailBackoff(time.Minute), WithUrgentGain(1))
	if err != nil || ch.ProbeWindow() != 2*time.Second || ch.ProbeInterval() != 3*time.Second || ch.StallTimeout() != 2*time.Second {
		t.Fatalf("%v %+v", err, ch)
	}
}

func TestPaths(t *testing.T) {
	parent := []peer.ID{"src", "a"}
	p := ExtendPath(parent, "me")
	if len(p) != 3 || p[2] != "me" || !OnPath(p, "a") || OnPath(parent, "me") {
		t.Fatalf("ExtendPath %v", p)
	}
	p[0] = "changed"
	if parent[0] != "src" {
		t.Error("ExtendPath must copy")
	}
}

func TestStripes(t *testing.T) {
	const k = 4
	counts := make([]int, k)
	for i := range 4000 {
		id := peer.ID(string(rune(i)) + "peer")
		h := HomeStripe(id, k)
		if h != HomeStripe(id, k) {
			t.Fatal("home stripe not deterministic")
		}
		counts[h]++
	}
	for s, n := range counts {
		if n < 800 || n > 1200 {
			t.Errorf("stripe %d holds %d of 4000 peers: uneven spread %v", s, n, counts)
		}
	}
	if HomeStripe("x", 1) != 0 || HomeStripe("x", 0) != 0 {
		t.Error("one stripe is stripe 0")
	}
	for esi := range uint32(20) {
		if StripeOf(esi, k) != int(esi%k) || StripeOf(esi, 1) != 0 {
			t.Fatal("StripeOf")
		}
	}
	f := FanOut{Home: 6, Other: 0}
	if f.MaxChildren(2, 2, false) != 6 || f.MaxChildren(1, 2, false) != 0 || f.MaxChildren(1, 2, true) != 6 {
		t.Error("fan-out policy")
	}
}
