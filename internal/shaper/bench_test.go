package shaper

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkWriteUnlimited measures what a shaped Write costs when nothing
// limits the flow, against writing to the inner writer directly.
func BenchmarkWriteUnlimited(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10} {
		buf := make([]byte, size)
		b.Run(fmt.Sprintf("direct/%dKiB", size>>10), func(b *testing.B) {
			b.SetBytes(int64(size))
			w := io.Discard
			for b.Loop() {
				w.Write(buf)
			}
		})
		b.Run(fmt.Sprintf("shaped/%dKiB", size>>10), func(b *testing.B) {
			b.SetBytes(int64(size))
			w := NewNetwork().Writer("a", "b", io.Discard)
			for b.Loop() {
				if _, err := w.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkWriteLimitedNoWait measures the bucket arithmetic of a limited
// flow whose rate is so high that it never waits (one grant per 16 KiB).
func BenchmarkWriteLimitedNoWait(b *testing.B) {
	buf := make([]byte, DefaultChunkSize)
	nw := NewNetwork()
	nw.SetPairRate("a", "b", 1e15)
	nw.SetUplink("a", 1e15)
	nw.SetDownlink("b", 1e15)
	w := nw.Writer("a", "b", io.Discard)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if _, err := w.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriteSharedUplinkParallel measures contention when many flows
// share one host's uplink (rate high enough never to wait).
func BenchmarkWriteSharedUplinkParallel(b *testing.B) {
	nw := NewNetwork()
	nw.SetUplink("a", 1e15)
	var next atomic.Int64
	buf := make([]byte, DefaultChunkSize)
	b.SetBytes(int64(len(buf)))
	b.RunParallel(func(pb *testing.PB) {
		w := nw.Writer("a", strconv.FormatInt(next.Add(1), 10), io.Discard)
		for pb.Next() {
			if _, err := w.Write(buf); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkRateAccuracy runs one flow at 10 MB/s for 2 s per iteration and
// reports the rate reached and its error against the set rate (the bucket's
// initial burst of 200 kB counts, about +1 %).
func BenchmarkRateAccuracy(b *testing.B) {
	const rate = 10e6
	var worst float64
	var last result
	for b.Loop() {
		nw := NewNetwork()
		nw.SetPairRate("a", "b", rate)
		last = pump(nw.Writer("a", "b", io.Discard), time.Now(), 2*time.Second)
		worst = math.Max(worst, math.Abs(last.rate()/rate-1))
	}
	b.ReportMetric(last.rate()/1e6, "MB/s")
	b.ReportMetric(100*worst, "%err")
}
