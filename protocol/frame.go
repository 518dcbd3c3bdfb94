package protocol

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Frame types. Every frame on a symbols stream starts with one of these bytes.
const (
	// FrameSymbol is followed by a 4-byte FEC payload ID and exactly T bytes.
	FrameSymbol byte = 0x00
	// FramePath (parent to child) carries the parent's new ancestor path.
	FramePath byte = 0x01
	// FrameWidth (parent to child) carries the parent's new width.
	FrameWidth byte = 0x02
	// FrameGoodbye (either way) announces that the sender closes the stream.
	FrameGoodbye byte = 0x03
	// FrameFinished (child to parent) carries the blocks the child has
	// decoded.
	FrameFinished byte = 0x04

	// FrameSkippableMin starts the range of control frame types a reader
	// that does not know them skips (0x80..0xff). Unknown types below it
	// are errors.
	FrameSkippableMin byte = 0x80

	// FrameCredit (child to parent, an extension type) bounds how many
	// symbols of some blocks the parent sends on this stream. A peer that
	// does not know it skips it and sends as before.
	FrameCredit byte = 0x80
	// FrameHeld (child to parent, an extension type) lists, for one block,
	// the source symbols of the subscription's stripe that the child
	// already holds, so that the parent neither sends them nor counts them
	// as missed. A peer that does not know it skips it.
	FrameHeld byte = 0x81
	// FrameRedirect (parent to child, an extension type) names peers the
	// child may attach to instead of the sender; a parent that leaves sends
	// it right before its goodbye, so that its children reattach at once.
	// A peer that does not know it skips it.
	FrameRedirect byte = 0x82
)

// AppendRedirectFrame appends a redirect frame naming up to MaxPeers peers.
func AppendRedirectFrame(dst []byte, peers []peer.AddrInfo) ([]byte, error) {
	payload, err := appendAddrInfos(nil, "redirect frame", peers)
	if err != nil {
		return dst, err
	}
	return append(appendControlHeader(dst, FrameRedirect, len(payload)), payload...), nil
}

// Redirect decodes a redirect frame.
func (f *Frame) Redirect() ([]peer.AddrInfo, error) {
	if f.Type != FrameRedirect {
		return nil, fmt.Errorf("frame type %#x is not a redirect frame", f.Type)
	}
	d := decoder{b: f.Payload, msg: "redirect frame"}
	ais := d.addrInfos("peers")
	if err := d.done(); err != nil {
		return nil, err
	}
	return ais, nil
}

// Held is the content of a held frame: bit j of Bits (least significant
// bit of byte 0 first) says whether the child holds source symbol
// stripe + j*stripes of block SBN, for j < N.
type Held struct {
	SBN  uint8
	N    int
	Bits []byte
}

// AppendHeldFrame appends a held frame. Bits must hold ceil(N/8) bytes, and
// N is at most MaxSourceSymbols.
func AppendHeldFrame(dst []byte, h Held) ([]byte, error) {
	if h.N < 0 || h.N > MaxSourceSymbols || len(h.Bits) != (h.N+7)/8 {
		return dst, fmt.Errorf("held frame: %d bits in %d bytes (at most %d bits)", h.N, len(h.Bits), MaxSourceSymbols)
	}
	dst = appendControlHeader(dst, FrameHeld, 1+uvarintLen(uint64(h.N))+len(h.Bits))
	dst = append(dst, h.SBN)
	dst = binary.AppendUvarint(dst, uint64(h.N))
	return append(dst, h.Bits...), nil
}

// Credit is one entry of a credit frame: of block SBN, the parent sends at
// most Base+Allow symbol frames on this stream, counted from the stream's
// first symbol. Base is the number of that block's symbols the child has
// received on the stream when it wrote the frame, so symbols still in
// flight count against Allow.
type Credit struct {
	SBN   uint8
	Base  uint32
	Allow uint32
}

// MaxCreditAllow bounds a credit entry's Allow: no block needs more symbols
// than the ESI space holds.
const MaxCreditAllow = MaxESI + 1

// AppendCreditFrame appends a credit frame with the given entries (at most
// 256, one per block; a later entry for the same block wins).
func AppendCreditFrame(dst []byte, credits []Credit) ([]byte, error) {
	if len(credits) > MaxSourceBlocks {
		return dst, fmt.Errorf("credit frame: %d entries exceed %d", len(credits), MaxSourceBlocks)
	}
	n := uvarintLen(uint64(len(credits)))
	for _, c := range credits {
		if c.Allow > MaxCreditAllow {
			return dst, fmt.Errorf("credit frame: allow %d exceeds %d", c.Allow, MaxCreditAllow)
		}
		n += 1 + uvarintLen(uint64(c.Base)) + uvarintLen(uint64(c.Allow))
	}
	dst = appendControlHeader(dst, FrameCredit, n)
	dst = binary.AppendUvarint(dst, uint64(len(credits)))
	for _, c := range credits {
		dst = append(dst, c.SBN)
		dst = binary.AppendUvarint(dst, uint64(c.Base))
		dst = binary.AppendUvarint(dst, uint64(c.Allow))
	}
	return dst, nil
}

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

