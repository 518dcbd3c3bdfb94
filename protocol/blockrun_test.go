package protocol

import (
	"errors"
	"math/rand/v2"
	"testing"
)

// TestVerifyRun checks aligned runs of source symbols in one pass, and
// names the wrong symbol of a run.
func TestVerifyRun(t *testing.T) {
	for _, T := range []int{1024, 2048, 4096, 8192, 16384, 3072} {
		f := newTreeFile(t, rand.New(rand.NewPCG(3, uint64(T))), 64*T+100, T, 1, 1)
		tree, err := ComputeBlockTree(f.m, 0, f.blocks[0])
		if err != nil {
			t.Fatal(err)
		}
		n := tree.RunSymbols()
		want := map[int]int{1024: 16, 2048: 8, 4096: 4, 8192: 2}[T]
		if n != want {
			t.Fatalf("T=%d: runs of %d symbols, want %d", T, n, want)
		}
		if n == 0 {
			continue
		}
		var run [RunBytes]byte
		for first := 0; (first+n)*T <= int(tree.Layout().Length); first += n {
			for i := 0; i < n; i++ {
				copy(run[i*T:], f.symbol(0, first+i))
			}
			if bad, err := tree.VerifyRun(uint32(first), &run); bad != -1 || err != nil {
				t.Fatalf("T=%d run %d: %d, %v", T, first, bad, err)
			}
			j := (first / n) % n
			run[j*T+T/2] ^= 1
			if bad, err := tree.VerifyRun(uint32(first), &run); bad != j || !errors.Is(err, ErrSymbolMismatch) {
				t.Fatalf("T=%d run %d: wrong symbol %d reported as %d, %v", T, first, j, bad, err)
			}
		}
		// Not aligned, or past the block's unpadded end.
		for _, first := range []int{1, 64} {
			if _, err := tree.VerifyRun(uint32(first), &run); err == nil {
				t.Errorf("T=%d: run at %d accepted", T, first)
			}
		}
	}
}

// BenchmarkVerifyRun measures checking 4 KiB source symbols four at a time
// (one pass over 16 KiB), beside checking them one by one.
func BenchmarkVerifyRun(b *testing.B) {
	const T = 4096
	f := newTreeFile(b, rand.New(rand.NewPCG(1, T)), 256*T, T, 1, 1)
	tree, err := ComputeBlockTree(f.m, 0, f.blocks[0])
	if err != nil {
		b.Fatal(err)
	}
	n := tree.RunSymbols()
	runs := make([][RunBytes]byte, tree.Layout().K/n)
	for r := range runs {
		for i := 0; i < n; i++ {
			copy(runs[r][i*T:], f.symbol(0, r*n+i))
		}
	}
	b.Run("run", func(b *testing.B) {
		b.SetBytes(RunBytes)
		m := meterCPU(b)
		r := 0
		for b.Loop() {
			if bad, err := tree.VerifyRun(uint32(r*n), &runs[r]); bad != -1 || err != nil {
				b.Fatal(bad, err)
			}
			r = (r + 1) % len(runs)
		}
		m.stop(RunBytes)
	})
	b.Run("one-by-one", func(b *testing.B) {
		b.SetBytes(RunBytes)
		m := meterCPU(b)
		r := 0
		for b.Loop() {
			for i := 0; i < n; i++ {
				if err := tree.VerifySymbol(uint32(r*n+i), runs[r][i*T:(i+1)*T]); err != nil {
					b.Fatal(err)
				}
			}
			r = (r + 1) % len(runs)
		}
		m.stop(RunBytes)
	})
}
