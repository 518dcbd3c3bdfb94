package node

import (
	"context"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	tls "github.com/libp2p/go-libp2p/p2p/security/tls"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
)

// ServiceName is the resource-manager service every romap2p stream is
// attached to, so its limits are sized for bulk transfer independently of
// whatever else shares the host.
const ServiceName = "romap2p"

// Security selects the channel security of a host built by NewHost.
type Security string

// Channel security choices. Both are offered; the first is preferred.
const (
	SecurityTLS   Security = "tls"
	SecurityNoise Security = "noise"
)

// hostConfig collects the settings of NewHost.
type hostConfig struct {
	listen       []string
	identity     crypto.PrivKey
	security     Security
	streamWindow uint32
	peerMemory   int64
	lowWater     int
	highWater    int
	metrics      prometheus.Registerer
}

// Metrics sets where libp2p's own metrics (swarm, identify, resource
// manager, ...) are registered: prometheus.DefaultRegisterer by default;
// nil switches them off.
func Metrics(reg prometheus.Registerer) HostOption {
	return func(c *hostConfig) error {
		c.metrics = reg
		return nil
	}
}

// HostOption configures NewHost.
type HostOption func(*hostConfig) error

// ListenAddrs sets the multiaddrs the host listens on. Only TCP addresses are
// accepted. The default is /ip4/0.0.0.0/tcp/0.
func ListenAddrs(addrs ...string) HostOption {
	return func(c *hostConfig) error {
		c.listen = append([]string(nil), addrs...)
		return nil
	}
}

// Identity sets the host's private key; by default a fresh Ed25519 key is made.
func Identity(k crypto.PrivKey) HostOption {
	return func(c *hostConfig) error {
		c.identity = k
		return nil
	}
}

// PreferSecurity selects which security protocol is offered first.
func PreferSecurity(s Security) HostOption {
	return func(c *hostConfig) error {
		switch s {
		case SecurityTLS, SecurityNoise:
			c.security = s
			return nil
		default:
			return fmt.Errorf("unknown security %q (want %q or %q)", s, SecurityTLS, SecurityNoise)
		}
	}
}

// StreamWindow sets yamux's maximum receive window per stream in bytes
// (default 4 MiB). Bulk transfer over long, fat links needs it large.
func StreamWindow(bytes uint32) HostOption {
	return func(c *hostConfig) error {
		if bytes < 256<<10 {
			return fmt.Errorf("stream window %d is below yamux's minimum of 256 KiB", bytes)
		}
		c.streamWindow = bytes
		return nil
	}
}

// PeerMemory sets the resource manager's memory budget per peer and for the
// romap2p service (default 256 MiB). yamux windows are charged against it and
// only grow while it is under about half used.
func PeerMemory(bytes int64) HostOption {
	return func(c *hostConfig) error {
		if bytes < 16<<20 {
			return fmt.Errorf("peer memory %d below 16 MiB would starve streams", bytes)
		}
		c.peerMemory = bytes
		return nil
	}
}

// NewHost builds a libp2p host restricted to the TCP transport, with TLS and
// Noise security, yamux with a large receive window, a resource manager whose
// limits leave room for a few high-bandwidth streams, and a connection
// manager. It is the host every romap2p command uses.
func NewHost(opts ...HostOption) (host.Host, error) {
	cfg := hostConfig{
		listen:       []string{"/ip4/0.0.0.0/tcp/0"},
		security:     SecurityTLS,
		streamWindow: 4 << 20,
		peerMemory:   256 << 20,
		lowWater:     160,
		highWater:    192,
		metrics:      prometheus.DefaultRegisterer,
	}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if err := checkTCPAddrs(cfg.listen); err != nil {
		return nil, err
	}
	if cfg.identity == nil {
		k, _, err := crypto.GenerateEd25519Key(nil)
		if err != nil {
			return nil, fmt.Errorf("generate identity: %w", err)
		}
		cfg.identity = k
	}

	// A copy of the default yamux transport: it is a package global.
	ymx := *yamux.DefaultTransport
	ymx.MaxStreamWindowSize = cfg.streamWindow

	rm, err := newResourceManager(cfg.peerMemory, cfg.metrics != nil)
	if err != nil {
		return nil, err
	}
	cm, err := connmgr.NewConnManager(cfg.lowWater, cfg.highWater, connmgr.WithGracePeriod(time.Minute))
	if err != nil {
		return nil, fmt.Errorf("connection manager: %w", err)
	}

	sec := []libp2p.Option{libp2p.Security(tls.ID, tls.New), libp2p.Security(noise.ID, noise.New)}
	if cfg.security == SecurityNoise {
		sec[0], sec[1] = sec[1], sec[0]
	}
	lopts := []libp2p.Option{
		libp2p.Identity(cfg.identity),
		libp2p.NoTransports,
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.ListenAddrStrings(cfg.listen...),
		libp2p.Muxer(yamux.ID, &ymx),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionManager(cm),
		libp2p.DisableRelay(),
	}
	if cfg.metrics == nil {
		lopts = append(lopts, libp2p.DisableMetrics())
	} else {
		lopts = append(lopts, libp2p.PrometheusRegisterer(cfg.metrics))
		rcmgr.MustRegisterWith(cfg.metrics)
	}
	lopts = append(lopts, sec...)
	h, err := libp2p.New(lopts...)
	if err != nil {
		return nil, fmt.Errorf("libp2p host: %w", err)
	}
	return h, nil
}

