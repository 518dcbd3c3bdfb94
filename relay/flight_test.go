package relay

import (
	"context"
	"sync"
	"testing"
	"time"
)

// A writer keeps at most the receiver's in-flight limit of symbols
// unconfirmed: it stops there, goes on when the receiver confirms more,
// stays held while the receiver is quiet and goes on without a limit.
func TestWriterInFlightLimit(t *testing.T) {
	r := mustRing(t, 256)
	c := mustSub(t, r)
	rec := &recorder{}
	w := NewWriter(c, rec)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c.SetInFlight(0, 10)
	var wg sync.WaitGroup
	wg.Go(func() { _ = w.Run(ctx) })
	gen, _ := counting()
	wg.Go(func() { r.Generate(ctx, gen) })
	defer wg.Wait()
	defer cancel()

	waitSent := func(cond func(uint64) bool, what string) uint64 {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			if n := c.Stats().Sent; cond(n) {
				return n
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Fatalf("%s: sent %d", what, c.Stats().Sent)
		return 0
	}
	n := waitSent(func(n uint64) bool { return n >= 10 }, "the first 10")
	time.Sleep(100 * time.Millisecond)
	if got := c.Stats().Sent; got > n+ringBatchSlack(r) {
		t.Fatalf("sent %d with 10 allowed in flight", got)
	}
	// The receiver confirms everything: 10 more may go.
	c.SetInFlight(0, 10)
	n2 := waitSent(func(m uint64) bool { return m >= n+10 }, "10 more after the confirmation")
	time.Sleep(100 * time.Millisecond)
	if got := c.Stats().Sent; got > n2+ringBatchSlack(r) {
		t.Fatalf("sent %d after confirming %d with 10 allowed in flight", got, n2)
	}
	// A receiver that goes quiet stays held: silence is no confirmation.
	time.Sleep(3 * flightRecheck)
	if got := c.Stats().Sent; got > n2+ringBatchSlack(r) {
		t.Fatalf("sent %d to a quiet receiver after %d with 10 allowed in flight", got, n2)
	}
	// No limit: it goes on.
	c.SetInFlight(0, 0)
	waitSent(func(m uint64) bool { return m > n2+1000 }, "once no limit is set")
}

// ringBatchSlack is how far one write may go past the limit: the writer
// checks the limit between runs of the ring, not between symbols.
func ringBatchSlack(r *Ring) uint64 { return uint64(r.per) }
