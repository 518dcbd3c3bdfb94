package protocol

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
	"github.com/multiformats/go-multihash"
)

// ErrMalformed is wrapped by every error that reports input breaking this
// protocol, as opposed to an I/O error. A stream that yields it must be
// closed; nothing else needs to be.
var ErrMalformed = errors.New("malformed")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrMalformed)
}

// parseUvarint reads an unsigned LEB128 varint of at most 10 bytes in its
// minimal form, as the multiformats unsigned-varint spec requires.
func parseUvarint(b []byte) (uint64, int, error) {
	var v uint64
	for i := 0; i < binary.MaxVarintLen64; i++ {
		if i == len(b) {
			return 0, 0, malformed("truncated varint")
		}
		c := b[i]
		if i == binary.MaxVarintLen64-1 && c > 1 {
			return 0, 0, malformed("varint overflows 64 bits")
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			if c == 0 && i > 0 {
				return 0, 0, malformed("varint not minimally encoded")
			}
			return v, i + 1, nil
		}
	}
	return 0, 0, malformed("varint overflows 64 bits")
}

// readUvarint reads a minimal varint from r one byte at a time, so that it
// never consumes bytes beyond the varint. A clean end of input before the
// first byte yields io.EOF.
func readUvarint(r io.Reader) (uint64, error) {
	var buf [binary.MaxVarintLen64]byte
	for i := range buf {
		if err := readFullByte(r, &buf[i]); err != nil {
			if errors.Is(err, io.EOF) && i > 0 {
				return 0, io.ErrUnexpectedEOF
			}
			return 0, err
		}
		if buf[i] < 0x80 {
			v, _, err := parseUvarint(buf[:i+1])
			return v, err
		}
	}
	return 0, malformed("varint overflows 64 bits")
}

// readFullByte reads exactly one byte.
func readFullByte(r io.Reader, b *byte) error {
	if br, ok := r.(io.ByteReader); ok {
		c, err := br.ReadByte()
		if err != nil {
			return err
		}
		*b = c
		return nil
	}
	var one [1]byte
	if _, err := io.ReadFull(r, one[:]); err != nil {
		return err
	}
	*b = one[0]
	return nil
}

// readMessage reads a uvarint length of at most limit bytes and then the
// message. It reads nothing past the message.
func readMessage(r io.Reader, limit int) ([]byte, error) {
	n, err := readUvarint(r)
	if err != nil {
		return nil, fmt.Errorf("message length: %w", err)
	}
	if n > uint64(limit) {
		return nil, malformed("message of %d bytes exceeds limit %d", n, limit)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("message body: %w", err)
	}
	return b, nil
}

// writeMessage writes body with its uvarint length in a single Write.
func writeMessage(w io.Writer, body []byte) error {
	buf := make([]byte, 0, binary.MaxVarintLen64+len(body))
	buf = binary.AppendUvarint(buf, uint64(len(body)))
	buf = append(buf, body...)
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("write message: %w", err)
	}
	return nil
}

// decoder reads the fields of one message from a byte slice. The first
// error sticks; later reads return zero values.
type decoder struct {
	b   []byte
	err error
	msg string
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = malformed(d.msg+": "+format, args...)
	}
}

func (d *decoder) uvarint(field string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n, err := parseUvarint(d.b)
	if err != nil {
		d.fail("%s: %v", field, err)
		return 0
	}
	d.b = d.b[n:]
	return v
}

// bounded reads a uvarint and checks lo <= v <= hi.
func (d *decoder) bounded(field string, lo, hi uint64) uint64 {
	v := d.uvarint(field)
	if d.err == nil && (v < lo || v > hi) {
		d.fail("%s %d out of range [%d, %d]", field, v, lo, hi)
		return 0
	}
	return v
}

func (d *decoder) byte(field string) byte {
	b := d.fixed(field, 1)
	if b == nil {
		return 0
	}
	return b[0]
}

