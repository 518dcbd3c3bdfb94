package fountain

import "fmt"

// MaxTransferLength is the largest object RFC 6330 can describe (F is 40 bits
// in the OTI, and the RFC caps it at 946270874880 bytes).
const MaxTransferLength = 946270874880

// MaxSourceBlocks is the largest number of source blocks of one object: the
// SBN is 8 bits on the wire.
const MaxSourceBlocks = 256

// DefaultMaxBlockSymbols is the source block size NewOTI aims for when the
// object is large enough: blocks of about a thousand symbols keep the
// inactivated part of the constraint matrix small (the dense work grows with
// its square) and a block's intermediate symbols within the caches, which
// measured fastest for both encoding and decoding (see README.md).
const DefaultMaxBlockSymbols = 1024

// OTI is the object transmission information of RFC 6330 section 3.3: what a
// receiver must know to decode an object.
type OTI struct {
	F  uint64 // transfer length in bytes
	T  uint16 // symbol size in bytes
	Z  uint16 // number of source blocks, 1..256
	N  uint16 // number of sub-blocks per source block
	Al uint8  // symbol alignment in bytes
}

// PartitionOption tunes NewOTI.
type PartitionOption func(*partitionConfig)

type partitionConfig struct {
	maxK     int
	subLimit int64
	align    int
}

// WithMaxBlockSymbols caps the number of source symbols in a block. The cap
// is raised when the object would otherwise need more than 256 blocks.
func WithMaxBlockSymbols(k int) PartitionOption {
	return func(c *partitionConfig) { c.maxK = k }
}

// WithSubBlockLimit sets WS of RFC 6330 section 4.3: the most bytes of one
// sub-block a receiver wants to hold in working memory. Blocks larger than
// that are split into interleaved sub-blocks. Zero means no limit.
func WithSubBlockLimit(bytes int64) PartitionOption {
	return func(c *partitionConfig) { c.subLimit = bytes }
}

// WithAlignment sets Al, the alignment of symbols and sub-symbols in bytes.
// The symbol size must be a multiple of it. The default is 4 when the symbol
// size allows it, else 1.
func WithAlignment(al int) PartitionOption {
	return func(c *partitionConfig) { c.align = al }
}

// partition is Partition[I, J] of RFC 6330 section 4.4.1.2.
func partition(i, j int64) (il, is, jl, js int64) {
	il = (i + j - 1) / j
	is = i / j
	jl = i - is*j
	js = j - jl
	return
}

// NewOTI chooses how an object of size bytes is cut into source blocks and
// sub-blocks (RFC 6330 section 4.4.1.2) for the given symbol size.
func NewOTI(size int64, symbolSize int, opts ...PartitionOption) (OTI, error) {
	c := partitionConfig{maxK: DefaultMaxBlockSymbols}
	for _, o := range opts {
		o(&c)
	}
	if size < 1 || size > MaxTransferLength {
		return OTI{}, fmt.Errorf("object size %d outside 1..%d", size, int64(MaxTransferLength))
	}
	if symbolSize < 1 || symbolSize > 65535 {
		return OTI{}, fmt.Errorf("symbol size %d outside 1..65535", symbolSize)
	}
	if c.align == 0 {
		c.align = 1
		if symbolSize%4 == 0 {
			c.align = 4
		}
	}
	if c.align < 1 || c.align > 255 || symbolSize%c.align != 0 {
		return OTI{}, fmt.Errorf("alignment %d does not divide symbol size %d", c.align, symbolSize)
	}
	if c.maxK < 1 || c.maxK > MaxBlockSymbols {
		return OTI{}, fmt.Errorf("max block symbols %d outside 1..%d", c.maxK, MaxBlockSymbols)
	}
	T, al := int64(symbolSize), int64(c.align)
	kt := (size + T - 1) / T
	z := (kt + int64(c.maxK) - 1) / int64(c.maxK)
	nmax := T / al
	// KL(n): the largest K' whose sub-block of n-way split symbols fits WS.
	kl := func(n int64) int64 {
		if c.subLimit <= 0 {
			return MaxBlockSymbols
		}
		sub := al * ((T + al*n - 1) / (al * n))
		lim := c.subLimit / sub
		best := int64(0)
		for _, r := range sysIndex {
			if int64(r.kp) <= lim {
				best = int64(r.kp)
			}
		}
		return best
	}
	if k := kl(nmax); k == 0 {
		return OTI{}, fmt.Errorf("sub-block limit %d too small for symbol size %d", c.subLimit, symbolSize)
	} else {
		z = max(z, (kt+k-1)/k)
	}
	z = max(z, (kt+MaxBlockSymbols-1)/MaxBlockSymbols)
	if z > MaxSourceBlocks {
		// Fewer, larger blocks: the SBN has only 8 bits.
		z = MaxSourceBlocks
		if (kt+z-1)/z > MaxBlockSymbols {
			return OTI{}, fmt.Errorf("object of %d bytes needs more than %d blocks of %d symbols of %d bytes", size, MaxSourceBlocks, MaxBlockSymbols, symbolSize)
		}
	}
	n := int64(1)
	for n < nmax && (kt+z-1)/z > kl(n) {
		n++
	}
	return OTI{F: uint64(size), T: uint16(symbolSize), Z: uint16(z), N: uint16(n), Al: uint8(c.align)}, nil
}

