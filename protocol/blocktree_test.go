package protocol

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/romap2p/romap2p/fountain"
	"github.com/zeebo/blake3"
)

// treeFile is a file cut into blocks by the erasure code's own partition,
// with a BLAKE3 manifest: the tests check the tree code against it.
type treeFile struct {
	m      *Manifest
	oti    fountain.OTI
	data   []byte
	blocks [][]byte
}

// newTreeFile makes a random file of size bytes in z blocks (at most Kt) of
// symbols of t bytes, with n sub-blocks.
func newTreeFile(tb testing.TB, r *rand.Rand, size, t, z, n int) *treeFile {
	tb.Helper()
	kt := (size + t - 1) / t
	z = min(z, kt)
	oti := fountain.OTI{F: uint64(size), T: uint16(t), Z: uint16(z), N: uint16(n), Al: 4}
	if err := oti.Validate(); err != nil {
		tb.Fatalf("OTI %+v: %v", oti, err)
	}
	f := &treeFile{oti: oti, data: make([]byte, size)}
	for i := range f.data {
		f.data[i] = byte(r.Uint32())
	}
	f.m = &Manifest{Version: ManifestVersion, Size: uint64(size), SymbolSize: uint16(t), SubBlocks: uint16(n), Alignment: 4, BlockHash: BlockHashBLAKE3}
	for sbn := range z {
		off := oti.BlockOffset(sbn)
		b := f.data[off : off+oti.BlockLen(sbn)]
		f.blocks = append(f.blocks, b)
		f.m.BlockHashes = append(f.m.BlockHashes, blake3.Sum256(b))
	}
	if err := f.m.Validate(); err != nil {
		tb.Fatalf("manifest: %v", err)
	}
	return f
}

// symbol returns source symbol esi of block sbn, zero padded.
func (f *treeFile) symbol(sbn, esi int) []byte {
	t := int(f.m.SymbolSize)
	b := f.blocks[sbn]
	s := make([]byte, t)
	copy(s, b[min(esi*t, len(b)):min((esi+1)*t, len(b))])
	return s
}

// allSymbolSizes are all symbol sizes whose symbols can be checked one by one.
func allSymbolSizes() []int {
	var ts []int
	for t := TreeChunkSize; t <= MaxSymbolSize; t += TreeChunkSize {
		ts = append(ts, t)
	}
	return ts
}

func TestBlockSpanMatchesPartition(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		tsz := 16 + r.IntN(MaxSymbolSize-15)
		tsz -= tsz % 4
		size := 1 + r.Int64N(1<<34)
		if r.IntN(4) == 0 {
			size = 1 + r.Int64N(int64(tsz)*300)
		}
		kt := (size + int64(tsz) - 1) / int64(tsz)
		lo := max(1, (kt+MaxSourceSymbols-1)/MaxSourceSymbols)
		hi := min(int64(MaxSourceBlocks), kt)
		if lo > hi {
			continue
		}
		z := lo + r.Int64N(hi-lo+1)
		oti := fountain.OTI{F: uint64(size), T: uint16(tsz), Z: uint16(z), N: 1, Al: 4}
		m := &Manifest{Version: ManifestVersion, Size: uint64(size), SymbolSize: uint16(tsz), SubBlocks: 1, Alignment: 4, BlockHashes: make([][32]byte, z)}
		if err := m.Validate(); err != nil {
			t.Fatalf("%+v: %v", oti, err)
		}
		var total uint64
		for sbn := range int(z) {
			off, n, k, err := BlockSpan(m, uint8(sbn))
			if err != nil {
				t.Fatalf("%+v block %d: %v", oti, sbn, err)
			}
			if int64(off) != oti.BlockOffset(sbn) || int64(n) != oti.BlockLen(sbn) || k != oti.BlockSymbols(sbn) {
				t.Fatalf("%+v block %d: span (%d, %d, %d), partition (%d, %d, %d)", oti, sbn, off, n, k,
					oti.BlockOffset(sbn), oti.BlockLen(sbn), oti.BlockSymbols(sbn))
			}
			if off != total {
				t.Fatalf("%+v block %d at %d, previous blocks end at %d", oti, sbn, off, total)
			}
			total += n
		}
		if total != uint64(size) {
			t.Fatalf("%+v: blocks cover %d bytes", oti, total)
		}
		if _, _, _, err := BlockSpan(m, uint8(z)); z < MaxSourceBlocks && err == nil {
			t.Fatalf("%+v: span of block %d past the last", oti, z)
		}
	}
}

