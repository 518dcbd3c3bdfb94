package protocol

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Subscribe is the first message on a symbols stream, sent by the child.
type Subscribe struct {
	// CID names the content.
	CID cid.Cid
	// Stripes is the stripe count k (1..MaxStripes) and Stripe the stripe
	// index i (0..k-1): the child wants the symbols whose ESI satisfies
	// esi mod k == i, in every block. k = 1 is the whole stream.
	Stripes int
	Stripe  int
	// Probe marks a short measurement subscription. The parent sends
	// symbols as usual but need not count the child among its children.
	Probe bool
	// Finished holds the blocks the child has already decoded; the parent
	// sends no symbols of those blocks.
	Finished BlockSet
}

const subscribeFlagProbe = 1 << 0

func (s *Subscribe) validate() error {
	if s.Stripes < 1 || s.Stripes > MaxStripes {
		return fmt.Errorf("subscribe: stripe count %d out of range [1, %d]", s.Stripes, MaxStripes)
	}
	if s.Stripe < 0 || s.Stripe >= s.Stripes {
		return fmt.Errorf("subscribe: stripe %d out of range [0, %d)", s.Stripe, s.Stripes)
	}
	return nil
}

// Append appends the encoded message body (without its length prefix) to dst.
func (s *Subscribe) Append(dst []byte) ([]byte, error) {
	if err := s.validate(); err != nil {
		return dst, err
	}
	dst, err := appendCID(dst, s.CID)
	if err != nil {
		return dst, fmt.Errorf("subscribe: %w", err)
	}
	dst = binary.AppendUvarint(dst, uint64(s.Stripes))
	dst = binary.AppendUvarint(dst, uint64(s.Stripe))
	var flags byte
	if s.Probe {
		flags |= subscribeFlagProbe
	}
	dst = append(dst, flags)
	return append(dst, s.Finished[:]...), nil
}

// DecodeSubscribe decodes a Subscribe message body.
func DecodeSubscribe(b []byte) (*Subscribe, error) {
	d := decoder{b: b, msg: "subscribe"}
	s := &Subscribe{}
	s.CID = d.cid("cid")
	s.Stripes = int(d.bounded("stripe count", 1, MaxStripes))
	s.Stripe = int(d.bounded("stripe", 0, uint64(max(s.Stripes, 1)-1)))
	flags := d.byte("flags")
	if flags&^subscribeFlagProbe != 0 {
		d.fail("unknown flags %#x", flags)
	}
	s.Probe = flags&subscribeFlagProbe != 0
	s.Finished = d.blockSet("finished")
	if err := d.done(); err != nil {
		return nil, err
	}
	return s, nil
}

// WriteSubscribe writes s as a length-prefixed message.
func WriteSubscribe(w io.Writer, s *Subscribe) error {
	b, err := s.Append(nil)
	if err != nil {
		return err
	}
	if err := writeMessage(w, b); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	return nil
}

// ReadSubscribe reads a length-prefixed Subscribe. It reads nothing past the
// message.
func ReadSubscribe(r io.Reader) (*Subscribe, error) {
	b, err := readMessage(r, MaxMessageSize)
	if err != nil {
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	return DecodeSubscribe(b)
}

// SubscribeReply is the parent's answer to a Subscribe. When Accepted, frames
// follow on the stream; otherwise the parent closes it.
type SubscribeReply struct {
	// Accepted tells whether symbols follow.
	Accepted bool
	// Reason says why a subscription was refused (at most MaxReasonLen bytes).
	Reason string
	// Redirect suggests other parents (at most MaxPeers, each with at most
	// MaxAddrs addresses), typically a full parent's children.
	Redirect []peer.AddrInfo
	// Path is the parent's ancestor path in this stripe, from the source down
	// to and including the parent itself (at most MaxPathLen peers).
	Path []peer.ID
	// Width is the rate in bytes/s at which the parent receives new symbols of
	// this stripe; WidthUnbounded for a peer that generates symbols.
	Width uint64
	// Depth is the parent's depth in the stripe's tree (the source is 0), at
	// most MaxPathLen.
	Depth int
}

const replyFlagAccepted = 1 << 0

// Append appends the encoded message body (without its length prefix) to dst.
func (s *SubscribeReply) Append(dst []byte) ([]byte, error) {
	if s.Depth < 0 || s.Depth > MaxPathLen {
		return dst, fmt.Errorf("subscribe reply: depth %d out of range [0, %d]", s.Depth, MaxPathLen)
	}
	var flags byte
	if s.Accepted {
		flags |= replyFlagAccepted
	}
	dst = append(dst, flags)
	dst, err := appendText(dst, "subscribe reply: reason", s.Reason, MaxReasonLen)
	if err != nil {
		return dst, err
	}
	if dst, err = appendAddrInfos(dst, "subscribe reply: redirect", s.Redirect); err != nil {
		return dst, err
	}
	if dst, err = appendPath(dst, "subscribe reply: path", s.Path); err != nil {
		return dst, err
	}
	dst = binary.AppendUvarint(dst, s.Width)
	return binary.AppendUvarint(dst, uint64(s.Depth)), nil
}

// DecodeSubscribeReply decodes a SubscribeReply message body.
func DecodeSubscribeReply(b []byte) (*SubscribeReply, error) {
	d := decoder{b: b, msg: "subscribe reply"}
	s := &SubscribeReply{}
	flags := d.byte("flags")
	if flags&^replyFlagAccepted != 0 {
		d.fail("unknown flags %#x", flags)
	}
	s.Accepted = flags&replyFlagAccepted != 0
	s.Reason = d.text("reason", MaxReasonLen)
	s.Redirect = d.addrInfos("redirect")
	s.Path = d.path("path")
	s.Width = d.uvarint("width")
	s.Depth = int(d.bounded("depth", 0, MaxPathLen))
	if err := d.done(); err != nil {
		return nil, err
	}
	return s, nil
}

// WriteSubscribeReply writes s as a length-prefixed message.
func WriteSubscribeReply(w io.Writer, s *SubscribeReply) error {
	b, err := s.Append(nil)
	if err != nil {
		return err
	}
	if len(b) > MaxMessageSize {
		return fmt.Errorf("subscribe reply: %d bytes exceeds limit %d", len(b), MaxMessageSize)
	}
	if err := writeMessage(w, b); err != nil {
		return fmt.Errorf("subscribe reply: %w", err)
	}
	return nil
}

// ReadSubscribeReply reads a length-prefixed SubscribeReply. It reads nothing
// past the message, so a FrameReader can take over the stream afterwards.
func ReadSubscribeReply(r io.Reader) (*SubscribeReply, error) {
	b, err := readMessage(r, MaxMessageSize)
	if err != nil {
		return nil, fmt.Errorf("subscribe reply: %w", err)
	}
	return DecodeSubscribeReply(b)
}
