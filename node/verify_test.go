package node

import (
	"bytes"
	"context"
	"math/rand/v2"
	"testing"

	"github.com/romap2p/romap2p/fountain"
	"github.com/romap2p/romap2p/protocol"
)

// decodedFixture is a session holding one BLAKE3-hashed block of 4 KiB
// symbols and its checked tree, as a fetcher has them once the tree data
// arrived, plus the block's bytes.
func decodedFixture(t *testing.T, size int) (*session, []byte) {
	t.Helper()
	file := make([]byte, size)
	rnd := rand.New(rand.NewPCG(7, uint64(size)))
	for i := range file {
		file[i] = byte(rnd.Uint32())
	}
	m, oti, err := buildManifest(context.Background(), bytes.NewReader(file), int64(size), 4096, protocol.BlockHashBLAKE3, "f")
	if err != nil {
		t.Fatal(err)
	}
	if oti.Blocks() != 1 {
		t.Fatalf("%d blocks, want 1", oti.Blocks())
	}
	s := &session{manifest: m, oti: fountain.OTI{F: oti.F, T: oti.T, Z: oti.Z, N: oti.N, Al: oti.Al}, t: int(oti.T)}
	s.trees = newTreeCache(s)
	if !s.trees.ok {
		t.Fatal("content without trees")
	}
	tree, err := protocol.ComputeBlockTree(m, 0, file)
	if err != nil {
		t.Fatal(err)
	}
	s.trees.put(tree)
	return s, file
}

// TestCheckDecodedFindsEveryRebuiltSymbol flips one byte in each source
// symbol of a decoded block in turn, whole runs and the unaligned tail
// alike: every flip in a rebuilt symbol fails the block, a flip in a
// symbol received (checked on arrival) outside any run with a rebuilt one
// is not looked at, and the right block passes.
func TestCheckDecodedFindsEveryRebuiltSymbol(t *testing.T) {
	const T = 4096
	// 36 whole symbols (nine runs of four) and a short last one.
	s, block := decodedFixture(t, 36*T+1000)
	k := s.oti.BlockSymbols(0)
	// Received: every symbol of runs 0 and 2, symbol 5 of run 1, and 36.
	received := map[uint32]bool{0: true, 1: true, 2: true, 3: true, 5: true, 8: true, 9: true, 10: true, 11: true, 36: true}
	held := func(esi uint32) bool { return received[esi] }
	if !s.checkDecoded(0, block, held) {
		t.Fatal("the right block failed")
	}
	if !s.checkDecoded(0, block, nil) {
		t.Fatal("the right block failed with nothing held")
	}
	for esi := 0; esi < k; esi++ {
		bad := bytes.Clone(block)
		bad[min(esi*T+17, len(bad)-1)] ^= 0x40
		got := s.checkDecoded(0, bad, held)
		// Runs 0 and 2 hold only received symbols, and so does the tail's 36.
		skipped := esi < 4 || (esi >= 8 && esi < 12) || esi == 36
		if got != skipped {
			t.Errorf("symbol %d wrong: passed %v, want %v", esi, got, skipped)
		}
		if s.checkDecoded(0, bad, nil) {
			t.Errorf("symbol %d wrong, nothing held: passed", esi)
		}
	}
}