func (d *decoder) fixed(field string, n int) []byte {
	if d.err != nil {
		return nil
	}
	if len(d.b) < n {
		d.fail("%s: truncated", field)
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

// bytes reads a length-prefixed byte string of at most limit bytes. The
// result aliases the input.
func (d *decoder) bytes(field string, limit int) []byte {
	n := d.bounded(field+" length", 0, uint64(limit))
	if d.err != nil {
		return nil
	}
	return d.fixed(field, int(n))
}

func (d *decoder) text(field string, limit int) string {
	b := d.bytes(field, limit)
	if d.err == nil && !utf8.Valid(b) {
		d.fail("%s is not valid UTF-8", field)
		return ""
	}
	return string(b)
}

func (d *decoder) peerID(field string) peer.ID {
	b := d.bytes(field, MaxPeerIDLen)
	if d.err != nil {
		return ""
	}
	id, err := parsePeerID(b)
	if err != nil {
		d.fail("%s: %v", field, err)
		return ""
	}
	return id
}

// optionalPeerID reads a peer ID that may be empty (length 0).
func (d *decoder) optionalPeerID(field string) peer.ID {
	if d.err == nil && len(d.b) > 0 && d.b[0] == 0 {
		d.b = d.b[1:]
		return ""
	}
	return d.peerID(field)
}

func (d *decoder) path(field string) []peer.ID {
	n := d.bounded(field+" length", 0, MaxPathLen)
	if d.err != nil || n == 0 {
		return nil
	}
	p := make([]peer.ID, n)
	for i := range p {
		p[i] = d.peerID(field)
	}
	if d.err != nil {
		return nil
	}
	return p
}

func (d *decoder) addrInfo(field string) peer.AddrInfo {
	var ai peer.AddrInfo
	ai.ID = d.peerID(field + " peer")
	n := d.bounded(field+" address count", 0, MaxAddrs)
	if d.err != nil {
		return peer.AddrInfo{}
	}
	if n > 0 {
		ai.Addrs = make([]multiaddr.Multiaddr, n)
	}
	for i := range ai.Addrs {
		b := d.bytes(field+" address", MaxAddrLen)
		if d.err != nil {
			return peer.AddrInfo{}
		}
		a, err := parseAddr(b)
		if err != nil {
			d.fail("%s address: %v", field, err)
			return peer.AddrInfo{}
		}
		ai.Addrs[i] = a
	}
	return ai
}

func (d *decoder) addrInfos(field string) []peer.AddrInfo {
	n := d.bounded(field+" count", 0, MaxPeers)
	if d.err != nil || n == 0 {
		return nil
	}
	out := make([]peer.AddrInfo, n)
	for i := range out {
		out[i] = d.addrInfo(field)
	}
	if d.err != nil {
		return nil
	}
	return out
}

func (d *decoder) cid(field string) cid.Cid {
	b := d.bytes(field, MaxCIDLen)
	if d.err != nil {
		return cid.Undef
	}
	c, err := parseCID(b)
	if err != nil {
		d.fail("%s: %v", field, err)
		return cid.Undef
	}
	return c
}

func (d *decoder) blockSet(field string) BlockSet {
	var s BlockSet
	copy(s[:], d.fixed(field, len(s)))
	return s
}

// done reports the first error, or an error if input is left over.
func (d *decoder) done() error {
	if d.err == nil && len(d.b) > 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	return d.err
}

func parsePeerID(b []byte) (peer.ID, error) {
	if len(b) == 0 {
		return "", errors.New("empty peer ID")
	}
	id, err := peer.IDFromBytes(b)
	if err != nil {
		return "", fmt.Errorf("invalid peer ID: %w", err)
	}
	return id, nil
}

func parseAddr(b []byte) (multiaddr.Multiaddr, error) {
	if len(b) == 0 {
		return nil, errors.New("empty multiaddr")
	}
	a, err := multiaddr.NewMultiaddrBytes(b)
	if err != nil {
		return nil, fmt.Errorf("invalid multiaddr: %w", err)
	}
	if len(a) == 0 || !bytes.Equal(a.Bytes(), b) {
		return nil, errors.New("multiaddr not in canonical form")
	}
	return a, nil
}

func parseCID(b []byte) (cid.Cid, error) {
	c, err := cid.Cast(b)
	if err != nil {
		return cid.Undef, fmt.Errorf("invalid CID: %w", err)
	}
	if !bytes.Equal(c.Bytes(), b) {
		return cid.Undef, errors.New("CID not in canonical form")
	}
	if err := CheckCID(c); err != nil {
		return cid.Undef, err
	}
	return c, nil
}

// CheckCID reports whether c has the form of a romap2p content ID: CIDv1,
// codec dag-cbor (0x71), multihash sha2-256 with a 32-byte digest.
func CheckCID(c cid.Cid) error {
	if !c.Defined() {
		return errors.New("undefined CID")
	}
	p := c.Prefix()
	switch {
	case p.Version != 1:
		return fmt.Errorf("CID %s: version %d, want 1", c, p.Version)
	case p.Codec != cid.DagCBOR:
		return fmt.Errorf("CID %s: codec %#x, want dag-cbor (0x71)", c, p.Codec)
	case p.MhType != multihash.SHA2_256:
		return fmt.Errorf("CID %s: hash function %#x, want sha2-256 (0x12)", c, p.MhType)
	case p.MhLength != 32:
		return fmt.Errorf("CID %s: digest of %d bytes, want 32", c, p.MhLength)
	}
	return nil
}

// Encoding functions. Each checks the limit the decoder will apply, so an
// encoder never produces what a decoder rejects.

func appendBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

func appendText(dst []byte, field, s string, limit int) ([]byte, error) {
	if len(s) > limit {
		return dst, fmt.Errorf("%s: %d bytes exceeds limit %d", field, len(s), limit)
	}
	if !utf8.ValidString(s) {
		return dst, fmt.Errorf("%s is not valid UTF-8", field)
	}
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...), nil
}

func appendPeerID(dst []byte, field string, id peer.ID) ([]byte, error) {
	if len(id) > MaxPeerIDLen {
		return dst, fmt.Errorf("%s: peer ID of %d bytes exceeds limit %d", field, len(id), MaxPeerIDLen)
	}
	if _, err := parsePeerID([]byte(id)); err != nil {
		return dst, fmt.Errorf("%s: %w", field, err)
	}
	return appendBytes(dst, []byte(id)), nil
}

func appendOptionalPeerID(dst []byte, field string, id peer.ID) ([]byte, error) {
	if id == "" {
		return append(dst, 0), nil
	}
	return appendPeerID(dst, field, id)
}

func appendPath(dst []byte, field string, path []peer.ID) ([]byte, error) {
	if len(path) > MaxPathLen {
		return dst, fmt.Errorf("%s: %d peers exceeds limit %d", field, len(path), MaxPathLen)
	}
	dst = binary.AppendUvarint(dst, uint64(len(path)))
	for _, id := range path {
		var err error
		if dst, err = appendPeerID(dst, field, id); err != nil {
			return dst, err
		}
	}
	return dst, nil
}

func appendAddrInfos(dst []byte, field string, ais []peer.AddrInfo) ([]byte, error) {
	if len(ais) > MaxPeers {
		return dst, fmt.Errorf("%s: %d peers exceeds limit %d", field, len(ais), MaxPeers)
	}
	dst = binary.AppendUvarint(dst, uint64(len(ais)))
	for _, ai := range ais {
		var err error
		if dst, err = appendPeerID(dst, field, ai.ID); err != nil {
			return dst, err
		}
		if len(ai.Addrs) > MaxAddrs {
			return dst, fmt.Errorf("%s: peer %s has %d addresses, limit %d", field, ai.ID, len(ai.Addrs), MaxAddrs)
		}
		dst = binary.AppendUvarint(dst, uint64(len(ai.Addrs)))
		for _, a := range ai.Addrs {
			if a == nil || len(a.Bytes()) == 0 {
				return dst, fmt.Errorf("%s: peer %s has an empty address", field, ai.ID)
			}
			b := a.Bytes()
			if len(b) > MaxAddrLen {
				return dst, fmt.Errorf("%s: address of %d bytes exceeds limit %d", field, len(b), MaxAddrLen)
			}
			dst = appendBytes(dst, b)
		}
	}
	return dst, nil
}

func appendCID(dst []byte, c cid.Cid) ([]byte, error) {
	if err := CheckCID(c); err != nil {
		return dst, err
	}
	return appendBytes(dst, c.Bytes()), nil
}
