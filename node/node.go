package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/ipfs/go-cid"

	logging "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/routing"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/romap2p/romap2p/protocol"
	"github.com/romap2p/romap2p/relay"
	"github.com/romap2p/romap2p/treebuild"
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

	mu       sync.Mutex
	closed   bool
	sessions map[cid.Cid]*session
	chooser  *treebuild.Chooser
	ctx      context.Context
	cancel   context.CancelFunc
	// tcp holds TCP connections of our own on an embedder's host that may
	// prefer another transport (tcpconn.go); nil on our own host.
	tcp *tcpConns
	// g runs the node's own goroutines (provider announcements) and counts
	// the stream handlers; Close waits for them.
	g group
}

// config holds the options of New.
type config struct {
	host      host.Host
	router    routing.ContentRouting
	hostOpts  []HostOption
	dhtOpts   []DHTOption
	noRouting bool
	bootstrap []peer.AddrInfo

	stripes       int
	maxChildren   int
	otherChildren int
	chooserOpts   []treebuild.Option
	ringBytes     int
	backPressure  bool
	encoderCache  int64
	scratchDir    string
	spillMemory   int64
	shape         func(from, to peer.ID, w io.Writer) io.Writer
	tuning        Tuning
}

// validate checks the options together.
func (c *config) validate() error {
	if c.host != nil && c.router == nil && !c.noRouting {
		return ErrNoRouting
	}
	if c.router != nil && c.noRouting {
		return errors.New("WithRouting and WithoutRouting exclude each other")
	}
	if c.host != nil && (len(c.hostOpts) > 0) {
		return errors.New("WithHostOptions apply to a host the node builds, not to one given with WithHost")
	}
	return c.tuning.Validate()
}

// ringOptions are the relay options every session's ring gets.
func (c *config) ringOptions() []relay.Option {
	opts := []relay.Option{relay.WithCapacity(c.ringBytes)}
	if c.backPressure {
		opts = append(opts, relay.WithBackPressure())
	}
	return opts
}

// DefaultStripes is the number of stripes unless WithStripes says
// otherwise; the command line uses the same default.
const DefaultStripes = 8

// WithStripes cuts the stream into k stripes by ESI, each with its own tree
// (default DefaultStripes; 1 is the paper's single tree).
func WithStripes(k int) Option {
	return func(c *config) error {
		if k < 1 || k > protocol.MaxStripes {
			return fmt.Errorf("stripes %d out of range [1, %d]", k, protocol.MaxStripes)
		}
		c.stripes = k
		return nil
	}
}

// WithMaxChildren limits how many children this node feeds per stripe
// (default 8). A full node redirects new children to its children.
func WithMaxChildren(n int) Option {
	return func(c *config) error {
		if n < 0 || n > protocol.MaxChildren {
			return fmt.Errorf("max children %d out of range", n)
		}
		c.maxChildren = n
		return nil
	}
}

// WithOtherStripeChildren sets how many children a node feeds in stripes
// other than its home stripe while it is still downloading (default 2).
func WithOtherStripeChildren(n int) Option {
	return func(c *config) error {
		if n < 0 || n > protocol.MaxChildren {
			return fmt.Errorf("children %d out of range", n)
		}
		c.otherChildren = n
		return nil
	}
}

// WithChooser tunes the decentralised parent choice (hysteresis, dwell,
// probe window and interval, stall timeout).
func WithChooser(opts ...treebuild.Option) Option {
	return func(c *config) error {
		c.chooserOpts = append(c.chooserOpts, opts...)
		return nil
	}
}

// defaultRingBytes is the default relay buffer per session.
const defaultRingBytes = 4 << 20

// WithRingBytes sets the capacity of each session's relay buffer (default
// 4 MiB: the paper's 1 MiB holds only 8 ms at loopback rates, and a relay
// whose child pauses that long drops symbols it must then regenerate;
// BenchmarkChain measured 4 MiB 15-20 % faster than 1 MiB).
func WithRingBytes(n int) Option {
	return func(c *config) error {
		if n < 64<<10 {
			return fmt.Errorf("ring of %d bytes is below 64 KiB", n)
		}
		c.ringBytes = n
		return nil
	}
}

// WithBackPressure relays store-and-forward: every child waits for the
// slowest one. It exists to show, on identical code, why ROMA does not.
func WithBackPressure() Option {
	return func(c *config) error {
		c.backPressure = true
		return nil
	}
}

// WithEncoderCache bounds the memory a serving session spends on cached
// per-block encoder state (default 48 MiB; blocks beyond it go to a scratch file).
func WithEncoderCache(bytes int64) Option {
	return func(c *config) error {
		c.encoderCache = bytes
		return nil
	}
}

// WithSpillMemory sets how many bytes of received symbols a download keeps
// in memory before it writes them to its spill files (default 96 MiB: two
// windows of 4 MiB blocks, the one being decoded and the next arriving; 0
// writes every symbol to disk at once).
func WithSpillMemory(bytes int64) Option {
	return func(c *config) error {
		if bytes < 0 {
			return fmt.Errorf("spill memory %d is negative", bytes)
		}
		c.spillMemory = bytes
		return nil
	}
}