func TestTreeLeafSize(t *testing.T) {
	m := testManifest()
	m.BlockHash = BlockHashBLAKE3
	for _, c := range []struct{ t, leaf int }{
		{1024, 1024}, {2048, 2048}, {3072, 1024}, {4096, 4096}, {6144, 2048},
		{12288, 4096}, {32768, 32768}, {64512, 1024}, {63488, 2048},
	} {
		m.SymbolSize = uint16(c.t)
		leaf, err := TreeLeafSize(m)
		if err != nil || leaf != c.leaf {
			t.Errorf("T = %d: leaf %d, %v; want %d", c.t, leaf, err, c.leaf)
		}
	}
	for _, ts := range []int{16, 512, 1000, 1025, 1400, 4100, 65535} {
		m.SymbolSize = uint16(ts)
		if _, err := TreeLeafSize(m); !errors.Is(err, ErrUnverifiable) {
			t.Errorf("T = %d: %v, want ErrUnverifiable", ts, err)
		}
	}
	m.SymbolSize = 4096
	m.BlockHash = 0
	if _, err := TreeLeafSize(m); !errors.Is(err, ErrUnverifiable) {
		t.Errorf("sha2-256 manifest: %v, want ErrUnverifiable", err)
	}
	if _, err := NewTreeLayout(m, 0); !errors.Is(err, ErrUnverifiable) {
		t.Errorf("sha2-256 layout: %v, want ErrUnverifiable", err)
	}
}

// TestBlockTreeHonest checks, for every allowed T and random file sizes,
// that the tree computed from a block checks out, survives its encoding,
// has the promised size, and accepts every honest source symbol.
func TestBlockTreeHonest(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	sizes := allSymbolSizes()
	rounds := 3
	if testing.Short() {
		rounds = 1
	}
	for _, ts := range sizes {
		for round := range rounds {
			var size int
			switch round {
			case 0:
				size = 1 + r.IntN(ts*24) // any length, K up to 24
			case 1:
				size = ts*(1+r.IntN(12)) + r.IntN(2)*(1+r.IntN(TreeChunkSize)) // ends on or just past a symbol
			default:
				size = 1 + r.IntN(ts) // one symbol
			}
			f := newTreeFile(t, r, size, ts, 1+r.IntN(3), 1)
			checkHonestFile(t, f)
		}
	}
}

func checkHonestFile(t *testing.T, f *treeFile) {
	t.Helper()
	for sbn := range f.blocks {
		name := fmt.Sprintf("F=%d T=%d Z=%d block %d", f.m.Size, f.m.SymbolSize, len(f.blocks), sbn)
		tree, err := ComputeBlockTree(f.m, uint8(sbn), f.blocks[sbn])
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		l := tree.Layout()
		if l.Length != uint64(len(f.blocks[sbn])) || l.K != f.oti.BlockSymbols(sbn) {
			t.Fatalf("%s: layout %+v", name, l)
		}
		data := tree.AppendData(nil)
		if len(data) != l.Size() {
			t.Fatalf("%s: %d bytes of tree data, layout says %d", name, len(data), l.Size())
		}
		if l.K > 1 && l.LeafSize == int(f.m.SymbolSize) && l.Leaves != l.K {
			t.Fatalf("%s: %d leaves for %d symbols of one leaf", name, l.Leaves, l.K)
		}
		// At most one chaining value per KiB, and one per symbol for T = 2^l KiB.
		if limit := (l.Length + TreeChunkSize - 1) / TreeChunkSize * TreeCVSize; uint64(len(data)) > limit {
			t.Fatalf("%s: %d bytes of tree data for %d bytes of block", name, len(data), l.Length)
		}
		got, err := DecodeBlockTree(f.m, uint8(sbn), data)
		if err != nil {
			t.Fatalf("%s: decode: %v", name, err)
		}
		if !bytes.Equal(got.AppendData(nil), data) || got.Layout() != l {
			t.Fatalf("%s: decoded tree differs", name)
		}
		for esi := range l.K {
			sym := f.symbol(sbn, esi)
			if err := got.VerifySymbol(uint32(esi), sym); err != nil {
				t.Fatalf("%s: honest symbol %d: %v", name, esi, err)
			}
		}
	}
}

