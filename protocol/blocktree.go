package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"sync"

	"github.com/zeebo/blake3"
	"lukechampine.com/blake3/guts"
)

// Block trees let a peer check every source symbol on its own, before it
// keeps or forwards it, against nothing but the manifest.
//
// A BLAKE3 block hash is the root of a binary tree over the block's 1 KiB
// chunks: the left subtree of every node holds the largest power of two of
// chunks that leaves at least one chunk for the right. In such a tree every
// range of 2^l chunks that starts at a multiple of 2^l chunks and lies within
// the block is one subtree, and so is the range from the last such boundary
// to the end of the block. When T is a multiple of 1 KiB, a leaf of
// LeafSize = 2^l KiB (the largest power of two dividing T/1 KiB) therefore
// splits every source symbol into whole subtrees. The tree data of a block is
// the chaining value of each leaf, in order: anyone who holds the block can
// compute it, anyone who holds the manifest can check it by merging the
// leaves up to the root, and with it one source symbol is checked by hashing
// just that symbol. For T = 2^l KiB a symbol is one leaf and the tree data
// takes 32 bytes per symbol (0.78 % of the block for T = 4 KiB).

const (
	// TreeCVSize is the size of one chaining value in tree data.
	TreeCVSize = 32
	// TreeChunkSize is the BLAKE3 chunk size. Tree leaves are power-of-two
	// multiples of it, so only symbol sizes that are multiples of it can be
	// checked one by one.
	TreeChunkSize = guts.ChunkSize
)

// Errors of block trees. A peer that sends tree data or a source symbol that
// fails with ErrTreeMismatch or ErrSymbolMismatch sent wrong content.
var (
	// ErrUnverifiable is wrapped when a manifest's source symbols cannot be
	// checked one by one: its block hash is not BLAKE3, or T is not a
	// multiple of TreeChunkSize.
	ErrUnverifiable = errors.New("source symbols cannot be checked one by one")
	// ErrTreeMismatch is wrapped when tree data, or a block, does not hash
	// to the manifest's block hash.
	ErrTreeMismatch = errors.New("does not match the block hash")
	// ErrSymbolMismatch is wrapped when a source symbol does not match its
	// block's verified tree data.
	ErrSymbolMismatch = errors.New("symbol does not match the block tree")
	// ErrRepairSymbol is wrapped when a symbol handed to VerifySymbol is a
	// repair symbol (ESI >= K), which a tree cannot check.
	ErrRepairSymbol = errors.New("repair symbol")
)

// BlockSpan returns where source block sbn lies in the file and how many
// source symbols it has, by RFC 6330's partition (section 4.4.1.2): with
// Kt = ceil(F/T) source symbols in all, the first Kt mod Z blocks have
// ceil(Kt/Z) of them and the others floor(Kt/Z). The block's length is K*T
// bytes except for the last block, whose last symbol may be padded. Source
// symbol i of the block is the block's bytes [i*T, (i+1)*T), zero-padded.
func BlockSpan(m *Manifest, sbn uint8) (offset, length uint64, k int, err error) {
	t := uint64(m.SymbolSize)
	z := uint64(len(m.BlockHashes))
	if t == 0 || m.Size == 0 || uint64(sbn) >= z {
		return 0, 0, 0, fmt.Errorf("block span: block %d of a manifest with %d blocks, T = %d, F = %d", sbn, z, t, m.Size)
	}
	kt := (m.Size + t - 1) / t
	kl, ks := (kt+z-1)/z, kt/z
	zl := kt - ks*z
	s := uint64(sbn)
	var ku uint64
	if s < zl {
		ku, offset = kl, s*kl*t
	} else {
		ku, offset = ks, (zl*kl+(s-zl)*ks)*t
	}
	if ku == 0 || offset >= m.Size {
		return 0, 0, 0, fmt.Errorf("block span: block %d is empty (%d blocks for %d symbols)", sbn, z, kt)
	}
	return offset, min(ku*t, m.Size-offset), int(ku), nil
}

// TreeLeafSize returns the leaf size of m's block trees: the largest
// power-of-two multiple of TreeChunkSize that divides T. The error wraps
// ErrUnverifiable when m's source symbols cannot be checked one by one.
func TreeLeafSize(m *Manifest) (int, error) {
	if m.blockHash() != BlockHashBLAKE3 {
		return 0, fmt.Errorf("block hash 0x%x is not BLAKE3: %w", m.blockHash(), ErrUnverifiable)
	}
	t := int(m.SymbolSize)
	if t == 0 || t%TreeChunkSize != 0 {
		return 0, fmt.Errorf("symbol size %d is not a multiple of %d: %w", t, TreeChunkSize, ErrUnverifiable)
	}
	return TreeChunkSize << bits.TrailingZeros(uint(t/TreeChunkSize)), nil
}

