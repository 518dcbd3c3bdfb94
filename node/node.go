package node

import (
	"context"
	"errors"
	"fmt"
	"sync"

	logging "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/routing"
	ma "github.com/multiformats/go-multiaddr"
)

var log = logging.Logger("roma/node")

// Node is a romap2p service on a libp2p host: it serves content it has,
// fetches content by CID, relays to other peers, and keeps one session per
// CID. It either owns its host and DHT (built by New) or runs on ones an
// embedder hands in (WithHost, WithRouting).
type Node struct {
	host    host.Host
	router  routing.ContentRouting
	cfg     config
	closers []func() error

	mu     sync.Mutex
	closed bool
}

// config holds the options of New.
type config struct {
	host      host.Host
	router    routing.ContentRouting
	hostOpts  []HostOption
	dhtOpts   []DHTOption
	noRouting bool
	bootstrap []peer.AddrInfo
}

// Option configures a Node.
type Option func(*config) error

// WithHost runs the node on an existing host (the embedder keeps ownership:
// Close does not close it).
func WithHost(h host.Host) Option {
	return func(c *config) error {
		if h == nil {
			return errors.New("WithHost: nil host")
		}
		c.host = h
		return nil
	}
}

// WithRouting uses an existing content router (for example an IPFS node's
// DHT) for provider records instead of starting a DHT.
func WithRouting(r routing.ContentRouting) Option {
	return func(c *config) error {
		if r == nil {
			return errors.New("WithRouting: nil router")
		}
		c.router = r
		return nil
	}
}

// WithHostOptions passes options to NewHost when the node builds its own host.
func WithHostOptions(opts ...HostOption) Option {
	return func(c *config) error {
		c.hostOpts = append(c.hostOpts, opts...)
		return nil
	}
}

// WithDHTOptions passes options to NewDHT when the node starts its own DHT.
func WithDHTOptions(opts ...DHTOption) Option {
	return func(c *config) error {
		c.dhtOpts = append(c.dhtOpts, opts...)
		return nil
	}
}

// WithBootstrap names peers to connect to at start: they seed the DHT's
// routing table and are asked for content directly.
func WithBootstrap(peers ...peer.AddrInfo) Option {
	return func(c *config) error {
		c.bootstrap = append(c.bootstrap, peers...)
		c.dhtOpts = append(c.dhtOpts, Bootstrap(peers...))
		return nil
	}
}

// WithoutRouting starts no DHT: peers are found only through explicitly
// given addresses and peer exchange.
func WithoutRouting() Option {
	return func(c *config) error {
		c.noRouting = true
		return nil
	}
}

// New builds a node. Unless WithHost is given it builds a TCP-only host with
// NewHost; unless WithRouting or WithoutRouting is given it starts a DHT.
func New(ctx context.Context, opts ...Option) (*Node, error) {
	n := &Node{}
	for _, o := range opts {
		if err := o(&n.cfg); err != nil {
			return nil, err
		}
	}
	n.host = n.cfg.host
	if n.host == nil {
		h, err := NewHost(n.cfg.hostOpts...)
		if err != nil {
			return nil, err
		}
		n.host = h
		n.closers = append(n.closers, h.Close)
	}
	n.router = n.cfg.router
	if n.router == nil && !n.cfg.noRouting {
		d, err := NewDHT(ctx, n.host, n.cfg.dhtOpts...)
		if err != nil {
			_ = n.Close()
			return nil, err
		}
		n.router = d
		n.closers = append([]func() error{d.Close}, n.closers...)
	}
	for _, p := range n.cfg.bootstrap {
		n.host.Peerstore().AddAddrs(p.ID, p.Addrs, peerstore.PermanentAddrTTL)
	}
	return n, nil
}

// Bootstrap returns the peers given with WithBootstrap.
func (n *Node) Bootstrap() []peer.AddrInfo { return n.cfg.bootstrap }

// ParseAddrInfos parses multiaddrs that end in /p2p/<peer ID>, merging the
// addresses of the same peer.
func ParseAddrInfos(addrs []string) ([]peer.AddrInfo, error) {
	mas := make([]ma.Multiaddr, 0, len(addrs))
	for _, s := range addrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", s, err)
		}
		mas = append(mas, a)
	}
	infos, err := peer.AddrInfosFromP2pAddrs(mas...)
	if err != nil {
		return nil, fmt.Errorf("peer addresses must end in /p2p/<peer ID>: %w", err)
	}
	return infos, nil
}

// Host returns the node's libp2p host.
func (n *Node) Host() host.Host { return n.host }

// Routing returns the content router, or nil if the node runs without one.
func (n *Node) Routing() routing.ContentRouting { return n.router }

// AddrInfo returns the node's peer ID and listen addresses.
func (n *Node) AddrInfo() peer.AddrInfo {
	return peer.AddrInfo{ID: n.host.ID(), Addrs: n.host.Addrs()}
}

// Close stops the node and releases what it owns.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	n.mu.Unlock()
	var errs []error
	for _, c := range n.closers {
		if err := c(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close node: %w", err)
	}
	return nil
}
