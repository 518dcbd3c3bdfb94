package relay

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/romap2p/romap2p/protocol"
)

func TestWriterBatchesWholeFrames(t *testing.T) {
	const symbolSize = 1000
	r := mustRing(t, symbolSize)
	c := mustSub(t, r)
	putN(t, r, 0, 500, 2) // before the writer starts: it finds them all waiting
	rec := &recorder{}
	w := NewWriter(c, rec)
	r.Close()
	if err := w.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	stride := protocol.SymbolHeaderLen + symbolSize
	for _, n := range rec.writes {
		if n%stride != 0 || n > DefaultBatchBytes {
			t.Fatalf("write of %d bytes: want whole %d-byte frames, at most %d", n, stride, DefaultBatchBytes)
		}
	}
	perWrite := DefaultBatchBytes / stride
	if maxWrites := (500+perWrite-1)/perWrite + 1; len(rec.writes) > maxWrites {
		t.Fatalf("%d writes for 500 waiting frames, want at most %d", len(rec.writes), maxWrites)
	}
	frames, err := parseFrames(rec.bytes(), symbolSize)
	if err != nil {
		t.Fatal(err)
	}
	if len(frames) != 500 {
		t.Fatalf("%d frames written, want 500", len(frames))
	}
	for i, f := range frames {
		if f.esi != uint32(i) {
			t.Fatalf("frame %d has ESI %d", i, f.esi)
		}
		if err := checkPayload(f.payload, f.sbn, f.esi); err != nil {
			t.Fatal(err)
		}
	}
	if st := c.Stats(); st.Sent != 500 || st.Bytes != uint64(500*stride) {
		t.Fatalf("stats %+v", st)
	}
}

func TestWriterFilterGathers(t *testing.T) {
	const symbolSize = 40
	r := mustRing(t, symbolSize)
	c := mustSub(t, r, WithStripe(4, 3))
	c.MarkFinished(1)
	rec := &recorder{}
	w := NewWriter(c, rec)
	putN(t, r, 0, 1000, 3)
	r.Close()
	if err := w.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	frames, err := parseFrames(rec.bytes(), symbolSize)
	if err != nil {
		t.Fatal(err)
	}
	var want []uint32
	for esi := uint32(0); esi < 1000; esi++ {
		if esi%3 != 1 && esi%4 == 3 {
			want = append(want, esi)
		}
	}
	if len(frames) != len(want) {
		t.Fatalf("%d frames, want %d", len(frames), len(want))
	}
	for i, f := range frames {
		if f.esi != want[i] {
			t.Fatalf("frame %d: ESI %d, want %d", i, f.esi, want[i])
		}
		if err := checkPayload(f.payload, f.sbn, f.esi); err != nil {
			t.Fatal(err)
		}
	}
	if st := c.Stats(); st.Sent != uint64(len(want)) || st.Filtered != uint64(1000-len(want)) {
		t.Fatalf("stats %+v", st)
	}
}

func TestWriterControlFrames(t *testing.T) {
	const symbolSize = 64
	r := mustRing(t, symbolSize)
	c := mustSub(t, r)
	rec := &recorder{}
	w := NewWriter(c, rec, WithControlQueue(2))
	ctx := context.Background()
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()

	// A control frame reaches an idle writer.
	if err := w.SendControl(ctx, controlFrame(7, []byte("first"))); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(rec.bytes()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("control frame not written to an idle writer")
		}
		time.Sleep(time.Millisecond)
	}
	// Control frames interleave with symbols, in order, never split.
	for i := range 50 {
		putN(t, r, uint32(i*10), 10, 1)
		if err := w.SendControl(ctx, controlFrame(7, []byte{byte(i)})); err != nil {
			t.Fatal(err)
		}
	}
	// Frames queued before Close are still written.
	if err := w.SendControl(ctx, controlFrame(8, []byte("bye"))); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := w.SendControl(ctx, controlFrame(7, nil)); !errors.Is(err, ErrClosed) {
		t.Fatalf("SendControl after Run: %v, want ErrClosed", err)
	}
	frames, err := parseFrames(rec.bytes(), symbolSize)
	if err != nil {
		t.Fatal(err)
	}
	var ctrl []frame
	last := -1
	for _, f := range frames {
		if f.control {
			ctrl = append(ctrl, f)
			continue
		}
		if int(f.esi) <= last {
			t.Fatalf("ESI %d after %d", f.esi, last)
		}
		last = int(f.esi)
		if err := checkPayload(f.payload, f.sbn, f.esi); err != nil {
			t.Fatal(err)
		}
	}
	if len(ctrl) != 52 || string(ctrl[0].payload) != "first" || ctrl[51].typ != 8 {
		t.Fatalf("%d control frames, want 52 in order", len(ctrl))
	}
	for i, f := range ctrl[1:51] {
		if f.typ != 7 || len(f.payload) != 1 || f.payload[0] != byte(i) {
			t.Fatalf("control frame %d out of order: %+v", i+1, f)
		}
	}
	if st := c.Stats(); st.Control != 52 {
		t.Fatalf("stats %+v: want 52 control frames", st)
	}
}

var errBroken = errors.New("broken pipe")

