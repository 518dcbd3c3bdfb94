package relay

import (
	"context"
	"testing"
	"time"
)

// putAll commits symbols (sbn, esi) for each esi, with their test pattern.
func putAll(t *testing.T, r *Ring, sbn uint8, esis ...uint32) {
	t.Helper()
	buf := make([]byte, r.SymbolSize())
	for _, e := range esis {
		fill(buf, sbn, e)
		if err := r.Put(context.Background(), sbn, e, buf); err != nil {
			t.Fatal(err)
		}
	}
}

// drain returns the ESIs the consumer passes until it has nothing more.
func drain(t *testing.T, c *Consumer) []uint32 {
	t.Helper()
	var got []uint32
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		_, esi, data, err := c.NextView(ctx)
		cancel()
		if err != nil {
			return got
		}
		if len(data) != c.r.SymbolSize() {
			t.Fatalf("symbol of %d bytes", len(data))
		}
		got = append(got, esi)
	}
}

func TestTrackSourcesPassesEachSourceOnce(t *testing.T) {
	r, err := New(64, WithCapacity(64*64))
	if err != nil {
		t.Fatal(err)
	}
	c, _ := r.Subscribe()
	c.TrackSources(8)
	putAll(t, r, 3, 0, 1, 2, 1, 9, 9, 2)
	got := drain(t, c)
	// Source ESIs (below 8) pass once; repair ESIs are never deduplicated.
	want := []uint32{0, 1, 2, 9, 9}
	if len(got) != len(want) {
		t.Fatalf("passed %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("passed %v, want %v", got, want)
		}
	}
	// The same ESI in another block is another symbol.
	putAll(t, r, 4, 1)
	if got := drain(t, c); len(got) != 1 {
		t.Fatalf("block 4: passed %v, want [1]", got)
	}
}

func TestNextGap(t *testing.T) {
	r, err := New(64, WithCapacity(64*64))
	if err != nil {
		t.Fatal(err)
	}
	c, _ := r.Subscribe()
	if _, ok := c.NextGap(0, 100); ok {
		t.Fatal("gap reported without tracking")
	}
	c.TrackSources(16)
	putAll(t, r, 0, 2, 3, 6)
	drain(t, c)
	// 0, 1, 4 and 5 were missed; 7 and up are above the highest passed, so
	// they may still come.
	for _, want := range []uint32{0, 1, 4, 5} {
		got, ok := c.NextGap(0, 100)
		if !ok || got != want {
			t.Fatalf("NextGap = %d, %v; want %d", got, ok, want)
		}
	}
	if got, ok := c.NextGap(0, 100); ok {
		t.Fatalf("NextGap = %d after every gap was reported", got)
	}
	if _, ok := c.NextGap(1, 100); ok {
		t.Fatal("gap reported in a block never seen")
	}

	// A limit below the gaps hides them.
	c2, _ := r.Subscribe()
	c2.TrackSources(16)
	putAll(t, r, 1, 5)
	drain(t, c2)
	if got, ok := c2.NextGap(1, 0); ok {
		t.Fatalf("NextGap below limit 0 = %d", got)
	}
	if got, ok := c2.NextGap(1, 3); !ok || got != 0 {
		t.Fatalf("NextGap below limit 3 = %d, %v; want 0", got, ok)
	}
}

func TestNextGapStripe(t *testing.T) {
	r, err := New(64, WithCapacity(64*64))
	if err != nil {
		t.Fatal(err)
	}
	c, _ := r.Subscribe(WithStripe(4, 1))
	c.TrackSources(32)
	putAll(t, r, 0, 1, 2, 3, 4, 9, 10, 11, 13)
	if got := drain(t, c); len(got) != 3 {
		t.Fatalf("stripe 1 of 4 passed %v, want [1 9 13]", got)
	}
	// 5 is the only ESI of the stripe missed below 13.
	if got, ok := c.NextGap(0, 100); !ok || got != 5 {
		t.Fatalf("NextGap = %d, %v; want 5", got, ok)
	}
	if got, ok := c.NextGap(0, 100); ok {
		t.Fatalf("NextGap = %d, want none", got)
	}
}

