package fountain

import (
	"context"
	"fmt"
	"testing"
)

func TestBench(t *testing.T) {
	for _, loss := range []float64{0, 0.5} {
		r, err := Bench(context.Background(), 3<<20+123, 1024, loss)
		if err != nil {
			t.Fatal(err)
		}
		if r.Blocks < 2 || r.EncodeMBps <= 0 || r.DecodeMBps <= 0 {
			t.Fatalf("implausible result %+v", r)
		}
		if processCPU() > 0 && (r.EncodeCPUMBps <= 0 || r.DecodeCPUMBps <= 0) {
			t.Fatalf("no CPU-time rates where the CPU time can be read: %+v", r)
		}
		t.Logf("%+v", r)
	}
}

// BenchmarkObject runs Bench on a 64 MiB object (the figure).
func BenchmarkObject(b *testing.B) {
	for _, T := range []int{1024, 4096} {
		for _, loss := range []float64{0, 0.5} {
			b.Run(fmt.Sprintf("T=%d/loss=%v", T, loss), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					r, err := Bench(context.Background(), 64<<20, T, loss)
					if err != nil {
						b.Fatal(err)
					}
					b.ReportMetric(r.EncodeMBps, "enc-MB/s")
					b.ReportMetric(r.DecodeMBps, "dec-MB/s")
					b.ReportMetric(float64(r.OverheadSymbols)/float64(r.Blocks), "ovh-sym/block")
				}
			})
		}
	}
}

// benchBlock prepares one block of K symbols of T bytes.
func benchBlock(b *testing.B, k, T int) (OTI, []byte) {
	o, err := NewOTI(int64(k*T), T, WithMaxBlockSymbols(MaxBlockSymbols))
	if err != nil {
		b.Fatal(err)
	}
	return o, xorshiftData(k, T)
}

var sizeClasses = []int{100, 1000, 4000, 10000}

// BenchmarkBlockEncode measures computing the intermediate symbols of one
// block (with the cached systematic plan), per source byte.
func BenchmarkBlockEncode(b *testing.B) {
	for _, T := range []int{1024, 4096} {
		for _, k := range sizeClasses {
			b.Run(fmt.Sprintf("K=%d/T=%d", k, T), func(b *testing.B) {
				o, src := benchBlock(b, k, T)
				plans := NewPlanCache()
				if _, err := NewBlockEncoder(o, 0, src, WithPlanCache(plans)); err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(len(src)))
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, err := NewBlockEncoder(o, 0, src, WithPlanCache(plans)); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkRepairSymbol measures producing repair symbols, per symbol byte.
func BenchmarkRepairSymbol(b *testing.B) {
	for _, T := range []int{1024, 4096} {
		for _, k := range sizeClasses {
			b.Run(fmt.Sprintf("K=%d/T=%d", k, T), func(b *testing.B) {
				o, src := benchBlock(b, k, T)
				enc, err := NewBlockEncoder(o, 0, src)
				if err != nil {
					b.Fatal(err)
				}
				dst := make([]byte, T)
				b.SetBytes(int64(T))
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					enc.Symbol(uint32(k+i%(1<<20)), dst)
				}
			})
		}
	}
}

// BenchmarkBlockDecode measures decoding a block from half of its source
// symbols and as many repair symbols (Add and Decode), per source byte.
func BenchmarkBlockDecode(b *testing.B) {
	for _, T := range []int{1024, 4096} {
		for _, k := range sizeClasses {
			b.Run(fmt.Sprintf("K=%d/T=%d", k, T), func(b *testing.B) {
				o, src := benchBlock(b, k, T)
				enc, err := NewBlockEncoder(o, 0, src)
				if err != nil {
					b.Fatal(err)
				}
				var esis []uint32
				for i := 0; i < k; i += 2 {
					esis = append(esis, uint32(i))
				}
				for i := 0; len(esis) < k; i++ {
					esis = append(esis, uint32(k+i))
				}
				syms := make([]byte, len(esis)*T)
				for i, e := range esis {
					enc.Symbol(e, syms[i*T:(i+1)*T])
				}
				out := make([]byte, len(src))
				dec := NewBlockDecoder(o, 0)
				b.SetBytes(int64(len(src)))
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					dec.Reset()
					for j, e := range esis {
						dec.Add(e, syms[j*T:(j+1)*T])
					}
					if err := dec.Decode(out); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