// WithScratchDir sets where serving sessions keep their (unlinked) scratch
// files of intermediate symbols; the default is the system's temporary
// directory.
func WithScratchDir(dir string) Option {
	return func(c *config) error {
		c.scratchDir = dir
		return nil
	}
}

// WithShaper wraps the writer of every symbols stream this node feeds, from
// this node to peer "to". Tests and the local swarm demo use it to give each
// pair of peers its own rate; production nodes leave it unset.
func WithShaper(f func(from, to peer.ID, w io.Writer) io.Writer) Option {
	return func(c *config) error {
		c.shape = f
		return nil
	}
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
// DHT) for provider records instead of starting a DHT. A node on an
// embedder's host (WithHost) needs it, or WithoutRouting: it never starts a
// second DHT on a host it does not own.
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

// ErrNoRouting is returned by New for a node on an embedder's host
// (WithHost) given neither WithRouting nor WithoutRouting.
var ErrNoRouting = errors.New("WithHost needs WithRouting (the embedder's content router, e.g. its DHT) or WithoutRouting: romap2p does not start a second DHT on a host it does not own")

// New builds a node. Unless WithHost is given it builds a TCP-only host with
// NewHost and, unless WithRouting or WithoutRouting is given, starts a DHT on
// it. On an embedder's host the routing must be given (ErrNoRouting).
func New(ctx context.Context, opts ...Option) (*Node, error) {
	n := &Node{
		sessions: make(map[cid.Cid]*session),
		cfg: config{
			stripes:       DefaultStripes,
			maxChildren:   8,
			otherChildren: 2,
			ringBytes:     defaultRingBytes,
			encoderCache:  48 << 20,
			spillMemory:   96 << 20,
			tuning:        DefaultTuning(),
		},
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	for _, o := range opts {
		if err := o(&n.cfg); err != nil {
			return nil, err
		}
	}
	if err := n.cfg.validate(); err != nil {
		return nil, err
	}
	// A 2 s probe and an 8 % hysteresis. The chooser's own defaults (1 s
	// probes, 10 %) kept switching on measurement noise for about 40 s
	// after the last staggered join on Table I (internal/swarm
	// BenchmarkSettle); with 2 s probes 8 % settled 37 s after it, against
	// 57 s with 12 %, at most one change per peer in any 30 s either way.
	// On the testbed (Table I, x0.2, one tree) 12 % left a host under a
	// relay 15 % narrower than its widest path (GT under Berkeley, 3.8
	// against 4.3 Mbit/s via Arizona) and its subtree with it.
	defaults := []treebuild.Option{treebuild.WithProbeWindow(2 * time.Second), treebuild.WithHysteresis(0.08)}
	ch, err := treebuild.NewChooser(append(defaults, n.cfg.chooserOpts...)...)
	if err != nil {
		return nil, err
	}
	n.chooser = ch
	n.host = n.cfg.host
	if n.host != nil {
		n.tcp = newTCPConns(n)
	}
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
	n.registerHandlers()
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

// ErrClosed is returned by Get when the node or the download is closed
// before the content is complete.
var ErrClosed = errors.New("node closed")

// Close stops the node and releases what it owns.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	sessions := make([]*session, 0, len(n.sessions))
	for _, s := range n.sessions {
		sessions = append(sessions, s)
	}
	clear(n.sessions)
	n.mu.Unlock()
	// Children are handed over before anything stops, so that they
	// reattach elsewhere at once.
	var wg sync.WaitGroup
	for _, s := range sessions {
		wg.Add(1)
		go func() { defer wg.Done(); s.handOver() }()
	}
	wg.Wait()
	n.cancel()
	if n.host != nil {
		n.removeHandlers()
	}
	for _, s := range sessions {
		s.close()
	}
	if n.tcp != nil {
		n.tcp.closeAll()
	}
	n.g.closeAndWait()
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

// session returns the session for c, or nil.
func (n *Node) session(c cid.Cid) *session {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.sessions[c]
}

// addSession registers a session.
func (n *Node) addSession(s *session) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return ErrClosed
	}
	if _, ok := n.sessions[s.cid]; ok {
		return fmt.Errorf("content %s already has a session", s.cid)
	}
	n.sessions[s.cid] = s
	return nil
}

// dropSession stops and forgets a session.
func (n *Node) dropSession(s *session) {
	n.mu.Lock()
	if n.sessions[s.cid] == s {
		delete(n.sessions, s.cid)
	}
	n.mu.Unlock()
	s.close()
}

// Drop stops serving or fetching c. A partial download stays on disk for a
// later resume.
func (n *Node) Drop(c cid.Cid) {
	if s := n.session(c); s != nil {
		n.dropSession(s)
	}
}

// provide announces c in the content router, retrying in the background
// while the routing table is still empty.
func (n *Node) provide(c cid.Cid) {
	if n.router == nil {
		return
	}
	n.g.Go(func() {
		delay := 200 * time.Millisecond
		for {
			ctx, cancel := context.WithTimeout(n.ctx, time.Minute)
			err := n.router.Provide(ctx, c, true)
			cancel()
			if err == nil {
				log.Debugw("provided", "cid", c)
				return
			}
			log.Debugw("provide failed, retrying", "cid", c, "err", err)
			select {
			case <-n.ctx.Done():
				return
			case <-time.After(delay):
			}
			delay = min(2*delay, 30*time.Second)
		}
	})
}