// TestBlockTreeFountainSymbols checks that the source symbols the erasure
// code puts out, with one and with several sub-blocks, verify.
func TestBlockTreeFountainSymbols(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, c := range []struct{ size, t, z, n int }{
		{100_000, 4096, 2, 1},
		{100_000, 4096, 1, 4},
		{50_001, 3072, 2, 3},
		{70_000, 1024, 3, 2},
	} {
		f := newTreeFile(t, r, c.size, c.t, c.z, c.n)
		for sbn, b := range f.blocks {
			enc, err := fountain.NewBlockEncoder(f.oti, sbn, b)
			if err != nil {
				t.Fatal(err)
			}
			tree, err := ComputeBlockTree(f.m, uint8(sbn), b)
			if err != nil {
				t.Fatal(err)
			}
			sym := make([]byte, c.t)
			for esi := range enc.SourceSymbols() {
				if err := enc.Symbol(uint32(esi), sym); err != nil {
					t.Fatal(err)
				}
				if err := tree.VerifySymbol(uint32(esi), sym); err != nil {
					t.Fatalf("%+v block %d: encoder's source symbol %d: %v", c, sbn, esi, err)
				}
			}
			// A repair symbol is not a source symbol: the tree refuses it.
			if err := enc.Symbol(uint32(enc.SourceSymbols()), sym); err != nil {
				t.Fatal(err)
			}
			if err := tree.VerifySymbol(uint32(enc.SourceSymbols()), sym); !errors.Is(err, ErrRepairSymbol) {
				t.Fatalf("repair symbol: %v, want ErrRepairSymbol", err)
			}
			enc.Release()
		}
	}
}

// flipEach calls check with every bit of b flipped in turn (or, when
// sample > 0, that many random bits), restoring it afterwards.
func flipEach(r *rand.Rand, b []byte, sample int, check func(bit int)) {
	bitsN := len(b) * 8
	n := bitsN
	if sample > 0 && sample < bitsN {
		n = sample
	}
	for i := range n {
		bit := i
		if n != bitsN {
			bit = r.IntN(bitsN)
		}
		b[bit/8] ^= 1 << (bit % 8)
		check(bit)
		b[bit/8] ^= 1 << (bit % 8)
	}
}

// TestBlockTreeCatchesFlips flips single bits in symbols (data and padding)
// and in tree data: every flip must be caught.
func TestBlockTreeCatchesFlips(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	sample := 0 // every bit
	if testing.Short() {
		sample = 3000
	}
	for _, c := range []struct{ size, t, z int }{
		{40*1024 + 777, 1024, 1},    // T = 1 KiB: a symbol is one chunk
		{21*4096 + 1500, 4096, 2},   // padded last symbol of 2596 bytes
		{9*3072 + 5, 3072, 1},       // three leaves per symbol; 3067 padding bytes
		{5*32768 + 20000, 32768, 1}, // leaves of two SIMD groups
		{3000, 4096, 1},             // K = 1: the symbol against the block hash
		{4096, 4096, 1},             // K = 1, no padding
	} {
		f := newTreeFile(t, r, c.size, c.t, c.z, 1)
		last := len(f.blocks) - 1
		tree, err := ComputeBlockTree(f.m, uint8(last), f.blocks[last])
		if err != nil {
			t.Fatal(err)
		}
		k := tree.Layout().K
		for _, esi := range []int{0, k / 2, k - 1} {
			sym := f.symbol(last, esi)
			if err := tree.VerifySymbol(uint32(esi), sym); err != nil {
				t.Fatalf("%+v: honest symbol %d: %v", c, esi, err)
			}
			s := sample
			if c.t > 4096 && s == 0 {
				s = 20000 // and every padding bit below
			}
			flipEach(r, sym, s, func(bit int) {
				if err := tree.VerifySymbol(uint32(esi), sym); !errors.Is(err, ErrSymbolMismatch) {
					t.Fatalf("%+v: symbol %d with bit %d flipped: %v", c, esi, bit, err)
				}
			})
			if esi == k-1 {
				n := int(tree.Layout().Length) - esi*c.t
				flipEach(r, sym[n:], 0, func(bit int) {
					if err := tree.VerifySymbol(uint32(esi), sym); !errors.Is(err, ErrSymbolMismatch) {
						t.Fatalf("%+v: symbol %d with padding bit %d flipped: %v", c, esi, bit, err)
					}
				})
			}
			// The right bytes under another ESI fail too.
			if k > 1 {
				other := (esi + 1) % k
				if err := tree.VerifySymbol(uint32(other), sym); !errors.Is(err, ErrSymbolMismatch) {
					t.Fatalf("%+v: symbol %d sent as %d: %v", c, esi, other, err)
				}
			}
		}
		data := tree.AppendData(nil)
		flipEach(r, data, sample, func(bit int) {
			if _, err := DecodeBlockTree(f.m, uint8(last), data); !errors.Is(err, ErrTreeMismatch) {
				t.Fatalf("%+v: tree data with bit %d flipped: %v", c, bit, err)
			}
		})
		// Every block byte counts when the tree is computed.
		b := bytes.Clone(f.blocks[last])
		flipEach(r, b, 200, func(bit int) {
			if _, err := ComputeBlockTree(f.m, uint8(last), b); !errors.Is(err, ErrTreeMismatch) {
				t.Fatalf("%+v: block with bit %d flipped: %v", c, bit, err)
			}
		})
	}
}