func TestWriterStops(t *testing.T) {
	r := mustRing(t, 32)
	// A failing write ends Run with that error and removes the consumer.
	c := mustSub(t, r)
	w := NewWriter(c, &recorder{hook: func([]byte) error { return errBroken }})
	putN(t, r, 0, 3, 1)
	if err := w.Run(context.Background()); !errors.Is(err, errBroken) {
		t.Fatalf("Run: %v, want %v", err, errBroken)
	}
	if n := r.Stats().Consumers; n != 0 {
		t.Fatalf("%d consumers after the writer failed", n)
	}
	// Cancelling the context ends Run with the context's error.
	c = mustSub(t, r)
	w = NewWriter(c, &recorder{})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var err error
	wg.Go(func() { err = w.Run(ctx) })
	time.Sleep(10 * time.Millisecond)
	cancel()
	wg.Wait()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v, want context.Canceled", err)
	}
}

// TestSlowWriterDoesNotBlockProducer checks the core promise directly: a
// writer stuck in Write does not hold the producer or another writer back.
func TestSlowWriterDoesNotBlockProducer(t *testing.T) {
	const symbolSize = 256
	r := mustRing(t, symbolSize, WithCapacity(symbolSize*64))
	release := make(chan struct{})
	stuck := NewWriter(mustSub(t, r), &recorder{hook: func([]byte) error { <-release; return nil }})
	fast := &counter{}
	fw := NewWriter(mustSub(t, r), fast)
	var wg sync.WaitGroup
	wg.Go(func() { stuck.Run(context.Background()) })
	wg.Go(func() { fw.Run(context.Background()) })
	const total = 5000
	buf := make([]byte, symbolSize)
	for esi := uint32(0); esi < total; esi++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := r.Put(ctx, 0, esi, buf)
		cancel()
		if err != nil {
			t.Fatalf("producer blocked by a stuck writer: %v", err)
		}
	}
	close(release)
	r.Close()
	wg.Wait()
	st := fw.Consumer().Stats()
	if st.Sent+st.Skipped != total || st.Sent == 0 {
		t.Fatalf("fast writer stats %+v", st)
	}
	if st := stuck.Consumer().Stats(); st.Skipped < total/2 {
		t.Fatalf("stuck writer skipped only %d", st.Skipped)
	}
}

// TestWriterBudget passes at most a block's budget, counting the symbols
// that went out before the budget was set.
func TestWriterBudget(t *testing.T) {
	const symbolSize = 32
	r := mustRing(t, symbolSize)
	c := mustSub(t, r)
	rec := &recorder{}
	w := NewWriter(c, rec)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	putN(t, r, 0, 300, 3) // 100 symbols of each of blocks 0, 1, 2, unbudgeted
	waitFor(t, "300 symbols sent", func() bool { return c.Stats().Sent == 300 })
	if got := c.Passed(1); got != 100 {
		t.Fatalf("passed %d of block 1, want 100", got)
	}
	c.SetBudget(0, 130) // 30 more
	c.SetBudget(1, 90)  // none more
	if n, ok := c.Budget(0); !ok || n != 30 {
		t.Fatalf("budget of block 0: %d %v, want 30", n, ok)
	}
	if n, ok := c.Budget(1); !ok || n != 0 {
		t.Fatalf("budget of block 1: %d %v, want 0", n, ok)
	}
	if _, ok := c.Budget(2); ok {
		t.Fatal("block 2 has a budget")
	}
	putN(t, r, 300, 300, 3)
	r.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	frames, err := parseFrames(rec.bytes(), symbolSize)
	if err != nil {
		t.Fatal(err)
	}
	per := map[uint8]int{}
	for _, f := range frames {
		per[f.sbn]++
		if err := checkPayload(f.payload, f.sbn, f.esi); err != nil {
			t.Fatal(err)
		}
	}
	if per[0] != 130 || per[1] != 100 || per[2] != 200 {
		t.Fatalf("symbols per block %v, want 130, 100, 200", per)
	}
	if n, _ := c.Budget(0); n != 0 {
		t.Fatalf("budget of block 0 left: %d", n)
	}
}

// TestBudgetCountsQueued: symbols waiting in the ring for a consumer count
// against its budget as a producer sees it, and stop counting once taken.
func TestBudgetCountsQueued(t *testing.T) {
	const symbolSize = 32
	r := mustRing(t, symbolSize)
	c := mustSub(t, r, WithStripe(2, 0))
	c.SetBudget(0, 50)
	putN(t, r, 0, 40, 1) // 20 of stripe 0 wait
	if n, _ := c.Budget(0); n != 30 {
		t.Fatalf("budget with 20 queued: %d, want 30", n)
	}
	if n, ok := c.Allowance(0); !ok || n != 50 {
		t.Fatalf("allowance with 20 queued: %d %v, want 50", n, ok)
	}
	buf := make([]byte, symbolSize)
	for i := 0; i < 5; i++ {
		if _, _, err := c.Next(context.Background(), buf); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := c.Budget(0); n != 30 || c.Passed(0) != 5 {
		t.Fatalf("after 5 taken: budget %d passed %d, want 30 and 5", n, c.Passed(0))
	}
}
