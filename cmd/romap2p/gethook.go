//go:build !romap2p_saboteur

package main

import (
	"io"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/romap2p/romap2p/node"
)

// getHook is what a special build of the command adds to get. The ordinary
// build adds nothing: newGetHook returns nil and every method of a nil hook
// does nothing.
type getHook struct{}

func newGetHook(*cliEnv) (*getHook, error) { return nil, nil }

// shaper returns a wrapper for every symbols stream the node feeds (nil:
// none).
func (*getHook) shaper() func(from, to peer.ID, w io.Writer) io.Writer { return nil }

// started tells the hook the node and the CID it fetches.
func (*getHook) started(*node.Node, cid.Cid) {}

// close ends what the hook runs.
func (*getHook) close() {}
