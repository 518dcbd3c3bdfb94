package relay

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/romap2p/romap2p/protocol"
)

const (
	isoSymbol = 1024
	isoStride = isoSymbol + protocol.SymbolHeaderLen
	isoRate   = 32 << 20 // producer rate, frame bytes per second
	isoWarm   = 500 * time.Millisecond
	isoWindow = 2500 * time.Millisecond
)

// isoResult holds rates in frame bytes per second over the measuring window.
type isoResult struct {
	producer float64
	children []float64
}

// runIsolation feeds a 1 MiB ring at isoRate from a rate-limited producer to
// children whose writers are rate-limited to the given fractions of isoRate,
// and measures every rate over a window that starts once the ring is full.
func runIsolation(t testing.TB, fractions []float64, opts ...Option) isoResult {
	t.Helper()
	r := mustRing(t, isoSymbol, opts...)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var buckets []*bucket
	for _, f := range fractions {
		b := newBucket(f*isoRate, 64<<10)
		buckets = append(buckets, b)
		w := NewWriter(mustSub(t, r), b)
		wg.Go(func() { w.Run(ctx) })
	}
	wg.Go(func() {
		pace := newBucket(isoRate, 256<<10)
		frame := make([]byte, isoStride)
		for esi := uint32(0); ctx.Err() == nil; esi++ {
			pace.Write(frame)
			if err := r.Put(ctx, uint8(esi%4), esi&protocol.MaxESI, frame[:isoSymbol]); err != nil {
				return
			}
		}
	})
	snap := func() (uint64, []uint64, time.Time) {
		var ns []uint64
		for _, b := range buckets {
			ns = append(ns, b.n.Load())
		}
		return r.Stats().Put, ns, time.Now()
	}
	time.Sleep(isoWarm)
	p0, c0, t0 := snap()
	time.Sleep(isoWindow)
	p1, c1, t1 := snap()
	cancel()
	r.Close()
	wg.Wait()
	dt := t1.Sub(t0).Seconds()
	res := isoResult{producer: float64(p1-p0) * isoStride / dt}
	for i := range c0 {
		res.children = append(res.children, float64(c1[i]-c0[i])/dt)
	}
	return res
}

func (r isoResult) String(t testing.TB, name string) {
	t.Helper()
	t.Logf("%s: producer %.2f MB/s, children %.3v MB/s", name, r.producer/1e6, mb(r.children))
}

func mb(rates []float64) []float64 {
	out := make([]float64, len(rates))
	for i, r := range rates {
		out[i] = r / 1e6
	}
	return out
}

// isolationFloor is what TestIsolation demands of the producer and the fast
// children with a slow child present, relative to their rates without it.
// The design target is 0.95 and BenchmarkIsolation reports the measured
// ratio; the test's floor leaves room for a loaded machine (the test runs
// beside other packages' tests) while still failing for any coupling: the
// back-pressure mode drags them to about 0.01.
const isolationFloor = 0.75

// TestIsolation is the paper's claim on this engine: with children at 100 %,
// 50 % and 1 % of the producer's rate, forward-when-feasible keeps the
// producer and the fast children near what they get without the slow child,
// while the store-and-forward baseline drags all of them to within 2x of the
// slow child.
func TestIsolation(t *testing.T) {
	if testing.Short() {
		t.Skip("measures rates over several seconds")
	}
	fast := []float64{1, 0.5}
	withSlow := []float64{1, 0.5, 0.01}

	base := runIsolation(t, fast)
	base.String(t, "forward-when-feasible, no slow child")
	mixed := runIsolation(t, withSlow)
	mixed.String(t, "forward-when-feasible, slow child")
	bp := runIsolation(t, withSlow, WithBackPressure())
	bp.String(t, "back-pressure, slow child")

	if mixed.producer < isolationFloor*base.producer {
		t.Errorf("feasible: producer at %.2f MB/s with the slow child, %.2f without", mixed.producer/1e6, base.producer/1e6)
	}
	for i := range fast {
		if mixed.children[i] < isolationFloor*base.children[i] {
			t.Errorf("feasible: child %d at %.2f MB/s with the slow child, %.2f without", i, mixed.children[i]/1e6, base.children[i]/1e6)
		}
	}
	if slow := mixed.children[2]; slow <= 0 || slow > 0.02*isoRate {
		t.Errorf("feasible: slow child at %.3f MB/s, limit %.3f", slow/1e6, 0.01*isoRate/1e6)
	}

	slow := bp.children[2]
	if slow <= 0 {
		t.Fatalf("back-pressure: slow child received nothing")
	}
	if bp.producer > 2*slow {
		t.Errorf("back-pressure: producer at %.3f MB/s, not within 2x of the slow child's %.3f", bp.producer/1e6, slow/1e6)
	}
	for i := range fast {
		if bp.children[i] > 2*slow {
			t.Errorf("back-pressure: child %d at %.3f MB/s, not within 2x of the slow child's %.3f", i, bp.children[i]/1e6, slow/1e6)
		}
	}
}

// BenchmarkIsolation measures, in one run, the producer's and the fast
// children's rates with the 1 % child present relative to without it
// (target >= 0.95), and the back-pressure mode's producer rate relative to
// the slow child's (target <= 2).
func BenchmarkIsolation(b *testing.B) {
	for i := 0; i < b.N; i++ {
		base := runIsolation(b, []float64{1, 0.5})
		mixed := runIsolation(b, []float64{1, 0.5, 0.01})
		bp := runIsolation(b, []float64{1, 0.5, 0.01}, WithBackPressure())
		worst := mixed.producer / base.producer
		for j := range base.children {
			worst = min(worst, mixed.children[j]/base.children[j])
		}
		b.ReportMetric(worst, "worst-ratio")
		b.ReportMetric(bp.producer/bp.children[2], "bp-producer/slow")
	}
}