func TestNextGapAfterSkip(t *testing.T) {
	// A gap sent to a consumer that then falls behind the ring may be
	// skipped; the consumer reports it again.
	r, err := New(64, WithCapacity(16*64), WithBatchBytes(4*(64+5)))
	if err != nil {
		t.Fatal(err)
	}
	c, _ := r.Subscribe()
	c.TrackSources(1000)
	putAll(t, r, 0, 0, 2)
	drain(t, c)
	if got, ok := c.NextGap(0, 1000); !ok || got != 1 {
		t.Fatalf("NextGap = %d, %v; want 1", got, ok)
	}
	// The gap goes out, but more than a ring's worth follows before the
	// consumer reads again.
	putAll(t, r, 0, 1)
	for e := uint32(100); e < 140; e++ {
		putAll(t, r, 0, e)
	}
	drain(t, c)
	if c.Stats().Skipped == 0 {
		t.Fatal("consumer did not skip")
	}
	if got, ok := c.NextGap(0, 1000); !ok || got != 1 {
		t.Fatalf("after a skip NextGap = %d, %v; want 1 again", got, ok)
	}
}

func TestMarkHeld(t *testing.T) {
	r, err := New(64, WithCapacity(64*64))
	if err != nil {
		t.Fatal(err)
	}
	c, _ := r.Subscribe()
	c.MarkHeld(0, 1) // not tracking: ignored
	c.TrackSources(16)
	c.MarkHeld(0, 0)
	c.MarkHeld(0, 1)
	c.MarkHeld(0, 99) // not a source symbol
	putAll(t, r, 0, 0, 1, 3, 5, 99)
	if got := drain(t, c); len(got) != 3 || got[0] != 3 || got[1] != 5 || got[2] != 99 {
		t.Fatalf("passed %v, want [3 5 99]", got)
	}
	// Held symbols are not gaps; 2 and 4 are.
	for _, want := range []uint32{2, 4} {
		if got, ok := c.NextGap(0, 100); !ok || got != want {
			t.Fatalf("NextGap = %d, %v; want %d", got, ok, want)
		}
	}
	if got, ok := c.NextGap(0, 100); ok {
		t.Fatalf("NextGap = %d, want none", got)
	}
}

func TestNextGapTrailing(t *testing.T) {
	// With a budget, the consumer knows when nothing of a block waits for
	// it in the ring: the source symbols it never passed, even above the
	// highest it passed, are then gaps.
	r, err := New(64, WithCapacity(64*64))
	if err != nil {
		t.Fatal(err)
	}
	c, _ := r.Subscribe()
	c.TrackSources(8)
	c.SetBudget(0, 3)
	putAll(t, r, 0, 0, 1, 2, 3, 4)
	if got := drain(t, c); len(got) != 3 {
		t.Fatalf("passed %v, want [0 1 2] within the budget", got)
	}
	c.SetBudget(0, 8)
	for _, want := range []uint32{3, 4, 5} {
		if got, ok := c.NextGap(0, 6); !ok || got != want {
			t.Fatalf("NextGap = %d, %v; want %d", got, ok, want)
		}
	}
	if got, ok := c.NextGap(0, 6); ok {
		t.Fatalf("NextGap = %d beyond the limit", got)
	}
	// While symbols of the block wait in the ring, only gaps below the
	// highest passed count.
	c2, _ := r.Subscribe()
	c2.TrackSources(8)
	c2.SetBudget(1, 100)
	putAll(t, r, 1, 1)
	drain(t, c2)
	putAll(t, r, 1, 3)
	if got, ok := c2.NextGap(1, 8); !ok || got != 0 {
		t.Fatalf("NextGap = %d, %v; want 0", got, ok)
	}
	if got, ok := c2.NextGap(1, 8); ok {
		t.Fatalf("NextGap = %d while ESI 3 waits in the ring", got)
	}
}