func TestBlockTreeOtherBlock(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	f := newTreeFile(t, r, 64*4096, 4096, 2, 1)
	t0, err := ComputeBlockTree(f.m, 0, f.blocks[0])
	if err != nil {
		t.Fatal(err)
	}
	t1, err := ComputeBlockTree(f.m, 1, f.blocks[1])
	if err != nil {
		t.Fatal(err)
	}
	// Block 1's tree data is not block 0's, though of the same length.
	if _, err := DecodeBlockTree(f.m, 0, t1.AppendData(nil)); !errors.Is(err, ErrTreeMismatch) {
		t.Fatalf("block 1's tree as block 0's: %v", err)
	}
	if err := t0.VerifySymbol(3, f.symbol(1, 3)); !errors.Is(err, ErrSymbolMismatch) {
		t.Fatalf("block 1's symbol as block 0's: %v", err)
	}
	if _, err := ComputeBlockTree(f.m, 0, f.blocks[1]); !errors.Is(err, ErrTreeMismatch) {
		t.Fatalf("block 1 as block 0: %v", err)
	}
	// Lengths.
	data := t0.AppendData(nil)
	for _, n := range []int{0, len(data) - 1, len(data) + 32} {
		d := make([]byte, n)
		copy(d, data)
		if _, err := DecodeBlockTree(f.m, 0, d); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%d bytes of tree data: %v", n, err)
		}
	}
	if err := t0.VerifySymbol(0, make([]byte, 4095)); err == nil {
		t.Fatal("short symbol accepted")
	}
	if _, err := ComputeBlockTree(f.m, 0, f.blocks[0][:100]); err == nil {
		t.Fatal("short block accepted")
	}
	if _, err := ComputeBlockTree(f.m, 2, f.blocks[0]); err == nil {
		t.Fatal("tree of a block outside the manifest")
	}
	if err := t0.VerifySymbol(32, f.symbol(0, 0)); !errors.Is(err, ErrRepairSymbol) {
		t.Fatalf("ESI K: %v", err)
	}
}

// TestTreeDataSize checks the promised size: 32 bytes per symbol for
// T = 2^l KiB, i.e. 0.78 % of the block for T = 4 KiB.
func TestTreeDataSize(t *testing.T) {
	m := &Manifest{Version: ManifestVersion, Size: 1024 * 4096, SymbolSize: 4096, SubBlocks: 1, Alignment: 4,
		BlockHash: BlockHashBLAKE3, BlockHashes: make([][32]byte, 1)}
	l, err := NewTreeLayout(m, 0)
	if err != nil {
		t.Fatal(err)
	}
	if l.Size() != 1024*32 {
		t.Fatalf("tree data of a 4 MiB block of 4 KiB symbols: %d bytes", l.Size())
	}
	// The largest block of T = 2^l KiB needs KMAX chaining values.
	m.SymbolSize = 32768
	m.Size = MaxSourceSymbols * 32768
	if l, err = NewTreeLayout(m, 0); err != nil || l.Size() != MaxSourceSymbols*TreeCVSize {
		t.Fatalf("largest block: %+v, %v", l, err)
	}
}
