package relay

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/romap2p/romap2p/protocol"
)

const benchSymbol = 1024

var errBenchDone = errors.New("done")

// benchRing moves b.N symbols of benchSymbol bytes from one producer through
// a ring to consumers writers on in-memory writers. b.SetBytes counts each
// symbol once (the producer's throughput); the delivered-MB/s metric counts
// what all writers together wrote.
func benchRing(b *testing.B, consumers int, paced bool, opts ...Option) {
	r := mustRing(b, benchSymbol, opts...)
	var wg sync.WaitGroup
	sinks := make([]*counter, consumers)
	ws := make([]*Writer, consumers)
	for i := range sinks {
		sinks[i] = &counter{}
		ws[i] = NewWriter(mustSub(b, r), sinks[i])
	}
	for _, w := range ws {
		wg.Go(func() { w.Run(context.Background()) })
	}
	payload := make([]byte, benchSymbol)
	b.SetBytes(benchSymbol)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	if paced {
		n := uint32(0)
		err := r.Generate(context.Background(), func(_ context.Context, dst []byte) (uint8, uint32, error) {
			if int(n) == b.N {
				return 0, 0, errBenchDone
			}
			copy(dst, payload)
			n++
			return uint8(n), n & protocol.MaxESI, nil
		})
		if !errors.Is(err, errBenchDone) {
			b.Fatal(err)
		}
	} else {
		ctx := context.Background()
		for i := range b.N {
			if err := r.Put(ctx, uint8(i), uint32(i)&protocol.MaxESI, payload); err != nil {
				b.Fatal(err)
			}
		}
	}
	r.Close()
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	var delivered, skipped uint64
	for i, s := range sinks {
		delivered += s.n.Load()
		skipped += ws[i].Consumer().Stats().Skipped
	}
	b.ReportMetric(float64(delivered)/elapsed.Seconds()/1e6, "delivered-MB/s")
	b.ReportMetric(float64(skipped)/float64(b.N*consumers), "skipped/symbol")
}

// BenchmarkRing8 is one producer and 8 consumers on in-memory writers: in the
// default mode fed by Put (a relay), paced by Generate (a source), and in the
// back-pressure baseline.
func BenchmarkRing8(b *testing.B) {
	b.Run("feasible-put", func(b *testing.B) { benchRing(b, 8, false) })
	b.Run("feasible-paced", func(b *testing.B) { benchRing(b, 8, true) })
	b.Run("backpressure", func(b *testing.B) { benchRing(b, 8, false, WithBackPressure()) })
}

// BenchmarkPut is the producer alone, with no consumer.
func BenchmarkPut(b *testing.B) {
	r := mustRing(b, benchSymbol)
	payload := make([]byte, benchSymbol)
	ctx := context.Background()
	b.SetBytes(benchSymbol)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := r.Put(ctx, 0, uint32(i)&protocol.MaxESI, payload); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSink is a relay's receive path: Put into the ring and a lossless
// sink copying every symbol out with Next.
func BenchmarkSink(b *testing.B) {
	r := mustRing(b, benchSymbol)
	sink := mustSub(b, r, AsSink())
	var wg sync.WaitGroup
	var got int
	wg.Go(func() {
		dst := make([]byte, benchSymbol)
		for {
			if _, _, err := sink.Next(context.Background(), dst); err != nil {
				return
			}
			got++
		}
	})
	payload := make([]byte, benchSymbol)
	ctx := context.Background()
	b.SetBytes(benchSymbol)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := r.Put(ctx, 0, uint32(i)&protocol.MaxESI, payload); err != nil {
			b.Fatal(err)
		}
	}
	r.Close()
	wg.Wait()
	if got != b.N {
		b.Fatalf("sink got %d of %d", got, b.N)
	}
}
