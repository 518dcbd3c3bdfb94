package protocol

import (
	"fmt"
	"math/bits"

	"lukechampine.com/blake3/guts"
)

// RunSymbols returns how many consecutive source symbols VerifyRun checks
// in one pass for this tree, 0 when it cannot: a run fills the SIMD
// kernels' buffer (16 KiB) exactly, with one leaf per symbol.
func (t *BlockTree) RunSymbols() int {
	l := &t.layout
	if l.Leaves == 0 || l.LeafSize != l.SymbolSize || RunBytes%l.SymbolSize != 0 {
		return 0
	}
	if n := RunBytes / l.SymbolSize; n >= 2 {
		return n
	}
	return 0
}

// RunBytes is the size of a run of symbols VerifyRun checks in one pass.
const RunBytes = guts.MaxSIMD * guts.ChunkSize

// VerifyRun checks RunSymbols() consecutive source symbols, first..first+n-1,
// laid out one after the other in run, with one BLAKE3 pass over all of
// them: the run is one subtree of the block's tree, whose chaining value
// must equal the node above their leaves in the tree data. first must be a
// multiple of n and the run must lie within the block, unpadded. It
// reports -1 when every symbol is right, else the index in the run of the
// first wrong one (found by checking them one by one), with an error that
// wraps ErrSymbolMismatch.
func (t *BlockTree) VerifyRun(first uint32, run *[RunBytes]byte) (int, error) {
	l := &t.layout
	n := t.RunSymbols()
	if n == 0 || first%uint32(n) != 0 || (uint64(first)+uint64(n))*uint64(l.SymbolSize) > l.Length {
		return 0, fmt.Errorf("verify run %d/%d: not a whole aligned run of %d symbols", l.SBN, first, n)
	}
	lo := int(first)
	// Chunk counters count from the start of the block.
	counter := uint64(first) * uint64(l.SymbolSize) / TreeChunkSize
	got := guts.ChainingValue(guts.CompressBuffer(run, RunBytes, &guts.IV, counter, 0))
	if got == mergeCVs(t.cvs[lo:lo+n], 0) && n == 1<<bits.TrailingZeros(uint(n)) {
		return -1, nil
	}
	T := l.SymbolSize
	for i := 0; i < n; i++ {
		if err := t.VerifySymbol(first+uint32(i), run[i*T:(i+1)*T]); err != nil {
			return i, err
		}
	}
	// The run as a whole differs but no symbol does: impossible barring a
	// collision; say so rather than pass it.
	return 0, fmt.Errorf("verify run %d/%d: %w", l.SBN, first, ErrSymbolMismatch)
}
