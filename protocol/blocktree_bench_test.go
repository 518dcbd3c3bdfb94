package protocol

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/zeebo/blake3"
)

// cpuMeter reports the CPU time per byte a benchmark's loop used on its own
// thread (cpu-ns/B), which on a machine shared with other work is steadier
// than the wall time behind ns/op.
type cpuMeter struct {
	b     *testing.B
	start time.Duration
	ok    bool
}

func meterCPU(b *testing.B) *cpuMeter {
	runtime.LockOSThread()
	m := &cpuMeter{b: b}
	m.start, m.ok = threadCPUTime()
	return m
}

// stop reports the CPU time per byte over n bytes per iteration.
func (m *cpuMeter) stop(n int) {
	end, ok := threadCPUTime()
	runtime.UnlockOSThread()
	if m.ok && ok && m.b.N > 0 {
		m.b.ReportMetric(float64(end-m.start)/float64(m.b.N)/float64(n), "cpu-ns/B")
	}
}

// BenchmarkSymbolCheck measures what checking one source symbol costs a
// relay, side by side with hashing the same T bytes with BLAKE3 (the block
// hash every peer computes over every byte today). The figures are bytes of
// symbol per second; ns/op is per symbol.
func BenchmarkSymbolCheck(b *testing.B) {
	for _, T := range []int{1024, 2048, 4096, 8192, 16384, 32768, 3072} {
		f := newTreeFile(b, rand.New(rand.NewPCG(1, uint64(T))), 256*T, T, 1, 1)
		tree, err := ComputeBlockTree(f.m, 0, f.blocks[0])
		if err != nil {
			b.Fatal(err)
		}
		syms := make([][]byte, tree.Layout().K)
		for i := range syms {
			syms[i] = f.symbol(0, i)
		}
		b.Run(fmt.Sprintf("T=%d/verify", T), func(b *testing.B) {
			b.SetBytes(int64(T))
			b.ReportAllocs()
			m := meterCPU(b)
			i := 0
			for b.Loop() {
				if err := tree.VerifySymbol(uint32(i), syms[i]); err != nil {
					b.Fatal(err)
				}
				i = (i + 1) % len(syms)
			}
			m.stop(T)
		})
		b.Run(fmt.Sprintf("T=%d/blake3", T), func(b *testing.B) {
			b.SetBytes(int64(T))
			b.ReportAllocs()
			m := meterCPU(b)
			i := 0
			for b.Loop() {
				_ = blake3.Sum256(syms[i])
				i = (i + 1) % len(syms)
			}
			m.stop(T)
		})
	}
}

// BenchmarkBlockTree measures computing a block's tree data from the block
// (a peer that serves it) and checking received tree data against the block
// hash, for a block of 1024 symbols of 4 KiB (the default layout), beside
// hashing the block.
func BenchmarkBlockTree(b *testing.B) {
	const T, K = 4096, 1024
	f := newTreeFile(b, rand.New(rand.NewPCG(2, 3)), K*T, T, 1, 1)
	tree, err := ComputeBlockTree(f.m, 0, f.blocks[0])
	if err != nil {
		b.Fatal(err)
	}
	data := tree.AppendData(nil)
	b.Run("compute", func(b *testing.B) {
		b.SetBytes(K * T)
		m := meterCPU(b)
		for b.Loop() {
			if _, err := ComputeBlockTree(f.m, 0, f.blocks[0]); err != nil {
				b.Fatal(err)
			}
		}
		m.stop(K * T)
	})
	b.Run("blake3", func(b *testing.B) {
		b.SetBytes(K * T)
		m := meterCPU(b)
		for b.Loop() {
			_ = blake3.Sum256(f.blocks[0])
		}
		m.stop(K * T)
	})
	b.Run("decode", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		m := meterCPU(b)
		for b.Loop() {
			if _, err := DecodeBlockTree(f.m, 0, data); err != nil {
				b.Fatal(err)
			}
		}
		m.stop(K * T) // per byte of the block the tree covers
	})
}
