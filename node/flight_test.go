package node

import (
	"math"
	"testing"
	"time"
)

// The in-flight window follows the rate a child confirms: a young stream's
// first confirmations are spread over a whole second (they do not look like
// a fast link), and a steady stream's rate is what it confirms.
func TestAckMeter(t *testing.T) {
	var m ackMeter
	t0 := time.Unix(1000, 0)
	if r := m.rate(t0, 0); r != 0 {
		t.Fatalf("rate before any confirmation %g", r)
	}
	// 100 symbols confirmed within 100 ms of the start: at most 100/s.
	if r := m.rate(t0.Add(100*time.Millisecond), 100); r > 100 {
		t.Fatalf("young stream: rate %g symbols/s from 100 symbols in 100 ms, want at most 100", r)
	}
	// Then a steady 200 symbols/s, confirmed every 20 ms, for 3 s.
	acked := uint64(100)
	var r float64
	for at := 120 * time.Millisecond; at <= 3*time.Second; at += 20 * time.Millisecond {
		acked += 4
		r = m.rate(t0.Add(at), acked)
	}
	if math.Abs(r-200) > 20 {
		t.Fatalf("steady stream: rate %g symbols/s, want about 200", r)
	}
	// It stops confirming: the rate falls to a trickle (what came in the
	// meter's last sample step), then to nothing.
	if r = m.rate(t0.Add(4500*time.Millisecond), acked); r > 20 {
		t.Fatalf("quiet stream: rate %g symbols/s after 1.5 s, want under 20", r)
	}
	if r = m.rate(t0.Add(6*time.Second), acked); r != 0 {
		t.Fatalf("quiet stream: rate %g symbols/s after 3 s, want 0", r)
	}
}