// Validate checks that the OTI describes a codable object, for example one
// received from the network.
func (o OTI) Validate() error {
	switch {
	case o.F < 1 || o.F > MaxTransferLength:
		return fmt.Errorf("transfer length %d out of range", o.F)
	case o.T == 0 || o.Al == 0 || o.T%uint16(o.Al) != 0:
		return fmt.Errorf("symbol size %d not a positive multiple of alignment %d", o.T, o.Al)
	case o.Z < 1 || o.Z > MaxSourceBlocks:
		return fmt.Errorf("source block count %d outside 1..%d", o.Z, MaxSourceBlocks)
	case o.N < 1 || o.N > o.T/uint16(o.Al):
		return fmt.Errorf("sub-block count %d outside 1..%d", o.N, o.T/uint16(o.Al))
	}
	kt := (o.F + uint64(o.T) - 1) / uint64(o.T)
	if kt < uint64(o.Z) {
		return fmt.Errorf("%d source blocks for %d symbols", o.Z, kt)
	}
	if (kt+uint64(o.Z)-1)/uint64(o.Z) > MaxBlockSymbols {
		return fmt.Errorf("blocks of more than %d symbols", MaxBlockSymbols)
	}
	return nil
}

func (o OTI) kt() int64 { return (int64(o.F) + int64(o.T) - 1) / int64(o.T) }

// Blocks returns the number of source blocks Z.
func (o OTI) Blocks() int { return int(o.Z) }

// BlockSymbols returns K, the number of source symbols of block sbn.
func (o OTI) BlockSymbols(sbn int) int {
	kl, ks, zl, _ := partition(o.kt(), int64(o.Z))
	if int64(sbn) < zl {
		return int(kl)
	}
	return int(ks)
}

// BlockOffset returns the offset in the object of block sbn's first byte.
func (o OTI) BlockOffset(sbn int) int64 {
	kl, ks, zl, _ := partition(o.kt(), int64(o.Z))
	s := int64(sbn)
	if s <= zl {
		return s * kl * int64(o.T)
	}
	return (zl*kl + (s-zl)*ks) * int64(o.T)
}

// BlockLen returns the number of object bytes in block sbn; only the last
// block may hold fewer than K*T bytes (the code pads it with zeros).
func (o OTI) BlockLen(sbn int) int64 {
	off := o.BlockOffset(sbn)
	return min(int64(o.BlockSymbols(sbn))*int64(o.T), int64(o.F)-off)
}

// subSymbols returns the sizes and offsets of the sub-symbols of a symbol.
func (o OTI) subSymbols() (size, off []int) {
	tl, ts, nl, _ := partition(int64(o.T)/int64(o.Al), int64(o.N))
	at := 0
	for j := int64(0); j < int64(o.N); j++ {
		sz := int(ts) * int(o.Al)
		if j < nl {
			sz = int(tl) * int(o.Al)
		}
		size = append(size, sz)
		off = append(off, at)
		at += sz
	}
	return size, off
}