// newResourceManager scales libp2p's default limits and raises the memory
// available to a peer, a stream and the romap2p service so that a handful of
// bulk streams are never starved of yamux window.
func newResourceManager(peerMemory int64, metrics bool) (network.ResourceManager, error) {
	limits := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&limits)
	limits.PeerBaseLimit.Memory = peerMemory
	limits.ServicePeerBaseLimit.Memory = peerMemory
	limits.StreamBaseLimit.Memory = peerMemory / 4
	limits.ConnBaseLimit.Memory = peerMemory
	if limits.SystemBaseLimit.Memory < 4*peerMemory {
		limits.SystemBaseLimit.Memory = 4 * peerMemory
	}
	if limits.TransientBaseLimit.Memory < peerMemory {
		limits.TransientBaseLimit.Memory = peerMemory
	}
	limits.AddServiceLimit(ServiceName,
		rcmgr.BaseLimit{Streams: 1024, StreamsInbound: 512, StreamsOutbound: 512, Memory: 4 * peerMemory},
		rcmgr.BaseLimitIncrease{Streams: 256, StreamsInbound: 128, StreamsOutbound: 128, Memory: peerMemory})
	limits.AddServicePeerLimit(ServiceName,
		rcmgr.BaseLimit{Streams: 64, StreamsInbound: 32, StreamsOutbound: 32, Memory: peerMemory},
		rcmgr.BaseLimitIncrease{})
	var ropts []rcmgr.Option
	if metrics {
		rep, err := rcmgr.NewStatsTraceReporter()
		if err != nil {
			return nil, fmt.Errorf("resource manager metrics: %w", err)
		}
		ropts = append(ropts, rcmgr.WithTraceReporter(rep))
	} else {
		ropts = append(ropts, rcmgr.WithMetricsDisabled())
	}
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits.AutoScale()), ropts...)
	if err != nil {
		return nil, fmt.Errorf("resource manager: %w", err)
	}
	return rm, nil
}

// DHTOption configures NewDHT.
type DHTOption func(*dhtConfig) error

type dhtConfig struct {
	bootstrap []peer.AddrInfo
	public    bool
	prefix    protocol.ID
	client    bool
}

// Bootstrap sets the peers the DHT starts from.
func Bootstrap(peers ...peer.AddrInfo) DHTOption {
	return func(c *dhtConfig) error {
		c.bootstrap = append(c.bootstrap, peers...)
		return nil
	}
}

// PublicBootstrap adds the public IPFS bootstrap peers. Off by default: tests
// and private swarms never touch the public network unless asked.
func PublicBootstrap() DHTOption {
	return func(c *dhtConfig) error {
		c.public = true
		return nil
	}
}

// ProtocolPrefix isolates a private swarm's DHT from every other one.
func ProtocolPrefix(p protocol.ID) DHTOption {
	return func(c *dhtConfig) error {
		c.prefix = p
		return nil
	}
}

// ClientMode makes the DHT a client only (it queries but serves no records).
func ClientMode() DHTOption {
	return func(c *dhtConfig) error {
		c.client = true
		return nil
	}
}

// NewDHT starts a Kademlia DHT on h in server mode (ad-hoc swarms on a LAN
// are never "publicly reachable", so auto mode would leave every peer a
// client and nobody would store provider records).
func NewDHT(ctx context.Context, h host.Host, opts ...DHTOption) (*dht.IpfsDHT, error) {
	var cfg dhtConfig
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	boot := cfg.bootstrap
	if cfg.public {
		boot = append(boot, dht.GetDefaultBootstrapPeerAddrInfos()...)
	}
	mode := dht.ModeServer
	if cfg.client {
		mode = dht.ModeClient
	}
	dopts := []dht.Option{dht.Mode(mode), dht.BootstrapPeers(boot...)}
	if cfg.prefix != "" {
		dopts = append(dopts, dht.ProtocolPrefix(cfg.prefix))
	}
	d, err := dht.New(h, dopts...)
	if err != nil {
		return nil, fmt.Errorf("dht: %w", err)
	}
	if err := d.Bootstrap(ctx); err != nil {
		_ = d.Close()
		return nil, fmt.Errorf("dht bootstrap: %w", err)
	}
	return d, nil
}

// checkTCPAddrs rejects listen addresses that are not plain TCP.
func checkTCPAddrs(addrs []string) error {
	for _, s := range addrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return fmt.Errorf("listen address %q: %w", s, err)
		}
		tcpSeen := false
		for _, c := range a {
			switch c.Protocol().Code {
			case ma.P_TCP:
				tcpSeen = true
			case ma.P_IP4, ma.P_IP6, ma.P_DNS, ma.P_DNS4, ma.P_DNS6:
			default:
				return fmt.Errorf("listen address %q: romap2p listens on TCP only, not %s", s, c.Protocol().Name)
			}
		}
		if !tcpSeen {
			return fmt.Errorf("listen address %q has no /tcp part", s)
		}
	}
	return nil
}
