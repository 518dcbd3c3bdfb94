package relay

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// counting returns a generator producing pattern symbols with increasing
// ESIs, and its call counter.
func counting() (Generator, *atomic.Uint32) {
	var n atomic.Uint32
	return func(_ context.Context, dst []byte) (uint8, uint32, error) {
		esi := n.Add(1) - 1
		fill(dst, 0, esi)
		return 0, esi, nil
	}, &n
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestGenerateFollowsFastestConsumer(t *testing.T) {
	r := mustRing(t, 64, WithCapacity(64*256), WithBatchBytes(69*16))
	gen, n := counting()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var genErr error
	wg.Go(func() { genErr = r.Generate(ctx, gen, WithLead(40)) })

	// No consumers (a sink does not count): nothing is generated.
	sink := mustSub(t, r, AsSink())
	time.Sleep(50 * time.Millisecond)
	if got := n.Load(); got != 0 {
		t.Fatalf("generated %d symbols with no child", got)
	}
	// A child that reads nothing gets exactly the lead.
	c := mustSub(t, r)
	waitFor(t, "the lead to be generated", func() bool { return n.Load() >= 40 })
	time.Sleep(50 * time.Millisecond)
	if got := n.Load(); got != 40 {
		t.Fatalf("generated %d symbols for an idle child, want the lead of 40", got)
	}
	// Reading moves the child on by a chunk; generation follows it.
	if _, esi, _, err := c.NextView(ctx); err != nil || esi != 0 {
		t.Fatalf("NextView: ESI %d, %v", esi, err)
	}
	waitFor(t, "generation to follow the child", func() bool { return n.Load() == 40+16 })
	// The sink sees everything generated, in order.
	dst := make([]byte, 64)
	for want := range uint32(56) {
		if _, esi, err := sink.Next(ctx, dst); err != nil || esi != want {
			t.Fatalf("sink: ESI %d (%v), want %d", esi, err, want)
		}
	}
	// Closing the only child idles the generator again.
	c.Close()
	time.Sleep(20 * time.Millisecond)
	if got := n.Load(); got != 56 {
		t.Fatalf("generated %d after the child left, want 56", got)
	}
	cancel()
	wg.Wait()
	if !errors.Is(genErr, context.Canceled) {
		t.Fatalf("Generate: %v, want context.Canceled", genErr)
	}
}

func TestGenerateErrors(t *testing.T) {
	r := mustRing(t, 16)
	mustSub(t, r)
	boom := errors.New("boom")
	err := r.Generate(context.Background(), func(context.Context, []byte) (uint8, uint32, error) {
		return 0, 0, boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Generate: %v, want %v", err, boom)
	}
	if st := r.Stats(); st.Put != 0 {
		t.Fatalf("a failed generator committed %d symbols", st.Put)
	}
	go func() { time.Sleep(10 * time.Millisecond); r.Close() }()
	gen, _ := counting()
	if err := r.Generate(context.Background(), gen); !errors.Is(err, ErrClosed) {
		t.Fatalf("Generate on a closed ring: %v, want ErrClosed", err)
	}
}

// TestGenerateRate checks that a paced source encodes at about the rate of
// its fastest child, not flat out.
func TestGenerateRate(t *testing.T) {
	const symbolSize = 1024
	const fastRate = 4 << 20 // bytes per second
	r := mustRing(t, symbolSize)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fast := newBucket(fastRate, 64<<10)
	slow := newBucket(fastRate/8, 64<<10)
	var wg sync.WaitGroup
	for _, b := range []*bucket{fast, slow} {
		w := NewWriter(mustSub(t, r), b)
		wg.Go(func() { w.Run(ctx) })
	}
	gen, n := counting()
	wg.Go(func() { r.Generate(ctx, gen) })
	time.Sleep(300 * time.Millisecond)
	n0, f0, t0 := n.Load(), fast.n.Load(), time.Now()
	time.Sleep(1500 * time.Millisecond)
	n1, f1, dt := n.Load(), fast.n.Load(), time.Since(t0).Seconds()
	cancel()
	wg.Wait()
	genRate := float64(n1-n0) * (symbolSize + 5) / dt
	fastGot := float64(f1-f0) / dt
	t.Logf("generated %.2f MB/s, fastest child took %.2f MB/s (limit %.2f)", genRate/1e6, fastGot/1e6, fastRate/1e6)
	if genRate > 1.3*fastRate {
		t.Fatalf("generated %.0f B/s, more than 1.3x the fastest child's limit %d", genRate, fastRate)
	}
	if genRate < 0.5*fastRate {
		t.Fatalf("generated %.0f B/s, under half the fastest child's limit %d", genRate, fastRate)
	}
}

func TestStatsRate(t *testing.T) {
	const rate = 2 << 20
	r := mustRing(t, 512)
	b := newBucket(rate, 32<<10)
	w := NewWriter(mustSub(t, r), b)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { w.Run(ctx) })
	gen, _ := counting()
	wg.Go(func() { r.Generate(ctx, gen) })
	time.Sleep(1500 * time.Millisecond)
	st := w.Consumer().Stats()
	rs := r.Stats()
	cancel()
	wg.Wait()
	t.Logf("consumer %+v", st)
	if st.Rate < 0.5*rate || st.Rate > 1.5*rate {
		t.Fatalf("rate %.0f B/s, writer limited to %d", st.Rate, rate)
	}
	if rs.Rate < 0.5*rate || rs.Rate > 1.5*rate {
		t.Fatalf("ring rate %.0f B/s", rs.Rate)
	}
	if rs.Consumers != 1 || rs.Sent < st.Sent || rs.Put < rs.Sent {
		t.Fatalf("ring stats %+v", rs)
	}
	// A stalled consumer's rate decays.
	m := newMeter(time.Unix(0, 0))
	m.tick(time.Unix(1, 0), 1000)
	if got := m.rate(time.Unix(1, 0), 1000); got != 1000 {
		t.Fatalf("meter rate %v, want 1000", got)
	}
	if got := m.rate(time.Unix(1, 5e8), 1000); got < 666 || got > 667 {
		t.Fatalf("meter rate %v, want 1000 B over 1.5 s", got)
	}
	if got := m.rate(time.Unix(11, 0), 1000); got != 0 {
		t.Fatalf("meter rate after a 10 s stall %v, want 0", got)
	}
}
