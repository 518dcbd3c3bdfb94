package protocol

import (
	"encoding/binary"
	"fmt"
)

// Frame types. Every frame on a symbols stream starts with one of these bytes.
const (
	// FrameSymbol is followed by a 4-byte FEC payload ID and exactly T bytes.
	FrameSymbol byte = 0x00
)

// SymbolHeaderLen is the size of a symbol frame's header: the type byte and
// the RFC 6330 FEC payload ID (SBN 8 bits, ESI 24 bits, big-endian).
const SymbolHeaderLen = 5

// MaxESI is the largest encoding symbol ID that fits the 24-bit field.
const MaxESI = 1<<24 - 1

// PutSymbolHeader writes a symbol frame header for (sbn, esi) into dst,
// which must be at least SymbolHeaderLen bytes long.
func PutSymbolHeader(dst []byte, sbn uint8, esi uint32) {
	_ = dst[SymbolHeaderLen-1]
	dst[0] = FrameSymbol
	binary.BigEndian.PutUint32(dst[1:5], uint32(sbn)<<24|esi&MaxESI)
}

// ParseSymbolHeader reads a symbol frame header.
func ParseSymbolHeader(src []byte) (sbn uint8, esi uint32, err error) {
	if len(src) < SymbolHeaderLen {
		return 0, 0, fmt.Errorf("symbol header: %d bytes, need %d", len(src), SymbolHeaderLen)
	}
	if src[0] != FrameSymbol {
		return 0, 0, fmt.Errorf("symbol header: frame type %#x is not a symbol", src[0])
	}
	v := binary.BigEndian.Uint32(src[1:5])
	return uint8(v >> 24), v & MaxESI, nil
}
