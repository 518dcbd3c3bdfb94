package protocol

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Role is what a peer does for one piece of content.
type Role uint8

// Roles.
const (
	// RoleNone: the peer takes no part in this content.
	RoleNone Role = 0
	// RoleSource: the peer published the content and has all of it.
	RoleSource Role = 1
	// RoleRelaying: the peer is fetching from at least one parent (and
	// forwards to its children, if any).
	RoleRelaying Role = 2
	// RoleComplete: the peer has decoded the whole file and serves fresh
	// symbols like a source.
	RoleComplete Role = 3
	// RoleSeeking: the peer is fetching but has no parent right now.
	RoleSeeking Role = 4
)

func (r Role) String() string {
	switch r {
	case RoleNone:
		return "none"
	case RoleSource:
		return "source"
	case RoleRelaying:
		return "relaying"
	case RoleComplete:
		return "complete"
	case RoleSeeking:
		return "seeking"
	}
	return fmt.Sprintf("role %d", uint8(r))
}

// StripeStatus is a peer's place in the tree of one stripe.
type StripeStatus struct {
	// Index is the stripe index, below the Status's StripeCount.
	Index int
	// Width is the rate in bytes/s at which the peer receives new symbols of
	// this stripe; WidthUnbounded for a source or complete peer.
	Width uint64
	// Depth is the peer's depth in this stripe's tree (the source is 0), at
	// most MaxPathLen.
	Depth int
	// Path is the peer's ancestor path, from the source down to and
	// including the peer (at most MaxPathLen peers).
	Path []peer.ID
	// Parent is the peer's parent in this stripe, empty for none.
	Parent peer.ID
	// Children is the number of children fed in this stripe and MaxChildren
	// the number the peer accepts (both at most the package's MaxChildren).
	Children    int
	MaxChildren int
}

// Status is a peer's answer on a status stream.
type Status struct {
	// Role is what the peer does for the content.
	Role Role
	// Have holds the blocks the peer has decoded.
	Have BlockSet
	// StripeCount is the number of stripes k the peer uses (0..MaxStripes;
	// 0 with RoleNone).
	StripeCount int
	// Stripes describes the stripes the peer takes part in, in increasing
	// Index order, no index twice.
	Stripes []StripeStatus
	// Peers is a sample of other participants, for peer exchange (at most
	// MaxPeers, each with at most MaxAddrs addresses).
	Peers []peer.AddrInfo
	// UploadRate and DownloadRate are what the peer's links for this
	// content carry now, in bytes/s.
	UploadRate   uint64
	DownloadRate uint64
}

// Append appends the encoded message body (without its length prefix) to dst.
func (s *Status) Append(dst []byte) ([]byte, error) {
	if s.StripeCount < 0 || s.StripeCount > MaxStripes {
		return dst, fmt.Errorf("status: stripe count %d out of range [0, %d]", s.StripeCount, MaxStripes)
	}
	if len(s.Stripes) > s.StripeCount {
		return dst, fmt.Errorf("status: %d stripes for stripe count %d", len(s.Stripes), s.StripeCount)
	}
	dst = append(dst, byte(s.Role))
	dst = append(dst, s.Have[:]...)
	dst = binary.AppendUvarint(dst, uint64(s.StripeCount))
	dst = binary.AppendUvarint(dst, uint64(len(s.Stripes)))
	prev := -1
	for i := range s.Stripes {
		st := &s.Stripes[i]
		const field = "status: stripe"
		switch {
		case st.Index <= prev || st.Index >= s.StripeCount:
			return dst, fmt.Errorf("%s %d: index out of order or range [0, %d)", field, st.Index, s.StripeCount)
		case st.Depth < 0 || st.Depth > MaxPathLen:
			return dst, fmt.Errorf("%s %d: depth %d out of range [0, %d]", field, st.Index, st.Depth, MaxPathLen)
		case st.Children < 0 || st.Children > MaxChildren || st.MaxChildren < 0 || st.MaxChildren > MaxChildren:
			return dst, fmt.Errorf("%s %d: child counts %d/%d out of range [0, %d]", field, st.Index, st.Children, st.MaxChildren, MaxChildren)
		}
		prev = st.Index
		dst = binary.AppendUvarint(dst, uint64(st.Index))
		dst = binary.AppendUvarint(dst, st.Width)
		dst = binary.AppendUvarint(dst, uint64(st.Depth))
		var err error
		if dst, err = appendPath(dst, field+" path", st.Path); err != nil {
			return dst, err
		}
		if dst, err = appendOptionalPeerID(dst, field+" parent", st.Parent); err != nil {
			return dst, err
		}
		dst = binary.AppendUvarint(dst, uint64(st.Children))
		dst = binary.AppendUvarint(dst, uint64(st.MaxChildren))
	}
	dst, err := appendAddrInfos(dst, "status: peers", s.Peers)
	if err != nil {
		return dst, err
	}
	dst = binary.AppendUvarint(dst, s.UploadRate)
	return binary.AppendUvarint(dst, s.DownloadRate), nil
}

// DecodeStatus decodes a Status message body. Unknown roles are accepted
// (a newer peer may have more); callers treat them like RoleNone.
func DecodeStatus(b []byte) (*Status, error) {
	d := decoder{b: b, msg: "status"}
	s := &Status{}
	s.Role = Role(d.byte("role"))
	s.Have = d.blockSet("have")
	s.StripeCount = int(d.bounded("stripe count", 0, MaxStripes))
	n := int(d.bounded("stripes", 0, uint64(s.StripeCount)))
	if d.err == nil && n > 0 {
		s.Stripes = make([]StripeStatus, n)
	}
	prev := -1
	for i := range s.Stripes {
		st := &s.Stripes[i]
		st.Index = int(d.bounded("stripe index", uint64(prev+1), uint64(s.StripeCount-1)))
		prev = st.Index
		st.Width = d.uvarint("width")
		st.Depth = int(d.bounded("depth", 0, MaxPathLen))
		st.Path = d.path("path")
		st.Parent = d.optionalPeerID("parent")
		st.Children = int(d.bounded("children", 0, MaxChildren))
		st.MaxChildren = int(d.bounded("max children", 0, MaxChildren))
		if d.err != nil {
			break
		}
	}
	s.Peers = d.addrInfos("peers")
	s.UploadRate = d.uvarint("upload rate")
	s.DownloadRate = d.uvarint("download rate")
	if err := d.done(); err != nil {
		return nil, err
	}
	return s, nil
}

// WriteStatus writes s as a length-prefixed message, the answer on a status
// stream.
func WriteStatus(w io.Writer, s *Status) error {
	b, err := s.Append(nil)
	if err != nil {
		return err
	}
	if len(b) > MaxMessageSize {
		return fmt.Errorf("status: %d bytes exceeds limit %d", len(b), MaxMessageSize)
	}
	if err := writeMessage(w, b); err != nil {
		return fmt.Errorf("status: %w", err)
	}
	return nil
}

// ReadStatus reads a length-prefixed Status.
func ReadStatus(r io.Reader) (*Status, error) {
	b, err := readMessage(r, MaxMessageSize)
	if err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	return DecodeStatus(b)
}
