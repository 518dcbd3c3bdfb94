package relay

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/romap2p/romap2p/protocol"
)

func mustRing(t testing.TB, symbolSize int, opts ...Option) *Ring {
	t.Helper()
	r, err := New(symbolSize, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustSub(t testing.TB, r *Ring, opts ...ConsumerOption) *Consumer {
	t.Helper()
	c, err := r.Subscribe(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// putN puts symbols with ESIs first..first+n-1, block esi%blocks.
func putN(t testing.TB, r *Ring, first, n uint32, blocks int) {
	t.Helper()
	buf := make([]byte, r.SymbolSize())
	for esi := first; esi < first+n; esi++ {
		sbn := uint8(int(esi) % blocks)
		fill(buf, sbn, esi)
		if err := r.Put(context.Background(), sbn, esi, buf); err != nil {
			t.Fatal(err)
		}
	}
}

func TestNewValidates(t *testing.T) {
	for _, tc := range []struct {
		t    int
		opts []Option
	}{
		{0, nil},
		{MaxSymbolSize + 1, nil},
		{64, []Option{WithCapacity(0)}},
		{64, []Option{WithBatchBytes(-1)}},
	} {
		if _, err := New(tc.t, tc.opts...); err == nil {
			t.Errorf("New(%d) with %d options: no error", tc.t, len(tc.opts))
		}
	}
	r := mustRing(t, 1024)
	if r.Slots() < DefaultCapacity/1024 {
		t.Errorf("Slots = %d, want at least %d", r.Slots(), DefaultCapacity/1024)
	}
	if r := mustRing(t, 4096, WithCapacity(1)); r.Slots() < minSlots {
		t.Errorf("tiny ring holds %d slots, want at least %d", r.Slots(), minSlots)
	}
	if _, err := r.Subscribe(WithStripe(3, 3)); err == nil {
		t.Error("stripe (3,3) accepted")
	}
	if err := r.Put(context.Background(), 0, 0, make([]byte, 10)); err == nil {
		t.Error("Put of a short symbol accepted")
	}
}

func TestSkipCounting(t *testing.T) {
	r := mustRing(t, 16, WithCapacity(16*64))
	c := mustSub(t, r)
	const total = 1000
	putN(t, r, 0, total, 1)
	r.Close()

	dst := make([]byte, 16)
	var got []uint32
	for {
		sbn, esi, err := c.Next(context.Background(), dst)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := checkPayload(dst, sbn, esi); err != nil {
			t.Fatal(err)
		}
		got = append(got, esi)
	}
	st := c.Stats()
	if len(got) < r.Slots() {
		t.Fatalf("got %d symbols, ring holds at least %d", len(got), r.Slots())
	}
	if st.Sent != uint64(len(got)) || st.Skipped+st.Sent != total {
		t.Fatalf("stats %+v: sent+skipped must be %d, sent %d", st, total, len(got))
	}
	for i, esi := range got {
		if want := uint32(st.Skipped) + uint32(i); esi != want {
			t.Fatalf("symbol %d has ESI %d, want %d (oldest held onwards)", i, esi, want)
		}
	}
	if got[len(got)-1] != total-1 {
		t.Fatalf("last ESI %d, want %d", got[len(got)-1], total-1)
	}
	if _, _, err := c.Next(context.Background(), dst); !errors.Is(err, io.EOF) {
		t.Fatalf("Next after drain: %v, want io.EOF", err)
	}
	if err := r.Put(context.Background(), 0, 0, dst); !errors.Is(err, ErrClosed) {
		t.Fatalf("Put on closed ring: %v, want ErrClosed", err)
	}
}

func TestStartPosition(t *testing.T) {
	r := mustRing(t, 8, WithCapacity(8*64))
	putN(t, r, 0, 10, 1)
	live := mustSub(t, r)
	old := mustSub(t, r, FromOldest())
	putN(t, r, 10, 1, 1)
	ctx := context.Background()
	if _, esi, _, err := live.NextView(ctx); err != nil || esi != 10 {
		t.Fatalf("live consumer starts at ESI %d (%v), want 10", esi, err)
	}
	if _, esi, _, err := old.NextView(ctx); err != nil || esi != 0 {
		t.Fatalf("FromOldest consumer starts at ESI %d (%v), want 0", esi, err)
	}
}

func TestFilter(t *testing.T) {
	const blocks, total = 4, 600
	r := mustRing(t, 32, WithCapacity(32*total*2))
	c := mustSub(t, r, FromOldest(), WithStripe(3, 1))
	c.MarkFinished(2)
	if !c.Finished(2) || c.Finished(1) {
		t.Fatal("Finished does not reflect MarkFinished")
	}
	c.MarkFinished(1)
	c.UnmarkFinished(1)
	if !c.Finished(2) || c.Finished(1) {
		t.Fatal("UnmarkFinished did not restore block 1 alone")
	}
	putN(t, r, 0, total/2, blocks)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	dst := make([]byte, 32)
	want := func(sbn uint8, esi uint32) bool { return sbn != 2 && esi%3 == 1 }
	var n int
	for esi := uint32(0); esi < total/2; esi++ {
		if want(uint8(esi%blocks), esi) {
			n++
		}
	}
	var last uint32
	for range n {
		sbn, esi, err := c.Next(ctx, dst)
		if err != nil {
			t.Fatal(err)
		}
		if !want(sbn, esi) {
			t.Fatalf("filter passed (%d,%d)", sbn, esi)
		}
		last = esi
	}
	// Change the filter while symbols are in flight: everything after the
	// last symbol taken now passes, except block 2.
	if err := c.SetStripe(1, 0); err != nil {
		t.Fatal(err)
	}
	if err := c.SetStripe(2, 2); err == nil {
		t.Fatal("SetStripe(2,2) accepted")
	}
	putN(t, r, total/2, total/2, blocks)
	r.Close()
	var rest int
	for {
		sbn, esi, err := c.Next(ctx, dst)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if sbn == 2 || esi <= last {
			t.Fatalf("after SetStripe(1,0) got (%d,%d)", sbn, esi)
		}
		rest++
	}
	var wantRest int
	for esi := last + 1; esi < total; esi++ {
		if esi%blocks != 2 {
			wantRest++
		}
	}
	if rest != wantRest {
		t.Fatalf("got %d symbols after the stripe change, want %d", rest, wantRest)
	}
	st := c.Stats()
	if st.Sent+st.Filtered != total || st.Skipped != 0 {
		t.Fatalf("stats %+v: sent+filtered must be %d with no skips", st, total)
	}
}

func TestLosslessSinkGetsEverything(t *testing.T) {
	r := mustRing(t, 64, WithCapacity(64*32))
	sink := mustSub(t, r, AsSink())
	lossy := mustSub(t, r) // never read: it must not hold anything up
	const total = 5000
	errc := make(chan error, 1)
	go func() {
		dst := make([]byte, 64)
		for want := uint32(0); ; want++ {
			sbn, esi, err := sink.Next(context.Background(), dst)
			if errors.Is(err, io.EOF) {
				if want != total {
					err = errors.New("sink ended early")
				} else {
					err = nil
				}
				errc <- err
				return
			}
			if err == nil && esi != want {
				err = errors.New("sink saw a gap")
			}
			if err == nil {
				err = checkPayload(dst, sbn, esi)
			}
			if err != nil {
				errc <- err
				return
			}
			if want%512 == 0 {
				time.Sleep(time.Millisecond) // a sink that is briefly slow
			}
		}
	}()
	putN(t, r, 0, total, 3)
	r.Close()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if st := sink.Stats(); st.Sent != total || st.Skipped != 0 || !st.Lossless {
		t.Fatalf("sink stats %+v", st)
	}
	if st := lossy.Stats(); st.Behind == 0 || st.Lossless {
		t.Fatalf("unread consumer stats %+v", st)
	}
}

func TestBackPressureWaitsForSlowest(t *testing.T) {
	r := mustRing(t, 16, WithCapacity(16*64), WithBackPressure())
	c := mustSub(t, r)
	buf := make([]byte, 16)
	var put uint32
	for ; ; put++ {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		err := r.Put(ctx, 0, put, buf)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if put > 10000 {
			t.Fatal("producer never waited for the unread consumer")
		}
	}
	if int(put) < r.Slots() || int(put) > r.Slots()+r.per {
		t.Fatalf("producer stopped after %d symbols, ring holds %d (+%d per chunk)", put, r.Slots(), r.per)
	}
	// Taking one run lets the producer recycle one chunk.
	if _, _, _, err := c.NextView(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.Put(ctx, 0, put, buf); err != nil {
		t.Fatalf("Put after the consumer moved: %v", err)
	}
	// A consumer leaving releases the producer too.
	c.Close()
	putN(t, r, put+1, uint32(3*r.Slots()), 1)
	if st := c.Stats(); st.Skipped != 0 {
		t.Fatalf("back-pressure consumer skipped %d", st.Skipped)
	}
}

// TestAtomicityUnderOverwrite runs a fast producer over a small ring while
// slow writers copy straight from it: every frame that reaches a writer must
// be whole and match its header, ESIs must only increase, and every symbol
// must be accounted as sent, skipped or filtered.
func TestAtomicityUnderOverwrite(t *testing.T) {
	const symbolSize, total = 100, 20000
	r := mustRing(t, symbolSize, WithCapacity(symbolSize*48), WithBatchBytes(symbolSize*8))
	var recs []*recorder
	var ws []*Writer
	for i := range 3 {
		rec := &recorder{}
		delay := time.Duration(i*100) * time.Microsecond
		rec.hook = func([]byte) error { time.Sleep(delay); return nil }
		c := mustSub(t, r)
		if i == 2 {
			c.SetStripe(2, 0)
		}
		recs = append(recs, rec)
		ws = append(ws, NewWriter(c, rec))
	}
	var wg sync.WaitGroup
	errs := make([]error, len(ws))
	for i, w := range ws {
		wg.Go(func() { errs[i] = w.Run(context.Background()) })
	}
	putN(t, r, 0, total, 5)
	r.Close()
	wg.Wait()
	for i, w := range ws {
		if errs[i] != nil {
			t.Fatalf("writer %d: %v", i, errs[i])
		}
		frames, err := parseFrames(recs[i].bytes(), symbolSize)
		if err != nil {
			t.Fatalf("writer %d: %v", i, err)
		}
		last := -1
		for _, f := range frames {
			if err := checkPayload(f.payload, f.sbn, f.esi); err != nil {
				t.Fatalf("writer %d: %v", i, err)
			}
			if int(f.esi) <= last {
				t.Fatalf("writer %d: ESI %d after %d", i, f.esi, last)
			}
			last = int(f.esi)
		}
		st := w.Consumer().Stats()
		if st.Sent != uint64(len(frames)) || st.Sent+st.Skipped+st.Filtered != total {
			t.Fatalf("writer %d: %d frames, stats %+v", i, len(frames), st)
		}
		for _, n := range recs[i].writes {
			if n%(protocol.SymbolHeaderLen+symbolSize) != 0 {
				t.Fatalf("writer %d: write of %d bytes is not whole frames", i, n)
			}
		}
		t.Logf("writer %d: sent %d skipped %d filtered %d", i, st.Sent, st.Skipped, st.Filtered)
	}
	if st := r.Stats(); st.Put != total || st.Consumers != 0 {
		t.Fatalf("ring stats %+v", st)
	}
}

// TestJoinLeaveWhileRunning subscribes and closes consumers of every kind
// while a producer runs flat out; a sink present throughout must see every
// symbol.
func TestJoinLeaveWhileRunning(t *testing.T) {
	const symbolSize = 48
	r := mustRing(t, symbolSize, WithCapacity(symbolSize*256), WithBatchBytes(symbolSize*16))
	sink := mustSub(t, r, AsSink())
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()

	var wg sync.WaitGroup
	var sinkErr error
	var sinkN uint32
	wg.Go(func() {
		dst := make([]byte, symbolSize)
		for ; ; sinkN++ {
			sbn, esi, err := sink.Next(context.Background(), dst)
			if errors.Is(err, io.EOF) {
				return
			}
			if err == nil && esi != sinkN {
				err = errors.New("sink saw a gap")
			}
			if err == nil {
				err = checkPayload(dst, sbn, esi)
			}
			if err != nil {
				sinkErr = err
				return
			}
		}
	})
	churnErrs := make(chan error, 64)
	for g := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			for ctx.Err() == nil {
				if err := churnOnce(ctx, r, rng); err != nil {
					churnErrs <- err
					return
				}
			}
		})
	}
	buf := make([]byte, symbolSize)
	var esi uint32
	for ; ctx.Err() == nil; esi++ {
		sbn := uint8(esi % 7)
		fill(buf, sbn, esi)
		if err := r.Put(context.Background(), sbn, esi, buf); err != nil {
			t.Fatal(err)
		}
	}
	r.Close()
	wg.Wait()
	close(churnErrs)
	for err := range churnErrs {
		t.Error(err)
	}
	if sinkErr != nil {
		t.Fatal(sinkErr)
	}
	if sinkN != esi {
		t.Fatalf("sink got %d of %d symbols", sinkN, esi)
	}
	t.Logf("%d symbols, %d spare chunks", esi, r.Stats().SpareChunks)
}

// churnOnce joins the ring with a random kind of consumer, reads for a while
// and leaves, checking what it read.
func churnOnce(ctx context.Context, r *Ring, rng *rand.Rand) error {
	var opts []ConsumerOption
	if rng.IntN(2) == 0 {
		opts = append(opts, FromOldest())
	}
	if rng.IntN(3) == 0 {
		opts = append(opts, WithStripe(3, uint32(rng.IntN(3))))
	}
	if rng.IntN(4) == 0 {
		opts = append(opts, AsSink())
	}
	c, err := r.Subscribe(opts...)
	if errors.Is(err, ErrClosed) {
		return nil
	}
	if err != nil {
		return err
	}
	if rng.IntN(2) == 0 {
		c.MarkFinished(uint8(rng.IntN(7)))
	}
	if rng.IntN(2) == 0 { // read through Next
		defer c.Close()
		dst := make([]byte, r.SymbolSize())
		last := -1
		for range rng.IntN(2000) {
			sbn, esi, err := c.Next(ctx, dst)
			if errors.Is(err, io.EOF) || errors.Is(err, context.DeadlineExceeded) {
				return nil
			}
			if err != nil {
				return err
			}
			if int(esi) <= last {
				return errors.New("consumer saw ESIs out of order")
			}
			last = int(esi)
			if err := checkPayload(dst, sbn, esi); err != nil {
				return err
			}
		}
		return nil
	}
	// Or through a writer, stopped by closing the consumer.
	rec := &recorder{}
	w := NewWriter(c, rec)
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	if err := w.SendControl(ctx, controlFrame(1, []byte("hello"))); err != nil && ctx.Err() == nil {
		return err
	}
	time.Sleep(time.Duration(rng.IntN(3000)) * time.Microsecond)
	c.Close()
	if err := <-done; err != nil && ctx.Err() == nil {
		return err
	}
	frames, err := parseFrames(rec.bytes(), r.SymbolSize())
	if err != nil {
		return err
	}
	for _, f := range frames {
		if f.control {
			continue
		}
		if err := checkPayload(f.payload, f.sbn, f.esi); err != nil {
			return err
		}
	}
	return nil
}