// TreeLayout describes one block's tree data.
type TreeLayout struct {
	// SBN is the source block number.
	SBN uint8
	// Offset and Length place the block in the file; Length excludes
	// padding.
	Offset, Length uint64
	// K is the number of source symbols and SymbolSize is T.
	K, SymbolSize int
	// LeafSize is the size of the block range each chaining value covers
	// (the last leaf may be shorter).
	LeafSize int
	// Leaves is the number of chaining values in the tree data: 0 when
	// K = 1 (the one symbol is checked against the block hash itself),
	// else ceil(Length / LeafSize).
	Leaves int
}

// Size returns the length of the block's tree data in bytes.
func (l TreeLayout) Size() int { return l.Leaves * TreeCVSize }

// NewTreeLayout returns the layout of block sbn's tree data. The error wraps
// ErrUnverifiable when m's source symbols cannot be checked one by one.
func NewTreeLayout(m *Manifest, sbn uint8) (TreeLayout, error) {
	leaf, err := TreeLeafSize(m)
	if err != nil {
		return TreeLayout{}, fmt.Errorf("tree layout: %w", err)
	}
	off, n, k, err := BlockSpan(m, sbn)
	if err != nil {
		return TreeLayout{}, fmt.Errorf("tree layout: %w", err)
	}
	l := TreeLayout{SBN: sbn, Offset: off, Length: n, K: k, SymbolSize: int(m.SymbolSize), LeafSize: leaf}
	if k > 1 {
		l.Leaves = int((n + uint64(leaf) - 1) / uint64(leaf))
	}
	return l, nil
}

// BlockTree is the verified tree data of one source block: it checks that
// block's source symbols. It is immutable and safe for concurrent use.
type BlockTree struct {
	layout TreeLayout
	root   [32]byte
	cvs    [][8]uint32
	// scratch holds *simdBuffer: chunks hashed together by the SIMD
	// kernels, kept so that a check neither allocates nor clears one.
	scratch sync.Pool
}

// simdBuffer holds the chunks the SIMD kernels hash together.
type simdBuffer = [guts.MaxSIMD * guts.ChunkSize]byte

// ComputeBlockTree computes the tree data of block sbn from its bytes (the
// block's Length bytes; anything past them is ignored) and checks them
// against the manifest's block hash: the error wraps ErrTreeMismatch when
// they do not match.
func ComputeBlockTree(m *Manifest, sbn uint8, block []byte) (*BlockTree, error) {
	l, err := NewTreeLayout(m, sbn)
	if err != nil {
		return nil, fmt.Errorf("compute block tree: %w", err)
	}
	if uint64(len(block)) < l.Length {
		return nil, fmt.Errorf("compute block tree: block %d has %d bytes, want %d", sbn, len(block), l.Length)
	}
	block = block[:l.Length]
	t := &BlockTree{layout: l, root: m.BlockHashes[sbn]}
	if l.Leaves == 0 {
		if blake3.Sum256(block) != t.root {
			return nil, fmt.Errorf("compute block tree: block %d: %w", sbn, ErrTreeMismatch)
		}
		return t, nil
	}
	t.cvs = make([][8]uint32, l.Leaves)
	var scratch simdBuffer
	leaf := uint64(l.LeafSize)
	for j := range t.cvs {
		lo := uint64(j) * leaf
		t.cvs[j] = subtreeCV(block[lo:min(lo+leaf, l.Length)], lo/TreeChunkSize, &scratch)
	}
	if rootOf(t.cvs) != t.root {
		return nil, fmt.Errorf("compute block tree: block %d: %w", sbn, ErrTreeMismatch)
	}
	return t, nil
}

// DecodeBlockTree checks tree data of block sbn received from a peer and
// returns the tree. Data of the wrong length wraps ErrMalformed; data that
// does not hash to the manifest's block hash wraps ErrTreeMismatch.
func DecodeBlockTree(m *Manifest, sbn uint8, data []byte) (*BlockTree, error) {
	l, err := NewTreeLayout(m, sbn)
	if err != nil {
		return nil, fmt.Errorf("block tree: %w", err)
	}
	if len(data) != l.Size() {
		return nil, malformed("block tree: block %d: %d bytes of tree data, want %d", sbn, len(data), l.Size())
	}
	t := &BlockTree{layout: l, root: m.BlockHashes[sbn]}
	if l.Leaves == 0 {
		return t, nil
	}
	t.cvs = make([][8]uint32, l.Leaves)
	for j := range t.cvs {
		for w := range t.cvs[j] {
			t.cvs[j][w] = binary.LittleEndian.Uint32(data[j*TreeCVSize+4*w:])
		}
	}
	if rootOf(t.cvs) != t.root {
		return nil, fmt.Errorf("block tree: block %d: %w", sbn, ErrTreeMismatch)
	}
	return t, nil
}