// AppendSymbolFrame appends a symbol frame for (sbn, esi) carrying data,
// which must be exactly T bytes long.
func AppendSymbolFrame(dst []byte, sbn uint8, esi uint32, data []byte) []byte {
	var h [SymbolHeaderLen]byte
	PutSymbolHeader(h[:], sbn, esi)
	return append(append(dst, h[:]...), data...)
}

// appendControl appends a control frame header for a payload of n bytes.
func appendControlHeader(dst []byte, typ byte, n int) []byte {
	return binary.AppendUvarint(append(dst, typ), uint64(n))
}

// AppendPathFrame appends a path frame: the sender's new ancestor path, from
// the source down to and including the sender.
func AppendPathFrame(dst []byte, path []peer.ID) ([]byte, error) {
	payload, err := appendPath(nil, "path frame", path)
	if err != nil {
		return dst, err
	}
	return append(appendControlHeader(dst, FramePath, len(payload)), payload...), nil
}

// AppendWidthFrame appends a width frame: the sender's new width in bytes/s
// (WidthUnbounded for a peer that generates symbols).
func AppendWidthFrame(dst []byte, width uint64) []byte {
	var p [binary.MaxVarintLen64]byte
	payload := binary.AppendUvarint(p[:0], width)
	return append(appendControlHeader(dst, FrameWidth, len(payload)), payload...)
}

// GoodbyeCode says why a peer closes a symbols stream.
type GoodbyeCode uint8

// Goodbye codes. Receivers treat unknown codes like GoodbyeNormal.
const (
	// GoodbyeNormal is an orderly close without a more specific reason.
	GoodbyeNormal GoodbyeCode = 0
	// GoodbyeShutdown: the sender is leaving the swarm.
	GoodbyeShutdown GoodbyeCode = 1
	// GoodbyeComplete: the child has the whole file.
	GoodbyeComplete GoodbyeCode = 2
	// GoodbyeSwitch: the child moves to another parent.
	GoodbyeSwitch GoodbyeCode = 3
	// GoodbyeLoop: the child found itself on its parent's path.
	GoodbyeLoop GoodbyeCode = 4
	// GoodbyeEvicted: the parent drops the child (overload, or a better
	// child needs the slot).
	GoodbyeEvicted GoodbyeCode = 5
	// GoodbyeBadData: the child rejects the parent for symbols that decoded
	// to a block failing its hash.
	GoodbyeBadData GoodbyeCode = 6
	// GoodbyeProtocolError: the sender received a malformed frame.
	GoodbyeProtocolError GoodbyeCode = 7
	// GoodbyeTooSlow: the parent drops the child because the child's link
	// is too slow to carry the stripe for the peers below it; the child
	// should let those peers go to a faster branch.
	GoodbyeTooSlow GoodbyeCode = 8
)

// Goodbye is the content of a goodbye frame.
type Goodbye struct {
	Code GoodbyeCode
	// Text is a human-readable reason, at most MaxReasonLen bytes of UTF-8.
	Text string
}

// AppendGoodbyeFrame appends a goodbye frame. The text is cut to
// MaxReasonLen bytes and invalid UTF-8 is replaced.
func AppendGoodbyeFrame(dst []byte, code GoodbyeCode, text string) []byte {
	text = cleanReason(text)
	dst = appendControlHeader(dst, FrameGoodbye, 1+len(text))
	return append(append(dst, byte(code)), text...)
}

// AppendFinishedFrame appends a finished frame: the blocks the sender has
// decoded.
func AppendFinishedFrame(dst []byte, finished BlockSet) []byte {
	dst = appendControlHeader(dst, FrameFinished, len(finished))
	return append(dst, finished[:]...)
}

// Frame is one frame read by a FrameReader.
type Frame struct {
	// Type is the frame type (FrameSymbol, FramePath, ...).
	Type byte
	// SBN and ESI are the FEC payload ID of a symbol frame.
	SBN uint8
	ESI uint32
	// Payload holds a symbol frame's T bytes or a control frame's payload.
	// It is valid until the next call to the FrameReader.
	Payload []byte
}

