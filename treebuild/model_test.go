package treebuild

import (
	"math"
	"testing"
	"time"
)

// Figure 6 of the paper: A-B rtt 10 ms loss 0.1 %, B-C rtt 10 ms loss 0.2 %,
// A-C rtt 20 ms loss 0.3 %, 1 KB packets.
var (
	fig6AB = Hop{RTT: 10 * time.Millisecond, Loss: 0.001}
	fig6BC = Hop{RTT: 10 * time.Millisecond, Loss: 0.002}
	fig6AC = Hop{RTT: 20 * time.Millisecond, Loss: 0.003}
)

const packet = 1000 // bytes

func near(got, want, rel float64) bool { return math.Abs(got-want) <= rel*math.Abs(want) }

func TestFigure6(t *testing.T) {
	direct := Mbit(SimpleRate(packet, fig6AC))
	chain := Mbit(Chain(packet, []Hop{fig6AB, fig6BC}, SimpleRate))
	cons := Mbit(Conservative(packet, []Hop{fig6AB, fig6BC}))
	t.Logf("Figure 6: direct A->C %.2f Mbit/s, chain A->B->C %.2f Mbit/s (eq. 2), conservative %.2f Mbit/s (eq. 3)", direct, chain, cons)
	t.Logf("Figure 6, eq. 1: direct %.2f Mbit/s, chain %.2f Mbit/s",
		Mbit(TCPRate(packet, fig6AC)), Mbit(Chain(packet, []Hop{fig6AB, fig6BC}, TCPRate)))
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"direct", direct, 9.0},
		{"chain", chain, 22.2},
		{"conservative", cons, 9.0},
	} {
		if !near(c.got, c.want, 0.03) {
			t.Errorf("%s: %.2f Mbit/s, paper says %.1f", c.name, c.got, c.want)
		}
	}
	// The chain is limited by its B->C hop: the A->B hop does not matter.
	if got, want := Chain(packet, []Hop{fig6AB, fig6BC}, SimpleRate), SimpleRate(packet, fig6BC); got != want {
		t.Errorf("chain %g != B->C hop %g", got, want)
	}
}

func TestTCPRate(t *testing.T) {
	// At small loss eq. 1 approaches the square-root law: sqrt(1.5) is
	// exactly 1/sqrt(2/3).
	h := Hop{RTT: 50 * time.Millisecond, Loss: 1e-6}
	if r := TCPRate(packet, h) / SimpleRate(packet, h); !near(r, 1, 1e-3) {
		t.Errorf("eq. 1 / simple form at p=1e-6 = %g, want ~1", r)
	}
	// Timeouts make eq. 1 fall well below the simple form at high loss.
	h.Loss = 0.05
	if TCPRate(packet, h) >= 0.8*SimpleRate(packet, h) {
		t.Errorf("eq. 1 at 5%% loss %g not clearly below simple form %g", TCPRate(packet, h), SimpleRate(packet, h))
	}
	// Hand-computed: s=1000, rtt=0.1, p=0.01:
	// den = 0.1*(sqrt(0.02/3) + 12*sqrt(0.03/8)*0.01*(1+0.0032)).
	want := 1000 / (0.1 * (math.Sqrt(0.02/3) + 12*math.Sqrt(0.03/8)*0.01*1.0032))
	if got := TCPRate(packet, Hop{RTT: 100 * time.Millisecond, Loss: 0.01}); !near(got, want, 1e-12) {
		t.Errorf("TCPRate = %g, want %g", got, want)
	}
	for _, f := range []RateFunc{TCPRate, SimpleRate} {
		if !math.IsInf(f(packet, Hop{RTT: time.Millisecond}), 1) || !math.IsInf(f(packet, Hop{Loss: 0.1}), 1) {
			t.Error("lossless or zero-delay hop should be unbounded")
		}
	}
	// Monotone: more loss or more delay never helps.
	prev := math.Inf(1)
	for p := 1e-5; p < 1; p *= 2 {
		r := TCPRate(packet, Hop{RTT: 30 * time.Millisecond, Loss: p})
		if r >= prev {
			t.Fatalf("TCPRate not decreasing at p=%g", p)
		}
		prev = r
	}
}

func TestChainEmptyAndConservativeEqualsDirect(t *testing.T) {
	if !math.IsInf(Chain(packet, nil, SimpleRate), 1) {
		t.Error("empty chain should be unbounded")
	}
	// Eq. 3 treats a split connection like a single one with the summed rtt
	// and combined loss.
	one := Hop{RTT: 40 * time.Millisecond, Loss: 1 - (1-0.01)*(1-0.02)}
	two := []Hop{{RTT: 15 * time.Millisecond, Loss: 0.01}, {RTT: 25 * time.Millisecond, Loss: 0.02}}
	if a, b := Conservative(packet, two), SimpleRate(packet, one); !near(a, b, 1e-12) {
		t.Errorf("conservative %g != aggregate hop %g", a, b)
	}
}

func TestLossForRate(t *testing.T) {
	for _, p := range []float64{1e-5, 3.44e-4, 0.003, 0.05, 0.2} {
		rtt := 42 * time.Millisecond
		r := TCPRate(packet, Hop{RTT: rtt, Loss: p})
		if got := LossForRate(packet, rtt, r); !near(got, p, 1e-6) {
			t.Errorf("LossForRate(TCPRate(p=%g)) = %g", p, got)
		}
	}
	if LossForRate(packet, time.Millisecond, math.Inf(1)) != 0 {
		t.Error("unbounded rate should need no loss")
	}
	if LossForRate(packet, time.Second, 1) != 1 {
		t.Error("a rate below total loss should give 1")
	}
}
