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