// Path decodes a path frame.
func (f *Frame) Path() ([]peer.ID, error) {
	if f.Type != FramePath {
		return nil, fmt.Errorf("frame type %#x is not a path frame", f.Type)
	}
	d := decoder{b: f.Payload, msg: "path frame"}
	p := d.path("path")
	if err := d.done(); err != nil {
		return nil, err
	}
	return p, nil
}

// Width decodes a width frame.
func (f *Frame) Width() (uint64, error) {
	if f.Type != FrameWidth {
		return 0, fmt.Errorf("frame type %#x is not a width frame", f.Type)
	}
	d := decoder{b: f.Payload, msg: "width frame"}
	w := d.uvarint("width")
	if err := d.done(); err != nil {
		return 0, err
	}
	return w, nil
}

// Goodbye decodes a goodbye frame.
func (f *Frame) Goodbye() (Goodbye, error) {
	if f.Type != FrameGoodbye {
		return Goodbye{}, fmt.Errorf("frame type %#x is not a goodbye frame", f.Type)
	}
	if len(f.Payload) < 1 || len(f.Payload) > 1+MaxReasonLen {
		return Goodbye{}, malformed("goodbye frame: %d bytes out of range [1, %d]", len(f.Payload), 1+MaxReasonLen)
	}
	return Goodbye{Code: GoodbyeCode(f.Payload[0]), Text: cleanReason(string(f.Payload[1:]))}, nil
}

// Finished decodes a finished frame.
func (f *Frame) Finished() (BlockSet, error) {
	var s BlockSet
	if f.Type != FrameFinished {
		return s, fmt.Errorf("frame type %#x is not a finished frame", f.Type)
	}
	if len(f.Payload) != len(s) {
		return s, malformed("finished frame: %d bytes, want %d", len(f.Payload), len(s))
	}
	copy(s[:], f.Payload)
	return s, nil
}

// Held decodes a held frame. Bits aliases the frame's payload.
func (f *Frame) Held() (Held, error) {
	if f.Type != FrameHeld {
		return Held{}, fmt.Errorf("frame type %#x is not a held frame", f.Type)
	}
	d := decoder{b: f.Payload, msg: "held frame"}
	h := Held{SBN: d.byte("sbn")}
	h.N = int(d.bounded("bits", 0, MaxSourceSymbols))
	h.Bits = d.fixed("bitmap", (h.N+7)/8)
	if err := d.done(); err != nil {
		return Held{}, err
	}
	return h, nil
}

// Has reports whether bit j is set.
func (h *Held) Has(j int) bool { return j < h.N && h.Bits[j>>3]&(1<<(j&7)) != 0 }

// Count returns how many of the N bits are set.
func (h *Held) Count() int {
	n := 0
	for i, b := range h.Bits {
		if rest := h.N - 8*i; rest < 8 {
			b &= byte(1)<<max(rest, 0) - 1
		}
		n += bits.OnesCount8(b)
	}
	return n
}

// Credits decodes a credit frame, appending its entries to dst.
func (f *Frame) Credits(dst []Credit) ([]Credit, error) {
	if f.Type != FrameCredit {
		return dst, fmt.Errorf("frame type %#x is not a credit frame", f.Type)
	}
	start := len(dst)
	d := decoder{b: f.Payload, msg: "credit frame"}
	n := d.bounded("count", 0, MaxSourceBlocks)
	for i := uint64(0); i < n && d.err == nil; i++ {
		c := Credit{SBN: d.byte("sbn")}
		c.Base = uint32(d.bounded("base", 0, math.MaxUint32))
		c.Allow = uint32(d.bounded("allow", 0, MaxCreditAllow))
		dst = append(dst, c)
	}
	if err := d.done(); err != nil {
		return dst[:start], err
	}
	return dst, nil
}

// FrameReader reads the frames of a symbols stream. It buffers its input, so
// once it is made, read the stream only through it. It allocates nothing per
// frame after the first control frame.
type FrameReader struct {
	r          *bufio.Reader
	symbolSize int
	sym        []byte
	ctl        []byte
	hdr        [4]byte
	skipped    int // bytes of skipped extension frames
}

// readerBufferSize is large enough to batch many symbols per read from the
// underlying stream.
const readerBufferSize = 64 << 10

// NewFrameReader returns a reader for a stream whose symbols are symbolSize
// (T) bytes long. With symbolSize 0 (or less), a symbol frame is an error:
// use that on the parent's side, where only control frames arrive. If r is a
// *bufio.Reader it is used as is; otherwise it is wrapped in one of 64 KiB.
func NewFrameReader(r io.Reader, symbolSize int) *FrameReader {
	symbolSize = max(symbolSize, 0)
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, readerBufferSize)
	}
	fr := &FrameReader{r: br, symbolSize: symbolSize}
	if symbolSize > 0 {
		fr.sym = make([]byte, symbolSize)
	}
	return fr
}

