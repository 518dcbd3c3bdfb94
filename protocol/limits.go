package protocol

import "math"

// Limits on everything read from the network. A decoder checks each length
// against its limit before it allocates; an encoder refuses to produce what a
// decoder would reject.
const (
	// MaxMessageSize bounds a length-prefixed message (Subscribe,
	// SubscribeReply, Status). The largest valid Status (MaxStripes stripes
	// with full paths and MaxPeers peers with MaxAddrs addresses of
	// MaxAddrLen bytes: about 340 KiB) fits.
	MaxMessageSize = 512 << 10

	// MaxControlFrame bounds the payload of a control frame on a symbols
	// stream.
	MaxControlFrame = 16 << 10

	// MaxManifestSize bounds an encoded manifest. A manifest with
	// MaxSourceBlocks hashes and a name of MaxNameLen bytes takes about
	// 9.1 KiB, so this leaves ample room.
	MaxManifestSize = 16 << 10

	// MaxCIDLen bounds a CID on the wire. The only CIDs romap2p accepts
	// (CIDv1, dag-cbor, sha2-256) take 36 bytes.
	MaxCIDLen = 64

	// MaxPeerIDLen bounds a peer ID on the wire. libp2p peer IDs are either
	// an identity multihash of a key of at most 42 bytes or a sha2-256
	// multihash (34 bytes).
	MaxPeerIDLen = 64

	// MaxAddrLen bounds one encoded multiaddr.
	MaxAddrLen = 512

	// MaxAddrs bounds the addresses sent for one peer.
	MaxAddrs = 8

	// MaxPeers bounds a list of peers: redirects in a SubscribeReply and the
	// peer sample in a Status.
	MaxPeers = 16

	// MaxPathLen bounds an ancestor path and a depth.
	MaxPathLen = 64

	// MaxStripes bounds the stripe count k of a subscription.
	MaxStripes = 64

	// MaxChildren bounds the child counts reported in a Status.
	MaxChildren = 1 << 16

	// MaxReasonLen bounds a human-readable reason (refusals, goodbyes,
	// manifest errors), in bytes of UTF-8.
	MaxReasonLen = 256

	// MaxNameLen bounds the file name in a manifest, in bytes of UTF-8.
	MaxNameLen = 255

	// MaxSourceBlocks is the largest number of source blocks (Z) a file may
	// have: the SBN is 8 bits.
	MaxSourceBlocks = 256

	// MaxSourceSymbols is KMAX of RFC 6330: the most source symbols one
	// source block may have.
	MaxSourceSymbols = 56403

	// MinSymbolSize and MaxSymbolSize bound the symbol size T.
	MinSymbolSize = 16
	// MaxSymbolSize is the largest symbol size T (16 bits in RFC 6330).
	MaxSymbolSize = math.MaxUint16

	// MaxFileSize is the largest file one manifest can describe:
	// MaxSourceBlocks * MaxSourceSymbols * MaxSymbolSize bytes (the F limit
	// of RFC 6330).
	MaxFileSize = MaxSourceBlocks * MaxSourceSymbols * MaxSymbolSize
)

// WidthUnbounded is the width of a peer that generates symbols itself (the
// source, or a peer that has the whole file): its rate is limited only by
// its links.
const WidthUnbounded = math.MaxUint64
