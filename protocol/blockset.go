package protocol

import "math/bits"

// BlockSet is a set of source block numbers (SBNs, 0..255) as a 256-bit
// bitmap. On the wire it is these 32 bytes: block b is bit b%8 (least
// significant first) of byte b/8. The zero value is the empty set.
type BlockSet [MaxSourceBlocks / 8]byte

// Add puts block sbn in the set.
func (s *BlockSet) Add(sbn uint8) { s[sbn>>3] |= 1 << (sbn & 7) }

// Remove takes block sbn out of the set.
func (s *BlockSet) Remove(sbn uint8) { s[sbn>>3] &^= 1 << (sbn & 7) }

// Has reports whether block sbn is in the set.
func (s *BlockSet) Has(sbn uint8) bool { return s[sbn>>3]&(1<<(sbn&7)) != 0 }

// Count returns the number of blocks in the set.
func (s *BlockSet) Count() int {
	n := 0
	for _, b := range s {
		n += bits.OnesCount8(b)
	}
	return n
}

// HasAll reports whether blocks 0..z-1 are all in the set.
func (s *BlockSet) HasAll(z int) bool {
	for i := 0; i < z && i < MaxSourceBlocks; i++ {
		if !s.Has(uint8(i)) {
			return false
		}
	}
	return true
}
