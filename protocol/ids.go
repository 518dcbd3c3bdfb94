package protocol

import "github.com/libp2p/go-libp2p/core/protocol"

// Protocol IDs, one per purpose. The version follows semantic versioning: a
// peer speaking a different major version is a different protocol.
const (
	// ManifestID serves manifests: the client sends a CID, the server answers
	// with a status byte and the manifest bytes.
	ManifestID protocol.ID = "/roma/manifest/1.0.0"
	// StatusID serves a peer's status for one CID: role, widths, paths and a
	// sample of other participants.
	StatusID protocol.ID = "/roma/status/1.0.0"
	// SymbolsID carries one subscription: opened by the child, it starts with
	// a Subscribe and a SubscribeReply and then carries frames both ways.
	SymbolsID protocol.ID = "/roma/symbols/1.0.0"
	// TreeID serves block tree data: the client sends a TreeRequest, the
	// server answers each requested block with a tree entry.
	TreeID protocol.ID = "/roma/tree/1.0.0"
)
