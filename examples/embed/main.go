// Command embed shows romap2p embedded in an IPFS-like libp2p node: a host
// built with libp2p's default transports (TCP and QUIC), the node's own
// Kademlia DHT, and romap2p on top, fetching content by CID.
//
// It starts two such nodes in one process on loopback, connects them over
// QUIC only (as a DHT often does), adds a file of random bytes on one and
// fetches it on the other. romap2p runs over TCP only: it opens its streams
// on a TCP connection to the peer, dialing one itself when the host has
// only QUIC, and leaves the host's other protocols on whatever connection
// the host chose.
//
//	go run ./examples/embed -size 64MiB
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/romap2p/romap2p/node"
	"github.com/romap2p/romap2p/protocol"
)

func main() {
	size := flag.String("size", "32MiB", "size of the file to move")
	flag.Parse()
	n, err := humanize.ParseBytes(*size)
	if err != nil || n == 0 {
		fmt.Fprintf(os.Stderr, "embed: -size %q: want a size such as 32MiB\n", *size)
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := run(ctx, int64(n), os.Stdout)
	if err != nil {
		fmt.Fprintf(os.Stderr, "embed: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("moved %s in %v over %s; the hosts also hold %d QUIC connection(s)\n",
		humanize.IBytes(uint64(res.Size)), res.Took.Round(time.Millisecond), res.Transport, res.QUICConns)
}

// result is what run measured.
type result struct {
	Size      int64
	Took      time.Duration
	Transport string // of the connection that carried romap2p's streams
	QUICConns int
}

// peerNode is one IPFS-like node: host, DHT and romap2p.
type peerNode struct {
	h host.Host
	d *dht.IpfsDHT
	n *node.Node
}

func newPeerNode(ctx context.Context) (*peerNode, error) {
	h, err := libp2p.New(libp2p.ListenAddrStrings(
		"/ip4/127.0.0.1/tcp/0",
		"/ip4/127.0.0.1/udp/0/quic-v1",
	))
	if err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}
	d, err := dht.New(h, dht.Mode(dht.ModeServer), dht.ProtocolPrefix("/romap2p-embed"))
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("dht: %w", err)
	}
	n, err := node.New(ctx, node.WithHost(h), node.WithRouting(d))
	if err != nil {
		d.Close()
		h.Close()
		return nil, fmt.Errorf("romap2p: %w", err)
	}
	return &peerNode{h: h, d: d, n: n}, nil
}

func (p *peerNode) Close() {
	_ = p.n.Close()
	_ = p.d.Close()
	_ = p.h.Close()
}

// quicAddrs returns the QUIC addresses of h.
func quicAddrs(h host.Host) []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, a := range h.Addrs() {
		if _, err := a.ValueForProtocol(ma.P_QUIC_V1); err == nil {
			out = append(out, a)
		}
	}
	return out
}

// run moves size random bytes from one embedded node to another.
func run(ctx context.Context, size int64, log io.Writer) (result, error) {
	dir, err := os.MkdirTemp("", "romap2p-embed-")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, "data.bin")
	data := make([]byte, size)
	if _, err := rand.Read(data); err != nil {
		return result{}, err
	}
	if err := os.WriteFile(src, data, 0o644); err != nil {
		return result{}, err
	}

	a, err := newPeerNode(ctx)
	if err != nil {
		return result{}, err
	}
	defer a.Close()
	b, err := newPeerNode(ctx)
	if err != nil {
		return result{}, err
	}
	defer b.Close()

	// Connect over QUIC only: the host then prefers that connection for
	// every protocol, romap2p's included unless it picks TCP itself.
	if err := b.h.Connect(ctx, peer.AddrInfo{ID: a.h.ID(), Addrs: quicAddrs(a.h)}); err != nil {
		return result{}, fmt.Errorf("connect over QUIC: %w", err)
	}
	if err := b.d.Bootstrap(ctx); err != nil {
		return result{}, err
	}

	c, err := a.n.Add(ctx, src)
	if err != nil {
		return result{}, err
	}
	fmt.Fprintf(log, "added %s as %s\n", humanize.IBytes(uint64(size)), c)

	events := make(chan node.Event, 256)
	done := make(chan struct{})
	carried := map[string]bool{} // transports of the connections that carried symbols
	go func() {
		defer close(done)
		for e := range events {
			for _, conn := range a.h.Network().ConnsToPeer(b.h.ID()) {
				for _, st := range conn.GetStreams() {
					if st.Protocol() == protocol.SymbolsID {
						carried[conn.ConnState().Transport] = true
					}
				}
			}
			switch e.Kind {
			case node.EventAsked:
				fmt.Fprintf(log, "asked %s: %v\n", e.Peer, errOrOK(e.Err))
			case node.EventManifest:
				fmt.Fprintf(log, "manifest: %d blocks\n", e.Progress.Blocks)
			case node.EventDone:
				fmt.Fprintf(log, "done: %v\n", errOrOK(e.Err))
			}
		}
	}()
	start := time.Now()
	var got bytes.Buffer
	err = b.n.GetTo(ctx, c, &got, node.WithEvents(events))
	took := time.Since(start)
	close(events)
	<-done
	if err != nil {
		return result{}, fmt.Errorf("get: %w", err)
	}
	if sha256.Sum256(got.Bytes()) != sha256.Sum256(data) {
		return result{}, fmt.Errorf("got %d bytes that differ from the %d added", got.Len(), len(data))
	}
	res := result{Size: size, Took: took}
	for t := range carried {
		res.Transport += t
	}
	for _, conn := range b.h.Network().ConnsToPeer(a.h.ID()) {
		if conn.ConnState().Transport == "quic-v1" {
			res.QUICConns++
		}
	}
	return res, nil
}

func errOrOK(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}