// Next reads the next frame. A symbol's bytes are returned in place in the
// reader's buffer when they fit (or in an internal buffer), valid until the
// next call. At a clean end of stream between frames it returns io.EOF; an
// end inside a frame yields io.ErrUnexpectedEOF. Errors that wrap
// ErrMalformed mean the peer broke the protocol.
func (fr *FrameReader) Next() (Frame, error) {
	return fr.next(nil)
}

// NextInto is Next, but a symbol's bytes are read into buf, which must hold
// at least T bytes; Payload then aliases buf.
func (fr *FrameReader) NextInto(buf []byte) (Frame, error) {
	if buf == nil {
		buf = fr.sym
	}
	return fr.next(buf)
}

// next reads the next frame; a symbol goes into buf, or is returned in place
// when buf is nil.
func (fr *FrameReader) next(buf []byte) (Frame, error) {
	for {
		typ, err := fr.r.ReadByte()
		if err != nil {
			return Frame{}, err // io.EOF at a frame boundary is a clean end
		}
		switch {
		case typ == FrameSymbol:
			return fr.readSymbol(buf)
		case typ >= FramePath && typ <= FrameFinished, typ == FrameCredit, typ == FrameHeld, typ == FrameRedirect:
			payload, err := fr.readControl(typ)
			if err != nil {
				return Frame{}, err
			}
			return Frame{Type: typ, Payload: payload}, nil
		case typ >= FrameSkippableMin:
			if err := fr.skipControl(typ); err != nil {
				return Frame{}, err
			}
		default:
			return Frame{}, malformed("frame type %#x unknown", typ)
		}
	}
}

func (fr *FrameReader) readSymbol(buf []byte) (Frame, error) {
	if fr.symbolSize == 0 {
		return Frame{}, malformed("symbol frame where none may come")
	}
	if buf == nil {
		// In place: the frame is read into the buffered reader and handed
		// out from there, which saves copying every symbol once more.
		n := len(fr.hdr) + fr.symbolSize
		if b, err := fr.r.Peek(n); err == nil {
			v := binary.BigEndian.Uint32(b)
			_, _ = fr.r.Discard(n)
			return Frame{Type: FrameSymbol, SBN: uint8(v >> 24), ESI: v & MaxESI, Payload: b[len(fr.hdr):n:n]}, nil
		} else if !errors.Is(err, bufio.ErrBufferFull) {
			return Frame{}, fmt.Errorf("symbol frame: %w", noEOF(err))
		}
		buf = fr.sym
	}
	if len(buf) < fr.symbolSize {
		return Frame{}, fmt.Errorf("symbol buffer of %d bytes, need %d", len(buf), fr.symbolSize)
	}
	if _, err := io.ReadFull(fr.r, fr.hdr[:]); err != nil {
		return Frame{}, fmt.Errorf("symbol frame header: %w", noEOF(err))
	}
	v := binary.BigEndian.Uint32(fr.hdr[:])
	data := buf[:fr.symbolSize]
	if _, err := io.ReadFull(fr.r, data); err != nil {
		return Frame{}, fmt.Errorf("symbol frame: %w", noEOF(err))
	}
	return Frame{Type: FrameSymbol, SBN: uint8(v >> 24), ESI: v & MaxESI, Payload: data}, nil
}

func (fr *FrameReader) controlLen(typ byte) (int, error) {
	n, err := readUvarint(fr.r)
	if err != nil {
		return 0, fmt.Errorf("frame %#x length: %w", typ, noEOF(err))
	}
	if n > MaxControlFrame {
		return 0, malformed("frame %#x of %d bytes exceeds limit %d", typ, n, MaxControlFrame)
	}
	return int(n), nil
}

func (fr *FrameReader) readControl(typ byte) ([]byte, error) {
	n, err := fr.controlLen(typ)
	if err != nil {
		return nil, err
	}
	if cap(fr.ctl) < n {
		fr.ctl = make([]byte, n, max(n, 256))
	}
	p := fr.ctl[:n]
	if _, err := io.ReadFull(fr.r, p); err != nil {
		return nil, fmt.Errorf("frame %#x: %w", typ, noEOF(err))
	}
	return p, nil
}

func (fr *FrameReader) skipControl(typ byte) error {
	n, err := fr.controlLen(typ)
	if err != nil {
		return err
	}
	if _, err := fr.r.Discard(n); err != nil {
		return fmt.Errorf("frame %#x: %w", typ, noEOF(err))
	}
	fr.skipped += 1 + uvarintLen(uint64(n)) + n
	return nil
}

// noEOF turns io.EOF inside a frame into io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

func uvarintLen(v uint64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], v)
}