// Layout returns the block's tree layout.
func (t *BlockTree) Layout() TreeLayout { return t.layout }

// AppendData appends the tree data, as DecodeBlockTree reads it, to dst.
func (t *BlockTree) AppendData(dst []byte) []byte {
	for _, cv := range t.cvs {
		for _, w := range cv {
			dst = binary.LittleEndian.AppendUint32(dst, w)
		}
	}
	return dst
}

// VerifySymbol checks source symbol esi of the block: its T bytes must be
// the block's bytes [esi*T, (esi+1)*T), with zeros past the block's end. It
// hashes the symbol once and nothing else. The error wraps
// ErrSymbolMismatch for a wrong symbol and ErrRepairSymbol when esi >= K.
func (t *BlockTree) VerifySymbol(esi uint32, payload []byte) error {
	l := &t.layout
	if uint64(esi) >= uint64(l.K) {
		return fmt.Errorf("verify symbol %d/%d: %d source symbols: %w", l.SBN, esi, l.K, ErrRepairSymbol)
	}
	if len(payload) != l.SymbolSize {
		return fmt.Errorf("verify symbol %d/%d: %d bytes, want %d", l.SBN, esi, len(payload), l.SymbolSize)
	}
	start := uint64(esi) * uint64(l.SymbolSize)
	n := min(uint64(l.SymbolSize), l.Length-start)
	data, pad := payload[:n], payload[n:]
	for i, c := range pad {
		if c != 0 {
			return fmt.Errorf("verify symbol %d/%d: padding byte %d is not zero: %w", l.SBN, esi, n+uint64(i), ErrSymbolMismatch)
		}
	}
	if l.Leaves == 0 {
		if blake3.Sum256(data) != t.root {
			return fmt.Errorf("verify symbol %d/%d: %w", l.SBN, esi, ErrSymbolMismatch)
		}
		return nil
	}
	scratch, _ := t.scratch.Get().(*simdBuffer)
	if scratch == nil {
		scratch = new(simdBuffer)
	}
	defer t.scratch.Put(scratch)
	leaf := uint64(l.LeafSize)
	for off := uint64(0); off < n; off += leaf {
		abs := start + off
		if subtreeCV(data[off:min(off+leaf, n)], abs/TreeChunkSize, scratch) != t.cvs[abs/leaf] {
			return fmt.Errorf("verify symbol %d/%d: leaf %d: %w", l.SBN, esi, abs/leaf, ErrSymbolMismatch)
		}
	}
	return nil
}

// subtreeCV returns the chaining value of the non-root BLAKE3 subtree over p
// (at least one byte), whose first chunk has chunk counter counter. scratch
// holds the chunks the SIMD kernels hash together.
func subtreeCV(p []byte, counter uint64, scratch *simdBuffer) [8]uint32 {
	switch {
	case len(p) <= guts.ChunkSize:
		return guts.ChainingValue(guts.CompressChunk(p, &guts.IV, counter, 0))
	case len(p) == len(scratch):
		return guts.ChainingValue(guts.CompressBuffer((*simdBuffer)(p), len(p), &guts.IV, counter, 0))
	case len(p) < len(scratch):
		n := copy(scratch[:], p)
		return guts.ChainingValue(guts.CompressBuffer(scratch, n, &guts.IV, counter, 0))
	}
	chunks := (len(p) + guts.ChunkSize - 1) / guts.ChunkSize
	left := guts.ChunkSize << (bits.Len(uint(chunks-1)) - 1)
	l := subtreeCV(p[:left], counter, scratch)
	r := subtreeCV(p[left:], counter+uint64(left/guts.ChunkSize), scratch)
	return guts.ChainingValue(guts.ParentNode(l, r, &guts.IV, 0))
}

// rootOf merges two or more leaf chaining values into the BLAKE3 hash of
// the block they cover.
func rootOf(cvs [][8]uint32) [32]byte {
	root := mergeCVs(cvs, guts.FlagRoot)
	var b [32]byte
	for i, w := range root {
		binary.LittleEndian.PutUint32(b[4*i:], w)
	}
	return b
}

// mergeCVs returns the chaining value of the node above cvs (one leaf needs
// no merging and takes no flags), splitting as BLAKE3 does: the left
// subtree holds the largest power of two of leaves below len(cvs).
func mergeCVs(cvs [][8]uint32, flags uint32) [8]uint32 {
	if len(cvs) == 1 {
		return cvs[0]
	}
	left := 1 << (bits.Len(uint(len(cvs)-1)) - 1)
	return guts.ChainingValue(guts.ParentNode(mergeCVs(cvs[:left], 0), mergeCVs(cvs[left:], 0), &guts.IV, flags))
}
